//! CSV reader: header or explicit field names, delimiter and quote, UTF-8 with or without BOM.
//! Records that cannot be read (ragged rows, invalid UTF-8) become error records with their line.

use crate::codec::ByteReader;
use crate::error::ExecError;
use crate::record::{Batch, ErrorRecord, FailedStage, Fields, Row, RowData, TextBlockBuilder};
use crate::source::BatchSource;
use crate::value::Value;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct CsvOptions {
    pub delimiter: u8,
    pub quote: u8,
    pub has_header: bool,
    /// Names for the columns; with `has_header` they replace the file's header.
    pub field_names: Option<Vec<String>>,
    /// Lines before the first byte read (a shard of a file starts mid-file): added to every
    /// line number so error records name the true line of the file.
    pub line_offset: u64,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions { delimiter: b',', quote: b'"', has_header: true, field_names: None, line_offset: 0 }
    }
}

pub struct CsvSource {
    reader: csv::Reader<TailReader>,
    /// The columns records are returned with (all of them, or the projection).
    columns: Arc<[String]>,
    /// Every column of the file: the shape each record must have.
    all_columns: Arc<[String]>,
    /// Indices of the projected columns, None for all.
    select: Option<Vec<usize>>,
    line_offset: u64,
    source: Arc<str>,
    delimiter: u8,
    quote: u8,
    record: csv::ByteRecord,
    /// The record after the one being converted, with the line after it: knowing whether a
    /// record is the last one lets us check it for a quote that swallowed the end of the file.
    pending: Option<(csv::ByteRecord, u64)>,
    at_start: bool,
    done: bool,
    /// Text bytes of each column in the last batch: the next one's block starts that large.
    block_bytes: Vec<usize>,
}

/// The input as the CSV parser reads it, keeping the bytes from `keep_from` on: the raw text
/// of the record being converted, which the parser does not expose.
struct TailReader {
    inner: ByteReader,
    tail: Vec<u8>,
    /// Stream offset of `tail[0]`.
    tail_start: u64,
    keep_from: u64,
}

impl std::io::Read for TailReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let droppable = (self.keep_from.saturating_sub(self.tail_start) as usize).min(self.tail.len());
        if droppable >= 1 << 16 || droppable == self.tail.len() {
            self.tail.drain(..droppable);
            self.tail_start += droppable as u64;
        }
        self.tail.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl TailReader {
    /// The bytes read from stream offset `from` on (empty if they were dropped).
    fn since(&self, from: u64) -> &[u8] {
        match from.checked_sub(self.tail_start) {
            Some(start) => self.tail.get(start as usize..).unwrap_or_default(),
            None => &[],
        }
    }
}

/// Whether a record's raw text, running to the end of the input, ends inside a quoted field.
/// Follows the quoting rules of the csv crate's reader (doubled quotes, quotes inside an
/// unquoted field are literal).
fn ends_inside_quotes(raw: &[u8], delimiter: u8, quote: u8) -> bool {
    #[derive(PartialEq)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut state = State::FieldStart;
    for &b in raw {
        let ends_field = b == delimiter || b == b'\n' || b == b'\r';
        state = match state {
            State::FieldStart if b == quote => State::Quoted,
            State::FieldStart | State::Unquoted | State::QuoteInQuoted if ends_field => State::FieldStart,
            State::FieldStart | State::Unquoted => State::Unquoted,
            State::Quoted if b == quote => State::QuoteInQuoted,
            State::Quoted => State::Quoted,
            State::QuoteInQuoted if b == quote => State::Quoted,
            State::QuoteInQuoted => State::Unquoted,
        };
    }
    state == State::Quoted
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The most text a batch's column takes before the batch ends early: its Arrow string array
/// must stay under 2 GiB whatever the batch size.
const BLOCK_LIMIT: usize = 1 << 30;

impl CsvSource {
    pub fn new(input: ByteReader, options: CsvOptions, source: &str) -> Result<CsvSource, ExecError> {
        let reader = csv::ReaderBuilder::new()
            .delimiter(options.delimiter)
            .quote(options.quote)
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(TailReader { inner: input, tail: Vec::new(), tail_start: 0, keep_from: 0 });
        let source: Arc<str> = Arc::from(source);
        let mut this = CsvSource {
            reader,
            columns: Arc::from(Vec::new()),
            all_columns: Arc::from(Vec::new()),
            select: None,
            line_offset: options.line_offset,
            source,
            delimiter: options.delimiter,
            quote: options.quote,
            record: csv::ByteRecord::new(),
            pending: None,
            at_start: options.line_offset == 0,
            done: false,
            block_bytes: Vec::new(),
        };
        let first = this.read_raw()?;
        let columns = match (options.has_header, options.field_names) {
            (true, names) => {
                let Some(header) = first else {
                    return Err(this.input_error(None, "the file is empty: expected a header row".into()));
                };
                let from_file = this.header_names(&header)?;
                match names {
                    Some(names) if names.len() != from_file.len() => {
                        return Err(this.input_error(Some(1), format!(
                            "field_names has {} names but the header has {} columns",
                            names.len(), from_file.len()
                        )));
                    }
                    Some(names) => names,
                    None => from_file,
                }
            }
            (false, Some(names)) => {
                let next_line = this.reader.position().line() + this.line_offset;
                this.pending = first.map(|record| (record, next_line));
                names
            }
            (false, None) => {
                return Err(this.input_error(None, "has_header is false and no field_names were given: name the columns".into()));
            }
        };
        if let Some(dup) = first_duplicate(&columns) {
            return Err(this.input_error(Some(1), format!("the column {dup:?} appears twice in the header")));
        }
        this.columns = Arc::from(columns);
        this.all_columns = this.columns.clone();
        Ok(this)
    }

    /// Read the shard `shard` of the file at `path` (see `split::split_points`): the header,
    /// if any, from the start of the file, then the records of the shard, with true lines.
    pub fn open_range(path: &str, mut options: CsvOptions, shard: crate::split::Shard) -> Result<CsvSource, ExecError> {
        let fail = |e: std::io::Error| ExecError::Input { source: path.to_owned(), line: None, message: e.to_string() };
        if options.has_header {
            let header = CsvSource::new(
                crate::codec::open_file(path).map_err(fail)?,
                CsvOptions { line_offset: 0, ..options.clone() },
                path,
            )?;
            options.field_names = Some(header.all_columns.to_vec());
            options.has_header = false;
        }
        options.line_offset = shard.line_offset;
        let input = crate::codec::open_range(path, shard.start, shard.end).map_err(fail)?;
        CsvSource::new(input, options, path)
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Read only the columns `wanted`, in that order. Every record is still checked for the
    /// file's full shape. A wanted column the file lacks is an error if `strict`, otherwise
    /// left out (the schema's validation then reports it, or fills in its default).
    pub fn project(&mut self, wanted: &[String], strict: bool) -> Result<(), ExecError> {
        let mut select = Vec::with_capacity(wanted.len());
        for name in wanted {
            match self.all_columns.iter().position(|c| c == name) {
                Some(i) => {
                    if !select.contains(&i) {
                        select.push(i);
                    }
                }
                None if strict => {
                    return Err(self.input_error(None, format!(
                        "the file has no column {name:?} (its columns are {:?}); fix the name in columns= \
                         or the schema, or give the field a default",
                        self.all_columns
                    )));
                }
                None => {}
            }
        }
        if select.len() == self.all_columns.len() && select.iter().enumerate().all(|(k, &i)| k == i) {
            self.select = None;
            self.columns = self.all_columns.clone();
        } else {
            self.columns = select.iter().map(|&i| self.all_columns[i].clone()).collect::<Vec<_>>().into();
            self.select = Some(select);
        }
        Ok(())
    }

    fn input_error(&self, line: Option<u64>, message: String) -> ExecError {
        ExecError::Input { source: self.source.to_string(), line, message }
    }

    /// Read one raw record, stripping a UTF-8 byte-order mark from the very first field.
    fn read_raw(&mut self) -> Result<Option<csv::ByteRecord>, ExecError> {
        let mut record = csv::ByteRecord::new();
        match self.reader.read_byte_record(&mut record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                if self.at_start {
                    self.at_start = false;
                    if record.get(0).is_some_and(|f| f.starts_with(BOM)) {
                        let mut stripped = csv::ByteRecord::new();
                        for (i, field) in record.iter().enumerate() {
                            stripped.push_field(if i == 0 { &field[BOM.len()..] } else { field });
                        }
                        stripped.set_position(record.position().cloned());
                        record = stripped;
                    }
                }
                Ok(Some(record))
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or_else(|| self.reader.position().line());
                Err(self.input_error(Some(line + self.line_offset), describe_csv_error(&e)))
            }
        }
    }

    /// The next record and the line after it, reading into the spare record buffer.
    fn read_record(&mut self) -> Result<Option<(csv::ByteRecord, u64)>, ExecError> {
        let mut record = std::mem::take(&mut self.record);
        match self.reader.read_byte_record(&mut record) {
            Ok(true) => Ok(Some((record, self.reader.position().line() + self.line_offset))),
            Ok(false) => Ok(None),
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or_else(|| self.reader.position().line());
                Err(self.input_error(Some(line + self.line_offset), describe_csv_error(&e)))
            }
        }
    }

    /// The last record, opened a quote that was never closed: it swallowed the rest of the file.
    fn unclosed_quote(&self, record: &csv::ByteRecord, line: u64, next_line: u64) -> ErrorRecord {
        let fields: Vec<String> = record.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
        ErrorRecord {
            source: self.source.clone(),
            line,
            stage: FailedStage::Parse,
            messages: vec![format!(
                "unbalanced quote: a quoted field opened on line {line} is never closed, so the record \
                 runs to the end of the file (line {}); close the quote or escape it by doubling",
                next_line.saturating_sub(1).max(line)
            )],
            record: RowData::Fields(fields.into()).to_value(&self.all_columns),
        }
    }

    fn header_names(&self, header: &csv::ByteRecord) -> Result<Vec<String>, ExecError> {
        header
            .iter()
            .enumerate()
            .map(|(i, field)| {
                String::from_utf8(field.to_vec()).map_err(|_| {
                    self.input_error(Some(1), format!("column {} of the header is not valid UTF-8", i + 1))
                })
            })
            .collect()
    }

    /// Check a record and append its fields to `block`; a record that is not valid appends nothing.
    fn to_row<'r>(&self, record: &'r csv::ByteRecord, line: u64, next_line: u64, block: &mut TextBlockBuilder) -> Result<(), ErrorRecord> {
        let error = |message: String| {
            let fields = record.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect::<Vec<_>>();
            ErrorRecord {
                source: self.source.clone(),
                line,
                stage: FailedStage::Parse,
                messages: vec![message],
                record: RowData::Fields(fields.into()).to_value(&self.all_columns),
            }
        };
        // One validation of the whole record instead of one per field; a field is then valid
        // if it starts and ends on character boundaries.
        let whole = std::str::from_utf8(record.as_slice()).ok();
        let to_text = |i: usize, raw: &'r [u8]| -> Result<&'r str, String> {
            if let (Some(whole), Some(range)) = (whole, record.range(i)) {
                if whole.is_char_boundary(range.start) && whole.is_char_boundary(range.end) {
                    return Ok(&whole[range]);
                }
            }
            match std::str::from_utf8(raw) {
                Ok(text) => Ok(text),
                Err(e) => {
                    let name = self.all_columns.get(i).map(|c| format!(" ({c:?})")).unwrap_or_default();
                    Err(format!(
                        "invalid UTF-8 in field {}{name} at byte {}; the file must be UTF-8",
                        i + 1,
                        e.valid_up_to()
                    ))
                }
            }
        };
        if record.len() != self.all_columns.len() {
            // Report bad UTF-8 first: it is the more fundamental problem.
            for (i, raw) in record.iter().enumerate() {
                if let Err(message) = to_text(i, raw) {
                    return Err(error(message));
                }
            }
            let mut message = format!("expected {} fields, found {}", self.all_columns.len(), record.len());
            if next_line > line + 1 && record.iter().any(|f| f.contains(&b'\n')) {
                message.push_str(&format!(
                    "; the record runs from line {line} to line {}: an unbalanced quote may have joined lines",
                    next_line - 1
                ));
            }
            return Err(error(message));
        }
        let ranges = || (0..record.len()).filter_map(|i| record.range(i));
        if let (None, Some(whole)) = (&self.select, whole) {
            if ranges().all(|r| whole.is_char_boundary(r.end)) {
                block.push_record(ranges().map(|r| &whole[r]));
                return Ok(());
            }
        }
        // Check every field before the block takes any.
        let texts = || {
            (0..self.columns.len()).map(|k| {
                let i = self.select.as_ref().map_or(k, |select| select[k]);
                to_text(i, &record[i])
            })
        };
        if let Some(Err(message)) = texts().find(Result::is_err) {
            return Err(error(message));
        }
        block.push_record(texts().flatten());
        Ok(())
    }
}

impl BatchSource for CsvSource {
    fn next_batch(&mut self, seq: u64, max_rows: usize) -> Result<Option<Batch>, ExecError> {
        if self.done {
            return Ok(None);
        }
        let mut block = TextBlockBuilder::new(self.columns.len(), max_rows, &self.block_bytes);
        // The line of each record in `block`.
        let mut lines: Vec<u64> = Vec::with_capacity(max_rows);
        let mut errors = Vec::new();
        while lines.len() + errors.len() < max_rows && block.largest_column() < BLOCK_LIMIT {
            let current = match self.pending.take() {
                Some(r) => Some(r),
                None => self.read_record()?,
            };
            let Some((record, next_line)) = current else {
                self.done = true;
                break;
            };
            let mut line = record.position().map(|p| p.line()).unwrap_or(0) + self.line_offset;
            let start = record.position().map(|p| p.byte()).unwrap_or(0);
            // The parser notes a record's position before it skips the line ends in front of it
            // (blank lines, the `\n` of a `\r\n`): count those to get the line it starts on.
            line += self
                .reader
                .get_ref()
                .since(start)
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .filter(|&&b| b == b'\n')
                .count() as u64;
            self.reader.get_mut().keep_from = start;
            self.pending = self.read_record()?;
            // A blank line is not a record (csv skips it); a record with one empty field is ragged.
            let result = if self.pending.is_none()
                && ends_inside_quotes(self.reader.get_ref().since(start), self.delimiter, self.quote)
            {
                Err(self.unclosed_quote(&record, line, next_line))
            } else {
                self.to_row(&record, line, next_line, &mut block)
            };
            match result {
                Ok(()) => lines.push(line),
                Err(err) => errors.push(err),
            }
            self.record = record;
        }
        if lines.is_empty() && errors.is_empty() {
            return Ok(None);
        }
        self.block_bytes = block.column_bytes();
        let block = Arc::new(block.finish());
        let rows = lines
            .into_iter()
            .enumerate()
            .map(|(row, line)| Row { line, data: RowData::Fields(Fields::new(&block, row)) })
            .collect();
        Ok(Some(Batch { seq, columns: self.columns.clone(), rows, errors }))
    }
}

fn first_duplicate(columns: &[String]) -> Option<&String> {
    let mut seen = std::collections::HashSet::new();
    columns.iter().find(|c| !seen.insert(c.as_str()))
}

fn describe_csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!("the compressed stream is truncated or corrupt ({io})")
        }
        csv::ErrorKind::Io(io) => format!("{io}"),
        other => format!("{other:?}"),
    }
}

/// Build a value for an error record from raw text (used by sources that cannot split fields).
pub fn raw_value(text: &[u8]) -> Value {
    Value::Str(String::from_utf8_lossy(text).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &[u8], options: CsvOptions) -> Result<CsvSource, ExecError> {
        CsvSource::new(Box::new(std::io::Cursor::new(text.to_vec())), options, "t.csv")
    }

    fn all(s: &mut CsvSource) -> (Vec<Row>, Vec<ErrorRecord>) {
        let (mut rows, mut errors) = (vec![], vec![]);
        let mut seq = 0;
        while let Some(b) = s.next_batch(seq, 2).unwrap() {
            rows.extend(b.rows);
            errors.extend(b.errors);
            seq += 1;
        }
        (rows, errors)
    }

    #[test]
    fn reads_header_rows_and_line_numbers() {
        let mut s = source(b"\xEF\xBB\xBFa,b\n1,\"x\ny\"\n2,z\n", CsvOptions::default()).unwrap();
        assert_eq!(s.columns(), ["a", "b"]);
        let (rows, errors) = all(&mut s);
        assert!(errors.is_empty());
        assert_eq!(rows[0], Row { line: 2, data: RowData::Fields(vec!["1", "x\ny"].into()) });
        assert_eq!(rows[1].line, 4);
    }

    #[test]
    fn ragged_and_bad_utf8_rows_become_error_records() {
        let mut s = source(b"a,b\n1,2,3\n4\xff,5\n6,7\n", CsvOptions::default()).unwrap();
        let (rows, errors) = all(&mut s);
        assert_eq!(rows.len(), 1);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].line, 2);
        assert!(errors[0].messages[0].contains("expected 2 fields, found 3"));
        assert_eq!(errors[1].line, 3);
        assert!(errors[1].messages[0].contains("invalid UTF-8"));
    }

    #[test]
    fn unbalanced_quote_is_reported_with_its_lines() {
        let mut s = source(b"a,b,c\n1,\"oops,2\n3,4,5\n", CsvOptions::default()).unwrap();
        let (rows, errors) = all(&mut s);
        assert!(rows.is_empty());
        assert!(errors[0].messages[0].contains("unbalanced quote"), "{:?}", errors[0]);
    }

    #[test]
    fn a_quote_left_open_to_the_end_of_the_file_is_an_error() {
        // The open quote swallows the following lines into a record with the right field count.
        let mut s = source(b"a,b\n1,x\n2,\"oops\n3,y\n", CsvOptions::default()).unwrap();
        let (rows, errors) = all(&mut s);
        assert_eq!(rows.len(), 1);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 3);
        assert!(errors[0].messages[0].contains("unbalanced quote"), "{:?}", errors[0]);
        // Without a final newline, on the last line.
        let mut s = source(b"a,b\n1,\"oops", CsvOptions::default()).unwrap();
        let (rows, errors) = all(&mut s);
        assert!(rows.is_empty());
        assert_eq!(errors[0].line, 2);
    }

    #[test]
    fn closed_quotes_at_the_end_of_the_file_are_fine() {
        for text in [
            &b"a,b\n1,\"x\ny\n\"\n"[..],
            b"a,b\n1,\"x\"\"\"",
            b"a,b\n1,x\"y\n",
            b"a,b\n\"1\",\"\"\n",
        ] {
            let mut s = source(text, CsvOptions::default()).unwrap();
            let (rows, errors) = all(&mut s);
            assert!(errors.is_empty(), "{:?}: {errors:?}", String::from_utf8_lossy(text));
            assert_eq!(rows.len(), 1);
        }
    }

    #[test]
    fn empty_file_and_header_only() {
        assert!(source(b"", CsvOptions::default()).is_err());
        let mut s = source(b"a,b\n", CsvOptions::default()).unwrap();
        assert_eq!(all(&mut s).0.len(), 0);
    }

    #[test]
    fn explicit_field_names_without_header() {
        let options = CsvOptions {
            delimiter: b';',
            has_header: false,
            field_names: Some(vec!["x".into(), "y".into()]),
            ..CsvOptions::default()
        };
        let mut s = source(b"1;2\n3;4\n", options).unwrap();
        let (rows, _) = all(&mut s);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 1);
    }
}
