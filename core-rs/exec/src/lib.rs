//! zoopipe's executor: codecs, batching and the pipeline loop, in pure Rust (no Python).
//!
//! The PyO3 crate `zoopipe-py` wraps this for Python; everything here is tested with `cargo test`.

pub mod arrow_build;
pub mod arrow_rows;
pub mod arrow_schema;
pub mod arrow_sink;
pub mod codec;
pub mod csv_records;
pub mod csv_source;
pub mod cut;
pub mod encode;
pub mod error;
pub mod ipc_io;
pub mod json_array;
pub mod jsonl_source;
pub mod open;
pub mod parquet_io;
pub mod pipeline;
pub mod ranged_io;
pub mod record;
pub mod sink;
pub mod source;
pub mod spec;
pub mod split;
pub mod temporal;
pub mod value;

pub use error::ExecError;
pub use pipeline::{run, Output, Passthrough, Progress, RunConfig, Stage, Summary};
pub use record::{Batch, ErrorRecord, FailedStage, Fields, OutBatch, PreEncoded, Row, RowData};
pub use sink::{DiscardSink, Payload, Sink, StreamSink};
pub use source::{BatchSource, ReadOptions};
pub use value::Value;
