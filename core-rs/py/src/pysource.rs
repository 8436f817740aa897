//! A Python input adapter's batches (an iterator of lists of dicts) as an executor source.

use crate::convert::to_value;
use crate::pyerr::PyErrSlot;
use pyo3::prelude::*;
use std::sync::Arc;
use zoopipe_exec::{Batch, BatchSource, ErrorRecord, ExecError, FailedStage, Row, RowData, Value};

pub struct PyBatchSource {
    batches: Py<PyAny>,
    source: Arc<str>,
    count: u64,
    errors: PyErrSlot,
}

impl PyBatchSource {
    pub fn new(batches: Py<PyAny>, source: &str, errors: PyErrSlot) -> PyBatchSource {
        PyBatchSource { batches, source: Arc::from(source), count: 0, errors }
    }
}

impl BatchSource for PyBatchSource {
    fn next_batch(&mut self, seq: u64, _max_rows: usize) -> Result<Option<Batch>, ExecError> {
        crate::pygil::with_gil(|py| -> PyResult<Option<Batch>> {
            let iterator = self.batches.bind(py);
            let mut rows = Vec::new();
            let mut errors = Vec::new();
            // Skip empty batches: an empty list is not the end of the input.
            while rows.is_empty() && errors.is_empty() {
                let Some(batch) = crate::pygil::next(iterator)? else { return Ok(None) };
                for item in batch.try_iter()? {
                    let item = item?;
                    self.count += 1;
                    match to_value(&item) {
                        Ok(value @ Value::Map(_)) => rows.push(Row { line: self.count, data: RowData::Value(value) }),
                        Ok(other) => errors.push(ErrorRecord {
                            source: self.source.clone(),
                            line: self.count,
                            stage: FailedStage::Parse,
                            messages: vec![format!("expected a dict, found {}", item.get_type().name()?)],
                            record: other,
                        }),
                        Err(e) => errors.push(ErrorRecord {
                            source: self.source.clone(),
                            line: self.count,
                            stage: FailedStage::Parse,
                            messages: vec![e.value(py).to_string()],
                            record: Value::Str(item.repr()?.to_string()),
                        }),
                    }
                }
            }
            Ok(Some(Batch { seq, columns: Arc::from(Vec::new()), rows, errors }))
        })
        .map_err(|e| self.errors.keep(e, &format!("reading {}", self.source)))
    }
}
