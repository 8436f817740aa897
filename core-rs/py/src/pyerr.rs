//! Python exceptions raised inside the run are kept whole, so the caller re-raises the
//! original exception instead of a string copy of it.

use pyo3::PyErr;
use std::sync::{Arc, Mutex};
use zoopipe_exec::ExecError;

#[derive(Clone, Default)]
pub struct PyErrSlot(Arc<Mutex<Option<PyErr>>>);

impl PyErrSlot {
    /// Keep the first Python exception and describe it for the executor.
    pub fn keep(&self, err: PyErr, context: &str) -> ExecError {
        let message = format!("{context}: {err}");
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(err);
        }
        ExecError::Stage(message)
    }

    pub fn take(&self) -> Option<PyErr> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}
