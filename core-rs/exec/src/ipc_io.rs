//! Arrow IPC in and out: the file format (`.arrow`, `.feather` v2) and the stream format
//! (`.arrows`). Which one an input is comes from its first bytes (`ARROW1` starts a file).
//!
//! Inputs are read through [`RangeRead`], so a file on an object store is fetched only where it
//! is read. A file's footer indexes its record batches: a reader skipping rows finds its first
//! batch from the batches' message headers (a few hundred bytes each; see [`file_batch_rows`])
//! and reads no body before it. A stream has no index and is read from its start.

use crate::arrow_rows::{batch_to_rows, reorder};
use crate::arrow_sink::TableWriter;
use crate::codec::OutputStream;
use crate::error::ExecError;
use crate::ranged_io::{LocalRanges, RangeRead, RangedReader, MIN_FETCH};
use crate::record::Batch;
use crate::source::{BatchSource, ReadOptions};
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, DictionaryArray, PrimitiveArray, RecordBatch};
use arrow_buffer::ArrowNativeType;
use arrow_ipc::reader::{read_footer_length, FileReader, StreamReader};
use arrow_ipc::writer::{FileWriter, StreamWriter};
use arrow_schema::{ArrowError, DataType, Schema, SchemaRef};
use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::sync::Arc;

const FILE_MAGIC: &[u8; 6] = b"ARROW1";

/// The most a stream read through fetches at once (fetches grow to it while reads stay
/// sequential); a file's batches are read one block each, exactly.
const STREAM_FETCH: u64 = 8 * 1024 * 1024;

/// Where an Arrow input is read from: a local file, or a file read by ranged reads (an fsspec
/// URL), of which only what is read is fetched.
pub enum IpcInput {
    File(File),
    Ranged(Arc<dyn RangeRead>),
}

/// Whether a file starts as the IPC file format does (else it is read as a stream).
fn is_ipc_file(file: &dyn RangeRead) -> std::io::Result<bool> {
    Ok(file.read_range(0..FILE_MAGIC.len() as u64)?.as_ref() == FILE_MAGIC)
}

/// The rows of each record batch of an Arrow IPC file, from its footer and each batch's
/// message header (fetched together, in one call); no batch body is read.
pub fn file_batch_rows(file: &dyn RangeRead) -> Result<Vec<u64>, String> {
    let size = file.size();
    let read =
        |range: Range<u64>| file.read_range(range.clone()).map_err(|e| format!("cannot read bytes {range:?}: {e}"));
    if size < 2 * FILE_MAGIC.len() as u64 + 4 {
        return Err(format!("{size} bytes is too short for an Arrow IPC file"));
    }
    let tail: [u8; 10] = read(size - 10..size)?.as_ref().try_into().map_err(|_| "the file ended early".to_string())?;
    let footer_len = read_footer_length(tail).map_err(|e| format!("{e}; the file may be truncated"))? as u64;
    let footer_start =
        size.checked_sub(10 + footer_len).ok_or("the footer is longer than the file; it may be truncated")?;
    let footer = read(footer_start..size - 10)?;
    let footer = arrow_ipc::root_as_footer(&footer).map_err(|e| format!("unreadable footer ({e})"))?;
    let blocks = footer.recordBatches().map(|b| b.iter().copied().collect::<Vec<_>>()).unwrap_or_default();
    let headers: Vec<Range<u64>> =
        blocks.iter().map(|b| b.offset() as u64..b.offset() as u64 + b.metaDataLength() as u64).collect();
    let fetched = file.read_ranges(&headers).map_err(|e| format!("cannot read the record batch headers: {e}"))?;
    fetched
        .iter()
        .enumerate()
        .map(|(i, header)| message_rows(header).map_err(|e| format!("record batch {i}: {e}")))
        .collect()
}

/// The rows of a record batch, from its encapsulated message header (with or without the
/// continuation marker older writers leave out).
fn message_rows(header: &[u8]) -> Result<u64, String> {
    let flatbuffer = match header {
        [0xff, 0xff, 0xff, 0xff, _, _, _, _, rest @ ..] => rest,
        [_, _, _, _, rest @ ..] => rest,
        _ => return Err("the message header is cut short".into()),
    };
    let message = arrow_ipc::root_as_message(flatbuffer).map_err(|e| format!("unreadable message header ({e})"))?;
    let batch = message.header_as_record_batch().ok_or("the block is not a record batch")?;
    u64::try_from(batch.length()).map_err(|_| "negative row count".into())
}

/// The batch holding row `row` (0-based) of a file whose batches hold `rows`, and the rows
/// before that batch; past the end: the batch count and every row.
fn batch_of_row(rows: &[u64], row: u64) -> (usize, u64) {
    let mut before = 0;
    for (i, n) in rows.iter().enumerate() {
        if before + n > row {
            return (i, before);
        }
        before += n;
    }
    (rows.len(), before)
}

type Batches = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

pub struct IpcSource {
    source: Arc<str>,
    batches: Batches,
    schema: SchemaRef,
    columns: Arc<[String]>,
    to_skip: u64,
    remaining: Option<u64>,
    batch_index: usize,
    next_line: u64,
    wanted: Option<Vec<String>>,
}

/// An open IPC file (which can skip to a batch) or stream.
enum Opened {
    File(FileReader<RangedReader>),
    Stream(StreamReader<RangedReader>),
}

impl Opened {
    fn open(file: Arc<dyn RangeRead>, projection: Option<Vec<usize>>) -> Result<Opened, String> {
        if is_ipc_file(file.as_ref()).map_err(|e| format!("cannot read the start of the file: {e}"))? {
            // Blocks are read whole and exactly; fetching ahead would fetch the next batch too.
            FileReader::try_new(RangedReader::new(file, MIN_FETCH), projection)
                .map(Opened::File)
                .map_err(|e| format!("not a readable Arrow IPC file ({e}); the file may be truncated"))
        } else {
            StreamReader::try_new(RangedReader::new(file, STREAM_FETCH), projection)
                .map(Opened::Stream)
                .map_err(|e| format!("not a readable Arrow IPC file or stream ({e})"))
        }
    }

    fn schema(&self) -> SchemaRef {
        match self {
            Opened::File(r) => r.schema(),
            Opened::Stream(r) => r.schema(),
        }
    }

    /// The batches from batch `first` on (a file skips to it without reading the ones before).
    fn batches_from(self, first: usize) -> Result<Batches, String> {
        Ok(match self {
            Opened::File(r) if first >= r.num_batches() => Box::new(std::iter::empty()),
            Opened::File(mut r) => {
                r.set_index(first).map_err(|e| e.to_string())?;
                Box::new(r)
            }
            Opened::Stream(r) => Box::new(r),
        })
    }
}

impl IpcSource {
    /// Open the input; `options.columns` must all be in its schema.
    pub fn new(input: IpcInput, options: ReadOptions, source: &str) -> Result<IpcSource, ExecError> {
        let fail = |message: String| ExecError::Input { source: source.to_owned(), line: None, message };
        let file: Arc<dyn RangeRead> = match input {
            IpcInput::File(file) => Arc::new(LocalRanges::new(file).map_err(|e| fail(e.to_string()))?),
            IpcInput::Ranged(file) => file,
        };
        let opened = Opened::open(file.clone(), None).map_err(fail)?;
        let (schema, is_file) = (opened.schema(), matches!(opened, Opened::File(_)));
        let projection = match &options.columns {
            None => None,
            Some(wanted) => {
                let mut indices = Vec::new();
                for name in wanted {
                    match schema.index_of(name) {
                        Ok(i) => indices.push(i),
                        Err(_) => {
                            return Err(fail(format!(
                                "column {name:?} is not in the file; its columns are {:?}",
                                schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>()
                            )))
                        }
                    }
                }
                indices.sort_unstable();
                indices.dedup();
                Some(indices)
            }
        };
        // A file skipping rows starts at the batch holding its first row.
        let (first, rows_before) = match is_file && options.skip_rows > 0 {
            true => batch_of_row(&file_batch_rows(file.as_ref()).map_err(fail)?, options.skip_rows),
            false => (0, 0),
        };
        // Opened again only to read fewer columns.
        let opened = match projection {
            None => opened,
            Some(projection) => Opened::open(file, Some(projection)).map_err(fail)?,
        };
        let mut schema = opened.schema();
        let batches = opened.batches_from(first).map_err(fail)?;
        if let Some(wanted) = &options.columns {
            schema = reorder(&RecordBatch::new_empty(schema), wanted).schema();
        }
        Ok(IpcSource {
            wanted: options.columns.clone(),
            source: Arc::from(source),
            columns: schema.fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>().into(),
            schema,
            batches,
            to_skip: options.skip_rows - rows_before,
            remaining: options.limit,
            batch_index: first,
            next_line: options.skip_rows + 1,
        })
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl BatchSource for IpcSource {
    fn next_batch(&mut self, seq: u64, _max_rows: usize) -> Result<Option<Batch>, ExecError> {
        loop {
            if self.remaining == Some(0) {
                return Ok(None);
            }
            let mut batch = match self.batches.next() {
                None => return Ok(None),
                Some(Ok(batch)) => batch,
                Some(Err(e)) => {
                    return Err(ExecError::Input {
                        source: self.source.to_string(),
                        line: Some(self.next_line),
                        message: format!(
                            "cannot decode record batch {} ({e}); the file or stream is truncated or damaged",
                            self.batch_index
                        ),
                    })
                }
            };
            self.batch_index += 1;
            if self.to_skip > 0 {
                let skipped = self.to_skip.min(batch.num_rows() as u64);
                self.to_skip -= skipped;
                batch = batch.slice(skipped as usize, batch.num_rows() - skipped as usize);
            }
            if let Some(remaining) = self.remaining.as_mut() {
                let keep = (*remaining).min(batch.num_rows() as u64);
                *remaining -= keep;
                batch = batch.slice(0, keep as usize);
            }
            if batch.num_rows() == 0 {
                continue;
            }
            if let Some(wanted) = &self.wanted {
                batch = reorder(&batch, wanted);
            }
            let rows = batch_to_rows(&batch, self.next_line).map_err(|e| ExecError::Input {
                source: self.source.to_string(),
                line: Some(self.next_line),
                message: e,
            })?;
            self.next_line += batch.num_rows() as u64;
            return Ok(Some(Batch { seq, columns: self.columns.clone(), rows, errors: Vec::new() }));
        }
    }
}

enum Writer {
    File(FileWriter<Box<dyn OutputStream>>),
    Stream(StreamWriter<Box<dyn OutputStream>>),
}

/// Writes the Arrow IPC file format (`stream == false`) or the stream format.
///
/// The file format allows one dictionary per column for the whole file, while each batch
/// comes with its own: a file with dictionary columns is therefore assembled in memory and its
/// dictionaries unified when it is finished. The stream format replaces dictionaries as it goes.
pub struct IpcWriter {
    writer: Writer,
    held: Option<Vec<RecordBatch>>,
}

impl IpcWriter {
    pub fn open(stream: Box<dyn OutputStream>, schema: &Schema, stream_format: bool) -> Result<IpcWriter, String> {
        let fail = |e: ArrowError| format!("cannot start the Arrow file: {e}");
        let has_dictionaries = schema.fields().iter().any(|f| matches!(f.data_type(), DataType::Dictionary(..)));
        Ok(IpcWriter {
            writer: if stream_format {
                Writer::Stream(StreamWriter::try_new(stream, schema).map_err(fail)?)
            } else {
                Writer::File(FileWriter::try_new(stream, schema).map_err(fail)?)
            },
            held: (has_dictionaries && !stream_format).then(Vec::new),
        })
    }

    fn write_now(&mut self, batch: &RecordBatch) -> Result<(), String> {
        match &mut self.writer {
            Writer::File(w) => w.write(batch),
            Writer::Stream(w) => w.write(batch),
        }
        .map_err(|e| e.to_string())
    }
}

impl TableWriter for IpcWriter {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        match self.held.as_mut() {
            Some(held) => {
                held.push(batch.clone());
                Ok(())
            }
            None => self.write_now(batch),
        }
    }

    fn finish(mut self: Box<Self>) -> Result<(), String> {
        if let Some(held) = self.held.take() {
            for batch in unify_dictionaries(&held)? {
                self.write_now(&batch)?;
            }
        }
        let stream = match self.writer {
            Writer::File(mut w) => w.finish().and_then(|_| w.into_inner()),
            Writer::Stream(mut w) => w.finish().and_then(|_| w.into_inner()),
        }
        .map_err(|e| format!("cannot finish the Arrow file: {e}"))?;
        stream.finish().map_err(|e| e.to_string())
    }
}

/// The batches with one dictionary per dictionary column, shared by all of them.
fn unify_dictionaries(batches: &[RecordBatch]) -> Result<Vec<RecordBatch>, String> {
    let Some(first) = batches.first() else { return Ok(Vec::new()) };
    let schema = first.schema();
    let mut columns: Vec<Vec<ArrayRef>> = batches.iter().map(|b| b.columns().to_vec()).collect();
    for (j, field) in schema.fields().iter().enumerate() {
        let DataType::Dictionary(key, _) = field.data_type() else { continue };
        let mut positions: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut values: Vec<ArrayRef> = Vec::new();
        let mut keys: Vec<Vec<Option<usize>>> = Vec::new();
        for batch in batches {
            let dict = batch.column(j).as_any_dictionary();
            let dict_values = dict.values();
            let local: Vec<usize> = (0..dict_values.len())
                .map(|i| {
                    let text = arrow_string(dict_values.as_ref(), i);
                    let next = positions.len();
                    *positions.entry(text).or_insert_with(|| {
                        values.push(dict_values.slice(i, 1));
                        next
                    })
                })
                .collect();
            let normalized = dict.normalized_keys();
            keys.push((0..dict.len()).map(|i| (!dict.is_null(i)).then(|| local[normalized[i]])).collect());
        }
        let refs: Vec<&dyn Array> = values.iter().map(|a| a.as_ref()).collect();
        let all_values = if refs.is_empty() {
            arrow_array::new_empty_array(&dictionary_value_type(field.data_type()))
        } else {
            concat_values(&refs)?
        };
        for (b, batch_keys) in keys.into_iter().enumerate() {
            columns[b][j] = rekey(key, batch_keys, all_values.clone())?;
        }
    }
    columns.into_iter().map(|cols| RecordBatch::try_new(schema.clone(), cols).map_err(|e| e.to_string())).collect()
}

fn dictionary_value_type(dtype: &DataType) -> DataType {
    match dtype {
        DataType::Dictionary(_, value) => value.as_ref().clone(),
        other => other.clone(),
    }
}

/// A dictionary value's identity (its bytes for strings and binaries; its debug text otherwise).
fn arrow_string(values: &dyn Array, i: usize) -> Vec<u8> {
    if let Some(s) = values.as_string_opt::<i32>() {
        return s.value(i).as_bytes().to_vec();
    }
    if let Some(s) = values.as_string_opt::<i64>() {
        return s.value(i).as_bytes().to_vec();
    }
    if let Some(b) = values.as_binary_opt::<i32>() {
        return b.value(i).to_vec();
    }
    format!("{:?}", values.slice(i, 1)).into_bytes()
}

fn concat_values(arrays: &[&dyn Array]) -> Result<ArrayRef, String> {
    let datas: Vec<arrow_data::ArrayData> = arrays.iter().map(|a| a.to_data()).collect();
    let refs: Vec<&arrow_data::ArrayData> = datas.iter().collect();
    let mut mutable = arrow_data::transform::MutableArrayData::new(refs, false, arrays.len());
    for i in 0..arrays.len() {
        mutable.try_extend(i, 0, 1).map_err(|e| e.to_string())?;
    }
    Ok(arrow_array::make_array(mutable.freeze()))
}

fn rekey_as<K: ArrowDictionaryKeyType>(keys: Vec<Option<usize>>, values: ArrayRef) -> Result<ArrayRef, String> {
    let keys: PrimitiveArray<K> = keys
        .into_iter()
        .map(|k| {
            k.map(|k| K::Native::from_usize(k).ok_or("the dictionary has more values than its key type holds"))
                .transpose()
        })
        .collect::<Result<_, _>>()?;
    Ok(Arc::new(DictionaryArray::<K>::try_new(keys, values).map_err(|e| e.to_string())?))
}

fn rekey(key: &DataType, keys: Vec<Option<usize>>, values: ArrayRef) -> Result<ArrayRef, String> {
    match key {
        DataType::Int8 => rekey_as::<Int8Type>(keys, values),
        DataType::Int16 => rekey_as::<Int16Type>(keys, values),
        DataType::Int32 => rekey_as::<Int32Type>(keys, values),
        DataType::Int64 => rekey_as::<Int64Type>(keys, values),
        DataType::UInt8 => rekey_as::<UInt8Type>(keys, values),
        DataType::UInt16 => rekey_as::<UInt16Type>(keys, values),
        DataType::UInt32 => rekey_as::<UInt32Type>(keys, values),
        DataType::UInt64 => rekey_as::<UInt64Type>(keys, values),
        other => Err(format!("dictionary keys of type {other} are not supported")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranged_io::tests::Recorded;
    use crate::record::RowData;
    use crate::value::Value;
    use arrow_array::{Int64Array, StringArray};

    /// An IPC file (or stream) of batches of `sizes` rows: `id` and a 200-byte `text`.
    fn ipc_bytes(sizes: &[usize], stream: bool) -> Vec<u8> {
        let schema = Arc::new(Schema::new(vec![
            arrow_schema::Field::new("id", DataType::Int64, false),
            arrow_schema::Field::new("text", DataType::Utf8, false),
        ]));
        let mut out = Vec::new();
        let mut first = 0i64;
        let batches: Vec<RecordBatch> = sizes
            .iter()
            .map(|&n| {
                let ids = Int64Array::from_iter_values(first..first + n as i64);
                let texts = StringArray::from_iter_values((first..first + n as i64).map(|i| format!("{i:0>200}")));
                first += n as i64;
                RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(texts)]).unwrap()
            })
            .collect();
        if stream {
            let mut w = StreamWriter::try_new(&mut out, &schema).unwrap();
            batches.iter().for_each(|b| w.write(b).unwrap());
            w.finish().unwrap();
        } else {
            let mut w = FileWriter::try_new(&mut out, &schema).unwrap();
            batches.iter().for_each(|b| w.write(b).unwrap());
            w.finish().unwrap();
        }
        out
    }

    fn ids(source: &mut IpcSource) -> Vec<i64> {
        let mut ids = Vec::new();
        while let Some(batch) = source.next_batch(0, 1000).unwrap() {
            for row in &batch.rows {
                let RowData::Value(Value::Map(items)) = &row.data else { panic!("a map") };
                let Value::Int(id) = items[0].1 else { panic!("an int id") };
                ids.push(id);
            }
        }
        ids
    }

    #[test]
    fn batch_rows_come_from_the_footer_and_message_headers_alone() {
        let data = ipc_bytes(&[30, 0, 50, 20], false);
        let file = Recorded::new(data.clone());
        assert_eq!(file_batch_rows(file.as_ref()).unwrap(), vec![30, 0, 50, 20]);
        assert!(file.bytes_fetched() < 2000, "{} of {} bytes fetched", file.bytes_fetched(), data.len());
        let cut = Recorded::new(data[..data.len() - 3].to_vec());
        assert!(file_batch_rows(cut.as_ref()).unwrap_err().contains("truncated"));
    }

    #[test]
    fn a_ranged_file_skipping_rows_reads_no_batch_body_before_its_first() {
        let sizes = [100; 8];
        let data = ipc_bytes(&sizes, false);
        let file = Recorded::new(data.clone());
        let options = ReadOptions { columns: Some(vec!["id".into()]), skip_rows: 450, limit: Some(200) };
        let mut source = IpcSource::new(IpcInput::Ranged(file.clone()), options, "t.arrow").unwrap();
        assert_eq!(ids(&mut source), (450..650).collect::<Vec<_>>());
        // Batches 4..=6 hold rows 400..700: about 3/8 of the file, plus headers, footer and one
        // read-ahead.
        let fetched = file.bytes_fetched() as usize;
        assert!(fetched < data.len() * 3 / 8 + MIN_FETCH as usize + 4000, "{fetched} of {} bytes fetched", data.len());
    }

    #[test]
    fn a_stream_reads_from_its_start() {
        let data = ipc_bytes(&[10, 10, 10], true);
        let file = Recorded::new(data);
        let options = ReadOptions { columns: None, skip_rows: 15, limit: None };
        let mut source = IpcSource::new(IpcInput::Ranged(file), options, "t.arrows").unwrap();
        assert_eq!(ids(&mut source), (15..30).collect::<Vec<_>>());
    }
}
