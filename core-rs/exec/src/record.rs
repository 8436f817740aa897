//! Records as they travel between the reader, the stage and the writers.

use crate::value::Value;
use arrow_array::builder::StringBuilder;
use arrow_array::{Array, StringArray};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::sync::Arc;

/// One record's data: CSV fields (named by the batch's columns; a field may be null, see
/// `csv_source`) or a structured value.
#[derive(Debug, Clone, PartialEq)]
pub enum RowData {
    Fields(Fields),
    Value(Value),
}

/// The text fields of a batch's records (read from CSV), column by column as Arrow string
/// arrays: a batch costs the reader a few allocations instead of some per record, and the
/// Arrow encoder hands the columns on as they are instead of copying every field again.
pub struct TextBlock {
    columns: Vec<StringArray>,
}

/// Builds a TextBlock record by record.
pub struct TextBlockBuilder {
    columns: Vec<StringBuilder>,
}

impl TextBlockBuilder {
    /// `bytes`: the text each column is expected to hold (the last batch's, say), plus an
    /// eighth so that a batch a little larger than the last does not double its buffer.
    pub fn new(width: usize, rows: usize, bytes: &[usize]) -> TextBlockBuilder {
        let room = |i: usize| bytes.get(i).map_or(0, |b| b + b / 8);
        let columns = (0..width).map(|i| StringBuilder::with_capacity(rows, room(i))).collect();
        TextBlockBuilder { columns }
    }
    /// One record: exactly one field for each column, None for a null.
    pub fn push_record<'a>(&mut self, fields: impl IntoIterator<Item = Option<&'a str>>) {
        for (column, field) in self.columns.iter_mut().zip(fields) {
            // Arrow allocates a column's null bitmap only at its first null: text costs nothing.
            column.append_option(field);
        }
    }
    /// The text of the fullest column: a block ends before an Arrow string array's 2 GiB.
    pub fn largest_column(&self) -> usize {
        self.columns.iter().map(|c| c.values_slice().len()).max().unwrap_or(0)
    }
    /// The text each column holds.
    pub fn column_bytes(&self) -> Vec<usize> {
        self.columns.iter().map(|c| c.values_slice().len()).collect()
    }
    pub fn finish(mut self) -> TextBlock {
        TextBlock { columns: self.columns.iter_mut().map(|c| c.finish()).collect() }
    }
}

/// One record's text fields: row `row` of a shared block.
#[derive(Clone)]
pub struct Fields {
    block: Arc<TextBlock>,
    row: usize,
}

impl Fields {
    pub fn new(block: &Arc<TextBlock>, row: usize) -> Fields {
        Fields { block: block.clone(), row }
    }
    pub fn len(&self) -> usize {
        self.block.columns.len()
    }
    pub fn is_empty(&self) -> bool {
        self.block.columns.is_empty()
    }
    /// Field `i`: None when it is null (or there is no such field).
    pub fn get(&self, i: usize) -> Option<&str> {
        let column = self.block.columns.get(i)?;
        (!column.is_null(self.row)).then(|| column.value(self.row))
    }
    pub fn iter(&self) -> FieldsIter<'_> {
        FieldsIter { fields: self, next: 0 }
    }
    pub fn to_vec(&self) -> Vec<Option<String>> {
        self.iter().map(|f| f.map(str::to_owned)).collect()
    }
    /// The whole column `i` of the block, when `rows` are, in order, every record of this
    /// record's block: the Arrow encoder then takes the column as it is.
    pub fn block_column(&self, rows: &[&Fields], i: usize) -> Option<&StringArray> {
        let whole = rows.len() == self.block.columns.first()?.len()
            && rows.iter().enumerate().all(|(k, f)| f.row == k && Arc::ptr_eq(&f.block, &self.block));
        whole.then(|| self.block.columns.get(i)).flatten()
    }
}

impl Default for Fields {
    fn default() -> Fields {
        Fields::from(Vec::<&str>::new())
    }
}

impl PartialEq for Fields {
    fn eq(&self, other: &Fields) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Fields {}

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<S: AsRef<str>> From<Vec<S>> for Fields {
    fn from(fields: Vec<S>) -> Fields {
        Fields::from_options(fields.iter().map(|f| Some(f.as_ref())).collect())
    }
}

impl Fields {
    /// One record's fields, None for a null.
    pub fn from_options(fields: Vec<Option<&str>>) -> Fields {
        let bytes: Vec<usize> = fields.iter().map(|f| f.map_or(0, str::len)).collect();
        let mut block = TextBlockBuilder::new(fields.len(), 1, &bytes);
        block.push_record(fields);
        Fields::new(&Arc::new(block.finish()), 0)
    }
}

pub struct FieldsIter<'a> {
    fields: &'a Fields,
    next: usize,
}

impl<'a> Iterator for FieldsIter<'a> {
    /// A field, None for a null.
    type Item = Option<&'a str>;
    fn next(&mut self) -> Option<Option<&'a str>> {
        if self.next == self.fields.len() {
            return None;
        }
        self.next += 1;
        Some(self.fields.get(self.next - 1))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.fields.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for FieldsIter<'_> {}

impl<'a> IntoIterator for &'a Fields {
    type Item = Option<&'a str>;
    type IntoIter = FieldsIter<'a>;
    fn into_iter(self) -> FieldsIter<'a> {
        self.iter()
    }
}

impl RowData {
    /// The record as a value, naming CSV fields by `columns`; surplus fields become a list.
    /// A null field is `Value::Null`.
    pub fn to_value(&self, columns: &[String]) -> Value {
        match self {
            RowData::Value(v) => v.clone(),
            RowData::Fields(fields) if fields.len() == columns.len() => {
                Value::Map(columns.iter().cloned().zip(fields.iter().map(field_value)).collect())
            }
            RowData::Fields(fields) => Value::List(fields.iter().map(field_value).collect()),
        }
    }
}

fn field_value(field: Option<&str>) -> Value {
    field.map_or(Value::Null, |f| Value::Str(f.to_owned()))
}

/// A record with the line (1-based, of the file or of the stream) it started on.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: u64,
    pub data: RowData,
}

/// Where in a pipe a record failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedStage {
    Parse,
    Validation,
    Transform,
    Serialize,
}

impl FailedStage {
    pub fn as_str(&self) -> &'static str {
        match self {
            FailedStage::Parse => "parse",
            FailedStage::Validation => "validation",
            FailedStage::Transform => "transform",
            FailedStage::Serialize => "serialize",
        }
    }

    pub fn parse(name: &str) -> Option<FailedStage> {
        Some(match name {
            "parse" => FailedStage::Parse,
            "validation" => FailedStage::Validation,
            "transform" => FailedStage::Transform,
            "serialize" => FailedStage::Serialize,
            _ => return None,
        })
    }
}

/// A record that could not be processed, with where it came from and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRecord {
    pub source: Arc<str>,
    pub line: u64,
    pub stage: FailedStage,
    pub messages: Vec<String>,
    pub record: Value,
}

impl ErrorRecord {
    /// The fields an error output receives, in the order they are written.
    pub const COLUMNS: [&'static str; 5] = ["source", "line", "stage", "errors", "record"];

    pub fn to_value(&self) -> Value {
        Value::Map(vec![
            ("source".into(), Value::Str(self.source.to_string())),
            ("line".into(), Value::Int(self.line as i64)),
            ("stage".into(), Value::Str(self.stage.as_str().into())),
            ("errors".into(), Value::List(self.messages.iter().cloned().map(Value::Str).collect())),
            ("record".into(), self.record.clone()),
        ])
    }
}

impl ErrorRecord {
    /// The error record as the fields `columns` name, for an error output given its columns
    /// (`CSVOutputAdapter(fieldnames=[...])`): a name of `COLUMNS` is that field of the error
    /// record, any other name the field of the rejected record (null where it has none).
    pub fn to_columns(&self, columns: &[String]) -> Value {
        let whole = self.to_value();
        let Value::Map(fields) = whole else { unreachable!("an error record is a map") };
        let of_record = |name: &str| match &self.record {
            Value::Map(items) => items.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            _ => None,
        };
        Value::Map(
            columns
                .iter()
                .map(|name| {
                    let value = fields
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .or_else(|| of_record(name))
                        .unwrap_or(Value::Null);
                    (name.clone(), value)
                })
                .collect(),
        )
    }
}

impl Serialize for ErrorRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(5))?;
        map.serialize_entry("source", &*self.source)?;
        map.serialize_entry("line", &self.line)?;
        map.serialize_entry("stage", self.stage.as_str())?;
        map.serialize_entry("errors", &self.messages)?;
        map.serialize_entry("record", &self.record)?;
        map.end()
    }
}

/// A batch read from the input: records, plus the records that failed to parse.
/// `rows.len() + errors.len()` is the number of records read for this batch.
#[derive(Debug, Clone)]
pub struct Batch {
    pub seq: u64,
    pub columns: Arc<[String]>,
    pub rows: Vec<Row>,
    pub errors: Vec<ErrorRecord>,
}

impl Batch {
    pub fn records_read(&self) -> u64 {
        (self.rows.len() + self.errors.len()) as u64
    }
}

/// A batch after the stage: records to write and records that failed.
#[derive(Debug, Clone)]
pub struct OutBatch {
    pub seq: u64,
    pub columns: Arc<[String]>,
    pub rows: Vec<Row>,
    pub errors: Vec<ErrorRecord>,
    /// The records as read, parallel to `rows`, when the stage changed them (empty when `rows`
    /// are the records as read), so a record refused by the writer is reported as read.
    pub originals: Vec<RowData>,
    /// Records the stage already encoded for the main output (after `rows`, in input order).
    pub encoded: Option<PreEncoded>,
}

impl OutBatch {
    /// Records the main output receives: `rows` and the pre-encoded ones.
    pub fn records_out(&self) -> u64 {
        self.rows.len() as u64 + self.encoded.as_ref().map_or(0, |e| e.records)
    }
}

/// Main-output bytes a stage encoded itself, holding `records` records: a Python stage writes
/// JSON Lines straight from its output dicts, with no intermediate values to build, pass to
/// an encoder thread and free there.
#[derive(Debug, Clone, Default)]
pub struct PreEncoded {
    pub bytes: Vec<u8>,
    pub records: u64,
}

#[cfg(test)]
mod error_columns_tests {
    use super::*;

    #[test]
    fn given_columns_take_error_fields_then_record_fields_then_null() {
        let error = ErrorRecord {
            source: Arc::from("in.csv"),
            line: 3,
            stage: FailedStage::Validation,
            messages: vec!["id: bad".into()],
            record: Value::Map(vec![("id".into(), Value::Str("x".into())), ("line".into(), Value::Int(9))]),
        };
        let columns: Vec<String> = ["line", "errors", "id", "missing"].iter().map(|c| c.to_string()).collect();
        let Value::Map(fields) = error.to_columns(&columns) else { panic!("not a map") };
        assert_eq!(fields.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["line", "errors", "id", "missing"]);
        assert_eq!(fields[0].1, Value::Int(3), "an error record's own field wins over the record's");
        assert_eq!(fields[2].1, Value::Str("x".into()));
        assert_eq!(fields[3].1, Value::Null);
    }
}
