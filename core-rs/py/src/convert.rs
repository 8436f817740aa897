//! Conversion between Python objects and executor values. Runs with the GIL held, so it is
//! kept to direct type checks; rarer types (dates, decimals, enums) are looked up once.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use zoopipe_exec::{RowData, Value};

/// Python types written as text: dates and times (ISO 8601), decimals and UUIDs (str()); and
/// pydantic's JSON conversion for the other types a validated model holds.
struct TextTypes {
    iso: Py<PyTuple>,
    text: Py<PyTuple>,
    enum_type: Py<PyAny>,
    to_jsonable: Py<PyAny>,
}

static TEXT_TYPES: GILOnceCell<TextTypes> = GILOnceCell::new();

fn text_types(py: Python<'_>) -> PyResult<&TextTypes> {
    TEXT_TYPES.get_or_try_init(py, || {
        let datetime = py.import("datetime")?;
        let iso = PyTuple::new(py, [datetime.getattr("date")?, datetime.getattr("time")?])?;
        let text = PyTuple::new(
            py,
            [py.import("decimal")?.getattr("Decimal")?, py.import("uuid")?.getattr("UUID")?],
        )?;
        let enum_type = py.import("enum")?.getattr("Enum")?;
        let to_jsonable = py.import("pydantic_core")?.getattr("to_jsonable_python")?;
        Ok(TextTypes {
            iso: iso.unbind(),
            text: text.unbind(),
            enum_type: enum_type.unbind(),
            to_jsonable: to_jsonable.unbind(),
        })
    })
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
                PyTypeError::new_err(format!("a record's keys must be strings, found {}", k.repr().map(|r| r.to_string()).unwrap_or_default()))
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
    let types = text_types(py)?;
    if obj.is_instance(types.enum_type.bind(py))? {
        return to_value(&obj.getattr("value")?);
    }
    if obj.is_instance_of::<PyInt>() {
        return int_value(obj);
    }
    if let Ok(f) = obj.downcast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if obj.is_instance(types.iso.bind(py).as_any())? {
        return Ok(Value::Str(obj.call_method0("isoformat")?.extract()?));
    }
    if obj.is_instance(types.text.bind(py).as_any())? {
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
    Err(PyTypeError::new_err(format!(
        "the integer {} does not fit in 64 bits; write it as a string",
        obj.str()?
    )))
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
    })
}

/// A batch of rows as a list of dicts; column names are made once per batch.
pub fn rows_to_python<'py, 'a>(
    py: Python<'py>,
    columns: &[String],
    rows: impl Iterator<Item = &'a RowData>,
) -> PyResult<Bound<'py, PyList>> {
    let keys: Vec<Bound<'py, PyString>> = columns.iter().map(|c| PyString::intern(py, c)).collect();
    let list = PyList::empty(py);
    for row in rows {
        match row {
            RowData::Fields(fields) if fields.len() == keys.len() => {
                let dict = PyDict::new(py);
                for (key, field) in keys.iter().zip(fields) {
                    dict.set_item(key, PyString::new(py, field))?;
                }
                list.append(dict)?;
            }
            other => list.append(to_python(py, &other.to_value(columns))?)?,
        }
    }
    Ok(list)
}
