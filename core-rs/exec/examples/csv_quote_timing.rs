//! Time the CSV encoder on one large field that needs quoting (item 15 of issue 14):
//! `cargo run --release -p zoopipe-exec --example csv_quote_timing [MB...]`. Prints, per size,
//! the median of 5 encodes of a record whose one field holds that much text: a quoted word, a
//! delimiter and a newline at its start and a quote at its end (the case the csv crate's writer
//! rescanned for every 8 KiB it wrote), then the same with a quote every 64 KiB.
use zoopipe_exec::encode::{CsvEncoder, Encoder};
use zoopipe_exec::record::{Row, RowData};
use zoopipe_exec::value::Value;

fn field(bytes: usize, dense: bool) -> String {
    if !dense {
        return format!("say \"hi\",\n{}\"", "x".repeat(bytes - 12));
    }
    let mut text = String::with_capacity(bytes);
    while text.len() < bytes {
        text.push_str(&"x".repeat(65_536 - 4));
        text.push_str("\",\n ");
    }
    text.truncate(bytes);
    text
}

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().unwrap()).collect();
    let sizes = if sizes.is_empty() { vec![1, 8, 32] } else { sizes };
    let encoder = CsvEncoder { delimiter: b',', quote: b'"', write_header: false };
    let columns = vec!["text".to_string()];
    for (mb, dense) in sizes.iter().map(|&mb| (mb, false)).chain(sizes.iter().map(|&mb| (mb, true))) {
        let rows = vec![Row {
            line: 1,
            data: RowData::Value(Value::Map(vec![("text".into(), Value::Str(field(mb << 20, dense)))])),
        }];
        let mut times: Vec<f64> = (0..5)
            .map(|_| {
                let mut out = Vec::new();
                let t = std::time::Instant::now();
                let failed = encoder.encode(&columns, &columns, &rows, &mut out);
                let secs = t.elapsed().as_secs_f64();
                assert!(failed.is_empty() && out.len() > mb << 20);
                secs
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let quotes = if dense { "a quote every 64 KiB" } else { "quotes at both ends" };
        println!("{mb} MB field, {quotes}: median {:.4} s (min {:.4}, max {:.4})", times[2], times[0], times[4]);
    }
}
