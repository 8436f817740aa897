//! Encoders turn batches of records into bytes. They are pure, so batches encode in parallel.

use crate::record::{Row, RowData};
use crate::value::Value;

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
    ) -> (crate::pipeline::Payload, Vec<(usize, String)>) {
        let mut bytes = Vec::with_capacity(rows.len() * 128);
        let failed = self.encode(input_columns, output_columns, rows, &mut bytes);
        (crate::pipeline::Payload::Bytes(bytes), failed)
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
                        write_json_str(out, field);
                    }
                    out.push(b'}');
                    Ok(())
                }
                RowData::Value(value @ Value::Map(_)) => serde_json::to_writer(&mut *out, value).map_err(|e| e.to_string()),
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

/// CSV with one header; nulls are empty fields and booleans `true`/`false`.
pub struct CsvEncoder {
    pub delimiter: u8,
    pub quote: u8,
    pub write_header: bool,
}

impl CsvEncoder {
    fn writer<'a>(&self, out: &'a mut Vec<u8>) -> csv::Writer<&'a mut Vec<u8>> {
        csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .quote(self.quote)
            .has_headers(false)
            .from_writer(out)
    }
}

fn cells_for(columns: &[String], value: &Value) -> Result<Vec<String>, String> {
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
            Some(v) => v.to_cell().map_err(|e| format!("field {c:?}: {e}")),
            None => Ok(String::new()),
        })
        .collect()
}

impl Encoder for CsvEncoder {
    fn header(&self, columns: &[String]) -> Option<Vec<u8>> {
        if !self.write_header || columns.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        {
            let mut w = self.writer(&mut out);
            w.write_record(columns).ok()?;
            w.flush().ok()?;
        }
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
        let mut w = self.writer(out);
        for (i, row) in rows.iter().enumerate() {
            let result = match &row.data {
                RowData::Fields(fields) if same_layout && fields.len() == columns.len() => {
                    w.write_record(fields).map_err(|e| e.to_string())
                }
                RowData::Fields(_) => cells_for(columns, &row.data.to_value(input_columns))
                    .and_then(|cells| w.write_record(&cells).map_err(|e| e.to_string())),
                RowData::Value(value) => cells_for(columns, value)
                    .and_then(|cells| w.write_record(&cells).map_err(|e| e.to_string())),
            };
            if let Err(reason) = result {
                failed.push((i, reason));
            }
        }
        w.flush().expect("writing to memory cannot fail");
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
