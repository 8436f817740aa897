//! JSON straight from Python objects, for a Python stage feeding a JSON Lines output.
//!
//! The common types (str, int, float, bool, None, dict, list, tuple) are written as they are
//! walked; any other value goes through [`to_value`] and is written from the executor value.
//! Either way the bytes are those the JSON Lines encoder writes for the converted record, and
//! a record that cannot be written is refused with the same reason.

use crate::convert::to_value;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use zoopipe_exec::encode::{write_json_f64, write_json_i64, write_json_str, write_json_value};

/// Why a value could not be written: a Python error from converting it, or a value JSON
/// cannot hold (NaN).
pub enum Refusal {
    Python(PyErr),
    Json(String),
}

impl Refusal {
    /// The reason as the error record states it.
    pub fn message(&self, py: Python<'_>) -> String {
        match self {
            Refusal::Python(e) => e.value(py).to_string(),
            Refusal::Json(reason) => reason.clone(),
        }
    }
}

impl From<PyErr> for Refusal {
    fn from(e: PyErr) -> Refusal {
        Refusal::Python(e)
    }
}

/// Append `obj` as JSON to `out`. On a refusal `out` may hold part of it: the caller truncates.
pub fn write_json(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> Result<(), Refusal> {
    if let Ok(s) = obj.downcast_exact::<PyString>() {
        write_json_str(out, s.to_str()?);
    } else if obj.is_none() {
        out.extend_from_slice(b"null");
    } else if let Ok(b) = obj.downcast_exact::<PyBool>() {
        out.extend_from_slice(if b.is_true() { b"true" } else { b"false" });
    } else if obj.is_exact_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            write_json_i64(out, i);
        } else {
            // Beyond i64: the conversion writes u64 or refuses, with its message.
            write_converted(obj, out)?;
        }
    } else if let Ok(f) = obj.downcast_exact::<PyFloat>() {
        write_json_f64(out, f.value()).map_err(Refusal::Json)?;
    } else if let Ok(d) = obj.downcast_exact::<PyDict>() {
        write_object(d, out)?;
    } else if let Ok(l) = obj.downcast_exact::<PyList>() {
        write_array(l.iter(), out)?;
    } else if let Ok(t) = obj.downcast_exact::<PyTuple>() {
        write_array(t.iter(), out)?;
    } else {
        write_converted(obj, out)?;
    }
    Ok(())
}

fn write_object(dict: &Bound<'_, PyDict>, out: &mut Vec<u8>) -> Result<(), Refusal> {
    out.push(b'{');
    for (i, (k, v)) in dict.iter().enumerate() {
        let key = k.downcast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "a record's keys must be strings, found {}",
                k.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })?;
        let key = key.to_str()?;
        if i > 0 {
            out.push(b',');
        }
        write_json_str(out, key);
        out.push(b':');
        // Named like the conversion names a field it cannot convert.
        write_json(&v, out).map_err(|refusal| match refusal {
            Refusal::Python(e) => Refusal::Python(PyTypeError::new_err(format!("field {key:?}: {e}"))),
            json => json,
        })?;
    }
    out.push(b'}');
    Ok(())
}

fn write_array<'py>(items: impl Iterator<Item = Bound<'py, PyAny>>, out: &mut Vec<u8>) -> Result<(), Refusal> {
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(&item, out)?;
    }
    out.push(b']');
    Ok(())
}

fn write_converted(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> Result<(), Refusal> {
    let value = to_value(obj)?;
    write_json_value(out, &value).map_err(Refusal::Json)
}
