//! Arrow schemas for outputs: parsed from the description the Python side derives from a
//! pydantic model, or inferred from the values of a batch.
//!
//! The description is JSON: a list of fields `{"name", "type", "nullable"}` where `type` is
//! `"bool" | "int64" | "float64" | "utf8" | "binary" | "date32"`,
//! `{"timestamp": "s"|"ms"|"us"|"ns", "tz": null | "UTC" | "Europe/Paris"}`,
//! `{"decimal128": [precision, scale]}`, `{"list": field}` or `{"struct": [field, ...]}`.

use crate::temporal::TimeUnit;
use crate::value::Value;
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit as ArrowUnit};
use serde_json::Value as Json;
use std::sync::Arc;

pub fn arrow_unit(unit: TimeUnit) -> ArrowUnit {
    match unit {
        TimeUnit::Second => ArrowUnit::Second,
        TimeUnit::Millisecond => ArrowUnit::Millisecond,
        TimeUnit::Microsecond => ArrowUnit::Microsecond,
        TimeUnit::Nanosecond => ArrowUnit::Nanosecond,
    }
}

pub fn value_unit(unit: &ArrowUnit) -> TimeUnit {
    match unit {
        ArrowUnit::Second => TimeUnit::Second,
        ArrowUnit::Millisecond => TimeUnit::Millisecond,
        ArrowUnit::Microsecond => TimeUnit::Microsecond,
        ArrowUnit::Nanosecond => TimeUnit::Nanosecond,
    }
}

/// Parse a schema description (see the module docs).
pub fn parse_schema(text: &str) -> Result<Schema, String> {
    let json: Json = serde_json::from_str(text).map_err(|e| format!("the output schema is not valid JSON: {e}"))?;
    let Json::Array(fields) = json else {
        return Err("the output schema must be a JSON list of fields".into());
    };
    Ok(Schema::new(fields.iter().map(parse_field).collect::<Result<Vec<_>, _>>()?))
}

fn parse_field(json: &Json) -> Result<Field, String> {
    let name = json.get("name").and_then(Json::as_str).ok_or_else(|| format!("schema field {json} has no name"))?;
    let nullable = json.get("nullable").and_then(Json::as_bool).unwrap_or(true);
    let dtype =
        parse_type(json.get("type").unwrap_or(&Json::Null)).map_err(|e| format!("schema field {name:?}: {e}"))?;
    Ok(Field::new(name, dtype, nullable))
}

fn parse_type(json: &Json) -> Result<DataType, String> {
    if let Some(name) = json.as_str() {
        return Ok(match name {
            "bool" => DataType::Boolean,
            "int64" => DataType::Int64,
            "float64" => DataType::Float64,
            "utf8" => DataType::Utf8,
            "binary" => DataType::Binary,
            "date32" => DataType::Date32,
            "null" => DataType::Null,
            other => return Err(format!("unknown type {other:?}")),
        });
    }
    if let Some(unit) = json.get("timestamp") {
        let unit = unit.as_str().and_then(TimeUnit::from_name).ok_or("timestamp unit must be s, ms, us or ns")?;
        let tz = json.get("tz").and_then(Json::as_str).map(Arc::from);
        return Ok(DataType::Timestamp(arrow_unit(unit), tz));
    }
    if let Some(ps) = json.get("decimal128") {
        let precision = ps.get(0).and_then(Json::as_u64).ok_or("decimal128 needs [precision, scale]")?;
        let scale = ps.get(1).and_then(Json::as_i64).ok_or("decimal128 needs [precision, scale]")?;
        if !(1..=38).contains(&precision) || scale.abs() > 38 {
            return Err(format!("decimal128({precision}, {scale}) is out of range (precision 1 to 38)"));
        }
        return Ok(DataType::Decimal128(precision as u8, scale as i8));
    }
    if let Some(item) = json.get("list") {
        return Ok(DataType::List(Arc::new(parse_field(item)?)));
    }
    if let Some(Json::Array(fields)) = json.get("struct") {
        return Ok(DataType::Struct(fields.iter().map(parse_field).collect::<Result<Fields, _>>()?));
    }
    Err(format!("unknown type {json}"))
}

/// The Arrow type a value calls for (Null for null: decided by the other rows).
pub fn infer_type(value: &Value) -> DataType {
    match value {
        Value::Null => DataType::Null,
        Value::Bool(_) => DataType::Boolean,
        Value::Int(_) => DataType::Int64,
        Value::UInt(_) => DataType::UInt64,
        Value::Float(_) => DataType::Float64,
        Value::Str(_) => DataType::Utf8,
        Value::Bytes(_) => DataType::Binary,
        Value::Date(_) => DataType::Date32,
        Value::Timestamp { unit, tz, .. } => DataType::Timestamp(arrow_unit(*unit), tz.clone()),
        Value::Decimal { precision, scale, .. } => DataType::Decimal128(*precision, *scale),
        Value::List(items) => {
            let item = items.iter().fold(DataType::Null, |acc, v| merge_types(&acc, &infer_type(v)).unwrap_or(acc));
            DataType::List(Arc::new(Field::new("item", item, true)))
        }
        Value::Map(items) => {
            DataType::Struct(items.iter().map(|(k, v)| Field::new(k, infer_type(v), true)).collect::<Fields>())
        }
    }
}

/// The type that holds values of both types, if there is one (null fits anything, integers
/// widen to floats, decimals to the larger precision and scale, structs to the union of fields).
pub fn merge_types(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType::*;
    if a == b {
        return Some(a.clone());
    }
    Some(match (a, b) {
        (Null, other) | (other, Null) => other.clone(),
        (Int64, Float64) | (Float64, Int64) | (UInt64, Float64) | (Float64, UInt64) => Float64,
        (Decimal128(p1, s1), Decimal128(p2, s2)) => {
            let scale = (*s1).max(*s2);
            let whole = (i16::from(*p1) - i16::from(*s1)).max(i16::from(*p2) - i16::from(*s2));
            let precision = (whole + i16::from(scale)).min(38) as u8;
            Decimal128(precision, scale)
        }
        (List(x), List(y)) => List(Arc::new(Field::new("item", merge_types(x.data_type(), y.data_type())?, true))),
        (Struct(x), Struct(y)) => {
            let mut fields: Vec<Field> = x.iter().map(|f| f.as_ref().clone()).collect();
            for field in y.iter() {
                match fields.iter_mut().find(|f| f.name() == field.name()) {
                    Some(existing) => {
                        let merged = merge_types(existing.data_type(), field.data_type())?;
                        *existing = Field::new(field.name(), merged, true);
                    }
                    None => fields.push(field.as_ref().clone()),
                }
            }
            Struct(fields.into())
        }
        _ => return None,
    })
}

/// Display a type the way users know it (`Int64`, `Timestamp(µs, "UTC")`).
pub fn describe(dtype: &DataType) -> String {
    format!("{dtype}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_model_description() {
        let schema = parse_schema(
            r#"[{"name":"id","type":"int64","nullable":false},
                {"name":"at","type":{"timestamp":"us","tz":"UTC"}},
                {"name":"price","type":{"decimal128":[10,2]}},
                {"name":"tags","type":{"list":{"name":"item","type":"utf8"}}},
                {"name":"addr","type":{"struct":[{"name":"city","type":"utf8"}]}}]"#,
        )
        .unwrap();
        assert_eq!(schema.fields().len(), 5);
        assert!(!schema.field(0).is_nullable());
        assert_eq!(schema.field(2).data_type(), &DataType::Decimal128(10, 2));
        assert!(parse_schema(r#"[{"name":"x","type":"int128"}]"#).unwrap_err().contains("\"x\""));
    }

    #[test]
    fn merges_widen_and_refuse() {
        assert_eq!(merge_types(&DataType::Null, &DataType::Utf8), Some(DataType::Utf8));
        assert_eq!(merge_types(&DataType::Int64, &DataType::Float64), Some(DataType::Float64));
        assert_eq!(merge_types(&DataType::Int64, &DataType::Utf8), None);
    }
}
