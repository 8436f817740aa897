//! Opens what a typed spec describes: a source's reader, an output's encoder and sink.
//!
//! Host objects in a spec (file objects, writers, iterators of batches) are opened by the
//! glue through [`Handles`]; local files are opened here.

use crate::arrow_sink::{ArrowEncoder, ArrowSink, OpenTable, TableSchema, TableWriter};
use crate::codec::{self, ByteReader, OutputStream};
use crate::csv_source::CsvSource;
use crate::encode::JsonlEncoder;
use crate::error::ExecError;
use crate::ipc_io::{IpcInput, IpcSource, IpcWriter};
use crate::json_array::{JsonArrayEncoder, JsonArraySink, JsonArraySource};
use crate::jsonl_source::JsonlSource;
use crate::parquet_io::{ParquetInput, ParquetSource, ParquetWriter};
use crate::pipeline::Output;
use crate::ranged_io::RangeRead;
use crate::sink::{DiscardSink, Sink, StreamSink};
use crate::source::{BatchSource, SkipLimit};
use crate::spec::{Location, SinkKind, SinkSpec, SourceKind, SourceSpec, StreamFile, TableOptions, TextInput};
use std::io::Write;
use std::sync::Arc;

/// How the glue opens the host objects of a spec.
pub trait Handles {
    type Handle;
    /// A stream of the bytes of a file object.
    fn reader(&self, file: Self::Handle) -> ByteReader;
    /// Random access to a file object by ranged reads (Parquet and Arrow read only the parts
    /// they need: a footer, some row groups). `source` names it.
    fn ranged(&self, file: Self::Handle, source: &str) -> Result<Arc<dyn RangeRead>, ExecError>;
    /// A writer into a file object.
    fn writer(&self, file: Self::Handle) -> Box<dyn Write + Send>;
    /// The batches of a host iterator.
    fn batches(&self, batches: Self::Handle, source: &str) -> Box<dyn BatchSource>;
    /// A host writer taking the records themselves.
    fn sink(&self, writer: Self::Handle, target: &str) -> Box<dyn Sink>;
}

/// An open source, and the Arrow schema of what it reads when it reads a table.
pub struct OpenSource {
    pub source: Box<dyn BatchSource>,
    pub schema: Option<TableSchema>,
}

fn input_error(name: &str, e: impl ToString) -> ExecError {
    ExecError::Input { source: name.to_owned(), line: None, message: e.to_string() }
}

fn open_stream<G: Handles>(file: StreamFile<G::Handle>, name: &str, handles: &G) -> Result<ByteReader, ExecError> {
    let raw = match file.location {
        Location::Path(path) => codec::open_file(&path).map_err(|e| input_error(name, e))?,
        Location::File(file) => handles.reader(file),
    };
    codec::decoder(raw, file.compression).map_err(|e| input_error(name, e))
}

/// A local file in place, or a file object read by ranged reads.
enum RandomAccess {
    File(std::fs::File),
    Ranged(Arc<dyn RangeRead>),
}

fn open_random_access<G: Handles>(
    input: Location<G::Handle>,
    name: &str,
    handles: &G,
) -> Result<RandomAccess, ExecError> {
    match input {
        Location::Path(path) => std::fs::File::open(path).map(RandomAccess::File).map_err(|e| input_error(name, e)),
        Location::File(file) => handles.ranged(file, name).map(RandomAccess::Ranged),
    }
}

impl<H> SourceSpec<H> {
    /// Open the source. `handles` opens the host objects the spec holds.
    pub fn open<G: Handles<Handle = H>>(self, handles: &G) -> Result<OpenSource, ExecError> {
        let name = self.name.as_str();
        let (source, schema): (Box<dyn BatchSource>, _) = match self.kind {
            SourceKind::Csv { input, options, read } => {
                let mut source = match input {
                    TextInput::Shard { path, shard } => CsvSource::open_range(&path, options, shard)?,
                    TextInput::Whole(file) => CsvSource::new(open_stream(file, name, handles)?, options, name)?,
                    TextInput::Range { file, shard, ends_at_cut } => {
                        let input = codec::decoder(handles.reader(file), codec::Compression::None)
                            .map_err(|e| input_error(name, e))?;
                        CsvSource::from_range(input, options, name, ends_at_cut.then_some(shard.end))?
                    }
                };
                if let Some(columns) = &read.columns {
                    source.project(columns)?;
                }
                (SkipLimit::wrap(Box::new(source), read.skip_rows, read.limit), None)
            }
            SourceKind::Jsonl { input, line_offset, read } => {
                let mut source = match input {
                    TextInput::Shard { path, shard } => JsonlSource::open_range(&path, shard)?,
                    TextInput::Whole(file) => {
                        let mut source = JsonlSource::new(open_stream(file, name, handles)?, name);
                        source.set_line_offset(line_offset);
                        source
                    }
                    // A cut of JSON Lines is always after a newline: no range ends mid-record.
                    TextInput::Range { file, shard, .. } => {
                        let input = codec::decoder(handles.reader(file), codec::Compression::None)
                            .map_err(|e| input_error(name, e))?;
                        let mut source = JsonlSource::new(input, name);
                        source.set_line_offset(shard.line_offset);
                        source.set_at_file_start(shard.start == 0);
                        source
                    }
                };
                if let Some(columns) = &read.columns {
                    source.project(columns);
                }
                (SkipLimit::wrap(Box::new(source), read.skip_rows, read.limit), None)
            }
            SourceKind::JsonArray { input, read } => {
                let source = JsonArraySource::new(open_stream(input, name, handles)?, name);
                (SkipLimit::wrap(Box::new(source), read.skip_rows, read.limit), None)
            }
            SourceKind::Parquet { input, read } => {
                let input = match open_random_access(input, name, handles)? {
                    RandomAccess::File(f) => ParquetInput::File(f),
                    RandomAccess::Ranged(r) => ParquetInput::Ranged(r),
                };
                let source = ParquetSource::new(input, read, name)?;
                let schema = source.schema();
                (Box::new(source), schema)
            }
            SourceKind::Arrow { input, read } => {
                let input = match open_random_access(input, name, handles)? {
                    RandomAccess::File(f) => IpcInput::File(f),
                    RandomAccess::Ranged(r) => IpcInput::Ranged(r),
                };
                let source = IpcSource::new(input, read, name)?;
                let schema = source.schema();
                (Box::new(source), Some(schema))
            }
            SourceKind::Python { batches } => (handles.batches(batches, name), None),
        };
        Ok(OpenSource { source, schema })
    }
}

fn create_stream<G: Handles>(
    target: StreamFile<G::Handle>,
    name: &str,
    handles: &G,
) -> Result<Box<dyn OutputStream>, ExecError> {
    let stream = match target.location {
        Location::Path(path) => codec::create_file(&path, target.compression),
        Location::File(file) => codec::encoder(handles.writer(file), target.compression),
    };
    stream.map_err(|e| ExecError::Output { target: name.to_owned(), message: e.to_string() })
}

fn columns(columns: Option<Vec<String>>) -> Option<Arc<[String]>> {
    columns.map(Arc::from)
}

/// A Parquet or Arrow output. Its schema is the spec's (derived from the pipe's model) if
/// given; else the input table's schema: exactly, when no Python stage runs (`passthrough`),
/// and as a hint for the types of same-named columns otherwise; else inferred.
fn table_output(
    name: &str,
    table: TableOptions,
    stream: Box<dyn OutputStream>,
    open: impl FnOnce(Box<dyn OutputStream>, TableSchema) -> Result<Box<dyn TableWriter>, String> + Send + 'static,
    source_schema: Option<TableSchema>,
    passthrough: bool,
) -> Output {
    let (schema, hint) = match (table.schema, source_schema) {
        (Some(schema), _) => (Some(schema), None),
        (None, Some(source)) if passthrough => (Some(source), None),
        (None, source) => (None, source),
    };
    let open: OpenTable = Box::new(move |schema: TableSchema| open(stream, schema));
    Output {
        encoder: Some(Arc::new(ArrowEncoder { schema: schema.clone(), hint })),
        sink: Box::new(ArrowSink::new(name, schema, table.row_group_size, open)),
        columns: None,
    }
}

impl<H> SinkSpec<H> {
    /// Open the output. `source_schema`: the input table's Arrow schema, if any; `passthrough`:
    /// no Python stage runs.
    pub fn open<G: Handles<Handle = H>>(
        self,
        handles: &G,
        source_schema: Option<TableSchema>,
        passthrough: bool,
    ) -> Result<Output, ExecError> {
        let name = self.name.as_str();
        let stream_output = |encoder: Arc<dyn crate::encode::Encoder>, sink: Box<dyn Sink>, fixed| Output {
            encoder: Some(encoder),
            sink,
            columns: columns(fixed),
        };
        Ok(match self.kind {
            SinkKind::Count => Output { encoder: None, sink: Box::new(DiscardSink), columns: None },
            SinkKind::Python { writer, columns: fixed } => {
                Output { encoder: None, sink: handles.sink(writer, name), columns: columns(fixed) }
            }
            SinkKind::Jsonl { target, columns: fixed } => {
                let sink = StreamSink::new(name, create_stream(target, name, handles)?);
                stream_output(Arc::new(JsonlEncoder), Box::new(sink), fixed)
            }
            SinkKind::Csv { target, columns: fixed, encoder } => {
                let sink = StreamSink::new(name, create_stream(target, name, handles)?);
                stream_output(Arc::new(encoder), Box::new(sink), fixed)
            }
            SinkKind::JsonArray { target, indent } => {
                let sink = StreamSink::new(name, create_stream(target, name, handles)?);
                stream_output(Arc::new(JsonArrayEncoder { indent }), Box::new(JsonArraySink::new(Box::new(sink))), None)
            }
            SinkKind::Parquet { target, table, codec } => {
                let row_group_size = table.row_group_size;
                let stream = create_stream(target, name, handles)?;
                let open = move |stream, schema| {
                    ParquetWriter::open(stream, schema, codec, row_group_size)
                        .map(|w| Box::new(w) as Box<dyn TableWriter>)
                };
                table_output(name, table, stream, open, source_schema, passthrough)
            }
            SinkKind::Arrow { target, table, stream: stream_format } => {
                let stream = create_stream(target, name, handles)?;
                let open = move |stream, schema: TableSchema| {
                    IpcWriter::open(stream, &schema, stream_format).map(|w| Box::new(w) as Box<dyn TableWriter>)
                };
                table_output(name, table, stream, open, source_schema, passthrough)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RowData;
    use crate::sink::Payload;
    use crate::spec::{SpecMap, SpecValue};
    use std::sync::Mutex;

    /// Host objects of the tests: a handle is an index into `inputs`; writers append to `written`.
    #[derive(Default)]
    struct Host {
        inputs: Vec<&'static [u8]>,
        written: Arc<Mutex<Vec<u8>>>,
        sinks: Mutex<Vec<String>>,
    }

    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Handles for Host {
        type Handle = usize;
        fn reader(&self, file: usize) -> ByteReader {
            Box::new(self.inputs[file])
        }
        fn ranged(&self, file: usize, _source: &str) -> Result<Arc<dyn RangeRead>, ExecError> {
            Ok(crate::ranged_io::tests::Recorded::new(self.inputs[file].to_vec()))
        }
        fn writer(&self, _file: usize) -> Box<dyn Write + Send> {
            Box::new(Shared(self.written.clone()))
        }
        fn batches(&self, _batches: usize, _source: &str) -> Box<dyn BatchSource> {
            unimplemented!("not used by these tests")
        }
        fn sink(&self, _writer: usize, target: &str) -> Box<dyn Sink> {
            self.sinks.lock().unwrap().push(target.to_owned());
            Box::new(DiscardSink)
        }
    }

    fn spec(items: Vec<(&str, SpecValue<usize>)>) -> SpecMap<usize> {
        items.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    fn s(text: &str) -> SpecValue<usize> {
        SpecValue::Str(text.into())
    }

    #[test]
    fn a_csv_file_object_is_read_with_its_columns_skip_and_limit() {
        let host = Host { inputs: vec![b"a,b\n1,x\n2,y\n3,z\n"], ..Host::default() };
        let map = spec(vec![
            ("kind", s("csv")),
            ("file", SpecValue::Handle(0)),
            ("columns", SpecValue::List(vec![s("b")])),
            ("skip_rows", SpecValue::Int(1)),
            ("limit", SpecValue::Int(1)),
        ]);
        let mut open = SourceSpec::parse(map).unwrap().open(&host).unwrap();
        assert!(open.schema.is_none());
        let batch = open.source.next_batch(0, 10).unwrap().unwrap();
        assert_eq!(batch.columns.to_vec(), vec!["b".to_string()]);
        let RowData::Fields(fields) = &batch.rows[0].data else { panic!() };
        assert_eq!((batch.rows.len(), batch.rows[0].line, fields.to_vec()), (1, 3, vec![Some("y".to_string())]));
    }

    #[test]
    fn a_missing_local_file_is_an_input_error_naming_the_source() {
        let map = spec(vec![("kind", s("jsonl")), ("path", s("/no/such/file.jsonl")), ("name", s("in.jsonl"))]);
        let Err(err) = SourceSpec::parse(map).unwrap().open(&Host::default()) else { panic!("opened") };
        assert!(matches!(&err, ExecError::Input { source, .. } if source == "in.jsonl"), "{err}");
    }

    #[test]
    fn outputs_write_to_file_objects_and_host_writers() {
        let host = Host::default();
        let map = spec(vec![
            ("kind", s("csv")),
            ("file", SpecValue::Handle(0)),
            ("field_names", SpecValue::List(vec![s("a")])),
        ]);
        let output = SinkSpec::parse(map).unwrap().open(&host, None, true).unwrap();
        assert_eq!(output.columns.as_deref(), Some(&["a".to_string()][..]));
        let header = output.encoder.as_ref().unwrap().header(&["a".to_string()]).unwrap();
        let mut sink = output.sink;
        sink.write(Payload::Bytes(header)).unwrap();
        sink.finish().unwrap();
        assert_eq!(host.written.lock().unwrap().as_slice(), b"a\n");

        let python = spec(vec![("kind", s("python")), ("writer", SpecValue::Handle(7)), ("name", s("memory"))]);
        let output = SinkSpec::parse(python).unwrap().open(&host, None, false).unwrap();
        assert!(output.encoder.is_none());
        assert_eq!(host.sinks.lock().unwrap().as_slice(), ["memory".to_string()]);
        let count = SinkSpec::parse(spec(vec![("kind", s("count"))])).unwrap().open(&host, None, false).unwrap();
        assert!(count.encoder.is_none() && count.columns.is_none());
    }
}
