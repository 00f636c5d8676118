//! Python `TraceWriter`: the Rust writer behind a thread-safe class.
//!
//! Python values become JSON through [`PyJson`], which keeps dict insertion
//! order (as `json.dumps` does): a Python producer can then write payload
//! files exactly like the reference's producers, which serialize structs in
//! field order. Events come back as `json.loads` of the line written.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::errors::py_err;
use crate::error::{Error, ErrorKind};
use crate::format::{RawPayloadKind, RawPayloadRef, RawTraceEventPayload};
use crate::json;
use crate::writer::{FixedClock, TraceWriter};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTraceWriter>()
}

/// Writes one trace bundle: ``manifest.json``, ``payloads/<n>.json`` and
/// ``trace.jsonl``. Safe to share between threads; file I/O runs without
/// the GIL.
///
/// Create one with :meth:`TraceWriter.create`; use it as a context manager
/// to close it at the end of a block.
#[pyclass(frozen, name = "TraceWriter", module = "rollout_trace")]
pub struct PyTraceWriter {
    writer: TraceWriter,
    /// The caller's clock, read with the GIL held before each append; `None`
    /// means the system clock, read by the Rust writer under its lock.
    clock: Option<Py<PyAny>>,
}

#[pymethods]
impl PyTraceWriter {
    /// Creates the bundle directory (it may exist, but must not hold a
    /// bundle) with ``payloads/`` and ``manifest.json``.
    ///
    /// ``clock``, if given, is called with no arguments for every timestamp
    /// (the manifest's ``started_at_unix_ms``, then one per event) and must
    /// return milliseconds since the Unix epoch as an ``int``. It is read
    /// before the event takes its place in the log, so with several threads
    /// appending, its times need not increase with ``seq`` (the system
    /// clock, the default, is read in log order).
    #[staticmethod]
    #[pyo3(signature = (bundle_dir, trace_id, rollout_id, root_thread_id, *, clock = None))]
    fn create(
        py: Python<'_>,
        bundle_dir: PathBuf,
        trace_id: String,
        rollout_id: String,
        root_thread_id: String,
        clock: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let writer = match &clock {
            Some(clock) => {
                if !clock.is_callable() {
                    return Err(usage(
                        py,
                        format!(
                            "clock must be a callable returning milliseconds (int) or None, got {}",
                            type_name(clock)
                        ),
                    ));
                }
                let started_at = read_clock(py, clock)?;
                py.detach(|| {
                    TraceWriter::create_with_clock(
                        &bundle_dir,
                        &trace_id,
                        &rollout_id,
                        &root_thread_id,
                        Arc::new(FixedClock(started_at)),
                    )
                })
            }
            None => py.detach(|| TraceWriter::create(&bundle_dir, &trace_id, &rollout_id, &root_thread_id)),
        }
        .map_err(py_err(py))?;
        Ok(PyTraceWriter { writer, clock: clock.map(Bound::unbind) })
    }

    /// Writes ``value`` (dicts, lists, str, int, float, bool, None) as the
    /// next pretty JSON payload file and returns its reference,
    /// ``{"raw_payload_id": ..., "kind": {"type": kind}, "path": ...}``, ready
    /// to be put in an event payload. Dict keys keep their order.
    fn write_json_payload<'py>(
        &self,
        py: Python<'py>,
        kind: &str,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let Some(kind) = RawPayloadKind::parse(kind) else {
            let known: Vec<&str> = RawPayloadKind::ALL.iter().map(|kind| kind.as_str()).collect();
            return Err(usage(py, format!("unknown payload kind {kind:?}; expected one of {}", known.join(", "))));
        };
        let text = serde_json::to_vec_pretty(&PyJson::top(value))
            .map_err(|err| usage(py, format!("payload is not JSON-serializable: {err}")))?;
        let payload = py.detach(|| self.writer.write_payload_text(kind, &text)).map_err(py_err(py))?;
        payload_ref_dict(py, &payload)
    }

    /// Appends one event and returns it, as written, as a dict.
    ///
    /// ``payload`` is the event payload: a dict with a ``"type"`` key (e.g.
    /// ``"thread_started"``) and that variant's fields; payload references are
    /// the dicts returned by :meth:`write_json_payload`. ``thread_id`` and
    /// ``codex_turn_id`` fill the envelope (``None`` writes ``null``).
    #[pyo3(signature = (payload, thread_id = None, codex_turn_id = None))]
    fn append<'py>(
        &self,
        py: Python<'py>,
        payload: &Bound<'py, PyAny>,
        thread_id: Option<String>,
        codex_turn_id: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let payload = event_payload(py, payload)?;
        let wall_time = self.clock.as_ref().map(|clock| read_clock(py, clock.bind(py))).transpose()?;
        let event = py
            .detach(|| {
                let (thread_id, codex_turn_id) = (thread_id.as_deref(), codex_turn_id.as_deref());
                match wall_time {
                    Some(time) => self.writer.append_at(time, payload, thread_id, codex_turn_id),
                    None => self.writer.append(payload, thread_id, codex_turn_id),
                }
            })
            .map_err(py_err(py))?;
        json_loads(py, &json::to_compact_string(&event))
    }

    /// Stops the writer; later writes raise ``WriteError``. Idempotent.
    fn close(&self) {
        self.writer.close();
    }

    /// ``True`` once the writer was closed or stopped by a write failure.
    #[getter]
    fn closed(&self) -> bool {
        !self.writer.is_open()
    }

    /// The bundle directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.writer.path().to_path_buf()
    }

    /// The manifest as written, as a dict.
    #[getter]
    fn manifest<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_loads(py, &json::to_compact_string(self.writer.manifest()))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (_exc_type = None, _exc_value = None, _traceback = None))]
    fn __exit__(
        &self,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.writer.close();
        false
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let manifest = self.writer.manifest();
        let quoted = |text: &str| -> PyResult<String> { Ok(PyString::new(py, text).repr()?.to_str()?.to_owned()) };
        Ok(format!(
            "TraceWriter(path={}, trace_id={}, rollout_id={}, closed={})",
            quoted(&self.writer.path().to_string_lossy())?,
            quoted(&manifest.trace_id)?,
            quoted(&manifest.rollout_id)?,
            if self.writer.is_open() { "False" } else { "True" },
        ))
    }
}

/// A bad argument: `ValueError` through the one error mapping.
fn usage(py: Python<'_>, message: String) -> PyErr {
    super::errors::to_py_err(py, Error::new(ErrorKind::Usage, message))
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value.get_type().name().map(|name| name.to_string()).unwrap_or_else(|_| "?".into())
}

fn read_clock(py: Python<'_>, clock: &Bound<'_, PyAny>) -> PyResult<i64> {
    let reading = clock.call0()?;
    if reading.is_instance_of::<PyBool>() {
        return Err(usage(py, "clock() returned a bool; it must return milliseconds as an int".into()));
    }
    reading.extract::<i64>().map_err(|_| {
        usage(py, format!("clock() must return milliseconds as an int (64-bit), got {}", type_name(&reading)))
    })
}

/// Converts a Python dict into a typed event payload, with the serde message
/// (unknown variant, missing field, wrong type) on failure.
fn event_payload(py: Python<'_>, payload: &Bound<'_, PyAny>) -> PyResult<RawTraceEventPayload> {
    if !payload.is_instance_of::<PyDict>() {
        return Err(usage(py, format!("event payload must be a dict with a \"type\" key, got {}", type_name(payload))));
    }
    let value = serde_json::to_value(PyJson::top(payload))
        .map_err(|err| usage(py, format!("event payload is not JSON-serializable: {err}")))?;
    let tag = value.get("type").and_then(|tag| tag.as_str()).map(str::to_owned);
    serde_json::from_value(value).map_err(|err| match tag {
        Some(tag) => usage(py, format!("invalid event payload of type {tag:?}: {err}")),
        None => usage(py, format!("invalid event payload: {err}")),
    })
}

fn payload_ref_dict<'py>(py: Python<'py>, payload: &RawPayloadRef) -> PyResult<Bound<'py, PyDict>> {
    let kind = PyDict::new(py);
    kind.set_item("type", payload.kind.as_str())?;
    let dict = PyDict::new(py);
    dict.set_item("raw_payload_id", &payload.raw_payload_id)?;
    dict.set_item("kind", kind)?;
    dict.set_item("path", &payload.path)?;
    Ok(dict)
}

fn json_loads<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.getattr("loads")?.call1((text,))
}

/// Deepest nesting of lists and dicts a payload may have: serde_json's
/// reader, used when a bundle is read back, stops at 128 levels. The limit
/// also turns a container that contains itself into an error.
const MAX_NESTING: usize = 127;

/// A Python value serialized as JSON: dicts (str keys, insertion order),
/// lists and tuples, str, int (any size), finite float, bool and None.
struct PyJson<'a, 'py> {
    value: &'a Bound<'py, PyAny>,
    /// Containers enclosing `value`.
    depth: usize,
}

impl<'a, 'py> PyJson<'a, 'py> {
    fn top(value: &'a Bound<'py, PyAny>) -> Self {
        PyJson { value, depth: 0 }
    }

    fn child<'b>(&self, value: &'b Bound<'py, PyAny>) -> PyJson<'b, 'py> {
        PyJson { value, depth: self.depth + 1 }
    }
}

impl Serialize for PyJson<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = self.value;
        if value.is_none() {
            return serializer.serialize_unit();
        }
        // Before int: bool is a subclass of int.
        if let Ok(flag) = value.cast::<PyBool>() {
            return serializer.serialize_bool(flag.is_true());
        }
        if let Ok(int) = value.cast::<PyInt>() {
            if let Ok(small) = int.extract::<i64>() {
                return serializer.serialize_i64(small);
            }
            if let Ok(large) = int.extract::<u64>() {
                return serializer.serialize_u64(large);
            }
            // Wider than 64 bits: every digit is kept (arbitrary precision).
            let digits = int.str().map_err(S::Error::custom)?;
            let number: serde_json::Number =
                digits.to_str().map_err(S::Error::custom)?.parse().map_err(S::Error::custom)?;
            return number.serialize(serializer);
        }
        if let Ok(float) = value.cast::<PyFloat>() {
            let float = float.value();
            if !float.is_finite() {
                return Err(S::Error::custom(format!("float {float} is not valid JSON")));
            }
            return serializer.serialize_f64(float);
        }
        if let Ok(text) = value.cast::<PyString>() {
            return serializer.serialize_str(text.to_str().map_err(S::Error::custom)?);
        }
        let is_container =
            value.is_instance_of::<PyDict>() || value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>();
        if is_container && self.depth >= MAX_NESTING {
            return Err(S::Error::custom(format!(
                "nested deeper than {MAX_NESTING} levels (or a container contains itself)"
            )));
        }
        if let Ok(dict) = value.cast::<PyDict>() {
            let mut map = serializer.serialize_map(Some(dict.len()))?;
            for (key, item) in dict.iter() {
                let Ok(key) = key.cast::<PyString>() else {
                    return Err(S::Error::custom(format!("dict keys must be str, got {}", type_name(&key))));
                };
                map.serialize_entry(key.to_str().map_err(S::Error::custom)?, &self.child(&item))?;
            }
            return map.end();
        }
        if let Ok(list) = value.cast::<PyList>() {
            let mut seq = serializer.serialize_seq(Some(list.len()))?;
            for item in list.iter() {
                seq.serialize_element(&self.child(&item))?;
            }
            return seq.end();
        }
        if let Ok(tuple) = value.cast::<PyTuple>() {
            let mut seq = serializer.serialize_seq(Some(tuple.len()))?;
            for item in tuple.iter() {
                seq.serialize_element(&self.child(&item))?;
            }
            return seq.end();
        }
        Err(S::Error::custom(format!("value of type {} is not JSON-serializable", type_name(value))))
    }
}
