//! The Python stage: validation and transforms, called once per batch with the GIL held.
//!
//! Protocol of the Python callable: `stage(records: list[dict]) -> (indices, outputs, failures)`
//! where `outputs[k]` is the result for `records[indices[k]]` (`indices` may be None for
//! 0..len(outputs)) and `failures` is a list of `(index, stage_name, [messages])`.
//! Every input index must appear exactly once, in outputs or in failures.

use crate::convert::{rows_to_python, to_value};
use crate::pyerr::PyErrSlot;
use crate::pyjson::write_json;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyModule, PyTuple};
use std::cell::Cell;
use std::collections::HashSet;
use std::sync::Arc;
use zoopipe_exec::{Batch, ErrorRecord, ExecError, FailedStage, OutBatch, PreEncoded, Row, RowData, Stage, Value};

pub struct PyStage {
    func: Py<PyAny>,
    source: Arc<str>,
    errors: PyErrSlot,
    /// The main output is JSON Lines: write the output dicts as JSON here, under the GIL we
    /// hold anyway, instead of converting them to values for an encoder thread.
    encodes_jsonl: bool,
    /// The columns validation reads, when the model ignores the others: the input dicts hold
    /// only these. Error records still carry the whole row as read.
    input_keys: Option<HashSet<String>>,
    /// Bytes per encoded record in the last batch, to size the next batch's buffer.
    bytes_per_record: Cell<usize>,
}

/// What the stage made of a batch's outputs: values for the encoders, or JSON Lines bytes.
enum Outputs {
    Values(Vec<(usize, RowData)>),
    Encoded(PreEncoded),
}

impl PyStage {
    pub fn new(
        func: Py<PyAny>,
        source: &str,
        errors: PyErrSlot,
        encodes_jsonl: bool,
        input_keys: Option<Vec<String>>,
    ) -> PyStage {
        let input_keys = input_keys.map(|keys| keys.into_iter().collect());
        PyStage { func, source: Arc::from(source), errors, encodes_jsonl, input_keys, bytes_per_record: Cell::new(256) }
    }

    /// The outputs as JSON Lines in input order; a record that cannot be written becomes a
    /// serialize error, as the JSON Lines encoder would make it.
    fn encode_jsonl(
        &self,
        py: Python<'_>,
        batch: &Batch,
        mut outputs: Vec<(usize, Bound<'_, PyAny>)>,
        errors: &mut Vec<ErrorRecord>,
    ) -> PreEncoded {
        outputs.sort_unstable_by_key(|(index, _)| *index);
        let mut bytes = Vec::with_capacity(outputs.len() * self.bytes_per_record.get() * 9 / 8);
        let mut records = 0u64;
        for (index, obj) in outputs {
            let mark = bytes.len();
            match write_json(&obj, &mut bytes) {
                Ok(()) => {
                    bytes.push(b'\n');
                    records += 1;
                }
                Err(refusal) => {
                    bytes.truncate(mark);
                    errors.push(self.failure(batch, index, FailedStage::Serialize, vec![refusal.message(py)]));
                }
            }
        }
        if records > 0 {
            self.bytes_per_record.set((bytes.len() / records as usize).max(16));
        }
        PreEncoded { bytes, records }
    }

    fn failure(&self, batch: &Batch, index: usize, stage: FailedStage, messages: Vec<String>) -> ErrorRecord {
        let row = &batch.rows[index];
        ErrorRecord {
            source: self.source.clone(),
            line: row.line,
            stage,
            messages,
            record: row.data.to_value(&batch.columns),
        }
    }

    fn call(&self, py: Python<'_>, batch: &Batch) -> PyResult<(Outputs, Vec<ErrorRecord>)> {
        let records = rows_to_python(py, &batch.columns, batch.rows.iter().map(|r| &r.data), self.input_keys.as_ref())?;
        let result = crate::pygil::call(self.func.bind(py), &PyTuple::new(py, [records])?)?;
        let result = result.downcast::<PyTuple>()?.clone();
        let (indices, outputs, failures) = (result.get_item(0)?, result.get_item(1)?, result.get_item(2)?);
        let outputs = outputs.downcast::<PyList>()?;
        let n = batch.rows.len();
        let mut seen = vec![false; n];
        let mut mark = |i: usize| -> PyResult<()> {
            if i >= n || std::mem::replace(&mut seen[i], true) {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                    "the stage reported record {i} twice or out of range (batch of {n})"
                )));
            }
            Ok(())
        };
        let (mut out, mut to_encode) = if self.encodes_jsonl {
            (Vec::new(), Vec::with_capacity(outputs.len()))
        } else {
            (Vec::with_capacity(outputs.len()), Vec::new())
        };
        let mut errors = Vec::new();
        let indices: Option<Vec<usize>> = if indices.is_none() { None } else { Some(indices.extract()?) };
        for (k, obj) in outputs.iter().enumerate() {
            let index = match &indices {
                Some(ix) => *ix.get(k).ok_or_else(|| {
                    pyo3::exceptions::PyRuntimeError::new_err("the stage returned more outputs than indices")
                })?,
                None => k,
            };
            mark(index)?;
            // Every output is checked here, once, whatever it is written to: a record is an
            // object. A dict is the common case; another type (a pydantic model, say) must
            // convert to one.
            let value = if obj.is_instance_of::<PyDict>() {
                None
            } else {
                match to_value(&obj) {
                    Ok(value @ Value::Map(_)) => Some(value),
                    Ok(_) => {
                        errors.push(self.failure(batch, index, FailedStage::Serialize, vec![not_an_object(&obj)]));
                        continue;
                    }
                    Err(e) => {
                        errors.push(self.failure(batch, index, FailedStage::Serialize, vec![e.value(py).to_string()]));
                        continue;
                    }
                }
            };
            if self.encodes_jsonl {
                to_encode.push((index, obj));
                continue;
            }
            match value.map_or_else(|| to_value(&obj), Ok) {
                Ok(value) => out.push((index, RowData::Value(value))),
                Err(e) => {
                    errors.push(self.failure(batch, index, FailedStage::Serialize, vec![e.value(py).to_string()]))
                }
            }
        }
        for item in failures.try_iter()? {
            let (index, stage, messages): (usize, String, Vec<String>) = item?.extract()?;
            mark(index)?;
            let stage = FailedStage::parse(&stage).unwrap_or(FailedStage::Transform);
            errors.push(self.failure(batch, index, stage, messages));
        }
        if let Some(missing) = seen.iter().position(|s| !s) {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "the stage lost record {missing} of a batch of {n}: every record must be returned or reported as failed"
            )));
        }
        if self.encodes_jsonl {
            let encoded = self.encode_jsonl(py, batch, to_encode, &mut errors);
            return Ok((Outputs::Encoded(encoded), errors));
        }
        Ok((Outputs::Values(out), errors))
    }
}

/// Why an output that is not a dict cannot be written: every output (JSON, tables, CSV, Python
/// writers) takes records as objects.
fn not_an_object(obj: &Bound<'_, PyAny>) -> String {
    let found = if obj.is_none() {
        "None".to_owned()
    } else {
        let name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
        let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        format!("{article} {name}")
    };
    format!("a record must be a dict (a JSON object); the transform returned {found}")
}

/// Pauses Python's cyclic garbage collector for one batch. A batch allocates thousands of
/// short-lived containers (input dicts, models, output dicts) that are not cyclic garbage, and
/// collections triggered while they are alive traverse all of them: measured, pausing cuts
/// validation time by about a third. Collection resumes (and runs if due) after the batch.
struct GcPause<'py> {
    gc: Bound<'py, PyModule>,
    was_enabled: bool,
}

impl<'py> GcPause<'py> {
    fn new(py: Python<'py>) -> PyResult<GcPause<'py>> {
        let gc = py.import("gc")?;
        let was_enabled = gc.call_method0("isenabled")?.is_truthy()?;
        if was_enabled {
            gc.call_method0("disable")?;
        }
        Ok(GcPause { gc, was_enabled })
    }
}

impl Drop for GcPause<'_> {
    fn drop(&mut self) {
        if self.was_enabled {
            let _ = self.gc.call_method0("enable");
        }
    }
}

impl Stage for PyStage {
    fn process(&mut self, batch: Batch) -> Result<OutBatch, ExecError> {
        let (outputs, mut failures) = crate::pygil::with_gil(|py| {
            let _pause = GcPause::new(py)?;
            self.call(py, &batch)
        })
        .map_err(|e| self.errors.keep(e, "the Python stage failed"))?;
        let Batch { seq, columns, rows, mut errors } = batch;
        errors.append(&mut failures);
        let outputs = match outputs {
            Outputs::Encoded(encoded) => {
                return Ok(OutBatch {
                    seq,
                    columns,
                    rows: Vec::new(),
                    errors,
                    originals: Vec::new(),
                    encoded: Some(encoded),
                })
            }
            Outputs::Values(outputs) => outputs,
        };
        let mut inputs: Vec<Option<Row>> = rows.into_iter().map(Some).collect();
        let mut pairs = Vec::with_capacity(outputs.len());
        for (index, data) in outputs {
            let input = inputs[index]
                .take()
                .ok_or_else(|| ExecError::Internal(format!("the stage returned record {index} twice")))?;
            pairs.push((Row { line: input.line, data }, input.data));
        }
        // Keep the output in input order: the stage may report outputs in any order.
        pairs.sort_by_key(|(row, _)| row.line);
        let (out_rows, originals) = pairs.into_iter().unzip();
        Ok(OutBatch { seq, columns, rows: out_rows, errors, originals, encoded: None })
    }
}

/// Checks for signals (Ctrl-C) before each batch, on the main thread. The run holds no GIL,
/// so without this Python would raise KeyboardInterrupt only after the whole input was read.
pub struct SignalCheck {
    inner: Box<dyn Stage + Send>,
    errors: PyErrSlot,
}

impl SignalCheck {
    pub fn new(inner: Box<dyn Stage + Send>, errors: PyErrSlot) -> SignalCheck {
        SignalCheck { inner, errors }
    }
}

impl Stage for SignalCheck {
    fn process(&mut self, batch: Batch) -> Result<OutBatch, ExecError> {
        crate::pygil::with_gil(crate::pygil::check_signals)
            .map_err(|e| self.errors.keep(e, "the run was interrupted"))?;
        self.inner.process(batch)
    }
}
