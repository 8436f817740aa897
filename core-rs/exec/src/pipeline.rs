//! The pipeline loop. Four kinds of thread overlap the work:
//! a reader parses the input, the calling thread runs the stage (where Python runs, taking the
//! GIL only there), encoder threads serialise batches in parallel, and one writer writes the
//! encoded batches in input order. Bounded queues keep memory flat whatever the input size.
//! With `RunConfig::inline` the same steps run one after the other on the calling thread.

use crate::encode::Encoder;
use crate::error::ExecError;
use crate::record::{Batch, ErrorRecord, FailedStage, OutBatch, Row, RowData};
use crate::sink::{Payload, Sink};
use crate::source::BatchSource;
use crate::value::Value;
use crossbeam_channel::bounded;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Turns a read batch into records to write and records that failed.
pub trait Stage {
    fn process(&mut self, batch: Batch) -> Result<OutBatch, ExecError>;
}

/// The stage of a pipe with no Python work: records go straight from reader to writer.
pub struct Passthrough;

impl Stage for Passthrough {
    fn process(&mut self, batch: Batch) -> Result<OutBatch, ExecError> {
        Ok(OutBatch {
            seq: batch.seq,
            columns: batch.columns,
            rows: batch.rows,
            errors: batch.errors,
            originals: Vec::new(),
            encoded: None,
        })
    }
}

/// An output: its sink, the encoder that feeds it (None: the sink takes records), and the
/// columns it writes when they are fixed up front (CSV with explicit field names).
pub struct Output {
    pub encoder: Option<Arc<dyn Encoder>>,
    pub sink: Box<dyn Sink>,
    pub columns: Option<Arc<[String]>>,
}

/// Live counters, read from other threads while the run goes on. A batch is counted once it
/// is written, so a stopped or failed run still has `read == success + errors`: the records
/// it had in flight were neither written nor refused.
#[derive(Default, Debug)]
pub struct Progress {
    pub read: AtomicU64,
    pub success: AtomicU64,
    pub errors: AtomicU64,
    pub batches: AtomicU64,
}

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub batch_size: usize,
    pub encode_workers: usize,
    pub queue_depth: usize,
    /// Run reading, the stage, encoding and writing on the calling thread (no helper threads).
    pub inline: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig { batch_size: 1000, encode_workers: 1, queue_depth: 4, inline: false }
    }
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub read: u64,
    pub success: u64,
    pub errors: u64,
    /// The first error records, kept when the pipe has no error output so they are not lost
    /// from sight (the count is always exact).
    pub error_samples: Vec<ErrorRecord>,
}

const MAX_ERROR_SAMPLES: usize = 100;

struct Encoded {
    seq: u64,
    columns: Arc<[String]>,
    main: Payload,
    errors: Vec<ErrorRecord>,
    error_bytes: Option<Payload>,
    success: u64,
}

/// The first failure wins; every thread checks `aborted` and winds down.
#[derive(Default)]
struct FailureSlot {
    error: Mutex<Option<ExecError>>,
    aborted: AtomicBool,
}

impl FailureSlot {
    fn record(&self, e: ExecError) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
        self.aborted.store(true, Ordering::SeqCst);
    }
    fn take(&self) -> Option<ExecError> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
    fn aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }
}

fn error_rows(errors: &[ErrorRecord], columns: &[String]) -> Vec<Row> {
    errors.iter().map(|e| Row { line: e.line, data: RowData::Value(e.to_columns(columns)) }).collect()
}

/// Error rows for an encoder: a record that failed to serialise may hold values JSON cannot
/// express (NaN), so they are written as text rather than losing the error record.
fn encodable_error_rows(errors: &[ErrorRecord], columns: &[String]) -> Vec<Row> {
    errors.iter().map(|e| Row { line: e.line, data: RowData::Value(e.to_columns(columns).to_encodable()) }).collect()
}

/// The columns an error output writes: those it was given, or every field of an error record.
fn error_columns(errors: Option<&Output>) -> Arc<[String]> {
    match errors.and_then(|o| o.columns.clone()) {
        Some(columns) => columns,
        None => ErrorRecord::COLUMNS.iter().map(|c| c.to_string()).collect::<Vec<_>>().into(),
    }
}

fn output_columns(out: &OutBatch) -> Option<Arc<[String]>> {
    match &out.rows.first()?.data {
        RowData::Fields(_) => Some(out.columns.clone()),
        RowData::Value(Value::Map(items)) => Some(items.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>().into()),
        RowData::Value(_) => None,
    }
}

/// Encode one batch: the records for the main output, then the errors, including the
/// records the main encoder refused.
fn encode_batch(
    mut out: OutBatch,
    out_columns: Arc<[String]>,
    main_encoder: &Option<Arc<dyn Encoder>>,
    error_encoder: &Option<Arc<dyn Encoder>>,
    has_error_sink: bool,
    error_columns: &Arc<[String]>,
    source_name: &str,
) -> Encoded {
    let (main, written) = match (out.encoded.take(), main_encoder) {
        // The stage encoded its records itself; `rows` is then empty.
        (Some(encoded), _) => (Payload::Bytes(encoded.bytes), encoded.records),
        (None, Some(encoder)) => {
            let (payload, failed) = encoder.encode_payload(&out.columns, &out_columns, &out.rows);
            let written = (out.rows.len() - failed.len()) as u64;
            for (index, reason) in failed {
                let row = &out.rows[index];
                let original = out.originals.get(index).unwrap_or(&row.data);
                out.errors.push(ErrorRecord {
                    source: Arc::from(source_name),
                    line: row.line,
                    stage: FailedStage::Serialize,
                    messages: vec![reason],
                    record: original.to_value(&out.columns),
                });
            }
            (payload, written)
        }
        (None, None) => {
            let written = out.rows.len() as u64;
            (Payload::Rows { columns: out.columns.clone(), rows: std::mem::take(&mut out.rows) }, written)
        }
    };
    // Errors from every stage, in input order.
    out.errors.sort_by_key(|e| e.line);
    let error_bytes = if has_error_sink {
        Some(match error_encoder {
            Some(encoder) => {
                let rows = encodable_error_rows(&out.errors, error_columns);
                let mut bytes = Vec::with_capacity(rows.len() * 256);
                // Error records are plain, encodable values: none is refused.
                let refused = encoder.encode(error_columns, error_columns, &rows, &mut bytes);
                assert!(refused.is_empty(), "error records were refused: {refused:?}");
                Payload::Bytes(bytes)
            }
            None => Payload::Rows { columns: error_columns.clone(), rows: error_rows(&out.errors, error_columns) },
        })
    } else {
        None
    };
    Encoded { seq: out.seq, columns: out_columns, main, errors: out.errors, error_bytes, success: written }
}

/// How a run encodes batches: the encoders of both outputs and where records come from.
struct Encoding<'a> {
    main: Option<Arc<dyn Encoder>>,
    errors: Option<Arc<dyn Encoder>>,
    has_error_sink: bool,
    error_columns: Arc<[String]>,
    source_name: &'a str,
}

impl Encoding<'_> {
    fn encode(&self, out: OutBatch, columns: Arc<[String]>) -> Encoded {
        encode_batch(out, columns, &self.main, &self.errors, self.has_error_sink, &self.error_columns, self.source_name)
    }
}

/// Runs the stage on one batch and checks that no record was lost; keeps the output columns
/// (fixed up front, or those of the first records) and the count of records read.
struct StageStep<'s> {
    stage: &'s mut dyn Stage,
    out_columns: Option<Arc<[String]>>,
    read: u64,
}

impl StageStep<'_> {
    fn process(&mut self, batch: Batch) -> Result<(OutBatch, Arc<[String]>), ExecError> {
        let read = batch.records_read();
        self.read += read;
        let seq = batch.seq;
        let out = self.stage.process(batch)?;
        if out.seq != seq {
            return Err(ExecError::Internal("the stage changed a batch's sequence number".into()));
        }
        let written = out.records_out() + out.errors.len() as u64;
        if written != read {
            return Err(ExecError::Internal(format!(
                "the stage returned {written} records for a batch of {read}: records must not be lost"
            )));
        }
        if self.out_columns.is_none() {
            self.out_columns = output_columns(&out);
        }
        let columns = self.out_columns.clone().unwrap_or_else(|| Arc::from(Vec::new()));
        Ok((out, columns))
    }
}

/// Writes encoded batches to the sinks in input order (they may arrive out of order from
/// parallel encoders), writes the headers, and counts what was written.
struct OrderedWriter<'a> {
    main_sink: Box<dyn Sink>,
    error_sink: Option<Box<dyn Sink>>,
    header_encoder: Option<Arc<dyn Encoder>>,
    fixed_columns: Option<Arc<[String]>>,
    pending: BTreeMap<u64, Encoded>,
    next: u64,
    header_written: bool,
    success: u64,
    failed: u64,
    samples: Vec<ErrorRecord>,
    progress: &'a Progress,
}

type WriterCounts = (u64, u64, Vec<ErrorRecord>);

impl<'a> OrderedWriter<'a> {
    fn new(main: Output, errors: Option<Output>, progress: &'a Progress) -> Result<Self, ExecError> {
        let mut error_sink = None;
        let columns = error_columns(errors.as_ref());
        if let Some(Output { encoder, mut sink, .. }) = errors {
            // The error output's columns are fixed: its header (CSV) goes first.
            if let Some(encoder) = encoder {
                if let Some(header) = encoder.header(&columns) {
                    sink.write(Payload::Bytes(header))?;
                }
            }
            error_sink = Some(sink);
        }
        Ok(OrderedWriter {
            main_sink: main.sink,
            error_sink,
            header_encoder: main.encoder,
            fixed_columns: main.columns,
            pending: BTreeMap::new(),
            next: 0,
            header_written: false,
            success: 0,
            failed: 0,
            samples: Vec::new(),
            progress,
        })
    }

    fn accept(&mut self, encoded: Encoded) -> Result<(), ExecError> {
        self.pending.insert(encoded.seq, encoded);
        while let Some(batch) = self.pending.remove(&self.next) {
            self.next += 1;
            if !self.header_written && !batch.columns.is_empty() {
                self.header_written = true;
                if let Some(header) = self.header_encoder.as_ref().and_then(|e| e.header(&batch.columns)) {
                    self.main_sink.write(Payload::Bytes(header))?;
                }
            }
            self.main_sink.write(batch.main)?;
            if let (Some(sink), Some(payload)) = (self.error_sink.as_mut(), batch.error_bytes) {
                sink.write(payload)?;
            } else if self.samples.len() < MAX_ERROR_SAMPLES {
                let room = MAX_ERROR_SAMPLES - self.samples.len();
                self.samples.extend(batch.errors.iter().take(room).cloned());
            }
            let errors = batch.errors.len() as u64;
            self.success += batch.success;
            self.failed += errors;
            self.progress.read.fetch_add(batch.success + errors, Ordering::Relaxed);
            self.progress.success.fetch_add(batch.success, Ordering::Relaxed);
            self.progress.errors.fetch_add(errors, Ordering::Relaxed);
            self.progress.batches.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Flush and close the sinks once the whole input went through; a run that stopped early
    /// only returns its counts (its outputs are incomplete and are not published).
    fn finish(mut self, completed: bool) -> Result<WriterCounts, ExecError> {
        if !completed {
            return Ok((self.success, self.failed, self.samples));
        }
        if !self.pending.is_empty() {
            return Err(ExecError::Internal(format!("{} batches were never written", self.pending.len())));
        }
        if !self.header_written {
            if let (Some(columns), Some(encoder)) = (&self.fixed_columns, &self.header_encoder) {
                if let Some(header) = encoder.header(columns) {
                    self.main_sink.write(Payload::Bytes(header))?;
                }
            }
        }
        self.main_sink.finish()?;
        if let Some(sink) = self.error_sink {
            sink.finish()?;
        }
        Ok((self.success, self.failed, self.samples))
    }
}

/// Run a pipe to the end. On `Err`, outputs are incomplete and must not be published.
#[allow(clippy::too_many_arguments)]
pub fn run(
    source: Box<dyn BatchSource>,
    stage: &mut dyn Stage,
    main: Output,
    errors: Option<Output>,
    config: &RunConfig,
    progress: &Progress,
    stop: &AtomicBool,
    source_name: &str,
) -> Result<Summary, ExecError> {
    let encoding = Encoding {
        main: main.encoder.clone(),
        errors: errors.as_ref().and_then(|o| o.encoder.clone()),
        has_error_sink: errors.is_some(),
        error_columns: error_columns(errors.as_ref()),
        source_name,
    };
    let mut step = StageStep { stage, out_columns: main.columns.clone(), read: 0 };
    let writer = OrderedWriter::new(main, errors, progress)?;
    let (success, errors, error_samples) = if config.inline {
        run_inline(source, &mut step, &encoding, writer, config, stop)?
    } else {
        run_threaded(source, &mut step, &encoding, writer, config, stop)?
    };
    if stop.load(Ordering::SeqCst) {
        return Err(ExecError::Cancelled);
    }
    let read_total = step.read;
    if success + errors != read_total {
        return Err(ExecError::Internal(format!(
            "counts do not add up: read {read_total}, written {success}, errors {errors}"
        )));
    }
    Ok(Summary { read: read_total, success, errors, error_samples })
}

/// Everything on the calling thread, one batch at a time: for a pipe that has one core to
/// itself (a shard among as many as there are cores), where helper threads would only take
/// turns with the stage and with the other shards.
fn run_inline(
    mut source: Box<dyn BatchSource>,
    step: &mut StageStep<'_>,
    encoding: &Encoding<'_>,
    mut writer: OrderedWriter<'_>,
    config: &RunConfig,
    stop: &AtomicBool,
) -> Result<WriterCounts, ExecError> {
    let batch_size = config.batch_size.max(1);
    let mut seq = 0u64;
    loop {
        if stop.load(Ordering::SeqCst) {
            return Err(ExecError::Cancelled);
        }
        let Some(batch) = source.next_batch(seq, batch_size)? else {
            break;
        };
        seq += 1;
        let (out, columns) = step.process(batch)?;
        writer.accept(encoding.encode(out, columns))?;
    }
    writer.finish(true)
}

/// A reader thread, the stage on the calling thread, `encode_workers` encoder threads and a
/// writer thread, joined by bounded queues.
fn run_threaded(
    mut source: Box<dyn BatchSource>,
    step: &mut StageStep<'_>,
    encoding: &Encoding<'_>,
    mut writer: OrderedWriter<'_>,
    config: &RunConfig,
    stop: &AtomicBool,
) -> Result<WriterCounts, ExecError> {
    let failure = FailureSlot::default();
    let batch_size = config.batch_size.max(1);
    let workers = config.encode_workers.max(1);
    let depth = config.queue_depth.max(1);

    let writer_result = std::thread::scope(|scope| {
        let (tx_read, rx_read) = bounded::<Result<Batch, ExecError>>(depth);
        let (tx_stage, rx_stage) = bounded::<(OutBatch, Arc<[String]>)>(depth);
        let (tx_enc, rx_enc) = bounded::<Encoded>(depth * workers);
        let failure = &failure;

        scope.spawn(move || {
            let mut seq = 0u64;
            loop {
                if stop.load(Ordering::SeqCst) || failure.aborted() {
                    break;
                }
                match source.next_batch(seq, batch_size) {
                    Ok(Some(batch)) => {
                        if tx_read.send(Ok(batch)).is_err() {
                            break;
                        }
                        seq += 1;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx_read.send(Err(e));
                        break;
                    }
                }
            }
        });

        for _ in 0..workers {
            let rx = rx_stage.clone();
            let tx = tx_enc.clone();
            scope.spawn(move || {
                for (out, columns) in rx.iter() {
                    if tx.send(encoding.encode(out, columns)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(rx_stage);
        drop(tx_enc);

        let writer = scope.spawn(move || -> Result<WriterCounts, ExecError> {
            for encoded in rx_enc.iter() {
                writer.accept(encoded)?;
            }
            writer.finish(!failure.aborted() && !stop.load(Ordering::SeqCst))
        });

        // The stage runs here, on the caller's thread.
        let stage_result = (|| -> Result<(), ExecError> {
            for message in rx_read.iter() {
                if stop.load(Ordering::SeqCst) {
                    return Err(ExecError::Cancelled);
                }
                if failure.aborted() {
                    return Ok(());
                }
                let out = step.process(message?)?;
                if tx_stage.send(out).is_err() {
                    return Ok(());
                }
            }
            if stop.load(Ordering::SeqCst) {
                return Err(ExecError::Cancelled);
            }
            Ok(())
        })();
        drop(tx_stage);
        drop(rx_read);
        if let Err(e) = stage_result {
            failure.record(e);
        }
        writer.join().unwrap_or_else(|_| Err(ExecError::Internal("the writer thread panicked".into())))
    });

    if let Some(e) = failure.take() {
        return Err(e);
    }
    writer_result
}
