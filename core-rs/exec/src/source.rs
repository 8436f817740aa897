//! The contract every reader fulfils: hand out batches until the input ends.

use crate::error::ExecError;
use crate::record::Batch;

pub trait BatchSource: Send {
    /// The next batch of at most `max_rows` records, `None` at the end of the input.
    fn next_batch(&mut self, seq: u64, max_rows: usize) -> Result<Option<Batch>, ExecError>;
}

/// What part of an input to read: the columns a schema needs (None: all), records to skip
/// at the start, and at most how many to read. Readers that can prune columns natively
/// (Parquet, Arrow) use `columns` themselves.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadOptions {
    pub columns: Option<Vec<String>>,
    pub skip_rows: u64,
    pub limit: Option<u64>,
}
