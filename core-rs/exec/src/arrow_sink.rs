//! The Arrow side of a pipe's output: an encoder that turns rows into record batches (in the
//! encoder threads) and a sink that settles the file's schema and hands batches, in order, to
//! a table writer (Parquet, Arrow IPC) in the writer thread.
//!
//! Without a fixed schema, the schema is inferred per batch. The sink holds batches back while
//! a column is still all-null (up to `settle_rows` rows), so a column that starts null and
//! later holds strings gets the string type; once the file is opened, a later batch may only
//! fill the same types (nulls and integers widen into them); anything else is an error that
//! names the column and both types.

use crate::arrow_build::{infer_schema, rows_to_batch};
use crate::arrow_schema::merge_types;
use crate::encode::Encoder;
use crate::error::ExecError;
use crate::record::Row;
use crate::sink::{Payload, Sink};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, UInt64Type};
use arrow_array::{new_null_array, Array, ArrayRef, Float64Array, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::sync::Arc;

pub use arrow_schema::SchemaRef as TableSchema;

/// Rows to record batches, of a fixed schema (from a model or the input file) or inferred.
/// When inferred, `hint` (the input table's schema) gives same-named columns their exact
/// input type where the values fit it (dictionary strings, int32, decimal precision, ns).
pub struct ArrowEncoder {
    pub schema: Option<SchemaRef>,
    pub hint: Option<SchemaRef>,
}

/// Whether values inferred as `inferred` can be written as the input's type `hint`.
fn hint_fits(inferred: &DataType, hint: &DataType) -> bool {
    use DataType::*;
    match (inferred, hint) {
        (Null, _) => true,
        (Int64 | UInt64, Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64) => true,
        (Float64, Float32 | Float64) => true,
        (Utf8, Utf8 | LargeUtf8 | Utf8View) => true,
        (Utf8, Dictionary(_, value)) => value.as_ref() == &Utf8,
        (Decimal128(..), Decimal128(..)) => true,
        (Timestamp(_, a), Timestamp(_, b)) => a.is_some() == b.is_some(),
        (List(_), List(_)) | (Struct(_), Struct(_)) => true,
        (a, b) => a == b,
    }
}

fn apply_hint(inferred: Schema, hint: &Schema) -> Schema {
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| match hint.field_with_name(f.name()) {
            Ok(h) if hint_fits(f.data_type(), h.data_type()) => h.clone(),
            _ => f.as_ref().clone(),
        })
        .collect();
    Schema::new(fields)
}

impl Encoder for ArrowEncoder {
    fn encode(&self, _: &[String], _: &[String], rows: &[Row], _: &mut Vec<u8>) -> Vec<(usize, String)> {
        (0..rows.len()).map(|i| (i, "this output takes record batches, not bytes".to_string())).collect()
    }

    fn encode_payload(&self, input_columns: &[String], _: &[String], rows: &[Row]) -> (Payload, Vec<(usize, String)>) {
        let schema = match &self.schema {
            Some(schema) => schema.clone(),
            None => {
                let inferred = infer_schema(input_columns, rows);
                Arc::new(match &self.hint {
                    Some(hint) => apply_hint(inferred, hint),
                    None => inferred,
                })
            }
        };
        let (batch, failed) = rows_to_batch(&schema, input_columns, rows);
        (Payload::Arrow(batch.unwrap_or_else(|| RecordBatch::new_empty(schema))), failed)
    }
}

/// A file format's writer, opened once the schema is known.
pub trait TableWriter: Send {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), String>;
    /// Write the footer and flush every byte: only then may the output be published.
    fn finish(self: Box<Self>) -> Result<(), String>;
}

pub type OpenTable = Box<dyn FnOnce(SchemaRef) -> Result<Box<dyn TableWriter>, String> + Send>;

pub struct ArrowSink {
    target: String,
    open: Option<OpenTable>,
    writer: Option<Box<dyn TableWriter>>,
    schema: Option<SchemaRef>,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    settle_rows: usize,
}

impl ArrowSink {
    /// `schema`: the fixed schema, if any; `settle_rows`: how many rows to hold back at most
    /// while an inferred column is still all-null.
    pub fn new(target: &str, schema: Option<SchemaRef>, settle_rows: usize, open: OpenTable) -> ArrowSink {
        ArrowSink {
            target: target.to_owned(),
            open: Some(open),
            writer: None,
            schema,
            pending: Vec::new(),
            pending_rows: 0,
            settle_rows: settle_rows.max(1),
        }
    }

    fn fail(&self, message: String) -> ExecError {
        ExecError::Output { target: self.target.clone(), message }
    }

    fn settled_schema(&self) -> Result<SchemaRef, ExecError> {
        if let Some(schema) = &self.schema {
            return Ok(schema.clone());
        }
        let with_rows: Vec<&RecordBatch> = self.pending.iter().filter(|b| b.num_rows() > 0).collect();
        if with_rows.is_empty() {
            // No records at all: the file gets the columns of the first (empty) batch.
            return Ok(self.pending.first().map(|b| b.schema()).unwrap_or_else(|| Arc::new(Schema::empty())));
        }
        let mut fields: Vec<Field> = Vec::new();
        for batch in with_rows {
            for field in batch.schema().fields() {
                match fields.iter_mut().find(|f| f.name() == field.name()) {
                    Some(existing) => {
                        let merged = merge_types(existing.data_type(), field.data_type()).ok_or_else(|| {
                            self.fail(conflict(field.name(), existing.data_type(), field.data_type()))
                        })?;
                        *existing = Field::new(field.name(), merged, true);
                    }
                    None => fields.push(field.as_ref().clone()),
                }
            }
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    fn open_writer(&mut self) -> Result<(), ExecError> {
        let schema = self.settled_schema()?;
        let open = self.open.take().ok_or_else(|| ExecError::Internal("the table writer was opened twice".into()))?;
        let mut writer = open(schema.clone()).map_err(|e| self.fail(e))?;
        for batch in std::mem::take(&mut self.pending).into_iter().filter(|b| b.num_rows() > 0) {
            let batch = conform(&batch, &schema).map_err(|e| self.fail(e))?;
            writer.write(&batch).map_err(|e| self.fail(e))?;
        }
        self.schema = Some(schema);
        self.writer = Some(writer);
        Ok(())
    }
}

fn conflict(column: &str, first: &DataType, later: &DataType) -> String {
    format!(
        "column {column:?} holds {first} in earlier records and {later} in later ones; \
         give the output a schema (a schema model) or make the values consistent in a transform"
    )
}

fn has_null_column(batch: &RecordBatch) -> bool {
    batch.schema().fields().iter().any(|f| f.data_type() == &DataType::Null)
}

/// The batch with the file's schema: missing or all-null columns become typed nulls and
/// integers widen to floats; any other difference is an error naming the column.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    if batch.schema().as_ref() == schema.as_ref() {
        return Ok(batch.clone());
    }
    if let Some(extra) = batch.schema().fields().iter().find(|f| schema.index_of(f.name()).is_err()) {
        return Err(format!(
            "column {:?} first appears after the file's columns were fixed ({:?}); give the output a schema \
             (a schema model) so every column is known up front",
            extra.name(),
            schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>()
        ));
    }
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let target = field.data_type();
        let column = match batch.column_by_name(field.name()) {
            None => new_null_array(target, n),
            Some(array) if array.data_type() == target => array.clone(),
            Some(array) if array.data_type() == &DataType::Null => new_null_array(target, n),
            Some(array) if target == &DataType::Float64 && array.data_type() == &DataType::Int64 => {
                let ints = array.as_primitive::<Int64Type>();
                Arc::new(ints.iter().map(|v| v.map(|v| v as f64)).collect::<Float64Array>())
            }
            Some(array) if target == &DataType::Float64 && array.data_type() == &DataType::UInt64 => {
                let ints = array.as_primitive::<UInt64Type>();
                Arc::new(ints.iter().map(|v| v.map(|v| v as f64)).collect::<arrow_array::PrimitiveArray<Float64Type>>())
            }
            Some(array) => match merge_types(target, array.data_type()) {
                Some(merged) if &merged != target => {
                    return Err(format!(
                        "{}; the file was already started with {target}, so the column cannot become {merged}",
                        conflict(field.name(), target, array.data_type())
                    ))
                }
                _ => return Err(conflict(field.name(), target, array.data_type())),
            },
        };
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(format!("column {:?} is not nullable but a record has no value", field.name()));
        }
        columns.push(column);
    }
    RecordBatch::try_new_with_options(schema.clone(), columns, &RecordBatchOptions::new().with_row_count(Some(n)))
        .map_err(|e| e.to_string())
}

impl Sink for ArrowSink {
    fn write(&mut self, payload: Payload) -> Result<(), ExecError> {
        let Payload::Arrow(batch) = payload else {
            return Err(ExecError::Internal(format!("{} takes record batches", self.target)));
        };
        if let Some(writer) = self.writer.as_mut() {
            if batch.num_rows() == 0 {
                return Ok(());
            }
            let schema = self.schema.clone().expect("an open writer has a schema");
            let batch =
                conform(&batch, &schema).map_err(|e| ExecError::Output { target: self.target.clone(), message: e })?;
            return writer.write(&batch).map_err(|e| ExecError::Output { target: self.target.clone(), message: e });
        }
        if batch.num_rows() > 0 || self.schema.is_none() && self.pending.is_empty() {
            self.pending_rows += batch.num_rows();
            self.pending.push(batch);
        }
        let settled = self.schema.is_some() || !self.pending.iter().any(has_null_column) || {
            // Still null everywhere so far? Only if no pending batch has a type for it.
            let schema = self.settled_schema()?;
            !schema.fields().iter().any(|f| f.data_type() == &DataType::Null)
        };
        if settled && self.pending_rows > 0 || self.pending_rows >= self.settle_rows {
            self.open_writer()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), ExecError> {
        if self.writer.is_none() {
            self.open_writer()?;
        }
        let target = self.target.clone();
        let writer = self.writer.take().expect("opened above");
        writer.finish().map_err(|message| ExecError::Output { target, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, NullArray, StringArray};
    use std::sync::Mutex;

    struct Collect(Arc<Mutex<Vec<RecordBatch>>>);

    impl TableWriter for Collect {
        fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
            self.0.lock().unwrap().push(batch.clone());
            Ok(())
        }
        fn finish(self: Box<Self>) -> Result<(), String> {
            Ok(())
        }
    }

    fn sink(out: &Arc<Mutex<Vec<RecordBatch>>>) -> ArrowSink {
        let out = out.clone();
        ArrowSink::new("t", None, 1000, Box::new(move |_| Ok(Box::new(Collect(out)) as Box<dyn TableWriter>)))
    }

    fn batch(column: ArrayRef) -> RecordBatch {
        RecordBatch::try_from_iter(vec![("c", column)]).unwrap()
    }

    #[test]
    fn a_null_first_batch_takes_the_type_of_a_later_one() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let mut s = sink(&out);
        s.write(Payload::Arrow(batch(Arc::new(NullArray::new(2))))).unwrap();
        assert!(out.lock().unwrap().is_empty());
        s.write(Payload::Arrow(batch(Arc::new(StringArray::from(vec!["x"]))))).unwrap();
        Box::new(s).finish().unwrap();
        let written = out.lock().unwrap();
        assert_eq!(written[0].schema().field(0).data_type(), &DataType::Utf8);
        assert_eq!(written.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
    }

    #[test]
    fn a_type_change_after_the_file_started_names_the_column_and_types() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let mut s = sink(&out);
        s.write(Payload::Arrow(batch(Arc::new(Int64Array::from(vec![1]))))).unwrap();
        let err = s.write(Payload::Arrow(batch(Arc::new(StringArray::from(vec!["x"]))))).unwrap_err().to_string();
        assert!(err.contains("\"c\"") && err.contains("Int64") && err.contains("Utf8"), "{err}");
    }
}
