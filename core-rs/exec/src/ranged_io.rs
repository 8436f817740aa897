//! Random access by ranged reads: what the table readers (Parquet, Arrow IPC) read a file
//! through, so that a file on an object store is fetched only where it is read (its footer,
//! the row groups or record batches of a shard), never whole.
//!
//! [`RangeRead`] is a file that answers byte ranges: a local file ([`LocalRanges`]) or a host
//! object (the glue's ranged reader of an fsspec URL). [`RangedReader`] gives one `Read + Seek`
//! for readers that want a stream (arrow-ipc's), fetching ahead a little for small reads.

pub use bytes::Bytes;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::Arc;

/// A file read by byte ranges. Each call is one round trip to where the file is (many ranges
/// in one call may be fetched concurrently).
pub trait RangeRead: Send + Sync {
    /// The file's size in bytes.
    fn size(&self) -> u64;
    /// The bytes of each range, in order (shorter only at the end of the file).
    fn read_ranges(&self, ranges: &[Range<u64>]) -> io::Result<Vec<Bytes>>;

    fn read_range(&self, range: Range<u64>) -> io::Result<Bytes> {
        Ok(self.read_ranges(std::slice::from_ref(&range))?.pop().unwrap_or_default())
    }
}

/// A local file read by positioned reads.
pub struct LocalRanges {
    file: File,
    size: u64,
}

impl LocalRanges {
    pub fn new(file: File) -> io::Result<LocalRanges> {
        let size = file.metadata()?.len();
        Ok(LocalRanges { file, size })
    }
}

impl RangeRead for LocalRanges {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> io::Result<Vec<Bytes>> {
        use std::os::unix::fs::FileExt;
        ranges
            .iter()
            .map(|range| {
                let end = range.end.min(self.size);
                let mut buf = vec![0u8; end.saturating_sub(range.start) as usize];
                self.file.read_exact_at(&mut buf, range.start)?;
                Ok(Bytes::from(buf))
            })
            .collect()
    }
}

/// The smallest fetch of a [`RangedReader`]: a read asking for less fetches this much (never
/// past the end of the file), so that small sequential reads (headers, footers) cost one round
/// trip between them, not one each.
pub const MIN_FETCH: u64 = 64 * 1024;

/// `Read + Seek` over a [`RangeRead`]. A read served by no buffered byte fetches at least
/// [`MIN_FETCH`] bytes, doubling while the reads stay sequential up to `max_fetch` (a stream
/// read through); a seek elsewhere starts again from [`MIN_FETCH`].
pub struct RangedReader {
    file: Arc<dyn RangeRead>,
    pos: u64,
    buffer: Bytes,
    buffer_start: u64,
    fetch: u64,
    max_fetch: u64,
}

impl RangedReader {
    /// `max_fetch`: the most one fetch grows to while reads are sequential ([`MIN_FETCH`] for a
    /// reader that reads whole blocks it knows, so it never fetches far past what it needs).
    pub fn new(file: Arc<dyn RangeRead>, max_fetch: u64) -> RangedReader {
        RangedReader { file, pos: 0, buffer: Bytes::new(), buffer_start: 0, fetch: MIN_FETCH, max_fetch }
    }

    fn buffered(&self) -> Option<Bytes> {
        let end = self.buffer_start + self.buffer.len() as u64;
        (self.pos >= self.buffer_start && self.pos < end)
            .then(|| self.buffer.slice((self.pos - self.buffer_start) as usize..))
    }
}

impl Read for RangedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let size = self.file.size();
        if out.is_empty() || self.pos >= size {
            return Ok(0);
        }
        let available = match self.buffered() {
            Some(bytes) => bytes,
            None => {
                // Sequential: the last fetch ended where this read starts.
                let sequential = self.pos == self.buffer_start + self.buffer.len() as u64 && !self.buffer.is_empty();
                self.fetch = if sequential { (self.fetch * 2).min(self.max_fetch.max(MIN_FETCH)) } else { MIN_FETCH };
                let want = (out.len() as u64).max(self.fetch);
                let end = self.pos.saturating_add(want).min(size);
                let bytes = self.file.read_range(self.pos..end)?;
                if bytes.is_empty() {
                    return Ok(0);
                }
                self.buffer_start = self.pos;
                self.buffer = bytes.clone();
                bytes
            }
        };
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangedReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => self.file.size().checked_add_signed(delta),
            SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
        };
        self.pos =
            target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start of the file"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Mutex;

    /// An in-memory file that records every range fetched from it.
    pub(crate) struct Recorded {
        pub data: Bytes,
        pub fetched: Mutex<Vec<Range<u64>>>,
    }

    impl Recorded {
        pub fn new(data: Vec<u8>) -> Arc<Recorded> {
            Arc::new(Recorded { data: Bytes::from(data), fetched: Mutex::new(Vec::new()) })
        }
        /// The ranges fetched, as `(start, end)`.
        pub fn spans(&self) -> Vec<(u64, u64)> {
            self.fetched.lock().unwrap().iter().map(|r| (r.start, r.end)).collect()
        }
        pub fn bytes_fetched(&self) -> u64 {
            self.fetched.lock().unwrap().iter().map(|r| r.end - r.start).sum()
        }
    }

    impl RangeRead for Recorded {
        fn size(&self) -> u64 {
            self.data.len() as u64
        }
        fn read_ranges(&self, ranges: &[Range<u64>]) -> io::Result<Vec<Bytes>> {
            let size = self.size();
            Ok(ranges
                .iter()
                .map(|r| {
                    let r = r.start.min(size)..r.end.min(size);
                    self.fetched.lock().unwrap().push(r.clone());
                    self.data.slice(r.start as usize..r.end as usize)
                })
                .collect())
        }
    }

    #[test]
    fn small_sequential_reads_share_a_fetch_and_seeks_fetch_only_near_the_target() {
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let file = Recorded::new(data.clone());
        let mut reader = RangedReader::new(file.clone(), 8 * MIN_FETCH);
        let mut head = [0u8; 10];
        reader.read_exact(&mut head).unwrap();
        reader.read_exact(&mut head).unwrap();
        assert_eq!(head.as_slice(), &data[10..20]);
        assert_eq!(file.spans(), [(0, MIN_FETCH)]);

        reader.seek(SeekFrom::End(-10)).unwrap();
        let mut tail = Vec::new();
        reader.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, &data[data.len() - 10..]);
        assert_eq!(file.spans().last(), Some(&(199_990, 200_000)));
    }

    #[test]
    fn a_large_read_is_one_exact_fetch_and_a_stream_read_through_fetches_more_each_time() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let file = Recorded::new(data.clone());
        let mut reader = RangedReader::new(file.clone(), 4 * MIN_FETCH);
        reader.seek(SeekFrom::Start(1000)).unwrap();
        let mut block = vec![0u8; 100_000];
        reader.read_exact(&mut block).unwrap();
        assert_eq!(file.spans(), [(1000, 101_000)]);

        let mut all = Vec::new();
        RangedReader::new(file.clone(), 4 * MIN_FETCH).read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
        let sizes: Vec<u64> = file.fetched.lock().unwrap()[1..].iter().map(|r| r.end - r.start).collect();
        assert_eq!(&sizes[..3], [MIN_FETCH, 2 * MIN_FETCH, 4 * MIN_FETCH]);
    }

    #[test]
    fn a_local_file_answers_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let local = LocalRanges::new(File::open(&path).unwrap()).unwrap();
        let got = local.read_ranges(&[2..5, 8..20]).unwrap();
        assert_eq!((local.size(), got), (10, vec![Bytes::from_static(b"234"), Bytes::from_static(b"89")]));
    }
}
