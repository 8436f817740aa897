//! Specs from Python: a dict becomes the exec crate's neutral `SpecMap`, its host objects
//! (file objects, writers, iterators of batches) opaque handles that `PyHandles` opens. No kind
//! or key is known here: `zoopipe_exec::spec` parses and checks them.

use crate::pyerr::PyErrSlot;
use crate::{pyio, pysink, pysource};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use std::io::Write;
use std::sync::Arc;
use zoopipe_exec::codec::ByteReader;
use zoopipe_exec::open::Handles;
use zoopipe_exec::ranged_io::RangeRead;
use zoopipe_exec::spec::{SpecError, SpecMap, SpecValue};
use zoopipe_exec::{BatchSource, ExecError, Sink};

pub type PySpecMap = SpecMap<Py<PyAny>>;

fn to_spec_value(value: &Bound<'_, PyAny>) -> PyResult<SpecValue<Py<PyAny>>> {
    Ok(if value.is_none() {
        SpecValue::Null
    } else if let Ok(flag) = value.downcast::<PyBool>() {
        SpecValue::Bool(flag.is_true())
    } else if value.is_instance_of::<PyInt>() {
        SpecValue::Int(value.extract()?)
    } else if value.is_instance_of::<PyFloat>() {
        SpecValue::Float(value.extract()?)
    } else if let Ok(text) = value.downcast::<PyString>() {
        SpecValue::Str(text.to_str()?.to_owned())
    } else if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        SpecValue::List(value.try_iter()?.map(|item| to_spec_value(&item?)).collect::<PyResult<_>>()?)
    } else {
        SpecValue::Handle(value.clone().unbind())
    })
}

/// The neutral form of a spec dict.
pub fn spec_map(spec: &Bound<'_, PyDict>) -> PyResult<PySpecMap> {
    spec.iter().map(|(key, value)| Ok((key.extract::<String>()?, to_spec_value(&value)?))).collect()
}

pub fn spec_error(e: SpecError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Opens a spec's Python objects; a Python exception raised doing so is kept in `errors`.
pub struct PyHandles {
    pub errors: PyErrSlot,
}

impl Handles for PyHandles {
    type Handle = Py<PyAny>;

    fn reader(&self, file: Py<PyAny>) -> ByteReader {
        Box::new(pyio::PyFileReader::new(file, self.errors.clone()))
    }

    fn ranged(&self, file: Py<PyAny>, _source: &str) -> Result<Arc<dyn RangeRead>, ExecError> {
        Python::with_gil(|py| {
            let ranges = pyio::PyRanges::new(py, file, self.errors.clone())
                .map_err(|e| self.errors.keep(e, "opening the input file object"))?;
            Ok(Arc::new(ranges) as Arc<dyn RangeRead>)
        })
    }

    fn writer(&self, file: Py<PyAny>) -> Box<dyn Write + Send> {
        Box::new(pyio::PyFileWriter::new(file, self.errors.clone()))
    }

    fn batches(&self, batches: Py<PyAny>, source: &str) -> Box<dyn BatchSource> {
        Box::new(pysource::PyBatchSource::new(batches, source, self.errors.clone()))
    }

    fn sink(&self, writer: Py<PyAny>, target: &str) -> Box<dyn Sink> {
        Box::new(pysink::PySink::new(writer, target, self.errors.clone()))
    }
}
