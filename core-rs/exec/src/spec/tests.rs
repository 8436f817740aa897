//! Every kind of source and sink parses from its neutral map; bad specs are explained.

use super::*;

/// A handle of the tests: a number standing for a host object.
type H = u32;

fn s(text: &str) -> SpecValue<H> {
    SpecValue::Str(text.into())
}

fn n(value: i64) -> SpecValue<H> {
    SpecValue::Int(value)
}

fn strs(items: &[&str]) -> SpecValue<H> {
    SpecValue::List(items.iter().map(|t| s(t)).collect())
}

fn map(items: Vec<(&str, SpecValue<H>)>) -> SpecMap<H> {
    items.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn source(items: Vec<(&str, SpecValue<H>)>) -> Result<SourceSpec<H>, String> {
    SourceSpec::parse(map(items)).map_err(|e| e.to_string())
}

fn sink(items: Vec<(&str, SpecValue<H>)>) -> Result<SinkSpec<H>, String> {
    SinkSpec::parse(map(items)).map_err(|e| e.to_string())
}

fn path(p: &str) -> StreamFile<H> {
    StreamFile { location: Location::Path(p.into()), compression: Compression::None }
}

#[test]
fn csv_source_with_every_option() {
    let spec = source(vec![
        ("kind", s("csv")),
        ("name", s("in.csv")),
        ("path", s("/data/in.csv.gz")),
        ("compression", s("gzip")),
        ("delimiter", s(";")),
        ("quotechar", s("'")),
        ("has_header", SpecValue::Bool(false)),
        ("field_names", strs(&["a", "b"])),
        ("line_offset", n(7)),
        ("null_values", strs(&["NA"])),
        ("not_null_columns", strs(&["b"])),
        ("columns", strs(&["b"])),
        ("skip_rows", n(2)),
        ("limit", n(10)),
        ("url", s("ignored: a key the kind does not take")),
    ])
    .unwrap();
    let options = CsvOptions {
        delimiter: b';',
        quote: b'\'',
        has_header: false,
        field_names: Some(vec!["a".into(), "b".into()]),
        line_offset: 7,
        null_values: vec!["NA".into()],
        not_null_columns: vec!["b".into()],
    };
    let input = TextInput::Whole(StreamFile {
        location: Location::Path("/data/in.csv.gz".into()),
        compression: Compression::Gzip,
    });
    let read = ReadOptions { columns: Some(vec!["b".into()]), skip_rows: 2, limit: Some(10) };
    assert_eq!(spec, SourceSpec { name: "in.csv".into(), kind: SourceKind::Csv { input, options, read } });
}

#[test]
fn defaults_and_nulls_stand_for_missing_keys() {
    let spec = source(vec![("kind", s("csv")), ("file", SpecValue::Handle(3)), ("limit", SpecValue::Null)]).unwrap();
    let input = TextInput::Whole(StreamFile { location: Location::File(3), compression: Compression::None });
    let kind = SourceKind::Csv { input, options: CsvOptions::default(), read: ReadOptions::default() };
    assert_eq!(spec, SourceSpec { name: "csv".into(), kind });
}

#[test]
fn text_sources_read_a_shard_of_a_local_file() {
    let spec = source(vec![
        ("kind", s("jsonl")),
        ("path", s("f.jsonl")),
        ("byte_range", SpecValue::List(vec![n(10), n(20)])),
        ("line_offset", n(3)),
    ])
    .unwrap();
    let shard = Shard { start: 10, end: 20, line_offset: 3 };
    let kind = SourceKind::Jsonl {
        input: TextInput::Shard { path: "f.jsonl".into(), shard },
        line_offset: 3,
        read: ReadOptions::default(),
    };
    assert_eq!(spec.kind, kind);
    let csv = source(vec![("kind", s("csv")), ("path", s("f.csv")), ("byte_range", SpecValue::List(vec![n(0), n(0)]))])
        .unwrap();
    assert!(matches!(csv.kind, SourceKind::Csv { input: TextInput::Shard { .. }, .. }));
}

#[test]
fn a_shard_needs_an_uncompressed_file_and_an_ordered_range() {
    let range = |a, b| SpecValue::List(vec![n(a), n(b)]);
    let err =
        source(vec![("kind", s("csv")), ("name", s("x")), ("file", SpecValue::Handle(1)), ("byte_range", range(0, 5))])
            .unwrap_err();
    assert!(err.starts_with("x: a byte range of a file object holds no header"), "{err}");
    let csv = source(vec![
        ("kind", s("csv")),
        ("file", SpecValue::Handle(1)),
        ("byte_range", range(4, 9)),
        ("ends_at_cut", SpecValue::Bool(true)),
        ("has_header", SpecValue::Bool(false)),
        ("field_names", SpecValue::List(vec![s("a")])),
    ])
    .unwrap();
    let shard = Shard { start: 4, end: 9, line_offset: 0 };
    assert!(
        matches!(csv.kind, SourceKind::Csv { input: TextInput::Range { file: 1, shard: s, ends_at_cut: true }, .. } if s == shard)
    );
    let err =
        source(vec![("kind", s("jsonl")), ("path", s("f")), ("compression", s("zstd")), ("byte_range", range(0, 5))])
            .unwrap_err();
    assert!(err.contains("a compressed file cannot be read from a byte_range"), "{err}");
    let err = source(vec![("kind", s("jsonl")), ("path", s("f")), ("byte_range", range(5, 2))]).unwrap_err();
    assert!(err.contains("byte_range (5, 2) ends before it starts"), "{err}");
}

#[test]
fn json_parquet_arrow_and_python_sources() {
    let read = ReadOptions { columns: None, skip_rows: 1, limit: Some(2) };
    let keys = |kind| vec![("kind", s(kind)), ("path", s("t")), ("skip_rows", n(1)), ("limit", n(2))];
    assert_eq!(source(keys("json")).unwrap().kind, SourceKind::JsonArray { input: path("t"), read: read.clone() });
    assert_eq!(
        source(keys("parquet")).unwrap().kind,
        SourceKind::Parquet { input: Location::Path("t".into()), read: read.clone() }
    );
    assert_eq!(source(keys("arrow")).unwrap().kind, SourceKind::Arrow { input: Location::Path("t".into()), read });
    let python = source(vec![("kind", s("python")), ("batches", SpecValue::Handle(9)), ("name", s("gen"))]).unwrap();
    assert_eq!(python, SourceSpec { name: "gen".into(), kind: SourceKind::Python { batches: 9 } });
}

#[test]
fn every_sink_kind() {
    assert_eq!(sink(vec![("kind", s("count")), ("name", s("count"))]).unwrap().kind, SinkKind::Count);
    let jsonl = sink(vec![("kind", s("jsonl")), ("path", s("o.jsonl"))]).unwrap();
    assert!(jsonl.encodes_jsonl());
    assert_eq!(
        jsonl,
        SinkSpec { name: "jsonl".into(), kind: SinkKind::Jsonl { target: path("o.jsonl"), columns: None } }
    );
    let csv = sink(vec![
        ("kind", s("csv")),
        ("file", SpecValue::Handle(4)),
        ("compression", s("zstd")),
        ("delimiter", s("\t")),
        ("header", SpecValue::Bool(false)),
        ("field_names", strs(&["a"])),
    ])
    .unwrap();
    let target = StreamFile { location: Location::File(4), compression: Compression::Zstd };
    let encoder = CsvEncoder { delimiter: b'\t', quote: b'"', write_header: false };
    assert_eq!(csv.kind, SinkKind::Csv { target, columns: Some(vec!["a".into()]), encoder });
    assert!(!csv.encodes_jsonl());
    let json = sink(vec![("kind", s("json")), ("path", s("o.json")), ("indent", n(2))]).unwrap();
    assert_eq!(json.kind, SinkKind::JsonArray { target: path("o.json"), indent: Some(2) });
    let python =
        sink(vec![("kind", s("python")), ("writer", SpecValue::Handle(5)), ("field_names", strs(&["x"]))]).unwrap();
    assert_eq!(python.kind, SinkKind::Python { writer: 5, columns: Some(vec!["x".into()]) });
}

#[test]
fn table_sinks_take_a_schema_a_codec_a_format_and_a_group_size() {
    let schema = r#"[{"name": "n", "type": "int64", "nullable": false}]"#;
    let parquet =
        sink(vec![("kind", s("parquet")), ("path", s("o.parquet")), ("schema", s(schema)), ("codec", s("zstd"))])
            .unwrap();
    let SinkKind::Parquet { target, table, codec } = parquet.kind else { panic!("{parquet:?}") };
    assert_eq!(target, path("o.parquet"));
    assert_eq!(table.schema.unwrap().field(0).name(), "n");
    assert_eq!(table.row_group_size, DEFAULT_ROW_GROUP_SIZE);
    assert_eq!(codec, crate::parquet_io::compression("zstd").unwrap());
    let arrow =
        sink(vec![("kind", s("arrow")), ("path", s("o.arrow")), ("format", s("stream")), ("row_group_size", n(10))])
            .unwrap();
    let table = TableOptions { schema: None, row_group_size: 10 };
    assert_eq!(arrow.kind, SinkKind::Arrow { target: path("o.arrow"), table, stream: true });
    let file = sink(vec![("kind", s("arrow")), ("path", s("o.arrow"))]).unwrap();
    assert!(matches!(file.kind, SinkKind::Arrow { stream: false, .. }));
}

/// The error of each bad spec names the kind and the key at fault.
#[test]
fn bad_specs_name_the_kind_and_the_key() {
    let cases: Vec<(Result<(), String>, &str)> = vec![
        (source(vec![("path", s("f"))]).map(drop), r#"the source spec's "kind" is missing"#),
        (source(vec![("kind", s("xml"))]).map(drop), r#"unknown native source kind "xml"; use csv, jsonl"#),
        (sink(vec![("kind", s("xml"))]).map(drop), r#"unknown native output kind "xml"; use csv, jsonl"#),
        (source(vec![("kind", n(1))]).map(drop), r#"the source spec's "kind" must be a string, got an integer"#),
        (
            source(vec![("kind", s("csv"))]).map(drop),
            r#"the csv source spec's "file" is missing: give a path or a file"#,
        ),
        (
            sink(vec![("kind", s("json"))]).map(drop),
            r#"the json output spec's "file" is missing: give a path or a file"#,
        ),
        (
            source(vec![("kind", s("csv")), ("path", s("f")), ("has_header", s("yes"))]).map(drop),
            r#"the csv source spec's "has_header" must be a boolean, got a string"#,
        ),
        (
            source(vec![("kind", s("jsonl")), ("path", s("f")), ("limit", n(-1))]).map(drop),
            r#"the jsonl source spec's "limit" must be >= 0, got -1"#,
        ),
        (
            source(vec![("kind", s("parquet")), ("path", s("f")), ("columns", s("a"))]).map(drop),
            r#"the parquet source spec's "columns" must be a list of strings, got a string"#,
        ),
        (
            source(vec![("kind", s("csv")), ("path", s("f")), ("null_values", SpecValue::List(vec![n(1)]))]).map(drop),
            r#"the csv source spec's "null_values" must be a list of strings, got an integer"#,
        ),
        (
            source(vec![("kind", s("csv")), ("path", s("f")), ("byte_range", n(3))]).map(drop),
            r#"the csv source spec's "byte_range" must be a pair of integers (start, end), got an integer"#,
        ),
        (
            source(vec![("kind", s("csv")), ("path", SpecValue::Handle(1))]).map(drop),
            r#"the csv source spec's "path" must be a string, got an object"#,
        ),
        (
            source(vec![("kind", s("jsonl")), ("file", s("f.jsonl"))]).map(drop),
            r#"the jsonl source spec's "file" must be an object, got a string"#,
        ),
        (source(vec![("kind", s("python"))]).map(drop), r#"the python source spec's "batches" is missing"#),
        (sink(vec![("kind", s("python"))]).map(drop), r#"the python output spec's "writer" is missing"#),
        (
            source(vec![("kind", s("csv")), ("path", s("f")), ("delimiter", s(";;"))]).map(drop),
            r#"delimiter must be a single ASCII character, got ";;""#,
        ),
        (
            sink(vec![("kind", s("csv")), ("path", s("f")), ("quotechar", s("«"))]).map(drop),
            r#"quotechar must be a single ASCII character, got "«""#,
        ),
        (
            sink(vec![("kind", s("jsonl")), ("path", s("f")), ("compression", s("rar"))]).map(drop),
            r#"the jsonl output spec's "compression": unknown compression "rar""#,
        ),
        (
            sink(vec![("kind", s("json")), ("path", s("f")), ("indent", SpecValue::Float(2.5))]).map(drop),
            r#"the json output spec's "indent" must be an integer, got a float"#,
        ),
        (
            sink(vec![("kind", s("parquet")), ("path", s("f")), ("codec", s("brotli"))]).map(drop),
            r#"the parquet output spec's "codec": unknown Parquet compression "brotli""#,
        ),
        (
            sink(vec![("kind", s("parquet")), ("path", s("f")), ("schema", s("not json"))]).map(drop),
            r#"the parquet output spec's "schema": "#,
        ),
        (
            sink(vec![("kind", s("arrow")), ("path", s("f")), ("format", s("feather"))]).map(drop),
            r#"the arrow output spec's "format": unknown Arrow format "feather"; use "file" or "stream""#,
        ),
        (
            sink(vec![("kind", s("arrow")), ("path", s("f")), ("row_group_size", SpecValue::Bool(true))]).map(drop),
            r#"the arrow output spec's "row_group_size" must be an integer, got a boolean"#,
        ),
    ];
    for (result, expected) in cases {
        let err = result.expect_err(expected);
        assert!(err.starts_with(expected), "{err:?} does not start with {expected:?}");
    }
}

#[test]
fn an_error_output_cannot_be_a_table() {
    for kind in ["parquet", "arrow"] {
        let err = SinkSpec::parse_error_output(map(vec![("kind", s(kind)), ("path", s("e"))])).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("an error output cannot be {kind}: error records hold records of any shape; use JSON Lines or CSV")
        );
    }
    let ok = SinkSpec::parse_error_output(map(vec![("kind", s("csv")), ("path", s("e.csv"))])).unwrap();
    assert!(matches!(ok.kind, SinkKind::Csv { .. }));
}
