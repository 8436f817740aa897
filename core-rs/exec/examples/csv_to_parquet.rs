//! Profile the fast path without Python: `csv_to_parquet IN.csv OUT.parquet [encode_workers [batch_size]]`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use zoopipe_exec::arrow_sink::{ArrowEncoder, ArrowSink, TableWriter};
use zoopipe_exec::codec::{create_file, open_file, Compression};
use zoopipe_exec::csv_source::{CsvOptions, CsvSource};
use zoopipe_exec::parquet_io::{compression, ParquetWriter};
use zoopipe_exec::pipeline::{run, Output, Passthrough, Progress, RunConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let workers: usize = args.get(3).map(|w| w.parse().unwrap()).unwrap_or(1);
    let source = CsvSource::new(open_file(&args[1]).unwrap(), CsvOptions::default(), &args[1]).unwrap();
    let stream = create_file(&args[2], Compression::None).unwrap();
    let codec = compression("snappy").unwrap();
    let open: zoopipe_exec::arrow_sink::OpenTable = Box::new(move |schema| {
        ParquetWriter::open(stream, schema, codec, 122_880).map(|w| Box::new(w) as Box<dyn TableWriter>)
    });
    let output = Output {
        encoder: Some(Arc::new(ArrowEncoder { schema: None, hint: None })),
        sink: Box::new(ArrowSink::new(&args[2], None, 122_880, open)),
        columns: None,
    };
    let batch_size: usize = args.get(4).map(|b| b.parse().unwrap()).unwrap_or(1000);
    let config = RunConfig { batch_size, encode_workers: workers, ..RunConfig::default() };
    let t = std::time::Instant::now();
    let summary = run(
        Box::new(source),
        &mut Passthrough,
        output,
        None,
        &config,
        &Progress::default(),
        &AtomicBool::new(false),
        &args[1],
    )
    .unwrap();
    let s = t.elapsed().as_secs_f64();
    eprintln!("{} rows in {:.3}s: {:.2}M rows/s", summary.success, s, summary.success as f64 / s / 1e6);
}
