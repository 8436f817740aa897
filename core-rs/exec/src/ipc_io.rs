//! Arrow IPC in and out: the file format (`.arrow`, `.feather` v2) and the stream format
//! (`.arrows`). Which one an input is comes from its first bytes (`ARROW1` starts a file).

use crate::arrow_rows::{batch_to_rows, reorder};
use crate::arrow_sink::TableWriter;
use crate::codec::OutputStream;
use crate::error::ExecError;
use crate::record::Batch;
use crate::source::{BatchSource, ReadOptions};
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, DictionaryArray, PrimitiveArray, RecordBatch};
use arrow_buffer::ArrowNativeType;
use arrow_ipc::reader::{FileReader, StreamReader};
use arrow_ipc::writer::{FileWriter, StreamWriter};
use arrow_schema::{ArrowError, DataType, Schema, SchemaRef};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::sync::Arc;

const FILE_MAGIC: &[u8; 6] = b"ARROW1";

/// Where an Arrow input is read from: a local file, or the bytes of a remote one.
pub enum IpcInput {
    File(File),
    Bytes(Vec<u8>),
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

fn open_reader<R: Read + Seek + Send + 'static>(
    mut reader: R,
    projection: Option<Vec<usize>>,
) -> Result<(Batches, SchemaRef, bool), String> {
    let mut magic = [0u8; 6];
    let is_file = reader.read_exact(&mut magic).is_ok() && &magic == FILE_MAGIC;
    reader.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    if is_file {
        let r = FileReader::try_new(reader, projection)
            .map_err(|e| format!("not a readable Arrow IPC file ({e}); the file may be truncated"))?;
        let schema = r.schema();
        Ok((Box::new(r), schema, true))
    } else {
        let r = StreamReader::try_new(BufReader::new(reader), projection)
            .map_err(|e| format!("not a readable Arrow IPC file or stream ({e})"))?;
        let schema = r.schema();
        Ok((Box::new(r), schema, false))
    }
}

fn file_schema<R: Read + Seek + Send + 'static>(reader: R) -> Result<SchemaRef, String> {
    open_reader(reader, None).map(|(_, schema, _)| schema)
}

impl IpcSource {
    /// Open the input; `options.columns` must all be in its schema.
    pub fn new(input: IpcInput, options: ReadOptions, source: &str) -> Result<IpcSource, ExecError> {
        let fail = |message: String| ExecError::Input { source: source.to_owned(), line: None, message };
        let (input, schema) = match input {
            IpcInput::File(mut file) => {
                let schema = file_schema(file.try_clone().map_err(|e| fail(e.to_string()))?).map_err(fail)?;
                file.seek(SeekFrom::Start(0)).map_err(|e| fail(e.to_string()))?;
                (IpcInput::File(file), schema)
            }
            IpcInput::Bytes(bytes) => {
                let schema = file_schema(Cursor::new(bytes.clone())).map_err(fail)?;
                (IpcInput::Bytes(bytes), schema)
            }
        };
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
        let (batches, mut schema, _) = match input {
            IpcInput::File(file) => open_reader(file, projection),
            IpcInput::Bytes(bytes) => open_reader(Cursor::new(bytes), projection),
        }
        .map_err(fail)?;
        if let Some(wanted) = &options.columns {
            schema = reorder(&RecordBatch::new_empty(schema), wanted).schema();
        }
        Ok(IpcSource {
            wanted: options.columns.clone(),
            source: Arc::from(source),
            columns: schema.fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>().into(),
            schema,
            batches,
            to_skip: options.skip_rows,
            remaining: options.limit,
            batch_index: 0,
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
