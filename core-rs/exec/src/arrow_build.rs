//! Rows to Arrow record batches, column by column. Runs in the encoder threads, so batches
//! are built in parallel; a record that does not fit the schema is left out and reported.

use crate::arrow_schema::{infer_type, merge_types};
use crate::record::{Fields as TextFields, Row, RowData};
use crate::temporal::TimeUnit;
use crate::value::Value;
use arrow_array::builder::*;
use arrow_array::types::*;
use arrow_array::{new_null_array, ArrayRef, ArrowPrimitiveType, ListArray, NullArray, RecordBatch, StructArray};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit as ArrowUnit};
use std::sync::Arc;

/// One value to put in a column: a CSV field's text, a value, or nothing.
#[derive(Clone, Copy)]
enum Cell<'a> {
    Null,
    Text(&'a str),
    Val(&'a Value),
}

impl<'a> Cell<'a> {
    fn is_null(&self) -> bool {
        matches!(self, Cell::Null | Cell::Val(Value::Null))
    }
    fn type_name(&self) -> &'static str {
        match self {
            Cell::Null => "null",
            Cell::Text(_) => "string",
            Cell::Val(v) => v.type_name(),
        }
    }
}

type Failure = (usize, String);

fn mismatch(dtype: &DataType, cell: &Cell) -> String {
    format!("expected a value of type {dtype}, found {}", cell.type_name())
}

/// The schema a batch of rows calls for: fields in first-seen order, each with the type that
/// holds its values (a column that is null throughout has type Null, settled by later batches).
pub fn infer_schema(input_columns: &[String], rows: &[Row]) -> Schema {
    if !rows.is_empty() && rows.iter().all(|r| matches!(r.data, RowData::Fields(_))) {
        // CSV fields are text: the columns are the header's.
        return Schema::new(input_columns.iter().map(|c| Field::new(c, DataType::Utf8, true)).collect::<Vec<_>>());
    }
    let mut fields: Vec<(String, DataType)> = Vec::new();
    for row in rows {
        match &row.data {
            RowData::Fields(values) => {
                for (name, _) in input_columns.iter().zip(values) {
                    if !fields.iter().any(|(n, _)| n == name) {
                        fields.push((name.clone(), DataType::Utf8));
                    }
                }
            }
            RowData::Value(Value::Map(items)) => {
                for (name, value) in items {
                    let dtype = infer_type(value);
                    match fields.iter_mut().find(|(n, _)| n == name) {
                        Some((_, existing)) => {
                            if let Some(merged) = merge_types(existing, &dtype) {
                                *existing = merged;
                            }
                        }
                        None => fields.push((name.clone(), dtype)),
                    }
                }
            }
            RowData::Value(_) => {}
        }
    }
    Schema::new(fields.into_iter().map(|(n, t)| Field::new(n, t, true)).collect::<Vec<_>>())
}

/// Build a record batch of `schema` from `rows`. Returns the batch (None when every row
/// failed) and the rows left out, as (index in `rows`, reason naming the column).
pub fn rows_to_batch(
    schema: &SchemaRef,
    input_columns: &[String],
    rows: &[Row],
) -> (Option<RecordBatch>, Vec<Failure>) {
    let mut failures: Vec<Failure> = Vec::new();
    let mut active: Vec<usize> = Vec::with_capacity(rows.len());
    // CSV fields are named by the batch's columns: whether they all fit the schema is the
    // same answer for every row, so ask once.
    let unknown_column = input_columns
        .iter()
        .find(|c| schema.index_of(c).is_err())
        .map(|c| format!("field {c:?} is not in the output schema; drop it in a transform or add it to the schema"));
    for (i, row) in rows.iter().enumerate() {
        match shape_error(schema, input_columns, &row.data, &unknown_column) {
            Some(reason) => failures.push((i, reason)),
            None => active.push(i),
        }
    }
    loop {
        if active.is_empty() {
            failures.sort_by_key(|f| f.0);
            return (None, failures);
        }
        match build(schema, input_columns, rows, &active) {
            Ok(batch) => {
                failures.sort_by_key(|f| f.0);
                return (Some(batch), failures);
            }
            Err((k, reason)) => {
                failures.push((active[k], reason));
                active.remove(k);
            }
        }
    }
}

fn shape_error(
    schema: &Schema,
    input_columns: &[String],
    data: &RowData,
    unknown_column: &Option<String>,
) -> Option<String> {
    match data {
        RowData::Fields(values) => {
            if values.len() != input_columns.len() {
                return Some(format!(
                    "the record has {} fields but the header has {}",
                    values.len(),
                    input_columns.len()
                ));
            }
            unknown_column.clone()
        }
        RowData::Value(Value::Map(items)) => items.iter().find(|(k, _)| schema.index_of(k).is_err()).map(|(k, _)| {
            format!("field {k:?} is not in the output schema; drop it in a transform or add it to the schema")
        }),
        RowData::Value(other) => {
            Some(format!("a record must be an object to be written as a table, found {}", other.type_name()))
        }
    }
}

fn build(schema: &SchemaRef, input_columns: &[String], rows: &[Row], active: &[usize]) -> Result<RecordBatch, Failure> {
    let mut arrays = Vec::with_capacity(schema.fields().len());
    let records = csv_records(rows, active);
    for (j, field) in schema.fields().iter().enumerate() {
        let position = input_columns.iter().position(|c| c == field.name());
        if let (DataType::Utf8, Some(p), Some(records)) = (field.data_type(), position, &records) {
            // The reader built the column already: share it.
            if let Some(column) = records.first().and_then(|first| first.block_column(records, p)) {
                arrays.push(Arc::new(column.clone()) as ArrayRef);
                continue;
            }
        }
        let cells: Vec<Cell> = active
            .iter()
            .map(|&i| match &rows[i].data {
                RowData::Fields(values) => position.and_then(|p| values.get(p)).map(Cell::Text).unwrap_or(Cell::Null),
                RowData::Value(Value::Map(items)) => {
                    // Fields are usually in schema order: look there first.
                    match items.get(j) {
                        Some((k, v)) if k == field.name() => Cell::Val(v),
                        _ => items
                            .iter()
                            .find(|(k, _)| k == field.name())
                            .map(|(_, v)| Cell::Val(v))
                            .unwrap_or(Cell::Null),
                    }
                }
                RowData::Value(_) => Cell::Null,
            })
            .collect();
        let array = build_array(field, &cells).map_err(|(k, e)| (k, format!("column {:?}: {e}", field.name())))?;
        arrays.push(array);
    }
    RecordBatch::try_new(schema.clone(), arrays).map_err(|e| (0, format!("cannot assemble the batch: {e}")))
}

/// The fields of the `active` rows, if they are all CSV records.
fn csv_records<'r>(rows: &'r [Row], active: &[usize]) -> Option<Vec<&'r TextFields>> {
    active
        .iter()
        .map(|&i| match &rows[i].data {
            RowData::Fields(fields) => Some(fields),
            RowData::Value(_) => None,
        })
        .collect()
}

fn check_nulls(field: &Field, cells: &[Cell]) -> Result<(), Failure> {
    if !field.is_nullable() {
        if let Some(k) = cells.iter().position(Cell::is_null) {
            return Err((k, "the column is not nullable but the record has no value".into()));
        }
    }
    Ok(())
}

/// The bytes of a column's text: its values buffer is allocated once, at its final size.
fn text_bytes(cells: &[Cell]) -> usize {
    cells
        .iter()
        .map(|c| match c {
            Cell::Text(s) => s.len(),
            Cell::Val(Value::Str(s)) => s.len(),
            _ => 0,
        })
        .sum()
}

fn build_array(field: &Field, cells: &[Cell]) -> Result<ArrayRef, Failure> {
    check_nulls(field, cells)?;
    let dtype = field.data_type();
    Ok(match dtype {
        DataType::Null => {
            if let Some(k) = cells.iter().position(|c| !c.is_null()) {
                return Err((k, mismatch(dtype, &cells[k])));
            }
            Arc::new(NullArray::new(cells.len()))
        }
        DataType::Utf8 => {
            let mut b = StringBuilder::with_capacity(cells.len(), text_bytes(cells));
            for (k, cell) in cells.iter().enumerate() {
                match cell {
                    Cell::Text(s) => b.append_value(s),
                    Cell::Val(Value::Str(s)) => b.append_value(s),
                    c if c.is_null() => b.append_null(),
                    c => return Err((k, mismatch(dtype, c))),
                }
            }
            Arc::new(b.finish())
        }
        DataType::LargeUtf8 => {
            let mut b = LargeStringBuilder::with_capacity(cells.len(), text_bytes(cells));
            for (k, cell) in cells.iter().enumerate() {
                match cell {
                    Cell::Text(s) => b.append_value(s),
                    Cell::Val(Value::Str(s)) => b.append_value(s),
                    c if c.is_null() => b.append_null(),
                    c => return Err((k, mismatch(dtype, c))),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Utf8View => {
            let mut b = StringViewBuilder::new();
            for (k, cell) in cells.iter().enumerate() {
                match cell {
                    Cell::Text(s) => b.append_value(s),
                    Cell::Val(Value::Str(s)) => b.append_value(s),
                    c if c.is_null() => b.append_null(),
                    c => return Err((k, mismatch(dtype, c))),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Binary => {
            let mut b = BinaryBuilder::new();
            for (k, cell) in cells.iter().enumerate() {
                match cell {
                    Cell::Val(Value::Bytes(v)) => b.append_value(v),
                    c if c.is_null() => b.append_null(),
                    c => return Err((k, mismatch(dtype, c))),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(cells.len());
            for (k, cell) in cells.iter().enumerate() {
                match cell {
                    Cell::Val(Value::Bool(v)) => b.append_value(*v),
                    c if c.is_null() => b.append_null(),
                    c => return Err((k, mismatch(dtype, c))),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Int8 => ints::<Int8Type>(dtype, cells)?,
        DataType::Int16 => ints::<Int16Type>(dtype, cells)?,
        DataType::Int32 => ints::<Int32Type>(dtype, cells)?,
        DataType::Int64 => ints::<Int64Type>(dtype, cells)?,
        DataType::UInt8 => ints::<UInt8Type>(dtype, cells)?,
        DataType::UInt16 => ints::<UInt16Type>(dtype, cells)?,
        DataType::UInt32 => ints::<UInt32Type>(dtype, cells)?,
        DataType::UInt64 => ints::<UInt64Type>(dtype, cells)?,
        DataType::Float32 => floats::<Float32Type>(dtype, cells, |f| f as f32)?,
        DataType::Float64 => floats::<Float64Type>(dtype, cells, |f| f)?,
        DataType::Date32 => {
            let mut b = PrimitiveBuilder::<Date32Type>::with_capacity(cells.len());
            for (k, cell) in cells.iter().enumerate() {
                match cell {
                    Cell::Val(Value::Date(d)) => b.append_value(*d),
                    c if c.is_null() => b.append_null(),
                    c => return Err((k, mismatch(dtype, c))),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Timestamp(unit, tz) => timestamps(dtype, unit, tz, cells)?,
        DataType::Decimal128(precision, scale) => decimals(dtype, *precision, *scale, cells)?,
        DataType::List(item) => lists(item, cells)?,
        DataType::Struct(fields) => structs(fields, cells)?,
        DataType::Dictionary(key, value) if value.as_ref() == &DataType::Utf8 => match key.as_ref() {
            DataType::Int8 => dictionary::<Int8Type>(dtype, cells)?,
            DataType::Int16 => dictionary::<Int16Type>(dtype, cells)?,
            DataType::Int32 => dictionary::<Int32Type>(dtype, cells)?,
            DataType::Int64 => dictionary::<Int64Type>(dtype, cells)?,
            DataType::UInt8 => dictionary::<UInt8Type>(dtype, cells)?,
            DataType::UInt16 => dictionary::<UInt16Type>(dtype, cells)?,
            DataType::UInt32 => dictionary::<UInt32Type>(dtype, cells)?,
            DataType::UInt64 => dictionary::<UInt64Type>(dtype, cells)?,
            _ => return Err((0, format!("writing the type {dtype} is not supported"))),
        },
        _ if cells.iter().all(Cell::is_null) => new_null_array(dtype, cells.len()),
        _ => return Err((0, format!("writing the type {dtype} is not supported; cast the column in a transform"))),
    })
}

fn ints<T: ArrowPrimitiveType>(dtype: &DataType, cells: &[Cell]) -> Result<ArrayRef, Failure>
where
    T::Native: TryFrom<i64> + TryFrom<u64>,
{
    let mut b = PrimitiveBuilder::<T>::with_capacity(cells.len());
    for (k, cell) in cells.iter().enumerate() {
        let fitted = match cell {
            Cell::Val(Value::Int(v)) => T::Native::try_from(*v).ok(),
            Cell::Val(Value::UInt(v)) => T::Native::try_from(*v).ok(),
            c if c.is_null() => {
                b.append_null();
                continue;
            }
            c => return Err((k, mismatch(dtype, c))),
        };
        match fitted {
            Some(v) => b.append_value(v),
            None => return Err((k, format!("the integer does not fit in {dtype}"))),
        }
    }
    Ok(Arc::new(b.finish()))
}

fn floats<T: ArrowPrimitiveType>(
    dtype: &DataType,
    cells: &[Cell],
    from: impl Fn(f64) -> T::Native,
) -> Result<ArrayRef, Failure> {
    let mut b = PrimitiveBuilder::<T>::with_capacity(cells.len());
    for (k, cell) in cells.iter().enumerate() {
        match cell {
            Cell::Val(Value::Float(v)) => b.append_value(from(*v)),
            Cell::Val(Value::Int(v)) => b.append_value(from(*v as f64)),
            Cell::Val(Value::UInt(v)) => b.append_value(from(*v as f64)),
            c if c.is_null() => b.append_null(),
            c => return Err((k, mismatch(dtype, c))),
        }
    }
    Ok(Arc::new(b.finish()))
}

fn rescale_time(value: i64, from: TimeUnit, to: &ArrowUnit) -> Option<i64> {
    let to = crate::arrow_schema::value_unit(to);
    let (f, t) = (from.per_second(), to.per_second());
    if t >= f {
        value.checked_mul(t / f)
    } else if value % (f / t) == 0 {
        Some(value / (f / t))
    } else {
        None
    }
}

fn timestamps(dtype: &DataType, unit: &ArrowUnit, tz: &Option<Arc<str>>, cells: &[Cell]) -> Result<ArrayRef, Failure> {
    let mut values: Vec<Option<i64>> = Vec::with_capacity(cells.len());
    for (k, cell) in cells.iter().enumerate() {
        match cell {
            Cell::Val(Value::Timestamp { value, unit: from, .. }) => {
                // As pyarrow does: a naive value in a column with a time zone is taken as UTC,
                // an aware one in a naive column is stored as its UTC instant.
                let v = rescale_time(*value, *from, unit)
                    .ok_or_else(|| (k, format!("the timestamp does not fit in {dtype} without losing precision")))?;
                values.push(Some(v));
            }
            c if c.is_null() => values.push(None),
            c => return Err((k, mismatch(dtype, c))),
        }
    }
    let array: ArrayRef = match unit {
        ArrowUnit::Second => {
            Arc::new(PrimitiveArray::<TimestampSecondType>::from(values).with_timezone_opt(tz.clone()))
        }
        ArrowUnit::Millisecond => {
            Arc::new(PrimitiveArray::<TimestampMillisecondType>::from(values).with_timezone_opt(tz.clone()))
        }
        ArrowUnit::Microsecond => {
            Arc::new(PrimitiveArray::<TimestampMicrosecondType>::from(values).with_timezone_opt(tz.clone()))
        }
        ArrowUnit::Nanosecond => {
            Arc::new(PrimitiveArray::<TimestampNanosecondType>::from(values).with_timezone_opt(tz.clone()))
        }
    };
    Ok(array)
}

use arrow_array::PrimitiveArray;

fn decimals(dtype: &DataType, precision: u8, scale: i8, cells: &[Cell]) -> Result<ArrayRef, Failure> {
    let limit = 10i128.pow(u32::from(precision));
    let mut b = PrimitiveBuilder::<Decimal128Type>::with_capacity(cells.len());
    for (k, cell) in cells.iter().enumerate() {
        let (value, from_scale) = match cell {
            Cell::Val(Value::Decimal { value, scale, .. }) => (*value, *scale),
            Cell::Val(Value::Int(v)) => (i128::from(*v), 0),
            c if c.is_null() => {
                b.append_null();
                continue;
            }
            c => return Err((k, mismatch(dtype, c))),
        };
        let shift = i32::from(scale) - i32::from(from_scale);
        let scaled = if shift >= 0 {
            10i128.checked_pow(shift as u32).and_then(|m| value.checked_mul(m))
        } else {
            let d = 10i128.pow(shift.unsigned_abs());
            (value % d == 0).then(|| value / d)
        };
        match scaled {
            Some(v) if v.abs() < limit => b.append_value(v),
            _ => {
                let text = crate::temporal::format_decimal(value, from_scale);
                return Err((k, format!("the decimal {text} does not fit in {dtype}")));
            }
        }
    }
    Ok(Arc::new(b.finish().with_precision_and_scale(precision, scale).map_err(|e| (0, e.to_string()))?))
}

fn lists(item: &Arc<Field>, cells: &[Cell]) -> Result<ArrayRef, Failure> {
    let mut offsets = Vec::with_capacity(cells.len() + 1);
    offsets.push(0i32);
    let mut children: Vec<Cell> = Vec::new();
    let mut owners: Vec<usize> = Vec::new();
    let mut valid = Vec::with_capacity(cells.len());
    for (k, cell) in cells.iter().enumerate() {
        match cell {
            Cell::Val(Value::List(items)) => {
                children.extend(items.iter().map(Cell::Val));
                owners.extend(std::iter::repeat_n(k, items.len()));
                valid.push(true);
            }
            c if c.is_null() => valid.push(false),
            c => return Err((k, mismatch(&DataType::List(item.clone()), c))),
        }
        offsets.push(children.len() as i32);
    }
    let values = build_array(item, &children)
        .map_err(|(i, e)| (owners.get(i).copied().unwrap_or(0), format!("list item: {e}")))?;
    let nulls = NullBuffer::from(valid);
    let array = ListArray::try_new(item.clone(), OffsetBuffer::new(offsets.into()), values, Some(nulls))
        .map_err(|e| (0, e.to_string()))?;
    Ok(Arc::new(array))
}

fn structs(fields: &Fields, cells: &[Cell]) -> Result<ArrayRef, Failure> {
    let mut valid = Vec::with_capacity(cells.len());
    for (k, cell) in cells.iter().enumerate() {
        match cell {
            Cell::Val(Value::Map(items)) => {
                if let Some((key, _)) = items.iter().find(|(key, _)| fields.find(key).is_none()) {
                    return Err((k, format!("field {key:?} is not in the struct")));
                }
                valid.push(true)
            }
            c if c.is_null() => valid.push(false),
            c => return Err((k, mismatch(&DataType::Struct(fields.clone()), c))),
        }
    }
    let mut arrays = Vec::with_capacity(fields.len());
    for field in fields.iter() {
        let children: Vec<Cell> = cells
            .iter()
            .map(|c| match c {
                Cell::Val(Value::Map(items)) => {
                    items.iter().find(|(k, _)| k == field.name()).map(|(_, v)| Cell::Val(v)).unwrap_or(Cell::Null)
                }
                _ => Cell::Null,
            })
            .collect();
        // A null struct's children are null; a non-nullable child is checked only where the struct is valid.
        let relaxed = Field::new(field.name(), field.data_type().clone(), true);
        if !field.is_nullable() {
            if let Some(k) = children.iter().zip(&valid).position(|(c, v)| *v && c.is_null()) {
                return Err((k, format!("field {:?} is not nullable but the record has no value", field.name())));
            }
        }
        let array = build_array(&relaxed, &children).map_err(|(k, e)| (k, format!("field {:?}: {e}", field.name())))?;
        arrays.push(array);
    }
    let relaxed_fields: Fields = fields.iter().map(|f| Field::new(f.name(), f.data_type().clone(), true)).collect();
    let array =
        StructArray::try_new(relaxed_fields, arrays, Some(NullBuffer::from(valid))).map_err(|e| (0, e.to_string()))?;
    // Restore the declared fields (nullability) now that the children are checked.
    let (_, columns, nulls) = array.into_parts();
    let array = StructArray::try_new(fields.clone(), columns, nulls).map_err(|e| (0, e.to_string()))?;
    Ok(Arc::new(array))
}

fn dictionary<K: ArrowDictionaryKeyType>(dtype: &DataType, cells: &[Cell]) -> Result<ArrayRef, Failure> {
    let mut b = StringDictionaryBuilder::<K>::new();
    for (k, cell) in cells.iter().enumerate() {
        let result = match cell {
            Cell::Text(s) => b.append(s).map(|_| ()),
            Cell::Val(Value::Str(s)) => b.append(s).map(|_| ()),
            c if c.is_null() => {
                b.append_null();
                Ok(())
            }
            c => return Err((k, mismatch(dtype, c))),
        };
        result.map_err(|e| (k, format!("the dictionary is full ({e})")))?;
    }
    Ok(Arc::new(b.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrow_rows::batch_to_rows;

    fn row(items: Vec<(&str, Value)>) -> Row {
        Row { line: 1, data: RowData::Value(Value::Map(items.into_iter().map(|(k, v)| (k.to_string(), v)).collect())) }
    }

    #[test]
    fn typed_values_round_trip_through_arrow() {
        let rows = vec![
            row(vec![
                ("id", Value::Int(1)),
                ("day", Value::Date(19_000)),
                ("at", Value::Timestamp { value: 5, unit: TimeUnit::Microsecond, tz: Some("UTC".into()) }),
                ("price", Value::Decimal { value: 1234, precision: 6, scale: 2 }),
                ("tags", Value::List(vec![Value::Str("a".into()), Value::Null])),
                ("addr", Value::Map(vec![("city".into(), Value::Str("Oslo".into()))])),
            ]),
            row(vec![
                ("id", Value::Null),
                ("day", Value::Null),
                ("at", Value::Null),
                ("price", Value::Null),
                ("tags", Value::Null),
                ("addr", Value::Null),
            ]),
        ];
        let schema = Arc::new(infer_schema(&[], &rows));
        let (batch, failed) = rows_to_batch(&schema, &[], &rows);
        assert!(failed.is_empty(), "{failed:?}");
        let back = batch_to_rows(&batch.unwrap(), 1).unwrap();
        assert_eq!(back[0].data, rows[0].data);
        assert_eq!(back[1].data, rows[1].data);
    }

    #[test]
    fn csv_columns_are_shared_from_the_block_and_copied_for_a_subset() {
        use crate::record::{Fields as TextFields, TextBlockBuilder};
        use arrow_array::cast::AsArray;
        let mut block = TextBlockBuilder::new(2, 3, &[]);
        for record in [["1", "a"], ["2", "b"], ["3", "c"]] {
            block.push_record(record.map(Some));
        }
        let block = Arc::new(block.finish());
        let rows: Vec<Row> =
            (0..3).map(|i| Row { line: i as u64 + 2, data: RowData::Fields(TextFields::new(&block, i)) }).collect();
        let columns = vec!["id".to_string(), "name".to_string()];
        let schema = Arc::new(infer_schema(&columns, &rows));

        let batch = rows_to_batch(&schema, &columns, &rows).0.unwrap();
        let RowData::Fields(first) = &rows[0].data else { unreachable!() };
        let records: Vec<&TextFields> = rows
            .iter()
            .map(|r| match &r.data {
                RowData::Fields(f) => f,
                _ => unreachable!(),
            })
            .collect();
        let shared = first.block_column(&records, 1).unwrap();
        assert_eq!(batch.column(1).as_string::<i32>().values().as_ptr(), shared.values().as_ptr());

        let subset = rows_to_batch(&schema, &columns, &rows[1..]).0.unwrap();
        let names: Vec<&str> = subset.column(1).as_string::<i32>().iter().flatten().collect();
        assert_eq!(names, ["b", "c"]);
    }

    #[test]
    fn a_value_that_does_not_fit_is_reported_with_its_column() {
        let rows = vec![
            row(vec![("n", Value::Int(1))]),
            row(vec![("n", Value::Str("x".into()))]),
            row(vec![("n", Value::Int(3))]),
        ];
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        let (batch, failed) = rows_to_batch(&schema, &[], &rows);
        assert_eq!(batch.unwrap().num_rows(), 2);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, 1);
        assert!(
            failed[0].1.contains("column \"n\"") && failed[0].1.contains("Int64") && failed[0].1.contains("string"),
            "{}",
            failed[0].1
        );
    }
}
