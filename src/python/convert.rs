//! Small conversions shared by the bindings: JSON values, enum names, id
//! tuples, value hashes and short previews for `__repr__`.

use std::hash::{Hash, Hasher};

use pyo3::exceptions::PyAttributeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use serde::Serialize;
use serde_json::Value;

/// A JSON value as plain Python data, the way `json.loads` would build it
/// except for numbers and key order:
///
/// * integers of any size become `int`; every other number becomes the
///   nearest `float` (magnitudes beyond the double range become `inf`);
/// * object keys come out sorted, as the reducer sees them (the crate's
///   serde_json does not keep file order).
///
/// `pythonize` cannot be used on `Value` here: with serde_json's
/// `arbitrary_precision` a number serializes as a private one-field struct.
pub fn json_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(flag) => flag.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(number) => {
            if let Some(int) = number.as_i64() {
                int.into_pyobject(py)?.into_any()
            } else if let Some(int) = number.as_u64() {
                int.into_pyobject(py)?.into_any()
            } else {
                let text = number.to_string();
                let integral = !text.contains(['.', 'e', 'E']);
                if integral {
                    // Beyond 64 bits: let Python parse the digits exactly.
                    py.get_type::<pyo3::types::PyInt>().call1((text,))?
                } else {
                    // Rust's parse rounds to nearest and overflows to inf,
                    // like Python's float().
                    let float: f64 = text.parse().unwrap_or(f64::NAN);
                    float.into_pyobject(py)?.into_any()
                }
            }
        }
        Value::String(text) => PyString::new(py, text).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, json_to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// Plain Python data for a model value, in serialization (field) order.
/// Only for types without `serde_json::Value` inside (see [`json_to_py`]).
pub fn to_plain<'py, T: Serialize + ?Sized>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, value).map_err(PyErr::from)
}

/// The snake_case name of a unit enum variant, as serde writes it.
pub fn enum_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        // Only unit variants of our own enums reach this function.
        other => format!("{other:?}"),
    }
}

/// A tuple of strings (ids), as every `*_ids` attribute returns them.
pub fn str_tuple<'py, S: AsRef<str>>(py: Python<'py>, items: &[S]) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, items.iter().map(S::as_ref))
}

/// A stable hash of a value (SipHash with fixed keys), so equal values hash
/// alike in every process.
pub fn value_hash<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// The first characters of a text, for `__repr__`: never a whole payload.
pub fn preview(text: &str) -> String {
    const LIMIT: usize = 40;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{:?}", format!("{}…", &text[..cut])),
        None => format!("{text:?}"),
    }
}

/// The `AttributeError` of a tagged-union object asked for a field that its
/// variant does not have.
pub fn no_field(class: &str, variant: &str, field: &str) -> PyErr {
    PyAttributeError::new_err(format!("{class} of type '{variant}' has no attribute '{field}'"))
}
