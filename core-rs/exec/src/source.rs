//! The contract every reader fulfils: hand out batches until the input ends.

use crate::error::ExecError;
use crate::record::Batch;

pub trait BatchSource: Send {
    /// The next batch of at most `max_rows` records, `None` at the end of the input.
    fn next_batch(&mut self, seq: u64, max_rows: usize) -> Result<Option<Batch>, ExecError>;
}

/// What part of an input to read: the user's `columns=` (None: all; each must exist), records
/// to skip at the start, and at most how many to read. Readers that can prune columns natively
/// (Parquet, Arrow) use `columns` themselves.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadOptions {
    pub columns: Option<Vec<String>>,
    pub skip_rows: u64,
    pub limit: Option<u64>,
}

/// One shard of a file (cut by `split::split_points`): bytes `start..end`, with `line_offset` lines before `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub start: u64,
    pub end: u64,
    pub line_offset: u64,
}

/// Applies `skip_rows` and `limit` to any source: the first `skip` records (parsed or failed,
/// in input order) are dropped and not counted, and reading stops after `limit` records.
pub struct SkipLimit {
    inner: Box<dyn BatchSource>,
    skip: u64,
    remaining: Option<u64>,
}

impl SkipLimit {
    /// `inner` unchanged when there is nothing to skip or limit.
    pub fn wrap(inner: Box<dyn BatchSource>, skip: u64, limit: Option<u64>) -> Box<dyn BatchSource> {
        if skip == 0 && limit.is_none() {
            return inner;
        }
        Box::new(SkipLimit { inner, skip, remaining: limit })
    }
}

impl BatchSource for SkipLimit {
    fn next_batch(&mut self, seq: u64, max_rows: usize) -> Result<Option<Batch>, ExecError> {
        loop {
            if self.remaining == Some(0) {
                return Ok(None);
            }
            let Some(mut batch) = self.inner.next_batch(seq, max_rows)? else {
                return Ok(None);
            };
            // Records are in input order by line across `rows` and `errors`.
            let mut lines: Vec<u64> =
                batch.rows.iter().map(|r| r.line).chain(batch.errors.iter().map(|e| e.line)).collect();
            lines.sort_unstable();
            let total = lines.len() as u64;
            let from = self.skip.min(total);
            self.skip -= from;
            let to = match self.remaining {
                Some(left) => (from + left).min(total),
                None => total,
            };
            if let Some(left) = self.remaining.as_mut() {
                *left -= to - from;
            }
            if from == to {
                continue;
            }
            let first = lines[from as usize];
            let past = lines.get(to as usize).copied().unwrap_or(u64::MAX);
            batch.rows.retain(|r| r.line >= first && r.line < past);
            batch.errors.retain(|e| e.line >= first && e.line < past);
            return Ok(Some(batch));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Row, RowData};
    use std::sync::Arc;

    struct Numbers(u64, u64);

    impl BatchSource for Numbers {
        fn next_batch(&mut self, seq: u64, max_rows: usize) -> Result<Option<Batch>, ExecError> {
            if self.0 >= self.1 {
                return Ok(None);
            }
            let end = (self.0 + max_rows as u64).min(self.1);
            let rows =
                (self.0..end).map(|i| Row { line: i + 1, data: RowData::Fields(vec![i.to_string()].into()) }).collect();
            self.0 = end;
            Ok(Some(Batch { seq, columns: Arc::from(vec!["n".to_string()]), rows, errors: vec![] }))
        }
    }

    #[test]
    fn skip_and_limit_count_records_across_batches() {
        let mut s = SkipLimit::wrap(Box::new(Numbers(0, 20)), 5, Some(7));
        let mut lines = vec![];
        while let Some(b) = s.next_batch(0, 3).unwrap() {
            lines.extend(b.rows.iter().map(|r| r.line));
        }
        assert_eq!(lines, (6..13).collect::<Vec<_>>());
    }
}
