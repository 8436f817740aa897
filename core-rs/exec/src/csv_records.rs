//! The record reader under `CsvSource`: csv_core's parser, with a fast path for plain lines.
//!
//! Most lines of most CSV files hold no quote character: such a line is one record whose fields
//! are the bytes between delimiters, exactly as the parser would read them. Those lines are
//! found with memchr and split on the delimiter; any other record (quotes, a lone `\r`) goes
//! through csv_core. Both give the same records, lines and quoting rules as the `csv` crate
//! (doubled quotes; a quote inside an unquoted field is literal; `\n`, `\r` and `\r\n` end a
//! record; blank lines are skipped), which a test checks against it on generated files.

use crate::codec::ByteReader;
use csv_core::ReadRecordResult;
use std::io::{self, Read};

const BOM: &[u8] = b"\xEF\xBB\xBF";
const INITIAL_BUFFER: usize = 256 * 1024;

/// One record as read: its fields' bytes back to back and where each field ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRecord {
    pub bytes: Vec<u8>,
    pub ends: Vec<usize>,
    /// The line the record starts on (1-based, counting from the first byte read).
    pub line: u64,
    /// The line after the record's last line.
    pub next_line: u64,
    /// The record ran to the end of the input inside a quoted field that was never closed.
    pub unclosed_quote: bool,
    /// Whether each field was quoted, when the record has a field that a null marker may
    /// match (see `RecordReader::set_null_markers`); empty otherwise (no field is).
    pub quoted: Vec<bool>,
}

impl RawRecord {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Byte range of field `i` in `bytes`.
    pub fn range(&self, i: usize) -> std::ops::Range<usize> {
        (if i == 0 { 0 } else { self.ends[i - 1] })..self.ends[i]
    }

    pub fn field(&self, i: usize) -> &[u8] {
        &self.bytes[self.range(i)]
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).map(|i| self.field(i))
    }

    /// Whether field `i` was quoted (`""` is an empty string, an empty field may be a null).
    pub fn is_quoted(&self, i: usize) -> bool {
        self.quoted.get(i).copied().unwrap_or(false)
    }
}

pub struct RecordReader {
    input: ByteReader,
    buf: Vec<u8>,
    /// Next unread byte, and the end of the bytes read, in `buf`.
    pos: usize,
    len: usize,
    eof: bool,
    /// `\n` bytes consumed before `pos`.
    lines: u64,
    core: csv_core::Reader,
    /// csv_core has not been called yet: its first call would strip a BOM anywhere.
    core_fresh: bool,
    delimiter: u8,
    quote: u8,
    /// At the start of the stream: a UTF-8 byte-order mark there is dropped.
    at_start: bool,
    /// Fields in the last record: the likely count of the next, for its allocation.
    fields_hint: usize,
    /// Unquoted texts that read as null besides the empty field: a quoted record with a field
    /// equal to one of them (or empty) records which of its fields were quoted.
    null_markers: Vec<Vec<u8>>,
}

impl RecordReader {
    /// `strip_bom`: drop a UTF-8 byte-order mark at the start (false for a shard mid-file).
    pub fn new(input: ByteReader, delimiter: u8, quote: u8, strip_bom: bool) -> RecordReader {
        RecordReader::with_buffer(input, delimiter, quote, strip_bom, INITIAL_BUFFER)
    }

    fn with_buffer(input: ByteReader, delimiter: u8, quote: u8, strip_bom: bool, capacity: usize) -> RecordReader {
        let core = csv_core::ReaderBuilder::new().delimiter(delimiter).quote(quote).build();
        RecordReader {
            input,
            buf: vec![0; capacity.max(1)],
            pos: 0,
            len: 0,
            eof: false,
            lines: 0,
            core,
            core_fresh: true,
            delimiter,
            quote,
            at_start: strip_bom,
            fields_hint: 0,
            null_markers: Vec::new(),
        }
    }

    /// Texts besides the empty field that may mean a null when unquoted (see `RawRecord::quoted`).
    pub fn set_null_markers(&mut self, markers: &[String]) {
        self.null_markers = markers.iter().map(|m| m.as_bytes().to_vec()).collect();
    }

    /// Lines consumed so far: an error while reading is on line `lines() + 1`.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Read more input after `buf[keep..len]`, which moves to the front of the buffer; returns
    /// how far it moved. At the end of the input, sets `eof`.
    fn fill(&mut self, keep: usize) -> io::Result<usize> {
        if self.eof {
            return Ok(0);
        }
        self.buf.copy_within(keep..self.len, 0);
        self.len -= keep;
        self.pos -= keep;
        if self.len == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0); // one record larger than the buffer
        }
        loop {
            match self.input.read(&mut self.buf[self.len..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            return Ok(keep);
        }
    }

    /// Make at least one unread byte available; false at the end of the input.
    fn ensure_byte(&mut self) -> io::Result<bool> {
        while self.pos == self.len {
            if self.eof {
                return Ok(false);
            }
            self.fill(self.pos)?;
        }
        Ok(true)
    }

    /// Read the next record into `record`, replacing its contents; false at the end of the input.
    pub fn read(&mut self, record: &mut RawRecord) -> io::Result<bool> {
        if self.at_start {
            self.at_start = false;
            while self.len - self.pos < BOM.len() && !self.eof {
                self.fill(self.pos)?;
            }
            if self.buf[self.pos..self.len].starts_with(BOM) {
                self.pos += BOM.len();
            }
        }
        // Line ends before a record are blank lines (or the `\n` of a `\r\n`): not records.
        loop {
            if !self.ensure_byte()? {
                return Ok(false);
            }
            match self.buf[self.pos] {
                b'\n' => self.lines += 1,
                b'\r' => {}
                _ => break,
            }
            self.pos += 1;
        }
        record.line = self.lines + 1;
        record.unclosed_quote = false;
        record.quoted.clear(); // a line with no quote character has no quoted field
        loop {
            let line_end = memchr::memchr(b'\n', &self.buf[self.pos..self.len]);
            if line_end.is_none() && !self.eof {
                self.fill(self.pos)?;
                continue;
            }
            let line = &self.buf[self.pos..line_end.map_or(self.len, |n| self.pos + n)];
            let body = if line_end.is_some() { line.strip_suffix(b"\r").unwrap_or(line) } else { line };
            if memchr::memchr2(self.quote, b'\r', body).is_some() {
                return self.read_quoted(record);
            }
            split_plain(body, self.delimiter, self.fields_hint, record);
            self.fields_hint = record.ends.len();
            self.pos += line.len() + usize::from(line_end.is_some());
            self.lines += u64::from(line_end.is_some());
            record.next_line = record.line + 1;
            return Ok(true);
        }
    }

    /// Read a record through csv_core, from `pos` (a record's first byte).
    fn read_quoted(&mut self, record: &mut RawRecord) -> io::Result<bool> {
        let mut start = self.pos;
        let (mut nout, mut nends) = (0usize, 0usize);
        record.bytes.clear();
        record.bytes.resize((self.len - self.pos).clamp(64, 4096), 0);
        record.ends.clear();
        record.ends.resize(self.fields_hint.max(8), 0);
        loop {
            if self.pos == self.len && !self.eof {
                start -= self.fill(start)?;
                continue;
            }
            // Empty only at the end of the input, which tells csv_core to finish the record.
            let mut input = &self.buf[self.pos..self.len];
            if self.core_fresh && !input.is_empty() {
                // csv_core drops a BOM at the start of its first input; this is mid-stream.
                input = &input[..1];
            }
            let (result, nin, out, ends) =
                self.core.read_record(input, &mut record.bytes[nout..], &mut record.ends[nends..]);
            self.core_fresh &= nin == 0;
            self.pos += nin;
            nout += out;
            nends += ends;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => record.bytes.resize(record.bytes.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => record.ends.resize(record.ends.len() * 2, 0),
                ReadRecordResult::Record | ReadRecordResult::End => break,
            }
        }
        record.bytes.truncate(nout);
        record.ends.truncate(nends);
        let raw = &self.buf[start..self.pos];
        let at_end = self.pos == self.len && self.eof;
        if at_end && record.ends.is_empty() {
            return Ok(false);
        }
        // A `\n` ending the record ends its last line; any other `\n` in it starts a new one.
        let inner = raw.strip_suffix(b"\n").unwrap_or(raw);
        let newlines = memchr::memchr_iter(b'\n', inner).count() as u64;
        self.lines += newlines + u64::from(inner.len() < raw.len());
        record.next_line = record.line + newlines + 1;
        record.unclosed_quote = at_end && ends_inside_quotes(raw, self.delimiter, self.quote);
        let markers = &self.null_markers;
        if record.iter().any(|f| f.is_empty() || markers.iter().any(|m| m == f)) {
            quoted_fields(raw, self.delimiter, self.quote, &mut record.quoted);
        }
        self.fields_hint = record.ends.len();
        Ok(true)
    }
}

/// The fields of a line with no quote character, split on the delimiter, into `record`
/// (`fields`: how many to expect, for the allocation).
fn split_plain(body: &[u8], delimiter: u8, fields: usize, record: &mut RawRecord) {
    record.bytes.clear();
    record.ends.clear();
    record.bytes.reserve(body.len());
    record.ends.reserve(fields.max(1));
    let mut from = 0;
    for at in memchr::memchr_iter(delimiter, body) {
        record.bytes.extend_from_slice(&body[from..at]);
        record.ends.push(record.bytes.len());
        from = at + 1;
    }
    record.bytes.extend_from_slice(&body[from..]);
    record.ends.push(record.bytes.len());
}

/// Where a CSV byte stream stands with respect to quoting, by the reader's rules: doubled quotes
/// escape a quote, a quote inside an unquoted field is literal, `\n` and `\r` end a record.
/// Shared with the splitter (`split.rs`), so shards are cut where the reader sees records end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteState {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

impl QuoteState {
    /// The state after byte `b`.
    pub fn next(self, b: u8, delimiter: u8, quote: u8) -> QuoteState {
        use QuoteState::*;
        let ends_field = b == delimiter || b == b'\n' || b == b'\r';
        match self {
            FieldStart if b == quote => Quoted,
            FieldStart | Unquoted | QuoteInQuoted if ends_field => FieldStart,
            FieldStart | Unquoted => Unquoted,
            Quoted if b == quote => QuoteInQuoted,
            Quoted => Quoted,
            QuoteInQuoted if b == quote => Quoted,
            QuoteInQuoted => Unquoted,
        }
    }
}

/// Which fields of a record's raw text were quoted (opened with the quote character), by the
/// reader's rules, into `quoted`: one flag per field, up to the end of the record.
fn quoted_fields(raw: &[u8], delimiter: u8, quote: u8, quoted: &mut Vec<bool>) {
    quoted.clear();
    let (mut state, mut this) = (QuoteState::FieldStart, false);
    for &b in raw {
        this |= state == QuoteState::FieldStart && b == quote;
        state = state.next(b, delimiter, quote);
        if state == QuoteState::FieldStart {
            quoted.push(this);
            this = false;
            if b != delimiter {
                return; // the record's line end
            }
        }
    }
    quoted.push(this);
}

/// Whether a record's raw text, running to the end of the input, ends inside a quoted field.
pub fn ends_inside_quotes(raw: &[u8], delimiter: u8, quote: u8) -> bool {
    raw.iter().fold(QuoteState::FieldStart, |state, &b| state.next(b, delimiter, quote)) == QuoteState::Quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its bytes a few at a time, as a pipe or a decompressor may.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn ours(text: &[u8], step: usize, buffer: usize) -> Vec<(Vec<Vec<u8>>, u64)> {
        let input = Box::new(Trickle { data: text.to_vec(), at: 0, step });
        let mut reader = RecordReader::with_buffer(input, b',', b'"', true, buffer);
        let mut record = RawRecord::default();
        let mut out = Vec::new();
        while reader.read(&mut record).unwrap() {
            out.push((record.iter().map(<[u8]>::to_vec).collect(), record.line));
        }
        out
    }

    /// The csv crate's records, each with the line its first byte is on.
    fn reference(text: &[u8]) -> Vec<(Vec<Vec<u8>>, u64)> {
        let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text);
        let mut out = Vec::new();
        for record in reader.byte_records() {
            let record = record.unwrap();
            let start = record.position().unwrap().byte() as usize;
            let mut line = record.position().unwrap().line();
            // Its position is taken before the line ends in front of the record.
            line +=
                text[start..].iter().take_while(|&&b| b == b'\r' || b == b'\n').filter(|&&b| b == b'\n').count() as u64;
            out.push((record.iter().map(<[u8]>::to_vec).collect(), line));
        }
        out
    }

    #[test]
    fn records_and_lines_match_the_csv_crate_on_generated_files() {
        let alphabet: &[u8] = b"ab,,,\"\"\n\n\r x\xc3\xa9";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for case in 0..400 {
            let len = 1 + case % 97;
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % alphabet.len() as u64) as usize]
                })
                .collect();
            let expected = reference(&text);
            for (step, buffer) in [(1, 1), (3, 4), (7, 16), (4096, 256 * 1024)] {
                assert_eq!(
                    ours(&text, step, buffer),
                    expected,
                    "{:?} step {step} buffer {buffer}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
    }

    #[test]
    fn quoted_fields_are_marked_when_a_field_may_be_null() {
        let text = b"\"\",,\"x\"\"\",\"a\nb\",NA,\"NA\",\"\"\"\"\ny,\"z\"\n";
        let mut reader = RecordReader::new(Box::new(io::Cursor::new(text.to_vec())), b',', b'"', true);
        reader.set_null_markers(&["NA".to_string()]);
        let mut record = RawRecord::default();
        assert!(reader.read(&mut record).unwrap());
        let fields: Vec<&[u8]> = record.iter().collect();
        assert_eq!(fields, [&b""[..], b"", b"x\"", b"a\nb", b"NA", b"NA", b"\""]);
        assert_eq!(record.quoted, [true, false, true, true, false, true, true]);
        // No field is empty or a marker: the record does not pay for the flags.
        assert!(reader.read(&mut record).unwrap());
        assert!(record.quoted.is_empty() && !record.is_quoted(1));
    }

    #[test]
    fn one_quoted_flag_per_field_on_generated_files() {
        let alphabet: &[u8] = b"a,,\"\"\n\r x";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for case in 0..400 {
            let text: Vec<u8> = (0..1 + case % 61)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % alphabet.len() as u64) as usize]
                })
                .collect();
            let mut reader = RecordReader::with_buffer(Box::new(io::Cursor::new(text.clone())), b',', b'"', true, 4);
            let mut record = RawRecord::default();
            while reader.read(&mut record).unwrap() {
                if !record.quoted.is_empty() {
                    assert_eq!(record.quoted.len(), record.len(), "{:?}", String::from_utf8_lossy(&text));
                }
            }
        }
    }

    #[test]
    fn a_bom_is_dropped_only_at_the_start() {
        let text = b"\xEF\xBB\xBFa,b\n\xEF\xBB\xBF\"q\",c\n";
        let records = ours(text, 2, 4);
        assert_eq!(records[0].0, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(records[1].0, vec![b"\xEF\xBB\xBF\"q\"".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn next_line_and_an_unclosed_quote_at_the_end() {
        let input = Box::new(io::Cursor::new(b"1,\"x\ny\"\n\n2,\"open\n3\n".to_vec()));
        let mut reader = RecordReader::new(input, b',', b'"', true);
        let mut record = RawRecord::default();
        assert!(reader.read(&mut record).unwrap());
        assert_eq!((record.line, record.next_line, record.unclosed_quote), (1, 3, false));
        assert!(reader.read(&mut record).unwrap());
        assert_eq!((record.line, record.next_line, record.unclosed_quote), (4, 6, true));
        assert!(!reader.read(&mut record).unwrap());
    }
}
