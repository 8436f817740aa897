//! JSON Lines reader: one object per line; a line that is not a JSON object becomes an error record.

use crate::codec::ByteReader;
use crate::error::ExecError;
use crate::record::{Batch, ErrorRecord, FailedStage, Row, RowData};
use crate::source::BatchSource;
use crate::value::Value;
use std::io::{BufRead, BufReader};
use std::sync::Arc;

pub struct JsonlSource {
    reader: BufReader<ByteReader>,
    source: Arc<str>,
    line: u64,
    buffer: Vec<u8>,
    done: bool,
    /// Keys to keep (None: all); other keys are dropped as each record is read.
    keep: Option<Vec<String>>,
    /// The stream starts at the start of the file (so it may begin with a byte-order mark).
    at_file_start: bool,
}

impl JsonlSource {
    pub fn new(input: ByteReader, source: &str) -> JsonlSource {
        JsonlSource {
            reader: BufReader::with_capacity(1 << 16, input),
            source: Arc::from(source),
            line: 0,
            buffer: Vec::with_capacity(1024),
            done: false,
            keep: None,
            at_file_start: true,
        }
    }

    /// Read the shard `shard` of the file at `path` (see `split::split_points`), with true lines.
    pub fn open_range(path: &str, shard: crate::source::Shard) -> Result<JsonlSource, ExecError> {
        let input = crate::codec::open_range(path, shard.start, shard.end).map_err(|e| ExecError::Input {
            source: path.to_owned(),
            line: None,
            message: e.to_string(),
        })?;
        let mut this = JsonlSource::new(input, path);
        this.line = shard.line_offset;
        this.at_file_start = shard.start == 0;
        Ok(this)
    }

    /// Start counting lines after `lines` (a stream that starts mid-file).
    pub fn set_line_offset(&mut self, lines: u64) {
        self.line = lines;
        self.at_file_start = lines == 0;
    }

    /// Whether the stream starts at the start of the file (where a byte-order mark is dropped),
    /// rather than at a record boundary mid-file.
    pub fn set_at_file_start(&mut self, at_start: bool) {
        self.at_file_start = at_start;
    }

    /// Keep only the keys `columns` of every record (a record may lack some: validation
    /// reports those, or fills in defaults).
    pub fn project(&mut self, columns: &[String]) {
        self.keep = Some(columns.to_vec());
    }

    fn parse_line(&self, raw: &[u8]) -> Result<Row, ErrorRecord> {
        let fail = |message: String| ErrorRecord {
            source: self.source.clone(),
            line: self.line,
            stage: FailedStage::Parse,
            messages: vec![message],
            record: Value::Str(String::from_utf8_lossy(raw).into_owned()),
        };
        if let Err(e) = std::str::from_utf8(raw) {
            return Err(fail(format!("invalid UTF-8 at byte {}; the file must be UTF-8", e.valid_up_to())));
        }
        match serde_json::from_slice::<Value>(raw) {
            Ok(Value::Map(mut items)) => {
                if let Some(keep) = &self.keep {
                    items.retain(|(k, _)| keep.contains(k));
                }
                Ok(Row { line: self.line, data: RowData::Value(Value::Map(items)) })
            }
            Ok(other) => Err(fail(format!("expected a JSON object, found {}", other.type_name()))),
            Err(e) => Err(fail(format!("invalid JSON: {e}"))),
        }
    }
}

impl BatchSource for JsonlSource {
    fn next_batch(&mut self, seq: u64, max_rows: usize) -> Result<Option<Batch>, ExecError> {
        let mut rows = Vec::with_capacity(max_rows);
        let mut errors = Vec::new();
        while !self.done && rows.len() + errors.len() < max_rows {
            self.buffer.clear();
            let n = self.reader.read_until(b'\n', &mut self.buffer).map_err(|e| ExecError::Input {
                source: self.source.to_string(),
                line: Some(self.line + 1),
                message: if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    format!("the compressed stream is truncated or corrupt ({e})")
                } else {
                    e.to_string()
                },
            })?;
            if n == 0 {
                self.done = true;
                break;
            }
            self.line += 1;
            let mut raw = trim_line_end(&self.buffer);
            if self.at_file_start {
                self.at_file_start = false;
                raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw); // a UTF-8 byte-order mark
            }
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue; // blank lines separate nothing and hold no record
            }
            match self.parse_line(raw) {
                Ok(row) => rows.push(row),
                Err(err) => errors.push(err),
            }
        }
        if rows.is_empty() && errors.is_empty() {
            return Ok(None);
        }
        Ok(Some(Batch { seq, columns: Arc::from(Vec::new()), rows, errors }))
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && (line[end - 1] == b'\n' || line[end - 1] == b'\r') {
        end -= 1;
    }
    &line[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_and_broken_lines() {
        let text = b"{\"a\":1}\n\n[1]\n{\"a\":\n{\"b\":\"x\"}\r\n".to_vec();
        let mut s = JsonlSource::new(Box::new(std::io::Cursor::new(text)), "t.jsonl");
        let batch = s.next_batch(0, 100).unwrap().unwrap();
        assert_eq!(batch.rows.len(), 2);
        assert_eq!(batch.rows[1].line, 5);
        assert_eq!(batch.errors.len(), 2);
        assert_eq!(batch.errors[0].line, 3);
        assert!(batch.errors[0].messages[0].contains("expected a JSON object"));
        assert!(batch.errors[1].messages[0].contains("invalid JSON"));
        assert!(s.next_batch(1, 100).unwrap().is_none());
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let text = b"\xEF\xBB\xBF{\"a\":1}\n".to_vec();
        let mut s = JsonlSource::new(Box::new(std::io::Cursor::new(text)), "t.jsonl");
        let batch = s.next_batch(0, 100).unwrap().unwrap();
        assert_eq!(batch.rows.len(), 1);
        assert!(batch.errors.is_empty());
    }
}
