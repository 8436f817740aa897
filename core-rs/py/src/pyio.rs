//! Python file objects (fsspec files for URLs) as Rust byte streams. The GIL is taken once
//! per chunk, and chunks are large (the codec layer buffers 1 MiB).

use crate::pyerr::PyErrSlot;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use std::io::{self, Read, Write};

pub struct PyFileReader {
    file: Py<PyAny>,
    errors: PyErrSlot,
}

impl PyFileReader {
    pub fn new(file: Py<PyAny>, errors: PyErrSlot) -> PyFileReader {
        PyFileReader { file, errors }
    }
}

impl Read for PyFileReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        crate::pygil::with_gil(|py| {
            let args = PyTuple::new(py, [buf.len()]).map_err(|e| io::Error::other(e.to_string()))?;
            let chunk = crate::pygil::call_method(self.file.bind(py), "read", &args)
                .map_err(|e| io::Error::other(self.errors.keep(e, "reading the input file object").to_string()))?;
            let bytes = chunk.downcast::<PyBytes>().map_err(|_| {
                io::Error::other(
                    "the input file object's read() returned something other than bytes; open it in binary mode",
                )
            })?;
            let data = bytes.as_bytes();
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            Ok(n)
        })
    }
}

pub struct PyFileWriter {
    file: Py<PyAny>,
    errors: PyErrSlot,
}

impl PyFileWriter {
    pub fn new(file: Py<PyAny>, errors: PyErrSlot) -> PyFileWriter {
        PyFileWriter { file, errors }
    }
}

impl Write for PyFileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        crate::pygil::with_gil(|py| {
            let args = PyTuple::new(py, [PyBytes::new(py, buf)]).map_err(|e| io::Error::other(e.to_string()))?;
            crate::pygil::call_method(self.file.bind(py), "write", &args)
                .map_err(|e| io::Error::other(self.errors.keep(e, "writing the output file object").to_string()))?;
            Ok(buf.len())
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        crate::pygil::with_gil(|py| {
            crate::pygil::call_method(self.file.bind(py), "flush", &PyTuple::empty(py))
                .map_err(|e| io::Error::other(self.errors.keep(e, "flushing the output file object").to_string()))?;
            Ok(())
        })
    }
}
