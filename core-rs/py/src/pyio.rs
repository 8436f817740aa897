//! Python file objects (fsspec files for URLs) as Rust byte streams, and as files read by
//! ranged reads (Parquet, Arrow). The GIL is taken once per chunk or range, and chunks are
//! large (the codec layer buffers 1 MiB).

use crate::pyerr::PyErrSlot;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use std::io::{self, Read, Write};
use std::ops::Range;
use zoopipe_exec::ranged_io::{Bytes, RangeRead};

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

/// A Python object read by byte ranges: `zoopipe_core.adapters.ranged.RangedFile` (its
/// `size`, `read_range(start, end)` and `read_ranges([(start, end), ...])`, fetched
/// concurrently), or any seekable binary file object (`seek` and `read`).
pub struct PyRanges {
    file: Py<PyAny>,
    size: u64,
    ranged: bool,
    errors: PyErrSlot,
}

impl PyRanges {
    pub fn new(py: Python<'_>, file: Py<PyAny>, errors: PyErrSlot) -> PyResult<PyRanges> {
        let bound = file.bind(py);
        let ranged = bound.hasattr("read_ranges")?;
        let size = match bound.getattr("size").ok().and_then(|s| s.extract::<u64>().ok()) {
            Some(size) => size,
            None => bound.call_method1("seek", (0, 2))?.extract()?,
        };
        Ok(PyRanges { file, size, ranged, errors })
    }

    fn fetch(&self, py: Python<'_>, ranges: &[Range<u64>]) -> PyResult<Vec<Bytes>> {
        let file = self.file.bind(py);
        let copy = |data: Bound<'_, PyAny>| -> PyResult<Bytes> {
            let bytes = data.downcast::<PyBytes>().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(
                    "the input file object must return bytes; open it in binary mode",
                )
            })?;
            Ok(Bytes::copy_from_slice(bytes.as_bytes()))
        };
        if self.ranged {
            let pairs: Vec<(u64, u64)> = ranges.iter().map(|r| (r.start, r.end)).collect();
            let args = PyTuple::new(py, [PyList::new(py, pairs)?])?;
            let fetched = crate::pygil::call_method(file, "read_ranges", &args)?;
            return fetched.try_iter()?.map(|data| copy(data?)).collect();
        }
        let mut out = Vec::with_capacity(ranges.len());
        for range in ranges {
            crate::pygil::call_method(file, "seek", &PyTuple::new(py, [range.start])?)?;
            let length = range.end.saturating_sub(range.start);
            out.push(copy(crate::pygil::call_method(file, "read", &PyTuple::new(py, [length])?)?)?);
        }
        Ok(out)
    }
}

impl RangeRead for PyRanges {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> io::Result<Vec<Bytes>> {
        crate::pygil::with_gil(|py| {
            self.fetch(py, ranges)
                .map_err(|e| io::Error::other(self.errors.keep(e, "reading the input file object").to_string()))
        })
    }
}
