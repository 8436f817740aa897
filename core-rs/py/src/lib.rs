//! `zoopipe_core._native`: the PyO3 glue over `zoopipe_exec`. Type and error conversion only;
//! the pipeline itself lives in the pure Rust crate. The GIL is released for the whole run and
//! taken back only where Python objects are touched (the stage, Python sources and sinks).

mod convert;
mod pyerr;
mod pyio;
mod pysink;
mod pygil;
mod pyjson;
mod pysource;
mod stage;
mod tables;

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
use zoopipe_exec::DiscardSink;
use zoopipe_exec::source::SkipLimit;
use zoopipe_exec::source::Shard;
use zoopipe_exec::split::SplitKind;
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

fn build_source(
    spec: &Bound<'_, PyDict>,
    errors: &PyErrSlot,
) -> PyResult<(Box<dyn BatchSource>, String, Option<tables::SchemaRef>)> {
    let kind: String = item(spec, "kind", String::new())?;
    let name: String = item(spec, "name", kind.clone())?;
    if tables::SOURCE_KINDS.contains(&kind.as_str()) {
        let (source, schema) = tables::build_source(&kind, spec, &name, errors)?;
        return Ok((source, name, schema));
    }
    let source: Box<dyn BatchSource> = match kind.as_str() {
        "csv" => {
            let options = CsvOptions {
                delimiter: single_byte(spec, "delimiter", b',')?,
                quote: single_byte(spec, "quotechar", b'"')?,
                has_header: item(spec, "has_header", true)?,
                field_names: item(spec, "field_names", None)?,
                line_offset: item(spec, "line_offset", 0u64)?,
                null_values: item(spec, "null_values", Vec::new())?,
                not_null_columns: item(spec, "not_null_columns", Vec::new())?,
            };
            let mut source = match shard_of(spec, &name)? {
                Some((path, shard)) => CsvSource::open_range(&path, options, shard).map_err(to_pyerr)?,
                None => CsvSource::new(open_input(spec, &name, errors)?, options, &name).map_err(to_pyerr)?,
            };
            if let Some(columns) = item::<Option<Vec<String>>>(spec, "columns", None)? {
                source.project(&columns).map_err(to_pyerr)?;
            }
            Box::new(source)
        }
        "jsonl" => {
            let mut source = match shard_of(spec, &name)? {
                Some((path, shard)) => JsonlSource::open_range(&path, shard).map_err(to_pyerr)?,
                None => {
                    let mut source = JsonlSource::new(open_input(spec, &name, errors)?, &name);
                    source.set_line_offset(item(spec, "line_offset", 0u64)?);
                    source
                }
            };
            if let Some(columns) = item::<Option<Vec<String>>>(spec, "columns", None)? {
                source.project(&columns);
            }
            Box::new(source)
        }
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
    let source = match kind.as_str() {
        "csv" | "jsonl" => SkipLimit::wrap(source, item(spec, "skip_rows", 0u64)?, item(spec, "limit", None)?),
        _ => source,
    };
    Ok((source, name, None))
}

/// The local path and shard of a spec with a `byte_range`, None without one.
fn shard_of(spec: &Bound<'_, PyDict>, name: &str) -> PyResult<Option<(String, Shard)>> {
    let Some((start, end)) = item::<Option<(u64, u64)>>(spec, "byte_range", None)? else {
        return Ok(None);
    };
    let path: Option<String> = item(spec, "path", None)?;
    let Some(path) = path else {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "{name}: byte_range needs a local file (remote files are read as a whole); drop byte_range or copy the file locally"
        )));
    };
    if compression(spec)? != Compression::None {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "{name}: a compressed file cannot be read from a byte_range (a compressed stream decodes only from its start); drop byte_range or decompress the file"
        )));
    }
    if end < start {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "{name}: byte_range ({start}, {end}) ends before it starts; give (start, end) with start <= end"
        )));
    }
    Ok(Some((path, Shard { start, end, line_offset: item(spec, "line_offset", 0u64)? })))
}

/// `source_schema`: the input table's Arrow schema, if any; `passthrough`: no Python stage runs.
fn build_output(
    spec: &Bound<'_, PyDict>,
    errors: &PyErrSlot,
    source_schema: Option<tables::SchemaRef>,
    passthrough: bool,
) -> PyResult<Output> {
    let kind: String = item(spec, "kind", String::new())?;
    let name: String = item(spec, "name", kind.clone())?;
    if tables::OUTPUT_KINDS.contains(&kind.as_str()) {
        return tables::build_output(&kind, spec, &name, errors, source_schema, passthrough);
    }
    let columns: Option<Vec<String>> = item(spec, "field_names", None)?;
    let encoder: Arc<dyn Encoder> = match kind.as_str() {
        "count" => return Ok(Output { encoder: None, sink: Box::new(DiscardSink), columns: None }),
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
    let (source, source_name, source_schema) = build_source(source, &py_errors)?;
    let main = build_output(output, &py_errors, source_schema, stage.is_none())?;
    if let Some(kind) = errors.map(|spec| item(spec, "kind", String::new())).transpose()? {
        if kind == "parquet" || kind == "arrow" {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "an error output cannot be {kind}: error records hold records of any shape; use JSON Lines or CSV"
            )));
        }
    }
    let error_output = errors.map(|spec| build_output(spec, &py_errors, None, false)).transpose()?;
    let mut stage: Box<dyn Stage + Send> = match stage {
        Some(func) => {
            let encodes_jsonl = item(output, "kind", String::new())? == "jsonl";
            Box::new(stage::PyStage::new(func, &source_name, py_errors.clone(), encodes_jsonl, input_keys))
        }
        None => Box::new(Passthrough),
    };
    if on_main_thread(py)? {
        stage = Box::new(stage::SignalCheck::new(stage, py_errors.clone()));
    }
    let config = RunConfig { batch_size, encode_workers, inline, ..RunConfig::default() };
    let counters = progress.inner.clone();
    let flag = stop.flag.clone();
    let result = py.allow_threads(|| {
        let result = zoopipe_exec::run(source, &mut *stage, main, error_output, &config, &counters, &flag, &source_name);
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
    let byte = |key: &str, text: &str| match text.as_bytes() {
        [b] => Ok(*b),
        _ => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "{key} must be a single ASCII character, got {text:?}"
        ))),
    };
    let kind = SplitKind::from_name(kind).map_err(pyo3::exceptions::PyValueError::new_err)?;
    let options = CsvOptions {
        delimiter: byte("delimiter", delimiter)?,
        quote: byte("quotechar", quotechar)?,
        has_header,
        ..CsvOptions::default()
    };
    let shards = py
        .allow_threads(|| zoopipe_exec::split::split_points(path, kind, n, &options))
        .map_err(to_pyerr)?;
    Ok(shards.into_iter().map(|s| (s.start, s.end, s.line_offset)).collect())
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(split_points, m)?)?;
    m.add_class::<NativeProgress>()?;
    m.add_class::<StopToken>()?;
    m.add_function(wrap_pyfunction!(run_pipe, m)?)?;
    m.add("ExecutionError", m.py().get_type::<ExecutionError>())?;
    m.add("RunCancelled", m.py().get_type::<RunCancelled>())?;
    Ok(())
}
