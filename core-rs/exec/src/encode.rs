//! Encoders turn batches of records into bytes. They are pure, so batches encode in parallel.

use crate::record::{Row, RowData};
use crate::value::Value;
use std::borrow::Cow;

pub trait Encoder: Send + Sync {
    /// Bytes written once before the first record (a CSV header), given the output columns.
    fn header(&self, _columns: &[String]) -> Option<Vec<u8>> {
        None
    }

    /// Append the encoded rows to `out`. CSV-field rows are named by `input_columns`; an
    /// encoder with a fixed layout writes `output_columns`. Rows that cannot be encoded are left
    /// out and returned as (index in `rows`, reason), so the caller routes them to the errors.
    fn encode(
        &self,
        input_columns: &[String],
        output_columns: &[String],
        rows: &[Row],
        out: &mut Vec<u8>,
    ) -> Vec<(usize, String)>;

    /// The rows as what the sink takes (bytes by default; a record batch for Arrow outputs),
    /// with the rows left out as in `encode`.
    fn encode_payload(
        &self,
        input_columns: &[String],
        output_columns: &[String],
        rows: &[Row],
    ) -> (crate::sink::Payload, Vec<(usize, String)>) {
        let mut bytes = Vec::with_capacity(rows.len() * 128);
        let failed = self.encode(input_columns, output_columns, rows, &mut bytes);
        (crate::sink::Payload::Bytes(bytes), failed)
    }
}

/// JSON Lines: one object per record, fields in their original order.
pub struct JsonlEncoder;

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the 8 bytes in `word` needs escaping in a JSON string: a control character
/// (below 0x20), `"` or `\`. Bytes of 0x80 and above never do.
#[inline(always)]
fn word_needs_escape(word: u64) -> bool {
    let has_zero = |x: u64| x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS;
    let below_space = word.wrapping_sub(LOW_BITS * 0x20) & !word & HIGH_BITS;
    (below_space | has_zero(word ^ (LOW_BITS * b'"' as u64)) | has_zero(word ^ (LOW_BITS * b'\\' as u64))) != 0
}

/// Append `text` as a JSON string literal, byte for byte what serde_json writes: `"`, `\\` and
/// control characters escaped (`\n`, `\r`, `\t`, `\b`, `\f`, others as `\u00XX`), everything else
/// as is. Runs of plain text are found 8 bytes at a time and copied whole.
pub fn write_json_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if i + 8 <= bytes.len() {
            let word = u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
            if !word_needs_escape(word) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[copied..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        } else {
            out.extend_from_slice(escape);
        }
        i += 1;
        copied = i;
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

/// Append an integer as serde_json writes it.
pub fn write_json_i64(out: &mut Vec<u8>, value: i64) {
    use serde_json::ser::Formatter;
    serde_json::ser::CompactFormatter.write_i64(out, value).expect("writing to a Vec cannot fail");
}

/// Append a float as serde_json writes it (shortest round-trip form); a NaN or an infinity is
/// refused with the same reason as a [`Value::Float`] holding one.
pub fn write_json_f64(out: &mut Vec<u8>, value: f64) -> Result<(), String> {
    use serde_json::ser::Formatter;
    if !value.is_finite() {
        return Err(crate::value::non_finite_reason(value));
    }
    serde_json::ser::CompactFormatter.write_f64(out, value).expect("writing to a Vec cannot fail");
    Ok(())
}

/// Append a value as JSON; on failure (a NaN inside) `out` may hold part of it.
pub fn write_json_value(out: &mut Vec<u8>, value: &Value) -> Result<(), String> {
    serde_json::to_writer(&mut *out, value).map_err(|e| e.to_string())
}

impl Encoder for JsonlEncoder {
    fn encode(&self, input_columns: &[String], _: &[String], rows: &[Row], out: &mut Vec<u8>) -> Vec<(usize, String)> {
        let keys: Vec<Vec<u8>> = input_columns
            .iter()
            .map(|c| {
                let mut key = serde_json::to_vec(c).expect("a string always serialises");
                key.push(b':');
                key
            })
            .collect();
        let mut failed = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let mark = out.len();
            let result = match &row.data {
                RowData::Fields(fields) => {
                    out.push(b'{');
                    for (j, (key, field)) in keys.iter().zip(fields).enumerate() {
                        if j > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(key);
                        match field {
                            Some(field) => write_json_str(out, field),
                            None => out.extend_from_slice(b"null"),
                        }
                    }
                    out.push(b'}');
                    Ok(())
                }
                RowData::Value(value @ Value::Map(_)) => {
                    serde_json::to_writer(&mut *out, value).map_err(|e| e.to_string())
                }
                // A Python stage refuses these first, naming the Python type (stage.rs).
                RowData::Value(other) => Err(format!("a record must be a JSON object, found {}", other.type_name())),
            };
            match result {
                Ok(()) => out.push(b'\n'),
                Err(reason) => {
                    out.truncate(mark);
                    failed.push((i, reason));
                }
            }
        }
        failed
    }
}

/// CSV with one header; booleans `true`/`false`. A null is an empty field and an empty string is
/// `""`, so that the CSV reader reads both back as they were (see `csv_source`).
#[derive(Debug, Clone, PartialEq)]
pub struct CsvEncoder {
    pub delimiter: u8,
    pub quote: u8,
    pub write_header: bool,
}

impl CsvEncoder {
    /// Append one field: nothing for a null; text quoted (its quotes doubled) when it is empty or
    /// holds the delimiter, the quote or a line end. One pass over the text: linear in its size.
    pub fn write_field(&self, out: &mut Vec<u8>, field: Option<&str>) {
        let Some(text) = field else { return };
        let bytes = text.as_bytes();
        let q = self.quote;
        let plain = !bytes.is_empty()
            && memchr::memchr3(self.delimiter, q, b'\n', bytes).is_none()
            && memchr::memchr(b'\r', bytes).is_none();
        if plain {
            out.extend_from_slice(bytes);
            return;
        }
        out.reserve(bytes.len() + 2);
        out.push(q);
        let mut from = 0;
        for at in memchr::memchr_iter(q, bytes) {
            out.extend_from_slice(&bytes[from..=at]);
            out.push(q);
            from = at + 1;
        }
        out.extend_from_slice(&bytes[from..]);
        out.push(q);
    }

    /// Append one record and its line end.
    pub fn write_record<'a>(&self, out: &mut Vec<u8>, fields: impl IntoIterator<Item = Option<&'a str>>) {
        let start = out.len();
        let mut count = 0;
        for field in fields {
            if count > 0 {
                out.push(self.delimiter);
            }
            self.write_field(out, field);
            count += 1;
        }
        if count == 1 && out.len() == start {
            // A lone null would be a blank line, which readers skip: the record is kept as "".
            out.extend_from_slice(&[self.quote, self.quote]);
        }
        out.push(b'\n');
    }
}

/// A value record's fields in the order of `columns`: None for a null or a missing field.
fn cells_for<'v>(columns: &[String], value: &'v Value) -> Result<Vec<Option<Cow<'v, str>>>, String> {
    let Value::Map(items) = value else {
        return Err(format!("a CSV record must be an object, found {}", value.type_name()));
    };
    if let Some((key, _)) = items.iter().find(|(k, _)| !columns.contains(k)) {
        return Err(format!(
            "field {key:?} is not one of the CSV output columns {columns:?}; \
             name every column in the output's field_names or drop the field in a transform"
        ));
    }
    columns
        .iter()
        .map(|c| match value.get(c) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Str(s)) => Ok(Some(Cow::Borrowed(s.as_str()))),
            Some(v) => v.to_cell().map(|cell| Some(Cow::Owned(cell))).map_err(|e| format!("field {c:?}: {e}")),
        })
        .collect()
}

impl Encoder for CsvEncoder {
    fn header(&self, columns: &[String]) -> Option<Vec<u8>> {
        if !self.write_header || columns.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        self.write_record(&mut out, columns.iter().map(|c| Some(c.as_str())));
        Some(out)
    }

    fn encode(
        &self,
        input_columns: &[String],
        columns: &[String],
        rows: &[Row],
        out: &mut Vec<u8>,
    ) -> Vec<(usize, String)> {
        let mut failed = Vec::new();
        let same_layout = input_columns == columns;
        for (i, row) in rows.iter().enumerate() {
            let cells = match &row.data {
                RowData::Fields(fields) if same_layout && fields.len() == columns.len() => {
                    self.write_record(out, fields);
                    continue;
                }
                RowData::Fields(_) => {
                    let value = row.data.to_value(input_columns);
                    cells_for(columns, &value).map(|cells| self.write_record(out, cells.iter().map(|c| c.as_deref())))
                }
                RowData::Value(value) => {
                    cells_for(columns, value).map(|cells| self.write_record(out, cells.iter().map(|c| c.as_deref())))
                }
            };
            if let Err(reason) = cells {
                failed.push((i, reason));
            }
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Fields;

    fn row(data: RowData) -> Row {
        Row { line: 1, data }
    }

    #[test]
    fn json_strings_are_escaped_exactly_as_serde_json_does() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "plain ascii text, longer than eight bytes".into(),
            "quote \" and backslash \\ and / slash".into(),
            "é ü 漢字 🎉 mixed with \u{7f} and \u{80}".into(),
        ];
        for b in 0u8..0x80 {
            samples.push(format!("abcdefg{}hijklmnop{}", b as char, b as char));
            samples.push((b as char).to_string());
        }
        for text in samples {
            let mut ours = Vec::new();
            write_json_str(&mut ours, &text);
            assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn jsonl_from_fields_and_values() {
        let columns = vec!["a".to_string(), "b\"".to_string()];
        let rows = vec![
            row(RowData::Fields(vec!["1", "x\ny"].into())),
            row(RowData::Value(Value::Map(vec![("k".into(), Value::Float(f64::NAN))]))),
            row(RowData::Value(Value::Map(vec![("k".into(), Value::Null)]))),
        ];
        let mut out = Vec::new();
        let failed = JsonlEncoder.encode(&columns, &columns, &rows, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "{\"a\":\"1\",\"b\\\"\":\"x\\ny\"}\n{\"k\":null}\n");
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, 1);
    }

    #[test]
    fn jsonl_refuses_records_that_are_not_objects() {
        let rows = vec![
            row(RowData::Value(Value::Null)),
            row(RowData::Value(Value::Str("text".into()))),
            row(RowData::Value(Value::List(vec![Value::Int(1)]))),
            row(RowData::Value(Value::Map(vec![("k".into(), Value::Int(1))]))),
        ];
        let mut out = Vec::new();
        let failed = JsonlEncoder.encode(&[], &[], &rows, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "{\"k\":1}\n");
        let reasons: Vec<_> = failed.iter().map(|(i, r)| (*i, r.as_str())).collect();
        assert_eq!(
            reasons,
            [
                (0, "a record must be a JSON object, found null"),
                (1, "a record must be a JSON object, found string"),
                (2, "a record must be a JSON object, found array"),
            ]
        );
    }

    #[test]
    fn csv_nulls_booleans_and_unknown_fields() {
        let enc = CsvEncoder { delimiter: b',', quote: b'"', write_header: true };
        let columns = vec!["a".to_string(), "b".to_string()];
        let rows = vec![
            row(RowData::Value(Value::Map(vec![("a".into(), Value::Null), ("b".into(), Value::Bool(true))]))),
            row(RowData::Value(Value::Map(vec![("zzz".into(), Value::Int(1))]))),
            row(RowData::Fields(vec!["x,y", "2"].into())),
        ];
        let mut out = enc.header(&columns).unwrap();
        let failed = enc.encode(&columns, &columns, &rows, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "a,b\n,true\n\"x,y\",2\n");
        assert_eq!(failed.len(), 1);
        assert!(failed[0].1.contains("zzz"));
    }

    fn csv_line(enc: &CsvEncoder, fields: &[Option<&str>]) -> String {
        let mut out = Vec::new();
        enc.write_record(&mut out, fields.iter().copied());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_fields_are_quoted_when_they_must_be_and_read_back_the_same() {
        let enc = CsvEncoder { delimiter: b',', quote: b'"', write_header: true };
        let big = format!("{}\"{}", "ab,c\n".repeat(50_000), "\"".repeat(3));
        let cases: Vec<(Vec<Option<&str>>, &str)> = vec![
            (vec![Some("plain"), Some("1.5")], "plain,1.5\n"),
            (vec![Some("say \"hi\""), Some("\"")], "\"say \"\"hi\"\"\",\"\"\"\"\n"),
            (vec![Some("a,b"), Some("line\nbreak"), Some("cr\r")], "\"a,b\",\"line\nbreak\",\"cr\r\"\n"),
            (vec![None, Some(""), None], ",\"\",\n"),
            (vec![None], "\"\"\n"),
            (vec![Some("x;y")], "x;y\n"),
            (vec![Some(big.as_str()), None], ""),
        ];
        for (fields, expected) in &cases {
            let line = csv_line(&enc, fields);
            if !expected.is_empty() {
                assert_eq!(&line, expected);
            }
            // The csv crate reads the line back to the same text (a null as empty).
            let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(line.as_bytes());
            let record = reader.records().next().unwrap().unwrap();
            let back: Vec<&str> = record.iter().collect();
            let want: Vec<&str> = fields.iter().map(|f| f.unwrap_or("")).collect();
            assert_eq!(back, want);
        }
        let tabs = CsvEncoder { delimiter: b'\t', quote: b'\'', write_header: true };
        assert_eq!(csv_line(&tabs, &[Some("a\tb"), Some("it's"), Some("a,b")]), "'a\tb'\t'it''s'\ta,b\n");
    }

    #[test]
    fn csv_values_write_nulls_and_empty_strings_apart() {
        let enc = CsvEncoder { delimiter: b',', quote: b'"', write_header: false };
        let columns = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let rows = vec![
            row(RowData::Value(Value::Map(vec![("a".into(), Value::Null), ("b".into(), Value::Str(String::new()))]))),
            row(RowData::Fields(Fields::from_options(vec![None, Some(""), Some("x")]))),
        ];
        let mut out = Vec::new();
        assert!(enc.encode(&columns, &columns, &rows, &mut out).is_empty());
        assert_eq!(String::from_utf8(out).unwrap(), ",\"\",\n,\"\",x\n");
    }
}
