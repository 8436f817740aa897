//! Arrow record batches to rows: each column is converted to values in one pass over its
//! buffers, then the columns are zipped into records.

use crate::arrow_schema::value_unit;
use crate::record::{Row, RowData};
use crate::value::Value;
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrowPrimitiveType, OffsetSizeTrait, RecordBatch};
use arrow_buffer::ArrowNativeType;
use arrow_schema::{DataType, TimeUnit as ArrowUnit};
use std::sync::Arc;

/// The batch's columns in the order of `wanted` (names not in the batch are left out).
pub fn reorder(batch: &RecordBatch, wanted: &[String]) -> RecordBatch {
    let schema = batch.schema();
    let mut indices: Vec<usize> = Vec::with_capacity(wanted.len());
    for name in wanted {
        if let Ok(i) = schema.index_of(name) {
            if !indices.contains(&i) {
                indices.push(i);
            }
        }
    }
    if indices.iter().copied().eq(0..schema.fields().len()) {
        return batch.clone();
    }
    batch.project(&indices).unwrap_or_else(|_| batch.clone())
}

/// The batch's rows as records (field order = column order); `first_line` numbers the first.
pub fn batch_to_rows(batch: &RecordBatch, first_line: u64) -> Result<Vec<Row>, String> {
    let schema = batch.schema();
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        let values = array_values(array.as_ref()).map_err(|e| format!("column {:?}: {e}", field.name()))?;
        columns.push(values.into_iter());
    }
    let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
    let mut rows = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let mut items = Vec::with_capacity(names.len());
        for (name, column) in names.iter().zip(columns.iter_mut()) {
            items.push(((*name).clone(), column.next().unwrap_or(Value::Null)));
        }
        rows.push(Row { line: first_line + i as u64, data: RowData::Value(Value::Map(items)) });
    }
    Ok(rows)
}

fn primitive<T: ArrowPrimitiveType>(array: &dyn Array, f: impl Fn(T::Native) -> Value) -> Vec<Value> {
    let array = array.as_primitive::<T>();
    (0..array.len()).map(|i| if array.is_null(i) { Value::Null } else { f(array.value(i)) }).collect()
}

fn timestamps<T: ArrowPrimitiveType<Native = i64>>(
    array: &dyn Array,
    unit: &ArrowUnit,
    tz: &Option<Arc<str>>,
) -> Vec<Value> {
    let unit = value_unit(unit);
    primitive::<T>(array, |value| Value::Timestamp { value, unit, tz: tz.clone() })
}

fn strings<O: OffsetSizeTrait>(array: &dyn Array) -> Vec<Value> {
    let array = array.as_string::<O>();
    (0..array.len())
        .map(|i| if array.is_null(i) { Value::Null } else { Value::Str(array.value(i).to_owned()) })
        .collect()
}

fn binaries<O: OffsetSizeTrait>(array: &dyn Array) -> Vec<Value> {
    let array = array.as_binary::<O>();
    (0..array.len())
        .map(|i| if array.is_null(i) { Value::Null } else { Value::Bytes(array.value(i).to_vec()) })
        .collect()
}

fn lists<O: OffsetSizeTrait>(array: &dyn Array) -> Result<Vec<Value>, String> {
    let array = array.as_list::<O>();
    let offsets = array.value_offsets();
    let first = offsets.first().map(|o| o.as_usize()).unwrap_or(0);
    let last = offsets.last().map(|o| o.as_usize()).unwrap_or(0);
    let mut items = array_values(array.values().slice(first, last - first).as_ref())?.into_iter();
    let mut out = Vec::with_capacity(array.len());
    for i in 0..array.len() {
        let n = offsets[i + 1].as_usize() - offsets[i].as_usize();
        let chunk: Vec<Value> = items.by_ref().take(n).collect();
        out.push(if array.is_null(i) { Value::Null } else { Value::List(chunk) });
    }
    Ok(out)
}

fn dictionary<K: ArrowDictionaryKeyType>(array: &dyn Array) -> Result<Vec<Value>, String> {
    let array = array.as_dictionary::<K>();
    let values = array_values(array.values().as_ref())?;
    let keys = array.keys();
    Ok((0..array.len())
        .map(|i| if keys.is_null(i) { Value::Null } else { values[keys.value(i).as_usize()].clone() })
        .collect())
}

/// One column's values.
pub fn array_values(array: &dyn Array) -> Result<Vec<Value>, String> {
    Ok(match array.data_type() {
        DataType::Null => vec![Value::Null; array.len()],
        DataType::Boolean => {
            let a = array.as_boolean();
            (0..a.len()).map(|i| if a.is_null(i) { Value::Null } else { Value::Bool(a.value(i)) }).collect()
        }
        DataType::Int8 => primitive::<Int8Type>(array, |v| Value::Int(v.into())),
        DataType::Int16 => primitive::<Int16Type>(array, |v| Value::Int(v.into())),
        DataType::Int32 => primitive::<Int32Type>(array, |v| Value::Int(v.into())),
        DataType::Int64 => primitive::<Int64Type>(array, Value::Int),
        DataType::UInt8 => primitive::<UInt8Type>(array, |v| Value::Int(v.into())),
        DataType::UInt16 => primitive::<UInt16Type>(array, |v| Value::Int(v.into())),
        DataType::UInt32 => primitive::<UInt32Type>(array, |v| Value::Int(v.into())),
        DataType::UInt64 => primitive::<UInt64Type>(array, |v| i64::try_from(v).map(Value::Int).unwrap_or(Value::UInt(v))),
        DataType::Float16 => primitive::<Float16Type>(array, |v| Value::Float(v.to_f64())),
        DataType::Float32 => primitive::<Float32Type>(array, |v| Value::Float(v.into())),
        DataType::Float64 => primitive::<Float64Type>(array, Value::Float),
        DataType::Utf8 => strings::<i32>(array),
        DataType::LargeUtf8 => strings::<i64>(array),
        DataType::Utf8View => {
            let a = array.as_string_view();
            (0..a.len()).map(|i| if a.is_null(i) { Value::Null } else { Value::Str(a.value(i).to_owned()) }).collect()
        }
        DataType::Binary => binaries::<i32>(array),
        DataType::LargeBinary => binaries::<i64>(array),
        DataType::FixedSizeBinary(_) => {
            let a = array.as_fixed_size_binary();
            (0..a.len()).map(|i| if a.is_null(i) { Value::Null } else { Value::Bytes(a.value(i).to_vec()) }).collect()
        }
        DataType::Date32 => primitive::<Date32Type>(array, Value::Date),
        DataType::Date64 => primitive::<Date64Type>(array, |ms| Value::Date(ms.div_euclid(86_400_000) as i32)),
        DataType::Timestamp(unit, tz) => match unit {
            ArrowUnit::Second => timestamps::<TimestampSecondType>(array, unit, tz),
            ArrowUnit::Millisecond => timestamps::<TimestampMillisecondType>(array, unit, tz),
            ArrowUnit::Microsecond => timestamps::<TimestampMicrosecondType>(array, unit, tz),
            ArrowUnit::Nanosecond => timestamps::<TimestampNanosecondType>(array, unit, tz),
        },
        DataType::Decimal128(precision, scale) => {
            let (precision, scale) = (*precision, *scale);
            primitive::<Decimal128Type>(array, |value| Value::Decimal { value, precision, scale })
        }
        DataType::List(_) => lists::<i32>(array)?,
        DataType::LargeList(_) => lists::<i64>(array)?,
        DataType::FixedSizeList(_, size) => {
            let a = array.as_fixed_size_list();
            let size = *size as usize;
            let mut items = array_values(a.values().slice(a.offset() * size, a.len() * size).as_ref())?.into_iter();
            (0..a.len())
                .map(|i| {
                    let chunk: Vec<Value> = items.by_ref().take(size).collect();
                    if a.is_null(i) { Value::Null } else { Value::List(chunk) }
                })
                .collect()
        }
        DataType::Struct(fields) => {
            let a = array.as_struct();
            let mut children = Vec::with_capacity(fields.len());
            for (field, child) in fields.iter().zip(a.columns()) {
                let values = array_values(child.as_ref()).map_err(|e| format!("field {:?}: {e}", field.name()))?;
                children.push(values.into_iter());
            }
            (0..a.len())
                .map(|i| {
                    let items: Vec<(String, Value)> = fields
                        .iter()
                        .zip(children.iter_mut())
                        .map(|(f, c)| (f.name().clone(), c.next().unwrap_or(Value::Null)))
                        .collect();
                    if a.is_null(i) { Value::Null } else { Value::Map(items) }
                })
                .collect()
        }
        DataType::Dictionary(key, _) => match key.as_ref() {
            DataType::Int8 => dictionary::<Int8Type>(array)?,
            DataType::Int16 => dictionary::<Int16Type>(array)?,
            DataType::Int32 => dictionary::<Int32Type>(array)?,
            DataType::Int64 => dictionary::<Int64Type>(array)?,
            DataType::UInt8 => dictionary::<UInt8Type>(array)?,
            DataType::UInt16 => dictionary::<UInt16Type>(array)?,
            DataType::UInt32 => dictionary::<UInt32Type>(array)?,
            DataType::UInt64 => dictionary::<UInt64Type>(array)?,
            other => return Err(format!("dictionary keys of type {other} are not supported")),
        },
        other => {
            return Err(format!(
                "the Arrow type {other} is not supported yet; select other columns (columns=...) or cast it when writing the file"
            ))
        }
    })
}
