//! `zoopipe_core._native`: the PyO3 glue over `zoopipe_exec`. Type and error conversion only;
//! the pipeline itself lives in the pure Rust crate. The GIL is released for the whole run and
//! taken back only where Python objects are touched (the stage, Python sources and sinks).

mod convert;
mod pyerr;
mod pyio;
mod pysink;
mod pysource;
mod stage;

use pyerr::PyErrSlot;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use zoopipe_exec::codec::{self, Compression};
use zoopipe_exec::csv_source::{CsvOptions, CsvSource};
use zoopipe_exec::encode::{CsvEncoder, Encoder, JsonlEncoder};
use zoopipe_exec::jsonl_source::JsonlSource;
use zoopipe_exec::{BatchSource, ExecError, Output, Passthrough, Progress, RunConfig, Stage, StreamSink};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

create_exception!(_native, ExecutionError, PyException, "A run failed; nothing was published.");
create_exception!(_native, RunCancelled, ExecutionError, "A run was stopped before it finished.");

/// Live counters of a run, readable from any thread while it goes on.
#[pyclass(frozen, module = "zoopipe_core._native")]
struct NativeProgress {
    inner: Arc<Progress>,
}

#[pymethods]
impl NativeProgress {
    #[new]
    fn new() -> Self {
        NativeProgress { inner: Arc::new(Progress::default()) }
    }
    #[getter]
    fn read(&self) -> u64 {
        self.inner.read.load(Ordering::Relaxed)
    }
    #[getter]
    fn success(&self) -> u64 {
        self.inner.success.load(Ordering::Relaxed)
    }
    #[getter]
    fn errors(&self) -> u64 {
        self.inner.errors.load(Ordering::Relaxed)
    }
    #[getter]
    fn batches(&self) -> u64 {
        self.inner.batches.load(Ordering::Relaxed)
    }
}

/// Asks a running pipe to stop at the next batch boundary.
#[pyclass(frozen, module = "zoopipe_core._native")]
struct StopToken {
    flag: Arc<AtomicBool>,
}

#[pymethods]
impl StopToken {
    #[new]
    fn new() -> Self {
        StopToken { flag: Arc::new(AtomicBool::new(false)) }
    }
    fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }
    #[getter]
    fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

fn item<'py, T: FromPyObject<'py>>(spec: &Bound<'py, PyDict>, key: &str, default: T) -> PyResult<T> {
    match spec.get_item(key)? {
        Some(v) if !v.is_none() => v.extract(),
        _ => Ok(default),
    }
}

fn single_byte(spec: &Bound<'_, PyDict>, key: &str, default: u8) -> PyResult<u8> {
    let text: String = item(spec, key, (default as char).to_string())?;
    match text.as_bytes() {
        [b] => Ok(*b),
        _ => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "{key} must be a single ASCII character, got {text:?}"
        ))),
    }
}

fn compression(spec: &Bound<'_, PyDict>) -> PyResult<Compression> {
    let name: String = item(spec, "compression", String::new())?;
    Compression::from_name(&name).map_err(pyo3::exceptions::PyValueError::new_err)
}

fn to_pyerr(e: ExecError) -> PyErr {
    match e {
        ExecError::Cancelled => RunCancelled::new_err(e.to_string()),
        other => ExecutionError::new_err(other.to_string()),
    }
}

fn open_input(spec: &Bound<'_, PyDict>, name: &str, errors: &PyErrSlot) -> PyResult<codec::ByteReader> {
    let raw: codec::ByteReader = match spec.get_item("path")? {
        Some(path) if !path.is_none() => {
            let path: String = path.extract()?;
            codec::open_file(&path).map_err(|e| to_pyerr(ExecError::Input {
                source: name.to_owned(),
                line: None,
                message: e.to_string(),
            }))?
        }
        _ => {
            let file: Py<PyAny> = spec.get_item("file")?.ok_or_else(|| {
                pyo3::exceptions::PyValueError::new_err("an input spec needs a path or a file")
            })?.unbind();
            Box::new(pyio::PyFileReader::new(file, errors.clone()))
        }
    };
    codec::decoder(raw, compression(spec)?).map_err(|e| to_pyerr(ExecError::Input {
        source: name.to_owned(),
        line: None,
        message: e.to_string(),
    }))
}

fn build_source(spec: &Bound<'_, PyDict>, errors: &PyErrSlot) -> PyResult<(Box<dyn BatchSource>, String)> {
    let kind: String = item(spec, "kind", String::new())?;
    let name: String = item(spec, "name", kind.clone())?;
    let source: Box<dyn BatchSource> = match kind.as_str() {
        "csv" => {
            let options = CsvOptions {
                delimiter: single_byte(spec, "delimiter", b',')?,
                quote: single_byte(spec, "quotechar", b'"')?,
                has_header: item(spec, "has_header", true)?,
                field_names: item(spec, "field_names", None)?,
            };
            let input = open_input(spec, &name, errors)?;
            Box::new(CsvSource::new(input, options, &name).map_err(to_pyerr)?)
        }
        "jsonl" => Box::new(JsonlSource::new(open_input(spec, &name, errors)?, &name)),
        "python" => {
            let batches = spec.get_item("batches")?.ok_or_else(|| {
                pyo3::exceptions::PyValueError::new_err("a python source needs 'batches'")
            })?;
            Box::new(pysource::PyBatchSource::new(batches.unbind(), &name, errors.clone()))
        }
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "unknown native source kind {other:?}"
            )))
        }
    };
    Ok((source, name))
}

fn build_output(spec: &Bound<'_, PyDict>, errors: &PyErrSlot) -> PyResult<Output> {
    let kind: String = item(spec, "kind", String::new())?;
    let name: String = item(spec, "name", kind.clone())?;
    let columns: Option<Vec<String>> = item(spec, "field_names", None)?;
    let encoder: Arc<dyn Encoder> = match kind.as_str() {
        "jsonl" => Arc::new(JsonlEncoder),
        "csv" => Arc::new(CsvEncoder {
            delimiter: single_byte(spec, "delimiter", b',')?,
            quote: single_byte(spec, "quotechar", b'"')?,
            write_header: item(spec, "header", true)?,
        }),
        "python" => {
            let writer = spec.get_item("writer")?.ok_or_else(|| {
                pyo3::exceptions::PyValueError::new_err("a python output needs 'writer'")
            })?;
            return Ok(Output {
                encoder: None,
                sink: Box::new(pysink::PySink::new(writer.unbind(), &name, errors.clone())),
                columns: columns.map(Arc::from),
            });
        }
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "unknown native output kind {other:?}"
            )))
        }
    };
    let fail = |e: std::io::Error| to_pyerr(ExecError::Output { target: name.clone(), message: e.to_string() });
    let stream = match spec.get_item("path")? {
        Some(path) if !path.is_none() => codec::create_file(&path.extract::<String>()?, compression(spec)?).map_err(fail)?,
        _ => {
            let file: Py<PyAny> = spec.get_item("file")?.ok_or_else(|| {
                pyo3::exceptions::PyValueError::new_err("an output spec needs a path or a file")
            })?.unbind();
            codec::encoder(pyio::PyFileWriter::new(file, errors.clone()), compression(spec)?).map_err(fail)?
        }
    };
    Ok(Output { encoder: Some(encoder), sink: Box::new(StreamSink::new(&name, stream)), columns: columns.map(Arc::from) })
}

fn on_main_thread(py: Python<'_>) -> PyResult<bool> {
    let threading = py.import("threading")?;
    Ok(threading.call_method0("current_thread")?.is(&threading.call_method0("main_thread")?))
}

/// Run a pipe to the end. Returns {"read", "success", "errors", "error_samples"}; raises
/// ExecutionError (or the Python exception a stage, source or sink raised) on failure.
#[pyfunction]
#[pyo3(signature = (source, output, errors, stage, batch_size, encode_workers, progress, stop))]
#[allow(clippy::too_many_arguments)]
fn run_pipe<'py>(
    py: Python<'py>,
    source: &Bound<'py, PyDict>,
    output: &Bound<'py, PyDict>,
    errors: Option<&Bound<'py, PyDict>>,
    stage: Option<Py<PyAny>>,
    batch_size: usize,
    encode_workers: usize,
    progress: &NativeProgress,
    stop: &StopToken,
) -> PyResult<Bound<'py, PyDict>> {
    let py_errors = PyErrSlot::default();
    let (source, source_name) = build_source(source, &py_errors)?;
    let main = build_output(output, &py_errors)?;
    let error_output = errors.map(|spec| build_output(spec, &py_errors)).transpose()?;
    let mut stage: Box<dyn Stage + Send> = match stage {
        Some(func) => Box::new(stage::PyStage::new(func, &source_name, py_errors.clone())),
        None => Box::new(Passthrough),
    };
    if on_main_thread(py)? {
        stage = Box::new(stage::SignalCheck::new(stage, py_errors.clone()));
    }
    let config = RunConfig { batch_size, encode_workers, ..RunConfig::default() };
    let counters = progress.inner.clone();
    let flag = stop.flag.clone();
    let result = py.allow_threads(|| {
        zoopipe_exec::run(source, &mut *stage, main, error_output, &config, &counters, &flag, &source_name)
    });
    if let Some(original) = py_errors.take() {
        return Err(original);
    }
    let summary = result.map_err(to_pyerr)?;
    let out = PyDict::new(py);
    out.set_item("read", summary.read)?;
    out.set_item("success", summary.success)?;
    out.set_item("errors", summary.errors)?;
    let samples = PyList::empty(py);
    for record in &summary.error_samples {
        samples.append(convert::to_python(py, &record.to_value())?)?;
    }
    out.set_item("error_samples", samples)?;
    Ok(out)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeProgress>()?;
    m.add_class::<StopToken>()?;
    m.add_function(wrap_pyfunction!(run_pipe, m)?)?;
    m.add("ExecutionError", m.py().get_type::<ExecutionError>())?;
    m.add("RunCancelled", m.py().get_type::<RunCancelled>())?;
    Ok(())
}
