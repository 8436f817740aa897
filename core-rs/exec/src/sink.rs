//! Where encoded batches go: the payload a sink receives, the sink contract, and the two plain
//! sinks (a byte stream, and nothing at all for a count-only output).

use crate::codec::OutputStream;
use crate::error::ExecError;
use crate::record::Row;
use std::io::Write;
use std::sync::Arc;

/// What a sink receives: encoded bytes, or the records themselves for sinks that encode
/// on their own (Python writers).
pub enum Payload {
    Bytes(Vec<u8>),
    Rows {
        columns: Arc<[String]>,
        rows: Vec<Row>,
    },
    /// A record batch built by an Arrow encoder, for the Parquet and Arrow IPC writers.
    Arrow(arrow_array::RecordBatch),
}

pub trait Sink: Send {
    fn write(&mut self, payload: Payload) -> Result<(), ExecError>;
    /// Flush everything. Publishing (renaming into place) is the caller's business.
    fn finish(self: Box<Self>) -> Result<(), ExecError>;
}

/// Writes bytes to a stream (a file, possibly compressed, or a Python file object).
pub struct StreamSink {
    target: String,
    stream: Box<dyn OutputStream>,
}

impl StreamSink {
    pub fn new(target: &str, stream: Box<dyn OutputStream>) -> StreamSink {
        StreamSink { target: target.to_owned(), stream }
    }

    fn fail(&self, e: std::io::Error) -> ExecError {
        ExecError::Output { target: self.target.clone(), message: e.to_string() }
    }
}

impl Sink for StreamSink {
    fn write(&mut self, payload: Payload) -> Result<(), ExecError> {
        match payload {
            Payload::Bytes(bytes) => self.stream.write_all(&bytes).map_err(|e| self.fail(e)),
            Payload::Rows { .. } | Payload::Arrow(_) => {
                Err(ExecError::Internal(format!("{} expects encoded bytes but was given records", self.target)))
            }
        }
    }

    fn finish(self: Box<Self>) -> Result<(), ExecError> {
        let target = self.target.clone();
        self.stream.finish().map_err(|e| ExecError::Output { target, message: e.to_string() })
    }
}

/// Writes nothing: the sink of a count-only output. The run still counts every record.
pub struct DiscardSink;

impl Sink for DiscardSink {
    fn write(&mut self, _payload: Payload) -> Result<(), ExecError> {
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), ExecError> {
        Ok(())
    }
}
