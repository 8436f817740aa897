//! JSON array files (`[{...}, {...}]`): read element by element in constant memory, written
//! as one element per line between `[` and `]`.

use crate::codec::ByteReader;
use crate::encode::{Encoder, JsonlEncoder};
use crate::error::ExecError;
use crate::record::{Batch, ErrorRecord, FailedStage, Row, RowData};
use crate::sink::{Payload, Sink};
use crate::source::BatchSource;
use crate::value::Value;
use std::io::{BufRead, BufReader};
use std::sync::Arc;

fn io_error(source: &str, offset: u64, e: std::io::Error) -> ExecError {
    ExecError::Input {
        source: source.to_owned(),
        line: None,
        message: format!("read failed at byte offset {offset}: {e}"),
    }
}

pub struct JsonArraySource {
    reader: BufReader<ByteReader>,
    source: Arc<str>,
    /// Bytes consumed so far: error messages give byte offsets.
    offset: u64,
    element: u64,
    started: bool,
    done: bool,
    buffer: Vec<u8>,
}

impl JsonArraySource {
    pub fn new(input: ByteReader, source: &str) -> JsonArraySource {
        JsonArraySource {
            reader: BufReader::with_capacity(1 << 16, input),
            source: Arc::from(source),
            offset: 0,
            element: 0,
            started: false,
            done: false,
            buffer: Vec::with_capacity(1024),
        }
    }

    fn fail(&self, message: String) -> ExecError {
        ExecError::Input { source: self.source.to_string(), line: None, message }
    }

    /// The next byte that is not whitespace (consumed), or None at the end of the input.
    fn next_token(&mut self) -> Result<Option<u8>, ExecError> {
        loop {
            let available = {
                let (src, off) = (self.source.clone(), self.offset);
                self.reader.fill_buf().map_err(|e| io_error(&src, off, e))?
            };
            if available.is_empty() {
                return Ok(None);
            }
            let skip = available.iter().position(|b| !b.is_ascii_whitespace());
            match skip {
                Some(i) => {
                    let byte = available[i];
                    self.reader.consume(i + 1);
                    self.offset += i as u64 + 1;
                    return Ok(Some(byte));
                }
                None => {
                    let n = available.len();
                    self.reader.consume(n);
                    self.offset += n as u64;
                }
            }
        }
    }

    /// Read one element's bytes into `buffer`, up to the `,` or `]` that ends it (returned).
    fn read_element(&mut self, first: u8) -> Result<u8, ExecError> {
        self.buffer.clear();
        self.buffer.push(first);
        let (mut depth, mut strings) = (0i64, JsonStrings::default());
        let mut step = |b: u8, depth: &mut i64| -> bool {
            if strings.inside(b) {
                return false;
            }
            match b {
                b'{' | b'[' => *depth += 1,
                b'}' | b']' if *depth > 0 => *depth -= 1,
                b',' | b']' if *depth == 0 => return true,
                _ => {}
            }
            false
        };
        step(first, &mut depth);
        loop {
            let available = {
                let (src, off) = (self.source.clone(), self.offset);
                self.reader.fill_buf().map_err(|e| io_error(&src, off, e))?
            };
            if available.is_empty() {
                return Err(self.fail(format!(
                    "the JSON array is truncated: element {} (from byte offset {}) never ends; the file is incomplete",
                    self.element,
                    self.offset - self.buffer.len() as u64
                )));
            }
            let mut end = None;
            for (i, &b) in available.iter().enumerate() {
                if step(b, &mut depth) {
                    end = Some((i, b));
                    break;
                }
            }
            match end {
                Some((i, b)) => {
                    self.buffer.extend_from_slice(&available[..i]);
                    self.reader.consume(i + 1);
                    self.offset += i as u64 + 1;
                    return Ok(b);
                }
                None => {
                    let n = available.len();
                    self.buffer.extend_from_slice(available);
                    self.reader.consume(n);
                    self.offset += n as u64;
                }
            }
        }
    }

    fn parse(&self, start: u64) -> Result<Row, ErrorRecord> {
        let raw = self.buffer.trim_ascii();
        let fail = |message: String| ErrorRecord {
            source: self.source.clone(),
            line: self.element,
            stage: FailedStage::Parse,
            messages: vec![format!("element {} (byte offset {start}): {message}", self.element - 1)],
            record: Value::Str(String::from_utf8_lossy(raw).into_owned()),
        };
        match serde_json::from_slice::<Value>(raw) {
            Ok(value @ Value::Map(_)) => Ok(Row { line: self.element, data: RowData::Value(value) }),
            Ok(other) => Err(fail(format!("expected a JSON object, found {}", other.type_name()))),
            Err(e) => Err(fail(format!("invalid JSON: {e}"))),
        }
    }
}

impl BatchSource for JsonArraySource {
    fn next_batch(&mut self, seq: u64, max_rows: usize) -> Result<Option<Batch>, ExecError> {
        if !self.started {
            self.started = true;
            if {
                let (src, off) = (self.source.clone(), self.offset);
                self.reader.fill_buf().map_err(|e| io_error(&src, off, e))?
            }
            .starts_with(b"\xEF\xBB\xBF")
            {
                self.reader.consume(3);
                self.offset += 3;
            }
            match self.next_token()? {
                Some(b'[') => {}
                None => return Err(self.fail("the file is empty; a JSON array file holds `[...]`".into())),
                Some(other) => {
                    return Err(self.fail(format!(
                    "a JSON array file must start with '[', found {:?}; for one object per line use format=\"jsonl\"",
                    other as char
                )))
                }
            }
            // An empty array.
            if {
                let (src, off) = (self.source.clone(), self.offset);
                self.reader.fill_buf().map_err(|e| io_error(&src, off, e))?
            }
            .trim_ascii_start()
            .starts_with(b"]")
            {
                self.next_token()?;
                self.done = true;
            }
        }
        let mut rows = Vec::with_capacity(max_rows);
        let mut errors = Vec::new();
        while !self.done && rows.len() + errors.len() < max_rows {
            let Some(first) = self.next_token()? else {
                return Err(self.fail(format!(
                    "the JSON array is truncated after element {} (byte offset {}): `]` is missing",
                    self.element.saturating_sub(1),
                    self.offset
                )));
            };
            let start = self.offset - 1;
            self.element += 1;
            let end = if first == b',' || first == b']' {
                errors.push(ErrorRecord {
                    source: self.source.clone(),
                    line: self.element,
                    stage: FailedStage::Parse,
                    messages: vec![format!(
                        "element {} (byte offset {start}): empty element (a stray comma)",
                        self.element - 1
                    )],
                    record: Value::Null,
                });
                first
            } else {
                let end = self.read_element(first)?;
                match self.parse(start) {
                    Ok(row) => rows.push(row),
                    Err(error) => errors.push(error),
                }
                end
            };
            if end == b']' {
                self.done = true;
                if let Some(extra) = self.next_token()? {
                    return Err(self.fail(format!(
                        "unexpected {:?} after the closing `]` at byte offset {}",
                        extra as char,
                        self.offset - 1
                    )));
                }
            }
        }
        if rows.is_empty() && errors.is_empty() {
            return Ok(None);
        }
        Ok(Some(Batch { seq, columns: Arc::from(Vec::new()), rows, errors }))
    }
}

/// Records as JSON array elements separated by commas within a batch: one per line, or with
/// `indent` spaces per level, laid out as Python's `json.dumps(records, indent=indent)`.
#[derive(Default)]
pub struct JsonArrayEncoder {
    pub indent: Option<usize>,
}

impl Encoder for JsonArrayEncoder {
    fn encode(
        &self,
        input_columns: &[String],
        output_columns: &[String],
        rows: &[Row],
        out: &mut Vec<u8>,
    ) -> Vec<(usize, String)> {
        let mut lines = Vec::with_capacity(rows.len() * 128);
        let failed = JsonlEncoder.encode(input_columns, output_columns, rows, &mut lines);
        // JSON text never holds a raw newline, so each newline ends exactly one record.
        if lines.last() == Some(&b'\n') {
            lines.pop();
        }
        if lines.is_empty() {
            return failed;
        }
        out.reserve(lines.len() + rows.len());
        for (i, line) in lines.split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                out.extend_from_slice(b",\n");
            }
            match self.indent {
                None => out.extend_from_slice(line),
                Some(width) => {
                    out.resize(out.len() + width, b' ');
                    indent_compact_json(line, width, 1, out);
                }
            }
        }
        failed
    }
}

/// Where a byte-by-byte walk over JSON text is: inside a string (escapes included) or not.
#[derive(Default)]
struct JsonStrings {
    in_string: bool,
    escaped: bool,
}

impl JsonStrings {
    /// Take the next byte; true if it belongs to a string (its opening and closing quotes
    /// included), so structural characters are only the bytes for which this is false.
    fn inside(&mut self, b: u8) -> bool {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            }
            return true;
        }
        self.in_string = b == b'"';
        self.in_string
    }
}

/// Lay out compact JSON text (no whitespace outside strings, as the encoder writes it) with
/// `width` spaces per level, nested `depth` levels deep: `json.dumps(value, indent=width)`.
fn indent_compact_json(json: &[u8], width: usize, depth: usize, out: &mut Vec<u8>) {
    let newline = |out: &mut Vec<u8>, level: usize| {
        out.push(b'\n');
        out.resize(out.len() + width * level, b' ');
    };
    let (mut level, mut strings) = (depth, JsonStrings::default());
    let mut i = 0;
    while i < json.len() {
        let b = json[i];
        out.push(b);
        if strings.inside(b) {
            i += 1;
            continue;
        }
        match b {
            b'{' | b'[' => {
                if matches!(json.get(i + 1), Some(b'}') | Some(b']')) {
                    out.push(json[i + 1]); // an empty object or list stays `{}` / `[]`
                    i += 1;
                } else {
                    level += 1;
                    newline(out, level);
                }
            }
            b'}' | b']' => {
                out.pop();
                level -= 1;
                newline(out, level);
                out.push(b);
            }
            b',' => newline(out, level),
            b':' => out.push(b' '),
            _ => {}
        }
        i += 1;
    }
}

/// Wraps a byte sink in the array's brackets and the commas between batches.
pub struct JsonArraySink {
    inner: Box<dyn Sink>,
    started: bool,
}

impl JsonArraySink {
    pub fn new(inner: Box<dyn Sink>) -> JsonArraySink {
        JsonArraySink { inner, started: false }
    }
}

impl Sink for JsonArraySink {
    fn write(&mut self, payload: Payload) -> Result<(), ExecError> {
        let Payload::Bytes(bytes) = payload else {
            return self.inner.write(payload);
        };
        if bytes.is_empty() {
            return Ok(());
        }
        let lead: &[u8] = if self.started { b",\n" } else { b"[\n" };
        self.started = true;
        let mut chunk = Vec::with_capacity(bytes.len() + 2);
        chunk.extend_from_slice(lead);
        chunk.extend_from_slice(&bytes);
        self.inner.write(Payload::Bytes(chunk))
    }

    fn finish(mut self: Box<Self>) -> Result<(), ExecError> {
        let tail: &[u8] = if self.started { b"\n]\n" } else { b"[]\n" };
        self.inner.write(Payload::Bytes(tail.to_vec()))?;
        self.inner.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str) -> Result<(Vec<Row>, Vec<ErrorRecord>), ExecError> {
        let mut source = JsonArraySource::new(Box::new(std::io::Cursor::new(text.as_bytes().to_vec())), "in.json");
        let (mut rows, mut errors) = (Vec::new(), Vec::new());
        let mut seq = 0;
        while let Some(batch) = source.next_batch(seq, 2)? {
            rows.extend(batch.rows);
            errors.extend(batch.errors);
            seq += 1;
        }
        Ok((rows, errors))
    }

    #[test]
    fn elements_with_nesting_and_strings() {
        let (rows, errors) = read_all(r#" [ {"a": "x,]}"}, {"b": [1, {"c": 2}]} , {"d":"\"]"} ] "#).unwrap();
        assert_eq!(rows.len(), 3);
        assert!(errors.is_empty());
        assert_eq!(rows[1].line, 2);
    }

    #[test]
    fn a_broken_element_is_an_error_record_with_its_index_and_offset() {
        let (rows, errors) = read_all(r#"[{"a": 1}, {"a": tru}, 5, {"a": 3}]"#).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(errors.len(), 2);
        assert!(errors[0].messages[0].starts_with("element 1 (byte offset 11)"), "{}", errors[0].messages[0]);
        assert!(errors[1].messages[0].contains("expected a JSON object"));
    }

    #[test]
    fn truncation_and_empty_arrays() {
        let err = read_all(r#"[{"a": 1}, {"a": "#).unwrap_err().to_string();
        assert!(err.contains("truncated") && err.contains("element 2"), "{err}");
        assert_eq!(read_all(" [ ] ").unwrap().0.len(), 0);
        assert!(read_all(r#"{"a": 1}"#).unwrap_err().to_string().contains("jsonl"));
    }

    #[test]
    fn the_encoder_and_sink_write_a_valid_array() {
        struct Collect(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Sink for Collect {
            fn write(&mut self, payload: Payload) -> Result<(), ExecError> {
                if let Payload::Bytes(b) = payload {
                    self.0.lock().unwrap().extend(b);
                }
                Ok(())
            }
            fn finish(self: Box<Self>) -> Result<(), ExecError> {
                Ok(())
            }
        }
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut sink = Box::new(JsonArraySink::new(Box::new(Collect(out.clone()))));
        for n in [1, 2] {
            let rows = vec![
                Row { line: 1, data: RowData::Value(Value::Map(vec![("n".into(), Value::Int(n))])) },
                Row { line: 2, data: RowData::Value(Value::Map(vec![("m".into(), Value::Int(n))])) },
            ];
            let mut bytes = Vec::new();
            JsonArrayEncoder::default().encode(&[], &[], &rows, &mut bytes);
            sink.write(Payload::Bytes(bytes)).unwrap();
        }
        sink.finish().unwrap();
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.as_array().unwrap().len(), 4);
    }

    #[test]
    fn indent_lays_elements_out_as_python_json_dumps() {
        let record = Value::Map(vec![
            ("a".into(), Value::Int(1)),
            ("s".into(), Value::Str("x, {\"y\": [1]}\\".into())),
            ("l".into(), Value::List(vec![Value::Int(1), Value::Map(vec![])])),
            ("e".into(), Value::List(vec![])),
        ]);
        let rows =
            vec![Row { line: 1, data: RowData::Value(record.clone()) }, Row { line: 2, data: RowData::Value(record) }];
        let mut bytes = Vec::new();
        JsonArrayEncoder { indent: Some(2) }.encode(&[], &[], &rows, &mut bytes);
        let element = "  {\n    \"a\": 1,\n    \"s\": \"x, {\\\"y\\\": [1]}\\\\\",\n    \"l\": [\n      1,\n      {}\n    ],\n    \"e\": []\n  }";
        assert_eq!(String::from_utf8(bytes).unwrap(), format!("{element},\n{element}"));
    }
}
