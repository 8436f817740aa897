//! Records as they travel between the reader, the stage and the writers.

use crate::value::Value;
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::sync::Arc;

/// One record's data: CSV fields (named by the batch's columns) or a structured value.
#[derive(Debug, Clone, PartialEq)]
pub enum RowData {
    Fields(Fields),
    Value(Value),
}

/// The text fields of many records (a batch read from CSV), packed in one string with the end
/// of each field: a batch costs the reader a few allocations instead of some per record, and
/// the encoders (in another thread) free it in one go.
#[derive(Default)]
pub struct TextBlock {
    text: String,
    ends: Vec<usize>,
}

impl TextBlock {
    pub fn with_capacity(fields: usize, bytes: usize) -> TextBlock {
        TextBlock { text: String::with_capacity(bytes), ends: Vec::with_capacity(fields) }
    }
    pub fn push(&mut self, field: &str) {
        self.text.push_str(field);
        self.ends.push(self.text.len());
    }
    /// A whole record at once: its fields' text back to back, and where each field ends in it.
    pub fn push_record(&mut self, text: &str, ends: impl Iterator<Item = usize>) {
        let base = self.text.len();
        self.text.push_str(text);
        self.ends.extend(ends.map(|end| base + end));
    }
    /// Fields pushed so far: a record's fields run from `field_count()` before its first push.
    pub fn field_count(&self) -> usize {
        self.ends.len()
    }
    pub fn bytes(&self) -> usize {
        self.text.len()
    }
    /// Drop the fields from `first` on (a record that turned out not to be valid).
    pub fn truncate(&mut self, first: usize) {
        self.ends.truncate(first);
        self.text.truncate(self.ends.last().copied().unwrap_or(0));
    }
}

/// One record's text fields: `len` fields of a shared block, from field `first`.
#[derive(Clone)]
pub struct Fields {
    block: Arc<TextBlock>,
    first: usize,
    len: usize,
}

impl Fields {
    pub fn new(block: &Arc<TextBlock>, first: usize, len: usize) -> Fields {
        debug_assert!(first + len <= block.ends.len());
        Fields { block: block.clone(), first, len }
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Field `i`'s text as bytes, for copying without checking character boundaries again.
    #[inline]
    pub fn bytes(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len {
            return None;
        }
        self.block.text.as_bytes().get(self.start_of(i)..self.block.ends[self.first + i])
    }
    #[inline]
    fn start_of(&self, i: usize) -> usize {
        match self.first + i {
            0 => 0,
            k => self.block.ends[k - 1],
        }
    }
    pub fn get(&self, i: usize) -> Option<&str> {
        if i >= self.len {
            return None;
        }
        Some(&self.block.text[self.start_of(i)..self.block.ends[self.first + i]])
    }
    pub fn iter(&self) -> FieldsIter<'_> {
        FieldsIter { fields: self, next: 0, start: self.start_of(0) }
    }
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }
}

impl Default for Fields {
    fn default() -> Fields {
        Fields::new(&Arc::default(), 0, 0)
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
        let mut block = TextBlock::with_capacity(fields.len(), fields.iter().map(|f| f.as_ref().len()).sum());
        for field in &fields {
            block.push(field.as_ref());
        }
        Fields::new(&Arc::new(block), 0, fields.len())
    }
}

pub struct FieldsIter<'a> {
    fields: &'a Fields,
    next: usize,
    start: usize,
}

impl<'a> Iterator for FieldsIter<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        if self.next >= self.fields.len {
            return None;
        }
        let end = self.fields.block.ends[self.fields.first + self.next];
        let field = &self.fields.block.text[self.start..end];
        self.next += 1;
        self.start = end;
        Some(field)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.fields.len - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for FieldsIter<'_> {}

impl<'a> IntoIterator for &'a Fields {
    type Item = &'a str;
    type IntoIter = FieldsIter<'a>;
    fn into_iter(self) -> FieldsIter<'a> {
        self.iter()
    }
}

impl RowData {
    /// The record as a value, naming CSV fields by `columns`; surplus fields become a list.
    pub fn to_value(&self, columns: &[String]) -> Value {
        match self {
            RowData::Value(v) => v.clone(),
            RowData::Fields(fields) if fields.len() == columns.len() => Value::Map(
                columns
                    .iter()
                    .cloned()
                    .zip(fields.iter().map(|f| Value::Str(f.to_owned())))
                    .collect(),
            ),
            RowData::Fields(fields) => {
                Value::List(fields.iter().map(|f| Value::Str(f.to_owned())).collect())
            }
        }
    }
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
            (
                "errors".into(),
                Value::List(self.messages.iter().cloned().map(Value::Str).collect()),
            ),
            ("record".into(), self.record.clone()),
        ])
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
