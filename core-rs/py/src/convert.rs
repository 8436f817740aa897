//! Conversion between Python objects and executor values. Runs with the GIL held, so it is
//! kept to direct type checks; rarer types (dates, decimals, enums) are looked up once.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use std::collections::HashSet;
use std::sync::Arc;
use zoopipe_exec::temporal::TimeUnit;
use zoopipe_exec::{RowData, Value};

/// The Python types that need a call to convert: dates, datetimes and decimals become typed
/// values (and back); times and UUIDs are written as text; pydantic's JSON conversion covers
/// the other types a validated model holds. Looked up once (abi3 has no datetime C API).
struct PyTypes {
    datetime: Py<PyAny>,
    date: Py<PyAny>,
    text: Py<PyTuple>,
    decimal: Py<PyAny>,
    enum_type: Py<PyAny>,
    to_jsonable: Py<PyAny>,
    timedelta: Py<PyAny>,
    epoch_naive: Py<PyAny>,
    epoch_utc: Py<PyAny>,
    one_microsecond: Py<PyAny>,
    utc: Py<PyAny>,
    timezone: Py<PyAny>,
    zoneinfo: Py<PyAny>,
    /// Time zone name -> tzinfo, filled as names are met.
    zones: Py<PyDict>,
}

static PY_TYPES: GILOnceCell<PyTypes> = GILOnceCell::new();

/// Days from 0001-01-01 (Python's ordinal 1) to 1970-01-01.
const EPOCH_ORDINAL: i64 = 719_163;

fn py_types(py: Python<'_>) -> PyResult<&PyTypes> {
    PY_TYPES.get_or_try_init(py, || {
        let dt = py.import("datetime")?;
        let datetime = dt.getattr("datetime")?;
        let timedelta = dt.getattr("timedelta")?;
        let utc = dt.getattr("timezone")?.getattr("utc")?;
        let text = PyTuple::new(py, [dt.getattr("time")?, py.import("uuid")?.getattr("UUID")?])?;
        Ok(PyTypes {
            epoch_naive: datetime.call1((1970, 1, 1))?.unbind(),
            epoch_utc: datetime.call1((1970, 1, 1, 0, 0, 0, 0, &utc))?.unbind(),
            one_microsecond: timedelta.call1((0, 0, 1))?.unbind(),
            datetime: datetime.unbind(),
            date: dt.getattr("date")?.unbind(),
            text: text.unbind(),
            decimal: py.import("decimal")?.getattr("Decimal")?.unbind(),
            enum_type: py.import("enum")?.getattr("Enum")?.unbind(),
            to_jsonable: py.import("pydantic_core")?.getattr("to_jsonable_python")?.unbind(),
            timedelta: timedelta.unbind(),
            utc: utc.unbind(),
            timezone: dt.getattr("timezone")?.unbind(),
            zoneinfo: py.import("zoneinfo")?.getattr("ZoneInfo")?.unbind(),
            zones: PyDict::new(py).unbind(),
        })
    })
}

/// The tzinfo for a time zone name: UTC, a fixed offset (`+05:30`) or an IANA name.
fn tzinfo<'py>(py: Python<'py>, types: &PyTypes, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let zones = types.zones.bind(py);
    if let Some(zone) = zones.get_item(name)? {
        return Ok(zone);
    }
    let zone = match zoopipe_exec::temporal::fixed_offset_seconds(name) {
        Some(0) => types.utc.bind(py).clone(),
        Some(seconds) => types.timezone.bind(py).call1((types.timedelta.bind(py).call1((0, seconds))?,))?,
        None => types
            .zoneinfo
            .bind(py)
            .call1((name,))
            .map_err(|e| PyTypeError::new_err(format!("unknown time zone {name:?} in a timestamp column: {e}")))?,
    };
    zones.set_item(name, &zone)?;
    Ok(zone)
}

fn timestamp_value(obj: &Bound<'_, PyAny>, types: &PyTypes) -> PyResult<Value> {
    let py = obj.py();
    let tz = obj.getattr("tzinfo")?;
    let (epoch, name) = if tz.is_none() {
        (types.epoch_naive.bind(py), None)
    } else {
        let name: String = if tz.is(types.utc.bind(py)) {
            "UTC".into()
        } else if let Ok(key) = tz.getattr("key").and_then(|k| k.extract::<String>()) {
            key
        } else if let Ok(zone) = tz.getattr("zone").and_then(|k| k.extract::<String>()) {
            zone
        } else {
            let seconds: f64 = obj.call_method0("utcoffset")?.call_method0("total_seconds")?.extract()?;
            let seconds = seconds as i64;
            let sign = if seconds < 0 { '-' } else { '+' };
            format!("{sign}{:02}:{:02}", seconds.abs() / 3600, (seconds.abs() % 3600) / 60)
        };
        (types.epoch_utc.bind(py), Some(Arc::from(name.as_str())))
    };
    let micros: i64 = obj
        .call_method1("__sub__", (epoch,))?
        .call_method1("__floordiv__", (types.one_microsecond.bind(py),))?
        .extract()?;
    Ok(Value::Timestamp { value: micros, unit: TimeUnit::Microsecond, tz: name })
}

pub fn to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if let Ok(s) = obj.downcast_exact::<PyString>() {
        return Ok(Value::Str(s.to_str()?.to_owned()));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.downcast_exact::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_exact_instance_of::<PyInt>() {
        return int_value(obj);
    }
    if let Ok(f) = obj.downcast_exact::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(d) = obj.downcast::<PyDict>() {
        let mut items = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key = k.downcast::<PyString>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "a record's keys must be strings, found {}",
                    k.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            })?;
            let key = key.to_str()?.to_owned();
            let value = to_value(&v).map_err(|e| PyTypeError::new_err(format!("field {key:?}: {e}")))?;
            items.push((key, value));
        }
        return Ok(Value::Map(items));
    }
    if let Ok(l) = obj.downcast::<PyList>() {
        return l.iter().map(|v| to_value(&v)).collect::<PyResult<_>>().map(Value::List);
    }
    if let Ok(t) = obj.downcast::<PyTuple>() {
        return t.iter().map(|v| to_value(&v)).collect::<PyResult<_>>().map(Value::List);
    }
    // Subclasses of the basic types come after the exact checks (bool is an int subclass).
    if let Ok(s) = obj.downcast::<PyString>() {
        return Ok(Value::Str(s.to_str()?.to_owned()));
    }
    if obj.is_instance_of::<PyBool>() {
        return Ok(Value::Bool(obj.is_truthy()?));
    }
    let py = obj.py();
    let types = py_types(py)?;
    if let Ok(b) = obj.downcast::<PyBytes>() {
        return Ok(Value::Bytes(b.as_bytes().to_vec()));
    }
    if obj.is_instance(types.enum_type.bind(py))? {
        return to_value(&obj.getattr("value")?);
    }
    if obj.is_instance_of::<PyInt>() {
        return int_value(obj);
    }
    if let Ok(f) = obj.downcast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if obj.is_instance(types.datetime.bind(py))? {
        return timestamp_value(obj, types);
    }
    if obj.is_instance(types.date.bind(py))? {
        let ordinal: i64 = obj.call_method0("toordinal")?.extract()?;
        return Ok(Value::Date((ordinal - EPOCH_ORDINAL) as i32));
    }
    if obj.is_instance(types.decimal.bind(py))? {
        let text = obj.str()?.to_str()?.to_owned();
        return Ok(match zoopipe_exec::temporal::parse_decimal(&text) {
            Ok((value, precision, scale)) => Value::Decimal { value, precision, scale },
            Err(_) => Value::Str(text), // NaN and infinities have no decimal128 form
        });
    }
    if obj.is_instance(types.text.bind(py).as_any())? {
        if obj.hasattr("isoformat")? {
            return Ok(Value::Str(obj.call_method0("isoformat")?.extract()?));
        }
        return Ok(Value::Str(obj.str()?.to_str()?.to_owned()));
    }
    // The other types a pydantic model dumps (URLs, IP addresses, paths, timedeltas, sets,
    // bytes, nested models, dataclasses) are written in pydantic's JSON form.
    if let Ok(jsonable) = types.to_jsonable.bind(py).call1((obj,)) {
        if !jsonable.get_type().is(obj.get_type()) {
            return to_value(&jsonable);
        }
    }
    Err(PyTypeError::new_err(format!(
        "cannot write a value of type {}; convert it to str, int, float, bool, None, list or dict in a transform",
        obj.get_type().name()?
    )))
}

fn int_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if let Ok(i) = obj.extract::<i64>() {
        return Ok(Value::Int(i));
    }
    if let Ok(u) = obj.extract::<u64>() {
        return Ok(Value::UInt(u));
    }
    Err(PyTypeError::new_err(format!("the integer {} does not fit in 64 bits; write it as a string", obj.str()?)))
}

pub fn to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::UInt(u) => u.into_pyobject(py)?.into_any(),
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::Str(s) => PyString::new(py, s).into_any(),
        Value::List(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_python(py, item)?)?;
            }
            list.into_any()
        }
        Value::Map(items) => {
            let dict = PyDict::new(py);
            for (k, v) in items {
                dict.set_item(PyString::new(py, k), to_python(py, v)?)?;
            }
            dict.into_any()
        }
        Value::Bytes(bytes) => PyBytes::new(py, bytes).into_any(),
        Value::Date(days) => {
            py_types(py)?.date.bind(py).call_method1("fromordinal", (i64::from(*days) + EPOCH_ORDINAL,))?
        }
        Value::Decimal { value, scale, .. } => {
            py_types(py)?.decimal.bind(py).call1((zoopipe_exec::temporal::format_decimal(*value, *scale),))?
        }
        Value::Timestamp { value, unit, tz } => {
            let types = py_types(py)?;
            // Python's datetime holds microseconds: nanoseconds are truncated.
            let micros = match unit {
                TimeUnit::Nanosecond => value.div_euclid(1000),
                other => value * (1_000_000 / other.per_second()),
            };
            let delta = types.timedelta.bind(py).call1((0, 0, micros))?;
            match tz {
                None => types.epoch_naive.bind(py).call_method1("__add__", (delta,))?,
                Some(name) => {
                    let zone = tzinfo(py, types, name)?;
                    types.epoch_utc.bind(py).call_method1("__add__", (delta,))?.call_method1("astimezone", (zone,))?
                }
            }
        }
    })
}

/// A batch of rows as a list of dicts; column names are made once per batch. With `keep`, the
/// dicts hold only the columns it names (the fields a model reads): the others are neither
/// converted nor looked at, and stay in the rows for error records.
pub fn rows_to_python<'py, 'a>(
    py: Python<'py>,
    columns: &[String],
    rows: impl Iterator<Item = &'a RowData>,
    keep: Option<&HashSet<String>>,
) -> PyResult<Bound<'py, PyList>> {
    let kept = |name: &str| keep.is_none_or(|k| k.contains(name));
    let keys: Vec<(usize, Bound<'py, PyString>)> =
        columns.iter().enumerate().filter(|(_, c)| kept(c)).map(|(i, c)| (i, PyString::intern(py, c))).collect();
    let list = PyList::empty(py);
    for row in rows {
        match row {
            RowData::Fields(fields) if fields.len() == columns.len() => {
                let dict = PyDict::new(py);
                for (i, key) in &keys {
                    match fields.get(*i) {
                        Some(field) => dict.set_item(key, PyString::new(py, field))?,
                        None => dict.set_item(key, py.None())?,
                    }
                }
                list.append(dict)?;
            }
            RowData::Value(Value::Map(items)) if keep.is_some() => {
                let dict = PyDict::new(py);
                for (key, value) in items.iter().filter(|(k, _)| kept(k)) {
                    dict.set_item(PyString::new(py, key), to_python(py, value)?)?;
                }
                list.append(dict)?;
            }
            other => list.append(to_python(py, &other.to_value(columns))?)?,
        }
    }
    Ok(list)
}
