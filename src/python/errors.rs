//! The one place where Rust errors become Python exceptions.
//!
//! Every exception derives from `TraceError` and carries the location of the
//! failure as attributes (`bundle`, `file`, `line`, `seq`, `raw_payload_id`,
//! each `None` when unknown) besides the message; the diagnostics of a
//! lenient replay add `event_type` and `depends_on`.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

use crate::error::{Error, ErrorKind};
use crate::reducer::Diagnostic;

create_exception!(rollout_trace, TraceError, PyException, "Base class of every rollout-trace error.");
create_exception!(
    rollout_trace,
    BundleError,
    TraceError,
    "The bundle is unusable: not a directory, or its manifest is missing or malformed."
);
create_exception!(
    rollout_trace,
    EventError,
    TraceError,
    "A line of trace.jsonl could not be read or parsed as an event."
);
create_exception!(rollout_trace, PayloadError, TraceError, "A payload file could not be opened or parsed.");
create_exception!(rollout_trace, ReduceError, TraceError, "The events parsed but break a reducer rule.");
create_exception!(rollout_trace, LimitError, TraceError, "A configured size, count or depth limit was exceeded.");
create_exception!(rollout_trace, UnsafePathError, TraceError, "A path in the bundle points outside it.");
create_exception!(rollout_trace, WriteError, TraceError, "Writing a bundle or an output file failed.");
create_exception!(rollout_trace, StateError, TraceError, "A reduced state (state.json) could not be read.");

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("TraceError", py.get_type::<TraceError>())?;
    m.add("BundleError", py.get_type::<BundleError>())?;
    m.add("EventError", py.get_type::<EventError>())?;
    m.add("PayloadError", py.get_type::<PayloadError>())?;
    m.add("ReduceError", py.get_type::<ReduceError>())?;
    m.add("LimitError", py.get_type::<LimitError>())?;
    m.add("UnsafePathError", py.get_type::<UnsafePathError>())?;
    m.add("WriteError", py.get_type::<WriteError>())?;
    m.add("StateError", py.get_type::<StateError>())?;
    Ok(())
}

/// Converts a core error into the matching Python exception, with location
/// attributes set.
pub fn to_py_err(py: Python<'_>, error: Error) -> PyErr {
    let text = error.to_string();
    let err = match error.kind {
        ErrorKind::Bundle => BundleError::new_err(text),
        ErrorKind::Event => EventError::new_err(text),
        ErrorKind::Payload => PayloadError::new_err(text),
        ErrorKind::Reduce => ReduceError::new_err(text),
        ErrorKind::Limit => LimitError::new_err(text),
        ErrorKind::UnsafePath => UnsafePathError::new_err(text),
        ErrorKind::Write => WriteError::new_err(text),
        ErrorKind::State => StateError::new_err(text),
        ErrorKind::Usage => return PyValueError::new_err(text),
    };
    let value = err.value(py);
    let loc = &error.location;
    let path_str = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());
    // Setting attributes on a fresh exception instance cannot fail in practice;
    // if it did, the exception is still raised with its full message.
    let _ = value.setattr("message", error.message.as_str());
    let _ = value.setattr("kind", error.kind.as_str());
    let _ = value.setattr("bundle", path_str(&loc.bundle));
    let _ = value.setattr("file", path_str(&loc.file));
    let _ = value.setattr("line", loc.line);
    let _ = value.setattr("seq", loc.seq);
    let _ = value.setattr("raw_payload_id", loc.raw_payload_id.as_deref());
    let _ = value.setattr("event_type", None::<&str>);
    let _ = value.setattr("depends_on", None::<u64>);
    err
}

/// A left-out event as the exception it raised, with the event's type and
/// the line of the skipped event it depended on.
pub fn diagnostic_to_py(py: Python<'_>, diagnostic: &Diagnostic) -> PyErr {
    let err = to_py_err(py, diagnostic.error.clone());
    let value = err.value(py);
    let _ = value.setattr("event_type", diagnostic.event_type);
    let _ = value.setattr("depends_on", diagnostic.depends_on_line);
    err
}

/// `map_err` helper for binding code: `result.map_err(py_err(py))?`.
pub fn py_err(py: Python<'_>) -> impl Fn(Error) -> PyErr + '_ {
    move |error| to_py_err(py, error)
}
