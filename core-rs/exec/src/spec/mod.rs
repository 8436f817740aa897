//! What a run reads and writes, typed: the source and sink specs, parsed here and only here.
//!
//! A spec arrives as a [`SpecMap`] (the glue converts a Python dict without knowing the kinds);
//! [`SourceSpec::parse`] and [`SinkSpec::parse`] check its `kind` and every key that kind takes,
//! once per run. `H` is the glue's handle type (a Python file object, writer or iterator of
//! batches); `crate::open` turns a spec into the reader, encoder and sink it describes.
//!
//! | kind      | source                                               | sink                              |
//! |-----------|------------------------------------------------------|-----------------------------------|
//! | `csv`     | file, dialect, nulls, read options, `byte_range`     | file, dialect, `header`, columns  |
//! | `jsonl`   | file, read options, `byte_range`                     | file, columns                     |
//! | `json`    | file (one JSON array), `skip_rows`, `limit`          | file, `indent`                    |
//! | `parquet` | file (random access), read options                   | file, `schema`, `codec`, groups   |
//! | `arrow`   | file (random access), read options                   | file, `schema`, `format`, groups  |
//! | `python`  | `batches`: an iterator of lists of dicts             | `writer`: `write_batch(records)`  |
//! | `count`   |                                                      | nothing written, records counted  |
//!
//! A file is `path` (a local file, opened in Rust) or `file` (a host file object), with
//! `compression` (none, gzip, zstd). Read options are `columns`, `skip_rows` and `limit`.
//! A text source with a `byte_range` reads one shard: of the local file at `path`, or, from a
//! `file` that holds only that range (CSV: `has_header` false and `field_names`), with
//! `ends_at_cut` when the range ends at a cut made from a small window.

mod fields;
#[cfg(test)]
mod tests;

pub use fields::{single_byte, Fields, SpecError, SpecMap, SpecValue};

use crate::arrow_schema::parse_schema;
use crate::arrow_sink::TableSchema;
use crate::codec::Compression;
use crate::csv_source::CsvOptions;
use crate::encode::CsvEncoder;
use crate::source::{ReadOptions, Shard};
use std::sync::Arc;

/// Where a file is: a local path, or a file object of the host.
#[derive(Debug, Clone, PartialEq)]
pub enum Location<H> {
    Path(String),
    File(H),
}

/// A file read or written as a stream, through its compression.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamFile<H> {
    pub location: Location<H>,
    pub compression: Compression,
}

/// A text input (CSV, JSON Lines): the whole stream, one shard of a local uncompressed file, or
/// a host file object streaming one byte range of a file (a shard of a file in an object store).
#[derive(Debug, Clone, PartialEq)]
pub enum TextInput<H> {
    Whole(StreamFile<H>),
    Shard {
        path: String,
        shard: Shard,
    },
    /// `file` holds the bytes `shard.start..shard.end` only. `ends_at_cut`: the range ends at a
    /// cut the planner chose from a small window, not at the end of the file (see `crate::cut`).
    Range {
        file: H,
        shard: Shard,
        ends_at_cut: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec<H> {
    /// The source's name in error records and messages (its path; the kind by default).
    pub name: String,
    pub kind: SourceKind<H>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind<H> {
    /// `options.line_offset` is also the first line of a shard.
    Csv {
        input: TextInput<H>,
        options: CsvOptions,
        read: ReadOptions,
    },
    Jsonl {
        input: TextInput<H>,
        line_offset: u64,
        read: ReadOptions,
    },
    /// One JSON array. `read.columns` is not applied (as before the spec was typed).
    JsonArray {
        input: StreamFile<H>,
        read: ReadOptions,
    },
    Parquet {
        input: Location<H>,
        read: ReadOptions,
    },
    Arrow {
        input: Location<H>,
        read: ReadOptions,
    },
    /// An iterator of batches (lists of records) of a Python input adapter.
    Python {
        batches: H,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct SinkSpec<H> {
    /// The output's name in messages (its final path; the kind by default).
    pub name: String,
    pub kind: SinkKind<H>,
}

/// A table output's settings: its schema (None: the input table's, or inferred from the
/// records) and the rows a group holds (Parquet row groups; batches the sink settles types on).
#[derive(Debug, Clone, PartialEq)]
pub struct TableOptions {
    pub schema: Option<TableSchema>,
    pub row_group_size: usize,
}

/// `columns` (the spec's `field_names`): the columns the output writes, when fixed up front.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkKind<H> {
    /// Writes nothing; the run still counts every record.
    Count,
    Jsonl {
        target: StreamFile<H>,
        columns: Option<Vec<String>>,
    },
    Csv {
        target: StreamFile<H>,
        columns: Option<Vec<String>>,
        encoder: CsvEncoder,
    },
    JsonArray {
        target: StreamFile<H>,
        indent: Option<usize>,
    },
    Parquet {
        target: StreamFile<H>,
        table: TableOptions,
        codec: parquet::basic::Compression,
    },
    /// `stream`: the Arrow IPC stream format, else the file format.
    Arrow {
        target: StreamFile<H>,
        table: TableOptions,
        stream: bool,
    },
    /// A Python output adapter's writer, given the records themselves.
    Python {
        writer: H,
        columns: Option<Vec<String>>,
    },
}

const SOURCE_KINDS: &str = "csv, jsonl, json, parquet, arrow or python";
const SINK_KINDS: &str = "csv, jsonl, json, parquet, arrow, python or count";
/// Rows per Parquet row group (and per settling batch of a table sink) unless the spec says.
pub const DEFAULT_ROW_GROUP_SIZE: usize = 122_880;

/// The spec's kind and name (the kind when no name is given), and its other keys.
fn kind_and_name<H>(map: SpecMap<H>, role: &str, kinds: &str) -> Result<(String, String, Fields<H>), SpecError> {
    let mut fields = Fields::new(role.to_owned(), map);
    let kind = fields.string("kind")?;
    let kind = fields.required("kind", kind, kinds)?;
    let mut fields = Fields::new(format!("{kind} {role}"), fields.into_map());
    let name = fields.string("name")?.unwrap_or_else(|| kind.clone());
    Ok((kind, name, fields))
}

fn location<H>(fields: &mut Fields<H>) -> Result<Location<H>, SpecError> {
    if let Some(path) = fields.string("path")? {
        return Ok(Location::Path(path));
    }
    let file = fields.handle("file")?;
    let file = fields.required("file", file, "a path or a file")?;
    Ok(Location::File(file))
}

fn stream_file<H>(fields: &mut Fields<H>) -> Result<StreamFile<H>, SpecError> {
    let location = location(fields)?;
    let compression = fields.string("compression")?.unwrap_or_default();
    let compression = Compression::from_name(&compression).map_err(|e| fields.invalid("compression", &e))?;
    Ok(StreamFile { location, compression })
}

fn read_options<H>(fields: &mut Fields<H>) -> Result<ReadOptions, SpecError> {
    Ok(ReadOptions {
        columns: fields.strings("columns")?,
        skip_rows: fields.count("skip_rows")?.unwrap_or(0),
        limit: fields.count("limit")?,
    })
}

/// The input of a text source: a shard when the spec has a `byte_range`, else the whole file.
fn text_input<H>(fields: &mut Fields<H>, name: &str, line_offset: u64) -> Result<TextInput<H>, SpecError> {
    let byte_range = fields.pair("byte_range")?;
    let ends_at_cut = fields.boolean("ends_at_cut")?.unwrap_or(false);
    let file = stream_file(fields)?;
    let Some((start, end)) = byte_range else {
        return Ok(TextInput::Whole(file));
    };
    if file.compression != Compression::None {
        return Err(SpecError(format!(
            "{name}: a compressed file cannot be read from a byte_range (a compressed stream decodes only from its start); drop byte_range or decompress the file"
        )));
    }
    if end < start {
        return Err(SpecError(format!(
            "{name}: byte_range ({start}, {end}) ends before it starts; give (start, end) with start <= end"
        )));
    }
    let shard = Shard { start, end, line_offset };
    Ok(match file.location {
        Location::Path(path) => TextInput::Shard { path, shard },
        Location::File(file) => TextInput::Range { file, shard, ends_at_cut },
    })
}

fn table_options<H>(fields: &mut Fields<H>) -> Result<TableOptions, SpecError> {
    let schema = match fields.string("schema")? {
        Some(text) => Some(Arc::new(parse_schema(&text).map_err(|e| fields.invalid("schema", &e))?)),
        None => None,
    };
    let row_group_size = fields.size("row_group_size")?.unwrap_or(DEFAULT_ROW_GROUP_SIZE);
    Ok(TableOptions { schema, row_group_size })
}

impl<H> SourceSpec<H> {
    /// The typed source spec of `map`, or what is wrong with it.
    pub fn parse(map: SpecMap<H>) -> Result<SourceSpec<H>, SpecError> {
        let (kind, name, mut fields) = kind_and_name(map, "source", SOURCE_KINDS)?;
        let fields = &mut fields;
        let kind = match kind.as_str() {
            "csv" => {
                let options = CsvOptions {
                    delimiter: fields.byte("delimiter", b',')?,
                    quote: fields.byte("quotechar", b'"')?,
                    has_header: fields.boolean("has_header")?.unwrap_or(true),
                    field_names: fields.strings("field_names")?,
                    line_offset: fields.count("line_offset")?.unwrap_or(0),
                    null_values: fields.strings("null_values")?.unwrap_or_default(),
                    not_null_columns: fields.strings("not_null_columns")?.unwrap_or_default(),
                };
                let input = text_input(fields, &name, options.line_offset)?;
                if matches!(input, TextInput::Range { .. }) && (options.has_header || options.field_names.is_none()) {
                    return Err(SpecError(format!(
                        "{name}: a byte range of a file object holds no header: give has_header=false and field_names \
                         (the planner reads them from the start of the file)"
                    )));
                }
                SourceKind::Csv { input, options, read: read_options(fields)? }
            }
            "jsonl" => {
                let line_offset = fields.count("line_offset")?.unwrap_or(0);
                let input = text_input(fields, &name, line_offset)?;
                SourceKind::Jsonl { input, line_offset, read: read_options(fields)? }
            }
            "json" => SourceKind::JsonArray { input: stream_file(fields)?, read: read_options(fields)? },
            "parquet" => SourceKind::Parquet { input: location(fields)?, read: read_options(fields)? },
            "arrow" => SourceKind::Arrow { input: location(fields)?, read: read_options(fields)? },
            "python" => {
                let batches = fields.handle("batches")?;
                SourceKind::Python { batches: fields.required("batches", batches, "an iterator of batches")? }
            }
            other => return Err(SpecError(format!("unknown native source kind {other:?}; use {SOURCE_KINDS}"))),
        };
        Ok(SourceSpec { name, kind })
    }
}

impl<H> SinkSpec<H> {
    /// The typed sink spec of `map`, or what is wrong with it.
    pub fn parse(map: SpecMap<H>) -> Result<SinkSpec<H>, SpecError> {
        let (kind, name, mut fields) = kind_and_name(map, "output", SINK_KINDS)?;
        let fields = &mut fields;
        let kind = match kind.as_str() {
            "count" => SinkKind::Count,
            "jsonl" => SinkKind::Jsonl { columns: fields.strings("field_names")?, target: stream_file(fields)? },
            "csv" => SinkKind::Csv {
                columns: fields.strings("field_names")?,
                encoder: CsvEncoder {
                    delimiter: fields.byte("delimiter", b',')?,
                    quote: fields.byte("quotechar", b'"')?,
                    write_header: fields.boolean("header")?.unwrap_or(true),
                },
                target: stream_file(fields)?,
            },
            "json" => SinkKind::JsonArray { indent: fields.size("indent")?, target: stream_file(fields)? },
            "parquet" => {
                let codec = fields.string("codec")?.unwrap_or_else(|| "snappy".into());
                let codec = crate::parquet_io::compression(&codec).map_err(|e| fields.invalid("codec", &e))?;
                SinkKind::Parquet { table: table_options(fields)?, codec, target: stream_file(fields)? }
            }
            "arrow" => {
                let stream = match fields.string("format")?.as_deref() {
                    None | Some("file") => false,
                    Some("stream") => true,
                    Some(other) => {
                        return Err(fields
                            .invalid("format", &format!("unknown Arrow format {other:?}; use \"file\" or \"stream\"")))
                    }
                };
                SinkKind::Arrow { table: table_options(fields)?, stream, target: stream_file(fields)? }
            }
            "python" => {
                let writer = fields.handle("writer")?;
                let writer = fields.required("writer", writer, "an object with write_batch(records)")?;
                SinkKind::Python { writer, columns: fields.strings("field_names")? }
            }
            other => return Err(SpecError(format!("unknown native output kind {other:?}; use {SINK_KINDS}"))),
        };
        Ok(SinkSpec { name, kind })
    }

    /// The spec of an error output: any sink but a table, since error records hold records of
    /// any shape.
    pub fn parse_error_output(map: SpecMap<H>) -> Result<SinkSpec<H>, SpecError> {
        if let Some(SpecValue::Str(kind)) = map.get("kind") {
            if kind == "parquet" || kind == "arrow" {
                return Err(SpecError(format!(
                    "an error output cannot be {kind}: error records hold records of any shape; use JSON Lines or CSV"
                )));
            }
        }
        SinkSpec::parse(map)
    }

    /// Whether the sink writes JSON Lines (a Python stage may then encode records itself).
    pub fn encodes_jsonl(&self) -> bool {
        matches!(self.kind, SinkKind::Jsonl { .. })
    }
}
