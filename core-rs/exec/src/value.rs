//! A JSON-like value that keeps field order, as records are written in the order they were read.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Serialize, SerializeMap, SerializeSeq, Serializer};
use std::fmt;
use std::sync::Arc;

pub use crate::temporal::TimeUnit;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Map(Vec<(String, Value)>),
    /// Days since 1970-01-01.
    Date(i32),
    /// An instant (or, without a time zone, a wall-clock time) as `value` units since the epoch.
    /// `tz` is an IANA name (`Europe/Paris`), `UTC` or a fixed offset (`+05:30`).
    Timestamp {
        value: i64,
        unit: TimeUnit,
        tz: Option<Arc<str>>,
    },
    /// `value / 10^scale`, with at most `precision` digits.
    Decimal {
        value: i128,
        precision: u8,
        scale: i8,
    },
    Bytes(Vec<u8>),
}

impl Value {
    /// The value as CSV cell text: nulls are empty, booleans `true`/`false`, nested values JSON.
    pub fn to_cell(&self) -> Result<String, String> {
        Ok(match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::UInt(u) => u.to_string(),
            Value::Float(f) => {
                if f.is_finite() {
                    ryu::Buffer::new().format(*f).to_string()
                } else {
                    f.to_string()
                }
            }
            Value::Str(s) => s.clone(),
            Value::Date(_) | Value::Timestamp { .. } | Value::Decimal { .. } | Value::Bytes(_) => {
                self.scalar_text().unwrap_or_default()
            }
            Value::List(_) | Value::Map(_) => serde_json::to_string(self).map_err(|e| e.to_string())?,
        })
    }

    /// The value with every non-finite float (which JSON cannot hold) replaced by its text
    /// (`NaN`, `inf`, `-inf`), so it always encodes.
    pub fn to_encodable(&self) -> Value {
        match self {
            Value::Float(f) if !f.is_finite() => Value::Str(f.to_string()),
            Value::List(items) => Value::List(items.iter().map(Value::to_encodable).collect()),
            Value::Map(items) => Value::Map(items.iter().map(|(k, v)| (k.clone(), v.to_encodable())).collect()),
            other => other.clone(),
        }
    }

    /// The text form of a date, timestamp (ISO 8601), decimal or bytes (UTF-8 text, else base64) value.
    pub fn scalar_text(&self) -> Option<String> {
        Some(match self {
            Value::Date(days) => crate::temporal::format_date(*days),
            Value::Timestamp { value, unit, tz } => crate::temporal::format_timestamp(*value, *unit, tz.as_deref()),
            Value::Decimal { value, scale, .. } => crate::temporal::format_decimal(*value, *scale),
            // A CSV cell: the text when it is UTF-8, else base64. JSON always has base64.
            Value::Bytes(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => text.to_owned(),
                Err(_) => crate::temporal::base64(bytes),
            },
            _ => return None,
        })
    }

    /// Look a field up in a map value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::UInt(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::List(_) => "array",
            Value::Map(_) => "object",
            Value::Date(_) => "date",
            Value::Timestamp { .. } => "timestamp",
            Value::Decimal { .. } => "decimal",
            Value::Bytes(_) => "bytes",
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::UInt(u) => s.serialize_u64(*u),
            Value::Float(f) => {
                // JSON has no NaN or infinity; refusing is better than writing a silent null.
                if !f.is_finite() {
                    return Err(ser::Error::custom(non_finite_reason(*f)));
                }
                s.serialize_f64(*f)
            }
            Value::Str(v) => s.serialize_str(v),
            // Always base64, UTF-8 or not, so that a reader knows how to get the bytes back
            // (`zoopipe_core.Base64Bytes` does); see `docs/adapters.md`.
            Value::Bytes(bytes) => s.serialize_str(&crate::temporal::base64(bytes)),
            Value::Date(_) | Value::Timestamp { .. } | Value::Decimal { .. } => {
                s.serialize_str(&self.scalar_text().unwrap_or_default())
            }
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(items) => {
                let mut map = s.serialize_map(Some(items.len()))?;
                for (k, v) in items {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// Why a NaN or an infinity cannot be written as JSON: refusing is better than a silent null.
pub fn non_finite_reason(f: f64) -> String {
    format!("the float {f} cannot be written as JSON (NaN and infinity have no JSON form)")
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map(Value::Int).unwrap_or(Value::UInt(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            items.push((k, v));
        }
        Ok(Value::Map(items))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_field_order() {
        let text = r#"{"z":1,"a":[true,null,2.5],"m":{"b":"x"}}"#;
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), text);
    }

    #[test]
    fn bytes_are_always_base64_in_json() {
        let v =
            Value::List(vec![Value::Bytes(b"hi".to_vec()), Value::Bytes(vec![0xff, 0x00, 0x80]), Value::Bytes(vec![])]);
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"["aGk=","/wCA",""]"#);
    }

    #[test]
    fn nan_is_refused_not_nulled() {
        assert!(serde_json::to_string(&Value::Float(f64::NAN)).is_err());
    }

    #[test]
    fn encodable_values_hold_non_finite_floats_as_text() {
        let v = Value::Map(vec![("a".into(), Value::List(vec![Value::Float(f64::NAN), Value::Float(1.5)]))]);
        assert_eq!(serde_json::to_string(&v.to_encodable()).unwrap(), r#"{"a":["NaN",1.5]}"#);
    }

    #[test]
    fn cells_follow_csv_conventions() {
        assert_eq!(Value::Null.to_cell().unwrap(), "");
        assert_eq!(Value::Bool(true).to_cell().unwrap(), "true");
        assert_eq!(Value::Float(1.5).to_cell().unwrap(), "1.5");
    }

    #[test]
    fn dates_timestamps_and_decimals_are_iso_text() {
        assert_eq!(Value::Date(19723).to_cell().unwrap(), "2024-01-01");
        let ts = Value::Timestamp { value: 1_704_067_200_000_001, unit: TimeUnit::Microsecond, tz: Some("UTC".into()) };
        assert_eq!(serde_json::to_string(&ts).unwrap(), "\"2024-01-01T00:00:00.000001+00:00\"");
        let dec = Value::Decimal { value: -12345, precision: 10, scale: 2 };
        assert_eq!(dec.to_cell().unwrap(), "-123.45");
    }
}
