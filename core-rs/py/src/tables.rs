//! Specs for the table formats (Parquet, Arrow IPC) and JSON arrays: their sources and outputs.
//!
//! Local files are opened in Rust. Parquet and Arrow files given as Python file objects (fsspec
//! URLs) are read into memory first, since both need random access.

use crate::pyerr::PyErrSlot;
use crate::pyio;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::sync::Arc;
use zoopipe_exec::arrow_schema::parse_schema;
use zoopipe_exec::arrow_sink::{ArrowEncoder, ArrowSink, TableWriter};
use zoopipe_exec::codec::{self, OutputStream};
use zoopipe_exec::ipc_io::{IpcInput, IpcSource, IpcWriter};
use zoopipe_exec::json_array::{JsonArrayEncoder, JsonArraySink, JsonArraySource};
use zoopipe_exec::parquet_io::{self, ParquetInput, ParquetSource, ParquetWriter};
use zoopipe_exec::{BatchSource, ExecError, Output, ReadOptions, StreamSink};

pub use zoopipe_exec::arrow_sink::TableSchema as SchemaRef;

/// The source kinds handled here.
pub const SOURCE_KINDS: [&str; 3] = ["parquet", "arrow", "json"];
/// The output kinds handled here.
pub const OUTPUT_KINDS: [&str; 3] = ["parquet", "arrow", "json"];

fn get<'py, T: FromPyObject<'py>>(spec: &Bound<'py, PyDict>, key: &str, default: T) -> PyResult<T> {
    match spec.get_item(key)? {
        Some(v) if !v.is_none() => v.extract(),
        _ => Ok(default),
    }
}

fn read_options(spec: &Bound<'_, PyDict>) -> PyResult<ReadOptions> {
    Ok(ReadOptions { columns: get(spec, "columns", None)?, skip_rows: get(spec, "skip_rows", 0u64)?, limit: get(spec, "limit", None)? })
}

enum Input {
    File(std::fs::File),
    Bytes(Vec<u8>),
}

fn open_random_access(spec: &Bound<'_, PyDict>, name: &str) -> PyResult<Input> {
    let fail = |message: String| crate::to_pyerr(ExecError::Input { source: name.to_owned(), line: None, message });
    match spec.get_item("path")? {
        Some(path) if !path.is_none() => {
            let path: String = path.extract()?;
            std::fs::File::open(&path).map(Input::File).map_err(|e| fail(e.to_string()))
        }
        _ => {
            let file = spec.get_item("file")?.ok_or_else(|| PyValueError::new_err("an input spec needs a path or a file"))?;
            let data = file.call_method0("read")?;
            let bytes = data.downcast::<PyBytes>().map_err(|_| fail("the file object must be opened in binary mode".into()))?;
            Ok(Input::Bytes(bytes.as_bytes().to_vec()))
        }
    }
}

/// A Parquet, Arrow or JSON array source, and the Arrow schema of what it reads (if a table).
pub fn build_source(
    kind: &str,
    spec: &Bound<'_, PyDict>,
    name: &str,
    errors: &PyErrSlot,
) -> PyResult<(Box<dyn BatchSource>, Option<SchemaRef>)> {
    let options = read_options(spec)?;
    Ok(match kind {
        "parquet" => {
            let input = match open_random_access(spec, name)? {
                Input::File(f) => ParquetInput::File(f),
                Input::Bytes(b) => ParquetInput::Bytes(b),
            };
            let source = ParquetSource::new(input, options, name).map_err(crate::to_pyerr)?;
            let schema = source.schema();
            (Box::new(source), schema)
        }
        "arrow" => {
            let input = match open_random_access(spec, name)? {
                Input::File(f) => IpcInput::File(f),
                Input::Bytes(b) => IpcInput::Bytes(b),
            };
            let source = IpcSource::new(input, options, name).map_err(crate::to_pyerr)?;
            let schema = source.schema();
            (Box::new(source), Some(schema))
        }
        _ => {
            let input = crate::open_input(spec, name, errors)?;
            let source = JsonArraySource::new(input, name);
            let source = zoopipe_exec::source::SkipLimit::wrap(Box::new(source), options.skip_rows, options.limit);
            (source, None)
        }
    })
}

fn output_stream(spec: &Bound<'_, PyDict>, name: &str, errors: &PyErrSlot) -> PyResult<Box<dyn OutputStream>> {
    let fail = |e: std::io::Error| crate::to_pyerr(ExecError::Output { target: name.to_owned(), message: e.to_string() });
    let compression = codec::Compression::from_name(&get(spec, "compression", String::new())?).map_err(PyValueError::new_err)?;
    match spec.get_item("path")? {
        Some(path) if !path.is_none() => codec::create_file(&path.extract::<String>()?, compression).map_err(fail),
        _ => {
            let file: Py<PyAny> = spec.get_item("file")?.ok_or_else(|| PyValueError::new_err("an output spec needs a path or a file"))?.unbind();
            codec::encoder(pyio::PyFileWriter::new(file, errors.clone()), compression).map_err(fail)
        }
    }
}

/// A Parquet, Arrow or JSON array output. A table's schema is the spec's `schema` (derived from
/// the pipe's model) if given; else the input table's schema: exactly, when no Python stage
/// runs, and as a hint for the types of same-named columns otherwise; else inferred.
pub fn build_output(
    kind: &str,
    spec: &Bound<'_, PyDict>,
    name: &str,
    errors: &PyErrSlot,
    source_schema: Option<SchemaRef>,
    passthrough: bool,
) -> PyResult<Output> {
    if kind == "json" {
        let sink = StreamSink::new(name, output_stream(spec, name, errors)?);
        return Ok(Output {
            encoder: Some(Arc::new(JsonArrayEncoder { indent: get(spec, "indent", None)? })),
            sink: Box::new(JsonArraySink::new(Box::new(sink))),
            columns: None,
        });
    }
    let explicit: Option<String> = get(spec, "schema", None)?;
    let explicit = explicit.map(|text| parse_schema(&text).map(Arc::new)).transpose().map_err(PyValueError::new_err)?;
    let (schema, hint) = match (explicit, source_schema) {
        (Some(schema), _) => (Some(schema), None),
        (None, Some(source)) if passthrough => (Some(source), None),
        (None, source) => (None, source),
    };
    let stream = output_stream(spec, name, errors)?;
    let open: zoopipe_exec::arrow_sink::OpenTable = if kind == "parquet" {
        let codec = parquet_io::compression(&get(spec, "codec", "snappy".to_string())?).map_err(PyValueError::new_err)?;
        let row_group_size: usize = get(spec, "row_group_size", 122_880usize)?;
        Box::new(move |schema: SchemaRef| {
            ParquetWriter::open(stream, schema, codec, row_group_size).map(|w| Box::new(w) as Box<dyn TableWriter>)
        })
    } else {
        let format: String = get(spec, "format", "file".to_string())?;
        let stream_format = match format.as_str() {
            "file" => false,
            "stream" => true,
            other => return Err(PyValueError::new_err(format!("unknown Arrow format {other:?}; use \"file\" or \"stream\""))),
        };
        Box::new(move |schema: SchemaRef| IpcWriter::open(stream, &schema, stream_format).map(|w| Box::new(w) as Box<dyn TableWriter>))
    };
    let settle_rows: usize = get(spec, "row_group_size", 122_880usize)?;
    Ok(Output {
        encoder: Some(Arc::new(ArrowEncoder { schema: schema.clone(), hint })),
        sink: Box::new(ArrowSink::new(name, schema, settle_rows, open)),
        columns: None,
    })
}
