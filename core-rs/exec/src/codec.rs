//! Byte streams in and out: files, compression by name, and the finishing of encoders.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};

const IO_BUFFER: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn from_name(name: &str) -> Result<Compression, String> {
        match name {
            "" | "none" => Ok(Compression::None),
            "gzip" | "gz" => Ok(Compression::Gzip),
            "zstd" | "zst" => Ok(Compression::Zstd),
            other => Err(format!("unknown compression {other:?}; use none, gzip or zstd")),
        }
    }

    /// Compression implied by a path's suffix (`.gz`, `.zst`).
    pub fn from_path(path: &str) -> Compression {
        if path.ends_with(".gz") {
            Compression::Gzip
        } else if path.ends_with(".zst") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

pub type ByteReader = Box<dyn Read + Send>;

/// Wrap a raw byte stream in the decoder its compression needs, buffered.
pub fn decoder(raw: ByteReader, compression: Compression) -> io::Result<ByteReader> {
    let buffered = BufReader::with_capacity(IO_BUFFER, raw);
    Ok(match compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(BufReader::with_capacity(IO_BUFFER, flate2::read::MultiGzDecoder::new(buffered))),
        Compression::Zstd => {
            Box::new(BufReader::with_capacity(IO_BUFFER, zstd::stream::read::Decoder::with_buffer(buffered)?))
        }
    })
}

pub fn open_file(path: &str) -> io::Result<ByteReader> {
    Ok(Box::new(File::open(path)?))
}

/// The bytes `start..end` of an uncompressed file, buffered (a shard from `split::split_points`).
pub fn open_range(path: &str, start: u64, end: u64) -> io::Result<ByteReader> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(start))?;
    Ok(Box::new(BufReader::with_capacity(IO_BUFFER, file.take(end.saturating_sub(start)))))
}

/// A byte sink that must be finished explicitly, so a compressed stream gets its trailer
/// and every buffered byte reaches the file before the output is published.
pub trait OutputStream: Write + Send {
    fn finish(self: Box<Self>) -> io::Result<()>;
}

struct Plain<W: Write + Send>(BufWriter<W>);

impl<W: Write + Send> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write + Send> OutputStream for Plain<W> {
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.0.flush()?;
        let inner = self.0.into_inner().map_err(|e| e.into_error())?;
        drop(inner);
        Ok(())
    }
}

struct Gzip<W: Write + Send>(flate2::write::GzEncoder<BufWriter<W>>);

impl<W: Write + Send> Write for Gzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write + Send> OutputStream for Gzip<W> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        let mut inner = self.0.finish()?;
        inner.flush()
    }
}

struct Zstd<W: Write + Send>(zstd::stream::write::Encoder<'static, BufWriter<W>>);

impl<W: Write + Send> Write for Zstd<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write + Send> OutputStream for Zstd<W> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        let mut inner = self.0.finish()?;
        inner.flush()
    }
}

/// Wrap a raw writer in a buffer and the encoder its compression needs.
pub fn encoder<W: Write + Send + 'static>(raw: W, compression: Compression) -> io::Result<Box<dyn OutputStream>> {
    let buffered = BufWriter::with_capacity(IO_BUFFER, raw);
    Ok(match compression {
        Compression::None => Box::new(Plain(buffered)),
        Compression::Gzip => Box::new(Gzip(flate2::write::GzEncoder::new(buffered, flate2::Compression::fast()))),
        Compression::Zstd => Box::new(Zstd(zstd::stream::write::Encoder::new(buffered, 3)?)),
    })
}

pub fn create_file(path: &str, compression: Compression) -> io::Result<Box<dyn OutputStream>> {
    encoder(File::create(path)?, compression)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn gzip_and_zstd_round_trip() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("x.bin");
            let path = path.to_str().unwrap();
            let mut out = create_file(path, compression).unwrap();
            out.write_all(b"hello\nworld\n").unwrap();
            out.finish().unwrap();
            let mut text = String::new();
            decoder(open_file(path).unwrap(), compression).unwrap().read_to_string(&mut text).unwrap();
            assert_eq!(text, "hello\nworld\n");
        }
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gz");
        let path = path.to_str().unwrap();
        let mut out = create_file(path, Compression::Gzip).unwrap();
        for i in 0..10_000 {
            writeln!(out, "line {i}").unwrap();
        }
        out.finish().unwrap();
        let bytes = std::fs::read(path).unwrap();
        std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
        let mut text = String::new();
        let result = decoder(open_file(path).unwrap(), Compression::Gzip).unwrap().read_to_string(&mut text);
        assert!(result.is_err());
    }
}
