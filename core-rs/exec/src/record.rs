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

/// A record's text fields, packed in one string with the end of each field: two allocations
/// per record instead of one per field, which the reader, the encoders and the allocator
/// (freeing in another thread) all pay for on the fast path.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Fields {
    text: String,
    ends: Vec<usize>,
}

impl Fields {
    pub fn with_capacity(fields: usize, bytes: usize) -> Fields {
        Fields { text: String::with_capacity(bytes), ends: Vec::with_capacity(fields) }
    }
    /// Fields from their bytes back to back and where each ends (`ends` ascending, on
    /// character boundaries of `text`, the last one `text.len()`).
    pub fn from_parts(text: String, ends: Vec<usize>) -> Fields {
        debug_assert!(ends.last().is_none_or(|&e| e == text.len()) && ends.iter().all(|&e| text.is_char_boundary(e)));
        Fields { text, ends }
    }
    pub fn push(&mut self, field: &str) {
        self.text.push_str(field);
        self.ends.push(self.text.len());
    }
    pub fn len(&self) -> usize {
        self.ends.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.text[start..end])
    }
    pub fn iter(&self) -> FieldsIter<'_> {
        FieldsIter { fields: self, next: 0, start: 0 }
    }
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }
}

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<S: AsRef<str>> From<Vec<S>> for Fields {
    fn from(fields: Vec<S>) -> Fields {
        let mut out = Fields::with_capacity(fields.len(), fields.iter().map(|f| f.as_ref().len()).sum());
        for field in &fields {
            out.push(field.as_ref());
        }
        out
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
        let end = *self.fields.ends.get(self.next)?;
        let field = &self.fields.text[self.start..end];
        self.next += 1;
        self.start = end;
        Some(field)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.fields.ends.len() - self.next;
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
