//! `zoopipe_core._native`: the PyO3 glue over `zoopipe_exec`. Type and error conversion only;
//! the pipeline itself lives in the pure Rust crate. The GIL is released for the whole run and
//! taken back only where Python objects are touched (the stage, Python sources and sinks).

mod convert;
mod pyerr;
mod pygil;
mod pyio;
mod pyjson;
mod pysink;
mod pysource;
mod pyspec;
mod stage;

use pyerr::PyErrSlot;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyspec::{spec_error, spec_map, PyHandles};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use zoopipe_exec::csv_source::CsvOptions;
use zoopipe_exec::spec::{single_byte, SinkSpec, SourceSpec};
use zoopipe_exec::split::SplitKind;
use zoopipe_exec::{ExecError, Passthrough, Progress, RunConfig, Stage};

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

fn to_pyerr(e: ExecError) -> PyErr {
    match e {
        ExecError::Cancelled => RunCancelled::new_err(e.to_string()),
        other => ExecutionError::new_err(other.to_string()),
    }
}

fn on_main_thread(py: Python<'_>) -> PyResult<bool> {
    let threading = py.import("threading")?;
    Ok(threading.call_method0("current_thread")?.is(&threading.call_method0("main_thread")?))
}

/// Run a pipe to the end. Returns {"read", "success", "errors", "error_samples"}; raises
/// ExecutionError (or the Python exception a stage, source or sink raised) on failure.
/// `input_keys`: the only columns the stage's input dicts hold (None: every column).
#[pyfunction]
#[pyo3(signature = (source, output, errors, stage, batch_size, encode_workers, progress, stop, inline = false, input_keys = None))]
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
    inline: bool,
    input_keys: Option<Vec<String>>,
) -> PyResult<Bound<'py, PyDict>> {
    let py_errors = PyErrSlot::default();
    // Parsed once per run, before anything is opened.
    let source = SourceSpec::parse(spec_map(source)?).map_err(spec_error)?;
    let output = SinkSpec::parse(spec_map(output)?).map_err(spec_error)?;
    let errors = errors.map(|spec| SinkSpec::parse_error_output(spec_map(spec)?).map_err(spec_error)).transpose()?;
    let encodes_jsonl = output.encodes_jsonl();
    let handles = PyHandles { errors: py_errors.clone() };
    // A Python exception raised while opening (a file object's read) is raised as it was.
    let failed = |e: ExecError| py_errors.take().unwrap_or_else(|| to_pyerr(e));
    let source_name = source.name.clone();
    let opened = source.open(&handles).map_err(failed)?;
    let main = output.open(&handles, opened.schema, stage.is_none()).map_err(failed)?;
    let error_output = errors.map(|spec| spec.open(&handles, None, false)).transpose().map_err(failed)?;
    let mut stage: Box<dyn Stage + Send> = match stage {
        Some(func) => Box::new(stage::PyStage::new(func, &source_name, py_errors.clone(), encodes_jsonl, input_keys)),
        None => Box::new(Passthrough),
    };
    if on_main_thread(py)? {
        stage = Box::new(stage::SignalCheck::new(stage, py_errors.clone()));
    }
    let config = RunConfig { batch_size, encode_workers, inline, ..RunConfig::default() };
    let counters = progress.inner.clone();
    let flag = stop.flag.clone();
    let result = py.allow_threads(|| {
        let result =
            zoopipe_exec::run(opened.source, &mut *stage, main, error_output, &config, &counters, &flag, &source_name);
        // Taking the GIL back while the interpreter finalises would abort the process.
        pygil::park_if_python_exiting();
        result
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

/// Split a local CSV or JSON Lines file into at most `n` byte ranges `(start, end,
/// line_offset)` that hold every record exactly once (see `zoopipe_exec::split`).
#[pyfunction]
#[pyo3(signature = (path, kind, n, delimiter = ",", quotechar = "\"", has_header = true))]
fn split_points(
    py: Python<'_>,
    path: &str,
    kind: &str,
    n: usize,
    delimiter: &str,
    quotechar: &str,
    has_header: bool,
) -> PyResult<Vec<(u64, u64, u64)>> {
    let kind = SplitKind::from_name(kind).map_err(pyo3::exceptions::PyValueError::new_err)?;
    let options = CsvOptions {
        delimiter: single_byte("delimiter", delimiter).map_err(spec_error)?,
        quote: single_byte("quotechar", quotechar).map_err(spec_error)?,
        has_header,
        ..CsvOptions::default()
    };
    let shards = py.allow_threads(|| zoopipe_exec::split::split_points(path, kind, n, &options)).map_err(to_pyerr)?;
    Ok(shards.into_iter().map(|s| (s.start, s.end, s.line_offset)).collect())
}

/// The first record start in `window` after its first byte, or None when the window does not
/// decide it (see `zoopipe_exec::cut`): the planner of a file in an object store reads a window
/// starting one byte before each cut target.
#[pyfunction]
#[pyo3(signature = (window, kind, expected_fields = 0, at_eof = false, delimiter = ",", quotechar = "\""))]
fn record_start(
    window: &[u8],
    kind: &str,
    expected_fields: usize,
    at_eof: bool,
    delimiter: &str,
    quotechar: &str,
) -> PyResult<Option<usize>> {
    let kind = SplitKind::from_name(kind).map_err(pyo3::exceptions::PyValueError::new_err)?;
    let delimiter = single_byte("delimiter", delimiter).map_err(spec_error)?;
    let quote = single_byte("quotechar", quotechar).map_err(spec_error)?;
    Ok(zoopipe_exec::cut::record_start(window, kind, expected_fields, at_eof, delimiter, quote))
}

/// The head of the CSV file starting with `window`: `(data_start, lines_before, fields)` (the
/// header's names, or the first row's values without a header), or None to read more.
#[pyfunction]
#[pyo3(signature = (window, at_eof = false, delimiter = ",", quotechar = "\"", has_header = true))]
fn csv_head(
    window: &[u8],
    at_eof: bool,
    delimiter: &str,
    quotechar: &str,
    has_header: bool,
) -> PyResult<Option<(u64, u64, Vec<String>)>> {
    let delimiter = single_byte("delimiter", delimiter).map_err(spec_error)?;
    let quote = single_byte("quotechar", quotechar).map_err(spec_error)?;
    let head = zoopipe_exec::cut::csv_head(window, at_eof, delimiter, quote, has_header)
        .map_err(pyo3::exceptions::PyValueError::new_err)?;
    Ok(head.map(|h| (h.data_start, h.lines_before, h.fields)))
}

/// The rows of each record batch of an Arrow IPC file read through `file` (an object with
/// `size` and `read_range`/`read_ranges`, or a seekable binary file): its footer and each
/// batch's message header only, no batch body (see `zoopipe_exec::ipc_io::file_batch_rows`).
/// ValueError if it is not a readable IPC file; a Python exception of `file` as raised.
#[pyfunction]
fn ipc_file_batch_rows(py: Python<'_>, file: Py<PyAny>) -> PyResult<Vec<u64>> {
    let slot = PyErrSlot::default();
    let ranges = pyio::PyRanges::new(py, file, slot.clone())?;
    let rows = py.allow_threads(|| zoopipe_exec::ipc_io::file_batch_rows(&ranges));
    if let Some(original) = slot.take() {
        return Err(original);
    }
    rows.map_err(pyo3::exceptions::PyValueError::new_err)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(split_points, m)?)?;
    m.add_function(wrap_pyfunction!(record_start, m)?)?;
    m.add_function(wrap_pyfunction!(csv_head, m)?)?;
    m.add_function(wrap_pyfunction!(ipc_file_batch_rows, m)?)?;
    m.add_class::<NativeProgress>()?;
    m.add_class::<StopToken>()?;
    m.add_function(wrap_pyfunction!(run_pipe, m)?)?;
    m.add("ExecutionError", m.py().get_type::<ExecutionError>())?;
    m.add("RunCancelled", m.py().get_type::<RunCancelled>())?;
    Ok(())
}
