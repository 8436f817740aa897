//! Cut points of a CSV or JSON Lines file found from small windows of it, for files that are not
//! local (an object store): the planner reads a few KiB around each cut target instead of
//! scanning the whole file as `split::split_points` does.
//!
//! API (Rust): `record_start(window, kind, expected_fields, at_eof, delimiter, quote) ->
//! Option<usize>` and `csv_head(window, at_eof, delimiter, quote, has_header) ->
//! Result<Option<Head>, String>`; the same in Python as `zoopipe_core._native.record_start` and
//! `zoopipe_core._native.csv_head`.
//!
//! * JSON Lines: a record starts after every `\n`, so the answer is exact.
//! * CSV: whether a window starts inside a quoted field cannot be known without the bytes before
//!   it. Each quote state the stream may be in before the window's first byte is a hypothesis,
//!   scanned by the splitter's own `Scanner` (the reader's quoting rules). A record start that
//!   every hypothesis finds is a record start whatever the truth: that is the answer when there
//!   is one. Otherwise the complete records each hypothesis reads are checked against the file's
//!   field count (its first record's), and the hypothesis the data does not refute wins. When
//!   nothing decides, `None`: the caller reads a larger window, or gives the cut up (fewer
//!   shards are always correct). A wrong guess is still caught: the reader of the shard that ends
//!   at the cut finds its range ending inside a quoted field and fails (`CsvSource`).

use crate::csv_records::{QuoteState, RawRecord, RecordReader};
use crate::split::{Scanner, SplitKind};

/// Every quote state the bytes before a window may leave the stream in.
const HYPOTHESES: [QuoteState; 4] =
    [QuoteState::FieldStart, QuoteState::Unquoted, QuoteState::Quoted, QuoteState::QuoteInQuoted];

/// What one hypothesis reads in a window.
struct Reading {
    /// Offsets where a record may begin (after a line end outside quotes), with whether the
    /// record before it held content (a blank line is not a record).
    boundaries: Vec<(usize, bool)>,
    /// The window ends inside a quoted field.
    ends_quoted: bool,
}

impl Reading {
    fn scan(window: &[u8], state: QuoteState, delimiter: u8, quote: u8) -> Reading {
        let mut scanner = Scanner::new(SplitKind::Csv, delimiter, quote, state, true);
        let mut boundaries = Vec::new();
        scanner.feed(window, 0, &mut |offset, _, content| boundaries.push((offset as usize, content)));
        Reading { boundaries, ends_quoted: scanner.state() == QuoteState::Quoted }
    }

    fn first(&self) -> Option<usize> {
        self.boundaries.first().map(|b| b.0)
    }

    fn has(&self, offset: usize) -> bool {
        self.boundaries.binary_search_by_key(&offset, |b| b.0).is_ok()
    }

    /// (records of the expected shape, records refuting this reading) among the complete
    /// records that start at or after `from`: a wrong field count, a quote closed and followed
    /// by text, or (at the end of the file) a quote never closed.
    fn evidence(&self, window: &[u8], from: usize, expected: usize, at_eof: bool, d: u8, q: u8) -> (usize, usize) {
        let (mut good, mut bad) = (0, 0);
        let mut judge = |raw: &[u8], unclosed: bool| {
            let (fields, malformed) = shape(raw, d, q);
            if unclosed || malformed || (expected > 0 && fields != expected) {
                bad += 1;
            } else {
                good += 1;
            }
        };
        for pair in self.boundaries.windows(2) {
            let ((start, _), (end, content)) = (pair[0], pair[1]);
            if start >= from && content {
                judge(&window[start..end], false);
            }
        }
        if at_eof {
            let last = self.boundaries.last().map_or(0, |b| b.0);
            let tail = &window[last..];
            if last >= from && tail.iter().any(|&b| b != b'\r' && b != b'\n') {
                judge(tail, self.ends_quoted);
            }
        }
        (good, bad)
    }
}

/// Fields of the record at the start of `raw` (up to its line end), and whether a closing
/// quote is followed by text (`"ab"c`: the reader accepts it, well-formed CSV never has it).
fn shape(raw: &[u8], delimiter: u8, quote: u8) -> (usize, bool) {
    let (mut state, mut fields, mut malformed) = (QuoteState::FieldStart, 1, false);
    for &b in raw {
        let before = state;
        state = state.next(b, delimiter, quote);
        malformed |= before == QuoteState::QuoteInQuoted && state == QuoteState::Unquoted;
        if state == QuoteState::FieldStart {
            if b != delimiter {
                break;
            }
            fields += 1;
        }
    }
    (fields, malformed)
}

/// The first record start in `window` after its first byte (an offset >= 1), or None when the
/// window does not decide it (see the module documentation). The caller starts the window one
/// byte before its cut target, so that a record starting exactly at the target is found.
/// `expected_fields`: the file's field count (0: not checked); `at_eof`: the window runs to the
/// end of the file.
pub fn record_start(
    window: &[u8],
    kind: SplitKind,
    expected_fields: usize,
    at_eof: bool,
    delimiter: u8,
    quote: u8,
) -> Option<usize> {
    if kind == SplitKind::Jsonl {
        return memchr::memchr(b'\n', window).map(|i| i + 1);
    }
    let readings: Vec<Reading> = HYPOTHESES.iter().map(|&h| Reading::scan(window, h, delimiter, quote)).collect();
    // A hypothesis that stays inside a quoted field to the end of the window claims a quoted
    // field longer than the window: the others are judged by their records.
    let found: Vec<&Reading> = readings.iter().filter(|r| !r.boundaries.is_empty()).collect();
    let first = found.first()?;
    let evidence = |r: &Reading, from: usize| r.evidence(window, from, expected_fields, at_eof, delimiter, quote);
    // Once two hypotheses reach the same record start they read alike: a start every one of
    // them reaches is a record start whatever the stream's state before the window.
    if let Some(&(shared, _)) = first.boundaries.iter().find(|b| found.iter().all(|r| r.has(b.0))) {
        if found.len() == readings.len() || at_eof {
            return Some(shared); // at the end of the file, a quote never closed is refuted
        }
        let (good, bad) = evidence(first, shared);
        return (good >= 1 && bad == 0).then_some(shared);
    }
    // (first record start, good records, bad records) of each distinct reading.
    let mut judged: Vec<(usize, usize, usize)> = Vec::new();
    for r in &found {
        let start = r.first().unwrap_or(0);
        if judged.iter().all(|j| j.0 != start) {
            let (good, bad) = evidence(r, start);
            judged.push((start, good, bad));
        }
    }
    let clean: Vec<&(usize, usize, usize)> = judged.iter().filter(|j| j.2 == 0 && j.1 >= 1).collect();
    if let [only] = clean.as_slice() {
        if judged.iter().all(|j| j.0 == only.0 || j.2 > 0) {
            // every other reading meets a record of the wrong shape
            return Some(only.0);
        }
    }
    // A messy file (some records of the wrong shape anyway): a hypothesis with clearly fewer
    // bad records than every other.
    let best = judged.iter().min_by_key(|j| j.2)?;
    let clearly = judged.iter().all(|j| j.0 == best.0 || j.2 >= 3 * best.2 + 2);
    (clearly && best.1 > best.2).then_some(best.0)
}

/// The head of a CSV file: where its data starts, the lines before that, and its first record's
/// fields (the header's names, or the first row's values without a header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub data_start: u64,
    pub lines_before: u64,
    pub fields: Vec<String>,
}

/// The head of the CSV file whose first bytes are `window` (see [`Head`]); None when the first
/// record does not end in the window (read more). An empty file has no fields.
pub fn csv_head(
    window: &[u8],
    at_eof: bool,
    delimiter: u8,
    quote: u8,
    has_header: bool,
) -> Result<Option<Head>, String> {
    // A byte-order mark is not content (the reader drops it).
    let bom = if window.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    let mut scanner = Scanner::new(SplitKind::Csv, delimiter, quote, QuoteState::FieldStart, false);
    let mut end: Option<(u64, u64)> = None;
    scanner.feed(&window[bom..], bom as u64, &mut |offset, lines, content| {
        if content && end.is_none() {
            end = Some((offset, lines));
        }
    });
    let (first_end, lines) = match end {
        Some(found) => found,
        None if at_eof => (window.len() as u64, scanner.lines()),
        None => return Ok(None),
    };
    let mut reader = RecordReader::new(
        Box::new(std::io::Cursor::new(window[..first_end as usize].to_vec())),
        delimiter,
        quote,
        true,
    );
    let mut record = RawRecord::default();
    let has_record = reader.read(&mut record).map_err(|e| e.to_string())?;
    let fields = if has_record {
        record
            .iter()
            .enumerate()
            .map(|(i, f)| {
                String::from_utf8(f.to_vec()).map_err(|_| {
                    format!("field {} of the first record is not valid UTF-8; the file must be UTF-8", i + 1)
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    let (data_start, lines_before) = if has_header { (first_end, lines) } else { (0, 0) };
    Ok(Some(Head { data_start, lines_before, fields }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(window: &[u8], expected: usize, at_eof: bool) -> Option<usize> {
        record_start(window, SplitKind::Csv, expected, at_eof, b',', b'"')
    }

    /// The record starts of `text` as the whole-file scanner finds them.
    fn true_starts(text: &[u8]) -> Vec<usize> {
        let mut scanner = Scanner::new(SplitKind::Csv, b',', b'"', QuoteState::FieldStart, false);
        let mut out = Vec::new();
        scanner.feed(text, 0, &mut |offset, _, _| out.push(offset as usize));
        out
    }

    #[test]
    fn jsonl_cuts_after_the_next_newline() {
        assert_eq!(record_start(b"\n{}", SplitKind::Jsonl, 0, false, b',', b'"'), Some(1));
        assert_eq!(record_start(b"1}\n{}", SplitKind::Jsonl, 0, false, b',', b'"'), Some(3));
        assert_eq!(record_start(b"{\"a\":1}", SplitKind::Jsonl, 0, true, b',', b'"'), None);
    }

    #[test]
    fn every_decided_csv_cut_is_a_true_record_start() {
        // Quoted fields with newlines, delimiters, doubled quotes and CRLF line ends, so that
        // most offsets fall inside a quoted field.
        let mut text = b"id,text,n\r\n".to_vec();
        for i in 0..60 {
            let row = match i % 4 {
                0 => format!("{i},\"two\r\nlines, \"\"quoted\"\"\",{i}\r\n"),
                1 => format!("{i},plain,{i}\r\n"),
                2 => format!("{i},\"a,b\nc\n\nd\",x\r\n"),
                _ => format!("{i},\"\"\"\",\"\n\"\r\n"),
            };
            text.extend_from_slice(row.as_bytes());
        }
        let starts = true_starts(&text);
        let mut decided = 0;
        for target in 12..text.len() {
            for size in [64, 256, 4096] {
                let end = (target - 1 + size).min(text.len());
                if let Some(offset) = csv(&text[target - 1..end], 3, end == text.len()) {
                    let cut = target - 1 + offset;
                    assert!(starts.contains(&cut), "target {target} window {size}: {cut} is no record start");
                    assert!(cut >= target);
                    decided += 1;
                }
            }
        }
        assert!(decided > text.len(), "only {decided} windows decided");
    }

    #[test]
    fn a_quote_free_window_cuts_at_the_next_line_and_a_quoted_one_waits_for_evidence() {
        assert_eq!(csv(b"2,b\n3,c\n4,d\n", 2, false), Some(4));
        // No complete record yet: read more.
        assert_eq!(csv(b"x\n1,\"y", 2, false), None);
        // Inside or outside the quotes at the start, every reading reaches offset 7.
        assert_eq!(csv(b"a\nb\",1\n2,\"c\nd\"\n", 2, false), Some(7));
        // Read from outside the quotes, `",1\n2,"y\n` is one record with a quote closed before
        // text; read from inside, no record is complete yet: read more.
        assert_eq!(csv(b"x\n\",1\n2,\"y\nz", 2, false), None);
    }

    #[test]
    fn the_head_of_a_file() {
        let head = csv_head(b"\xEF\xBB\xBF\n\"i,d\",name\r\n1,2\n", false, b',', b'"', true).unwrap().unwrap();
        assert_eq!(head, Head { data_start: 16, lines_before: 2, fields: vec!["i,d".into(), "name".into()] });
        assert_eq!(csv_head(b"a,\"b\nc", false, b',', b'"', true).unwrap(), None);
        let whole = csv_head(b"a,b", true, b',', b'"', true).unwrap().unwrap();
        assert_eq!((whole.data_start, whole.fields.len()), (3, 2));
        let headless = csv_head(b"1,2,3\n4,5,6\n", false, b',', b'"', false).unwrap().unwrap();
        assert_eq!((headless.data_start, headless.lines_before, headless.fields.len()), (0, 0, 3));
        assert_eq!(csv_head(b"", true, b',', b'"', true).unwrap().unwrap().fields.len(), 0);
    }

    #[test]
    fn a_range_ending_inside_a_quoted_field_fails_only_at_a_cut() {
        use crate::csv_source::{CsvOptions, CsvSource};
        use crate::source::BatchSource;
        let options =
            CsvOptions { has_header: false, field_names: Some(vec!["a".into(), "b".into()]), ..Default::default() };
        let range = || Box::new(std::io::Cursor::new(b"1,x\n2,\"open\n".to_vec())) as crate::codec::ByteReader;
        let mut cut = CsvSource::from_range(range(), options.clone(), "s3://b/f.csv [bytes 10..24]", Some(24)).unwrap();
        let err = cut.next_batch(0, 10).unwrap_err().to_string();
        assert!(err.contains("s3://b/f.csv [bytes 10..24]") && err.contains("ends at byte 24"), "{err}");
        assert!(err.contains("fewer workers"), "{err}");
        let mut last = CsvSource::from_range(range(), options, "f.csv", None).unwrap();
        let batch = last.next_batch(0, 10).unwrap().unwrap();
        assert_eq!((batch.rows.len(), batch.errors.len()), (1, 1));
    }
}
