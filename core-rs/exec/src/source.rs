//! The contract every reader fulfils: hand out batches until the input ends.

use crate::error::ExecError;
use crate::record::Batch;

pub trait BatchSource: Send {
    /// The next batch of at most `max_rows` records, `None` at the end of the input.
    fn next_batch(&mut self, seq: u64, max_rows: usize) -> Result<Option<Batch>, ExecError>;
}
