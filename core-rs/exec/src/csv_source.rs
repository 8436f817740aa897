//! CSV reader: header or explicit field names, delimiter and quote, UTF-8 with or without BOM.
//! Records that cannot be read (ragged rows, invalid UTF-8) become error records with their line.
//! Records are split by `csv_records::RecordReader`.
//!
//! Nulls: an unquoted field that is empty or one of `null_values` is null, except in the
//! `not_null_columns` (a schema field that does not accept None), which keep the text. A quoted
//! field is always text, so `""` is an empty string: the CSV writer writes nulls and empty strings
//! that way, and a file read back gives the same records.

use crate::codec::ByteReader;
use crate::csv_records::{RawRecord, RecordReader};
use crate::error::ExecError;
use crate::record::{Batch, ErrorRecord, FailedStage, Fields, Row, RowData, TextBlockBuilder};
use crate::source::BatchSource;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    pub delimiter: u8,
    pub quote: u8,
    pub has_header: bool,
    /// Names for the columns; with `has_header` they replace the file's header.
    pub field_names: Option<Vec<String>>,
    /// Lines before the first byte read (a shard of a file starts mid-file): added to every
    /// line number so error records name the true line of the file.
    pub line_offset: u64,
    /// Unquoted texts that are null besides the empty field (`NA`, `\N`).
    pub null_values: Vec<String>,
    /// Columns whose empty and `null_values` fields stay text (their schema field does not
    /// accept None).
    pub not_null_columns: Vec<String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            quote: b'"',
            has_header: true,
            field_names: None,
            line_offset: 0,
            null_values: Vec::new(),
            not_null_columns: Vec::new(),
        }
    }
}

pub struct CsvSource {
    reader: RecordReader,
    /// The columns records are returned with (all of them, or the projection).
    columns: Arc<[String]>,
    /// Every column of the file: the shape each record must have.
    all_columns: Arc<[String]>,
    /// Indices of the projected columns, None for all.
    select: Option<Vec<usize>>,
    line_offset: u64,
    source: Arc<str>,
    /// The first data record, read while looking for a header that the file does not have.
    pending: Option<RawRecord>,
    /// The record being read: its buffers are reused from one record to the next.
    scratch: RawRecord,
    done: bool,
    /// Whether each column of the file (as `all_columns`) reads unquoted null markers as null.
    nullable: Vec<bool>,
    /// Unquoted texts that are null besides the empty field.
    null_values: Vec<String>,
    /// Text bytes of each column in the last batch: the next one's block starts that large.
    block_bytes: Vec<usize>,
    /// The input is a byte range of a file ending at this offset, where a planner cut it
    /// without reading what came before (`crate::cut`): a record open there is a wrong cut.
    cut_end: Option<u64>,
}

/// The most text a batch's column takes before the batch ends early: its Arrow string array
/// must stay under 2 GiB whatever the batch size.
const BLOCK_LIMIT: usize = 1 << 30;

impl CsvSource {
    pub fn new(input: ByteReader, options: CsvOptions, source: &str) -> Result<CsvSource, ExecError> {
        let at_start = options.line_offset == 0;
        CsvSource::with_start(input, options, source, at_start)
    }

    /// Read a byte range of a file that starts at a record boundary mid-file (so a byte-order
    /// mark there is data), given its columns (`has_header` false, `field_names`). When the range
    /// ends at a planner's cut, `cut_end` is that offset: a record still open there (inside a
    /// quoted field) fails the read instead of becoming an error record.
    pub fn from_range(
        input: ByteReader,
        options: CsvOptions,
        source: &str,
        cut_end: Option<u64>,
    ) -> Result<CsvSource, ExecError> {
        let mut this = CsvSource::with_start(input, options, source, false)?;
        this.cut_end = cut_end;
        Ok(this)
    }

    fn with_start(
        input: ByteReader,
        options: CsvOptions,
        source: &str,
        at_start: bool,
    ) -> Result<CsvSource, ExecError> {
        let mut reader = RecordReader::new(input, options.delimiter, options.quote, at_start);
        reader.set_null_markers(&options.null_values);
        let mut this = CsvSource {
            reader,
            columns: Arc::from(Vec::new()),
            all_columns: Arc::from(Vec::new()),
            select: None,
            line_offset: options.line_offset,
            source: Arc::from(source),
            pending: None,
            scratch: RawRecord::default(),
            done: false,
            nullable: Vec::new(),
            null_values: options.null_values.clone(),
            block_bytes: Vec::new(),
            cut_end: None,
        };
        let first = this.read_record()?;
        let columns = match (options.has_header, options.field_names) {
            (true, names) => {
                let Some(header) = first else {
                    return Err(this.input_error(None, "the file is empty: expected a header row".into()));
                };
                let from_file = this.header_names(&header)?;
                match names {
                    Some(names) if names.len() != from_file.len() => {
                        return Err(this.input_error(
                            Some(1),
                            format!(
                                "field_names has {} names but the header has {} columns",
                                names.len(),
                                from_file.len()
                            ),
                        ));
                    }
                    Some(names) => names,
                    None => from_file,
                }
            }
            (false, Some(names)) => {
                this.pending = first;
                names
            }
            (false, None) => {
                return Err(this
                    .input_error(None, "has_header is false and no field_names were given: name the columns".into()));
            }
        };
        if let Some(dup) = first_duplicate(&columns) {
            return Err(this.input_error(Some(1), format!("the column {dup:?} appears twice in the header")));
        }
        this.nullable = columns.iter().map(|c| !options.not_null_columns.contains(c)).collect();
        this.columns = Arc::from(columns);
        this.all_columns = this.columns.clone();
        Ok(this)
    }

    /// Read the shard `shard` of the file at `path` (see `split::split_points`): the header,
    /// if any, from the start of the file, then the records of the shard, with true lines.
    pub fn open_range(
        path: &str,
        mut options: CsvOptions,
        shard: crate::source::Shard,
    ) -> Result<CsvSource, ExecError> {
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

    /// Read only the columns `wanted` (the user's `columns=`), in that order. Every record is
    /// still checked for the file's full shape. A wanted column the file lacks is an error.
    pub fn project(&mut self, wanted: &[String]) -> Result<(), ExecError> {
        let mut select = Vec::with_capacity(wanted.len());
        for name in wanted {
            match self.all_columns.iter().position(|c| c == name) {
                Some(i) => {
                    if !select.contains(&i) {
                        select.push(i);
                    }
                }
                None => {
                    return Err(self.input_error(
                        None,
                        format!(
                            "the file has no column {name:?} (its columns are {:?}); fix the name in columns=",
                            self.all_columns
                        ),
                    ));
                }
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

    /// The next record, or None at the end of the input.
    fn read_record(&mut self) -> Result<Option<RawRecord>, ExecError> {
        let mut record = std::mem::take(&mut self.scratch);
        match self.reader.read(&mut record) {
            Ok(true) => Ok(Some(record)),
            Ok(false) => Ok(None),
            Err(e) => {
                let message = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    format!("the compressed stream is truncated or corrupt ({e})")
                } else {
                    e.to_string()
                };
                Err(self.input_error(Some(self.reader.lines() + 1 + self.line_offset), message))
            }
        }
    }

    /// An error record holding the record's fields as text (invalid UTF-8 replaced).
    fn error(&self, record: &RawRecord, line: u64, message: String) -> ErrorRecord {
        let fields: Vec<String> = record.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
        ErrorRecord {
            source: self.source.clone(),
            line,
            stage: FailedStage::Parse,
            messages: vec![message],
            record: RowData::Fields(fields.into()).to_value(&self.all_columns),
        }
    }

    /// The last record opened a quote that was never closed: it swallowed the rest of the file.
    fn unclosed_quote(&self, record: &RawRecord, line: u64, next_line: u64) -> ErrorRecord {
        self.error(
            record,
            line,
            format!(
                "unbalanced quote: a quoted field opened on line {line} is never closed, so the record \
             runs to the end of the file (line {}); close the quote or escape it by doubling",
                next_line.saturating_sub(1).max(line)
            ),
        )
    }

    fn header_names(&self, header: &RawRecord) -> Result<Vec<String>, ExecError> {
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

    /// Why a record is not UTF-8: the first field that is not, and where.
    fn invalid_utf8(&self, record: &RawRecord) -> String {
        for (i, raw) in record.iter().enumerate() {
            if let Err(e) = std::str::from_utf8(raw) {
                let name = self.all_columns.get(i).map(|c| format!(" ({c:?})")).unwrap_or_default();
                return format!(
                    "invalid UTF-8 in field {}{name} at byte {}; the file must be UTF-8",
                    i + 1,
                    e.valid_up_to()
                );
            }
        }
        "invalid UTF-8; the file must be UTF-8".into()
    }

    /// Check a record and append its fields (the projected ones) to `block`; a record that is
    /// not valid appends nothing.
    fn push_fields(
        &self,
        record: &RawRecord,
        line: u64,
        next_line: u64,
        block: &mut TextBlockBuilder,
    ) -> Result<(), ErrorRecord> {
        // One validation of the whole record instead of one per field; each field must then
        // start and end on character boundaries.
        let text = match std::str::from_utf8(&record.bytes) {
            Ok(text) if record.ends.iter().all(|&end| text.is_char_boundary(end)) => text,
            _ => return Err(self.error(record, line, self.invalid_utf8(record))),
        };
        if record.len() != self.all_columns.len() {
            let mut message = format!("expected {} fields, found {}", self.all_columns.len(), record.len());
            if next_line > line + 1 && record.iter().any(|f| f.contains(&b'\n')) {
                message.push_str(&format!(
                    "; the record runs from line {line} to line {}: an unbalanced quote may have joined lines",
                    next_line - 1
                ));
            }
            return Err(self.error(record, line, message));
        }
        let field = |i: usize| {
            let field = &text[record.range(i)];
            let null = (field.is_empty() || self.null_values.iter().any(|m| m == field))
                && self.nullable[i]
                && !record.is_quoted(i);
            (!null).then_some(field)
        };
        match &self.select {
            None => block.push_record((0..record.len()).map(field)),
            Some(select) => block.push_record(select.iter().map(|&i| field(i))),
        }
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
            let record = match self.pending.take() {
                Some(record) => record,
                None => match self.read_record()? {
                    Some(record) => record,
                    None => {
                        self.done = true;
                        break;
                    }
                },
            };
            let (line, next_line) = (record.line + self.line_offset, record.next_line + self.line_offset);
            if let (true, Some(end)) = (record.unclosed_quote, self.cut_end) {
                return Err(self.input_error(
                    Some(line),
                    format!(
                        "the byte range ends at byte {end} of the file inside a quoted field opened on line {line}: \
                         the file was cut at a wrong record boundary, because the planner \
                         guessed the quote state there from a small window; run with fewer workers, or split the \
                         file into several files and read them as a list"
                    ),
                ));
            }
            let result = if record.unclosed_quote {
                Err(self.unclosed_quote(&record, line, next_line))
            } else {
                self.push_fields(&record, line, next_line, &mut block)
            };
            match result {
                Ok(()) => lines.push(line),
                Err(err) => errors.push(err),
            }
            self.scratch = record;
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
        for text in [&b"a,b\n1,\"x\ny\n\"\n"[..], b"a,b\n1,\"x\"\"\"", b"a,b\n1,x\"y\n", b"a,b\n\"1\",\"\"\n"] {
            let mut s = source(text, CsvOptions::default()).unwrap();
            let (rows, errors) = all(&mut s);
            assert!(errors.is_empty(), "{:?}: {errors:?}", String::from_utf8_lossy(text));
            assert_eq!(rows.len(), 1);
        }
    }

    fn fields(rows: &[Row]) -> Vec<Vec<Option<String>>> {
        rows.iter()
            .map(|r| match &r.data {
                RowData::Fields(f) => f.to_vec(),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn unquoted_empty_fields_and_null_values_are_null_unless_the_column_is_not_nullable() {
        let text = b"a,b,c\n,\"\",NA\n\"NA\",\\N,\n1,x,\"\"\"\"\n";
        let options = CsvOptions {
            null_values: vec!["NA".into(), "\\N".into()],
            not_null_columns: vec!["c".into()],
            ..CsvOptions::default()
        };
        let mut s = source(text, options.clone()).unwrap();
        let (rows, errors) = all(&mut s);
        assert!(errors.is_empty());
        let s = |t: &str| Some(t.to_string());
        assert_eq!(
            fields(&rows),
            [vec![None, s(""), s("NA")], vec![s("NA"), None, s("")], vec![s("1"), s("x"), s("\"")],]
        );
        // Projected, and without markers: only empty unquoted fields are null.
        let mut p = source(text, CsvOptions::default()).unwrap();
        p.project(&["c".into(), "a".into()]).unwrap();
        assert_eq!(fields(&all(&mut p).0), [vec![s("NA"), None], vec![None, s("NA")], vec![s("\""), s("1")]]);
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
