//! A Python output adapter's writer (`write_batch(list[dict])`) as an executor sink.

use crate::convert::rows_to_python;
use crate::pyerr::PyErrSlot;
use pyo3::prelude::*;
use zoopipe_exec::{ExecError, Payload, Sink};

pub struct PySink {
    writer: Py<PyAny>,
    target: String,
    errors: PyErrSlot,
}

impl PySink {
    pub fn new(writer: Py<PyAny>, target: &str, errors: PyErrSlot) -> PySink {
        PySink { writer, target: target.to_owned(), errors }
    }
}

impl Sink for PySink {
    fn write(&mut self, payload: Payload) -> Result<(), ExecError> {
        let Payload::Rows { columns, rows } = payload else {
            return Err(ExecError::Internal(format!("{} takes records, not bytes", self.target)));
        };
        if rows.is_empty() {
            return Ok(());
        }
        crate::pygil::with_gil(|py| {
            let records = rows_to_python(py, &columns, rows.iter().map(|r| &r.data), None)?;
            crate::pygil::call_method(self.writer.bind(py), "write_batch", &pyo3::types::PyTuple::new(py, [records])?)?;
            Ok(())
        })
        .map_err(|e: PyErr| self.errors.keep(e, &format!("writing {}", self.target)))
    }

    fn finish(self: Box<Self>) -> Result<(), ExecError> {
        Ok(()) // The Python side commits the writer once every output has finished.
    }
}
