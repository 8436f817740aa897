//! zoopipe's executor: codecs, batching and the pipeline loop, in pure Rust (no Python).
//!
//! The PyO3 crate `zoopipe-py` wraps this for Python; everything here is tested with `cargo test`.

pub mod codec;
pub mod csv_source;
pub mod encode;
pub mod error;
pub mod jsonl_source;
pub mod pipeline;
pub mod record;
pub mod source;
pub mod value;

pub use error::ExecError;
pub use pipeline::{run, Output, Passthrough, Payload, Progress, RunConfig, Sink, Stage, StreamSink, Summary};
pub use record::{Batch, ErrorRecord, FailedStage, OutBatch, Row, RowData};
pub use source::{BatchSource, ReadOptions};
pub use value::Value;
