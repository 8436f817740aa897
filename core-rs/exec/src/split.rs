//! Exact splitting of CSV and JSON Lines files into shards that parallel readers share.
//!
//! API (Rust): `split_points(path, kind, n, &CsvOptions) -> Result<Vec<Shard>, ExecError>`.
//! API (Python): `zoopipe_core._native.split_points(path: str, kind: "csv" | "jsonl", n: int,
//!     delimiter: str = ",", quotechar: str = '"', has_header: bool = True)
//!     -> list[tuple[int, int, int]]`, each tuple `(start, end, line_offset)`.
//!
//! * `start..end` is a byte range of the file; the ranges are in file order, contiguous, never
//!   empty, and together hold every record exactly once (at most `n` of them, fewer when the
//!   file has fewer record boundaries; always at least one). A CSV header is in none of them:
//!   the first range starts at the first data record, and a reader of any range reads the
//!   header from the start of the file.
//! * `line_offset` is the number of lines (`\n`) before `start`, so the first line of the range
//!   is line `line_offset + 1` of the file: readers add it to keep error records' lines true.
//! * The scan is quote-aware (the same rules as the CSV reader: doubled quotes, quotes inside an
//!   unquoted field are literal), so a quoted field holding newlines is never cut.
//! * Compressed files (gzip, zstd: by suffix or by their magic bytes) cannot be split, because a
//!   compressed stream can only be decoded from its start: that is an error.
//!
//! Readers take a range through `CSVInputAdapter(path, byte_range=(start, end), line_offset=N)`
//! and `JSONInputAdapter(path, byte_range=(start, end), line_offset=N)`.

use crate::codec::Compression;
use crate::csv_records::QuoteState as State;
use crate::csv_source::CsvOptions;
use crate::error::ExecError;
use crate::source::Shard;
use std::io::Read;

/// Which reader the file is meant for; it decides where records may begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitKind {
    Csv,
    Jsonl,
}

impl SplitKind {
    pub fn from_name(name: &str) -> Result<SplitKind, String> {
        match name {
            "csv" => Ok(SplitKind::Csv),
            "jsonl" => Ok(SplitKind::Jsonl),
            other => Err(format!("cannot split files of kind {other:?}: use \"csv\" or \"jsonl\"")),
        }
    }
}

/// Record boundaries of a CSV or JSONL byte stream, found chunk by chunk.
pub(crate) struct Scanner {
    kind: SplitKind,
    delimiter: u8,
    quote: u8,
    state: State,
    /// A `\r` ended a record at this offset, unless a `\n` follows.
    pending_cr: Option<u64>,
    /// The current record holds bytes other than line ends (blank lines are not records).
    has_content: bool,
    lines: u64,
}

impl Scanner {
    /// A scanner of a stream whose CSV quote state before its first byte is `state`
    /// (`FieldStart` at the start of a file; a guess mid-file, see `crate::cut`).
    pub(crate) fn new(kind: SplitKind, delimiter: u8, quote: u8, state: State, has_content: bool) -> Scanner {
        Scanner { kind, delimiter, quote, state, pending_cr: None, has_content, lines: 0 }
    }

    /// The quote state after the bytes fed so far.
    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// Lines (`\n`) fed so far.
    pub(crate) fn lines(&self) -> u64 {
        self.lines
    }

    /// Feed `chunk`, which starts at stream offset `at`; call `boundary(offset, lines_before,
    /// after_content)` at every offset where a record may begin.
    pub(crate) fn feed(&mut self, chunk: &[u8], at: u64, boundary: &mut dyn FnMut(u64, u64, bool)) {
        let mut i = 0;
        while i < chunk.len() {
            if let Some(next) = self.plain_line(chunk, i, at, boundary) {
                i = next;
                continue;
            }
            self.step(chunk[i], at + i as u64, boundary);
            i += 1;
        }
    }

    /// The fast path: when no quoted field is open, a line holding no quote character and no
    /// `\r` (but before its `\n`) is one record end, with the same effect as stepping through
    /// its bytes. Returns where the next line starts, or None to step byte by byte.
    fn plain_line(
        &mut self,
        chunk: &[u8],
        i: usize,
        at: u64,
        boundary: &mut dyn FnMut(u64, u64, bool),
    ) -> Option<usize> {
        if self.pending_cr.is_some() || !matches!(self.state, State::FieldStart | State::Unquoted) {
            return None;
        }
        let line = &chunk[i..i + memchr::memchr(b'\n', &chunk[i..])?];
        let body = line.strip_suffix(b"\r").unwrap_or(line);
        let has_content = match self.kind {
            SplitKind::Csv if memchr::memchr2(self.quote, b'\r', body).is_some() => return None,
            // A quote inside an unquoted field is literal: only a field start can open one.
            SplitKind::Csv => !body.is_empty(),
            SplitKind::Jsonl => line.iter().any(|&b| b != b'\r'),
        };
        let has_content = std::mem::take(&mut self.has_content) || has_content;
        self.state = State::FieldStart;
        self.lines += 1;
        let next = i + line.len() + 1;
        boundary(at + next as u64, self.lines, has_content);
        Some(next)
    }

    fn step(&mut self, b: u8, pos: u64, boundary: &mut dyn FnMut(u64, u64, bool)) {
        if let Some(cr_end) = self.pending_cr.take() {
            if b != b'\n' {
                boundary(cr_end, self.lines, std::mem::take(&mut self.has_content));
            }
        }
        match self.kind {
            SplitKind::Jsonl => {
                if b == b'\n' {
                    self.lines += 1;
                    boundary(pos + 1, self.lines, std::mem::take(&mut self.has_content));
                } else if b != b'\r' {
                    self.has_content = true;
                }
            }
            SplitKind::Csv => {
                let quoted_before = self.state == State::Quoted;
                self.state = self.state.next(b, self.delimiter, self.quote);
                if b == b'\n' {
                    self.lines += 1;
                }
                if quoted_before {
                    self.has_content = true;
                    return;
                }
                match b {
                    b'\n' => boundary(pos + 1, self.lines, std::mem::take(&mut self.has_content)),
                    b'\r' => self.pending_cr = Some(pos + 1),
                    _ => self.has_content = true,
                }
            }
        }
    }
}

fn compression_of(path: &str, head: &[u8]) -> Compression {
    match Compression::from_path(path) {
        Compression::None if head.starts_with(&[0x1f, 0x8b]) => Compression::Gzip,
        Compression::None if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) => Compression::Zstd,
        other => other,
    }
}

/// Split the file at `path` into at most `n` shards (see the module documentation).
pub fn split_points(path: &str, kind: SplitKind, n: usize, options: &CsvOptions) -> Result<Vec<Shard>, ExecError> {
    let fail = |line: Option<u64>, message: String| ExecError::Input { source: path.to_owned(), line, message };
    if n == 0 {
        return Err(fail(None, "cannot split into 0 shards: ask for 1 or more".into()));
    }
    let mut file =
        std::fs::File::open(path).map_err(|e| fail(None, format!("cannot open the file to split it: {e}")))?;
    let size = file.metadata().map_err(|e| fail(None, e.to_string()))?.len();
    let mut buffer = vec![0u8; 1 << 20];
    let mut scanner = Scanner {
        kind,
        delimiter: options.delimiter,
        quote: options.quote,
        state: State::FieldStart,
        pending_cr: None,
        has_content: false,
        lines: 0,
    };
    let needs_header = kind == SplitKind::Csv && options.has_header;
    // Before the header ends, `data_start` is None; after it, cut points fall at the first
    // boundary at or past each target offset.
    let mut data_start: Option<(u64, u64)> = if needs_header { None } else { Some((0, 0)) };
    let mut targets: Vec<u64> = Vec::new();
    let mut cuts: Vec<(u64, u64)> = Vec::new();
    let set_targets = |start: u64, targets: &mut Vec<u64>| {
        let span = size.saturating_sub(start);
        *targets = (1..n as u64).rev().map(|i| start + (span as u128 * i as u128 / n as u128) as u64).collect();
    };
    if let Some((start, _)) = data_start {
        set_targets(start, &mut targets);
    }
    let mut at = 0u64;
    loop {
        let got = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(got) => got,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(None, format!("reading the file to split it failed: {e}"))),
        };
        if at == 0 {
            let compression = compression_of(path, &buffer[..got]);
            if compression != Compression::None {
                let name = if compression == Compression::Gzip { "gzip" } else { "zstd" };
                return Err(fail(
                    None,
                    format!(
                        "cannot split a {name}-compressed file: a compressed stream can only be decoded from \
                     its start, so it has no byte offsets to cut at; decompress it first, or read it as one shard"
                    ),
                ));
            }
        }
        scanner.feed(&buffer[..got], at, &mut |offset, lines, after_content| match data_start {
            None => {
                if after_content {
                    data_start = Some((offset, lines));
                    set_targets(offset, &mut targets);
                }
            }
            Some(_) => {
                while targets.last().is_some_and(|&t| offset >= t) {
                    targets.pop();
                    if cuts.last().map(|c| c.0) != Some(offset) {
                        cuts.push((offset, lines));
                    }
                }
            }
        });
        at += got as u64;
        if data_start.is_some() && targets.is_empty() {
            break; // every cut is found: the last shard runs to the end of the file
        }
    }
    let end = at.max(size);
    let (start, start_lines) = data_start.unwrap_or((end, scanner.lines));
    let mut shards = Vec::with_capacity(cuts.len() + 1);
    let mut from = (start, start_lines);
    for cut in cuts.into_iter().chain(std::iter::once((end, 0))) {
        if cut.0 > from.0 {
            shards.push(Shard { start: from.0, end: cut.0, line_offset: from.1 });
            from = cut;
        }
    }
    if shards.is_empty() {
        shards.push(Shard { start, end: end.max(start), line_offset: start_lines });
    }
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_source::CsvSource;
    use crate::jsonl_source::JsonlSource;
    use crate::source::BatchSource;

    fn write(text: &[u8]) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path.to_str().unwrap().to_owned())
    }

    fn read_csv_shards(path: &str, n: usize) -> Vec<(u64, Vec<Option<String>>)> {
        let options = CsvOptions::default();
        let shards = split_points(path, SplitKind::Csv, n, &options).unwrap();
        let mut out = Vec::new();
        for shard in shards {
            let mut source = CsvSource::open_range(path, options.clone(), shard).unwrap();
            let mut seq = 0;
            while let Some(batch) = source.next_batch(seq, 3).unwrap() {
                assert!(batch.errors.is_empty(), "{:?}", batch.errors);
                for row in batch.rows {
                    let crate::RowData::Fields(f) = row.data else { panic!() };
                    out.push((row.line, f.to_vec()));
                }
                seq += 1;
            }
        }
        out
    }

    #[test]
    fn csv_shards_cover_every_record_once_with_true_lines() {
        let text = b"a,b\r\n1,\"x\ny\"\r\n2,\"p,\"\"q\"\"\n\n\"\r\n\n3,z\n4,w";
        let (_dir, path) = write(text);
        let whole = read_csv_shards(&path, 1);
        assert_eq!(whole.len(), 4);
        assert_eq!(whole.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 4, 8, 9]);
        for n in 1..=32 {
            assert_eq!(read_csv_shards(&path, n), whole, "n = {n}");
        }
    }

    #[test]
    fn jsonl_shards_and_compressed_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.jsonl");
        std::fs::write(&path, b"{\"a\":1}\n\n{\"a\":2}\r\n{\"a\":3}").unwrap();
        let path = path.to_str().unwrap();
        for n in 1..=10 {
            let mut lines = Vec::new();
            for shard in split_points(path, SplitKind::Jsonl, n, &CsvOptions::default()).unwrap() {
                let mut s = JsonlSource::open_range(path, shard).unwrap();
                while let Some(b) = s.next_batch(0, 2).unwrap() {
                    lines.extend(b.rows.iter().map(|r| r.line));
                }
            }
            assert_eq!(lines, vec![1, 3, 4]);
        }
        let gz = dir.path().join("f.jsonl.gz");
        std::fs::write(&gz, [0x1f, 0x8b, 0, 0]).unwrap();
        let err = split_points(gz.to_str().unwrap(), SplitKind::Jsonl, 2, &CsvOptions::default()).unwrap_err();
        assert!(err.to_string().contains("compressed"), "{err}");
    }

    fn scanner(kind: SplitKind) -> Scanner {
        Scanner {
            kind,
            delimiter: b',',
            quote: b'"',
            state: State::FieldStart,
            pending_cr: None,
            has_content: false,
            lines: 0,
        }
    }

    /// Every boundary the scanner reports for `text` fed in chunks of `chunk` bytes.
    fn boundaries(kind: SplitKind, text: &[u8], chunk: usize, fast: bool) -> Vec<(u64, u64, bool)> {
        let mut scanner = scanner(kind);
        let mut found = Vec::new();
        for (k, piece) in text.chunks(chunk).enumerate() {
            let at = (k * chunk) as u64;
            let mut record = |offset, lines, content| found.push((offset, lines, content));
            if fast {
                scanner.feed(piece, at, &mut record);
            } else {
                for (i, &b) in piece.iter().enumerate() {
                    scanner.step(b, at + i as u64, &mut record);
                }
            }
        }
        found
    }

    #[test]
    fn the_line_fast_path_finds_what_stepping_byte_by_byte_finds() {
        let texts: [&[u8]; 6] = [
            b"a,b\r\n1,\"x\ny\"\r\n2,\"p,\"\"q\"\"\n\n\"\r\n\n3,z\n4,w",
            b"x,y\n1,a\"b\n2,\"\"\n\r\n\r\r3,4\rz\n,\n\"\n\"\n",
            b"\n\n\r\nh\n\"open,\nstill\nopen\"\"\",end\n5,6\n",
            b"{\"a\":1}\n\n{\"a\":\"\\n\"}\r\n\r\n{}",
            b"a,b\n1,2\n3,4\n5,6\n",
            b"",
        ];
        for text in texts {
            for kind in [SplitKind::Csv, SplitKind::Jsonl] {
                let expected = boundaries(kind, text, 1, false);
                for chunk in [1, 2, 3, 5, 8, 64] {
                    assert_eq!(boundaries(kind, text, chunk, true), expected, "{kind:?} chunk {chunk} {text:?}");
                }
            }
        }
    }

    #[test]
    fn header_only_and_blank_lines_before_the_header() {
        let (_dir, path) = write(b"\n\na,b\n1,2\n");
        assert_eq!(read_csv_shards(&path, 4), vec![(4, vec![Some("1".to_string()), Some("2".to_string())])]);
        let (_dir, path) = write(b"a,b");
        let shards = split_points(&path, SplitKind::Csv, 3, &CsvOptions::default()).unwrap();
        assert_eq!(shards.len(), 1);
        assert!(read_csv_shards(&path, 3).is_empty());
    }
}
