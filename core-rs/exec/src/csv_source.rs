//! CSV reader: header or explicit field names, delimiter and quote, UTF-8 with or without BOM.
//! Records that cannot be read (ragged rows, invalid UTF-8) become error records with their line.

use crate::codec::ByteReader;
use crate::error::ExecError;
use crate::record::{Batch, ErrorRecord, FailedStage, Row, RowData};
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
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions { delimiter: b',', quote: b'"', has_header: true, field_names: None }
    }
}

pub struct CsvSource {
    reader: csv::Reader<ByteReader>,
    columns: Arc<[String]>,
    source: Arc<str>,
    record: csv::ByteRecord,
    /// A record read while looking for the header, when the file has none.
    pending: Option<csv::ByteRecord>,
    at_start: bool,
    done: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl CsvSource {
    pub fn new(input: ByteReader, options: CsvOptions, source: &str) -> Result<CsvSource, ExecError> {
        let reader = csv::ReaderBuilder::new()
            .delimiter(options.delimiter)
            .quote(options.quote)
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        let source: Arc<str> = Arc::from(source);
        let mut this = CsvSource {
            reader,
            columns: Arc::from(Vec::new()),
            source,
            record: csv::ByteRecord::new(),
            pending: None,
            at_start: true,
            done: false,
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
                this.pending = first;
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
        Ok(this)
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    fn input_error(&self, line: Option<u64>, message: String) -> ExecError {
        ExecError::Input { source: self.source.to_string(), line, message }
    }

    /// Read one raw record, stripping a UTF-8 byte-order mark from the very first field.
    fn read_raw(&mut self) -> Result<Option<csv::ByteRecord>, ExecError> {
        if let Some(pending) = self.pending.take() {
            return Ok(Some(pending));
        }
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
                let line = e.position().map(|p| p.line()).or_else(|| Some(self.reader.position().line()));
                Err(self.input_error(line, describe_csv_error(&e)))
            }
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

    fn to_row(&self, record: &csv::ByteRecord, line: u64, next_line: u64) -> Result<Row, ErrorRecord> {
        let mut fields = Vec::with_capacity(record.len());
        let mut bad_utf8 = None;
        for (i, raw) in record.iter().enumerate() {
            match std::str::from_utf8(raw) {
                Ok(text) => fields.push(text.to_owned()),
                Err(e) => {
                    bad_utf8.get_or_insert((i, e.valid_up_to()));
                    fields.push(String::from_utf8_lossy(raw).into_owned());
                }
            }
        }
        let error = |message: String, fields: Vec<String>| ErrorRecord {
            source: self.source.clone(),
            line,
            stage: FailedStage::Parse,
            messages: vec![message],
            record: RowData::Fields(fields).to_value(&self.columns),
        };
        if let Some((i, at)) = bad_utf8 {
            let name = self.columns.get(i).map(|c| format!(" ({c:?})")).unwrap_or_default();
            return Err(error(
                format!("invalid UTF-8 in field {}{name} at byte {at}; the file must be UTF-8", i + 1),
                fields,
            ));
        }
        if fields.len() != self.columns.len() {
            let mut message = format!(
                "expected {} fields, found {}",
                self.columns.len(),
                fields.len()
            );
            if next_line > line + 1 && fields.iter().any(|f| f.contains('\n')) {
                message.push_str(&format!(
                    "; the record runs from line {line} to line {}: an unbalanced quote may have joined lines",
                    next_line - 1
                ));
            }
            return Err(error(message, fields));
        }
        Ok(Row { line, data: RowData::Fields(fields) })
    }
}

impl BatchSource for CsvSource {
    fn next_batch(&mut self, seq: u64, max_rows: usize) -> Result<Option<Batch>, ExecError> {
        if self.done {
            return Ok(None);
        }
        let mut rows = Vec::with_capacity(max_rows);
        let mut errors = Vec::new();
        while rows.len() + errors.len() < max_rows {
            let record = match self.pending.take() {
                Some(r) => r,
                None => {
                    match self.reader.read_byte_record(&mut self.record) {
                        Ok(true) => std::mem::take(&mut self.record),
                        Ok(false) => {
                            self.done = true;
                            break;
                        }
                        Err(e) => {
                            let line = e.position().map(|p| p.line()).unwrap_or_else(|| self.reader.position().line());
                            return Err(self.input_error(Some(line), describe_csv_error(&e)));
                        }
                    }
                }
            };
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            let next_line = self.reader.position().line();
            // A blank line is not a record (csv skips it); a record with one empty field is ragged.
            match self.to_row(&record, line, next_line) {
                Ok(row) => rows.push(row),
                Err(err) => errors.push(err),
            }
            self.record = record;
        }
        if rows.is_empty() && errors.is_empty() {
            return Ok(None);
        }
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
        assert_eq!(rows[0], Row { line: 2, data: RowData::Fields(vec!["1".into(), "x\ny".into()]) });
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
