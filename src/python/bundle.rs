//! `TraceBundle` and its raw events (`RawEvent`), read on demand.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyAttributeError, PyKeyError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::convert::{json_to_py, to_plain, value_hash};
use super::errors::py_err;
use super::payload::PyRawPayloadRef;
use super::trace::PyRolloutTrace;
use super::values::{ToolCallKind, ToolCallSummary};
use crate::bundle::{EventReader, TraceBundle};
use crate::error::{Error, ErrorKind};
use crate::format::{Manifest, RawPayloadRef, RawTraceEvent, RawTraceEventPayload};
use crate::limits::Limits;

/// An opened trace bundle: its directory and checked manifest.
#[pyclass(frozen, module = "rollout_trace", name = "TraceBundle")]
pub struct PyTraceBundle {
    inner: Arc<TraceBundle>,
}

impl PyTraceBundle {
    pub fn from_arc(inner: Arc<TraceBundle>) -> Self {
        PyTraceBundle { inner }
    }

    pub fn arc(&self) -> Arc<TraceBundle> {
        self.inner.clone()
    }

    fn manifest(&self) -> &Manifest {
        self.inner.manifest()
    }
}

#[pymethods]
impl PyTraceBundle {
    /// Opens the bundle directory at `path` and checks its manifest
    /// (present, well-formed, schema version 1). Raises `BundleError`.
    /// `limits` bound what later reads of this bundle accept.
    #[staticmethod]
    #[pyo3(signature = (path, *, limits=None))]
    fn open(py: Python<'_>, path: PathBuf, limits: Option<super::batch::PyLimits>) -> PyResult<Self> {
        let limits = super::batch::limits_or_default(limits.as_ref());
        let bundle = py.detach(|| TraceBundle::open_with_limits(&path, limits)).map_err(py_err(py))?;
        Ok(PyTraceBundle { inner: Arc::new(bundle) })
    }

    /// The bundle directory, as given to `open`.
    #[getter]
    fn path(&self) -> &Path {
        self.inner.root()
    }

    #[getter]
    fn schema_version(&self) -> u32 {
        self.manifest().schema_version
    }

    #[getter]
    fn trace_id(&self) -> &str {
        &self.manifest().trace_id
    }

    #[getter]
    fn rollout_id(&self) -> &str {
        &self.manifest().rollout_id
    }

    #[getter]
    fn root_thread_id(&self) -> &str {
        &self.manifest().root_thread_id
    }

    #[getter]
    fn started_at_unix_ms(&self) -> i64 {
        self.manifest().started_at_unix_ms
    }

    #[getter]
    fn raw_event_log(&self) -> &str {
        &self.manifest().raw_event_log
    }

    #[getter]
    fn payloads_dir(&self) -> &str {
        &self.manifest().payloads_dir
    }

    /// The manifest as plain data.
    fn manifest_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, self.manifest())
    }

    /// The raw events of `trace.jsonl` in file order, read one line at a
    /// time. A bad line raises `EventError` (with `file`, `line`) when
    /// reached.
    fn events(&self, py: Python<'_>) -> PyResult<RawEventIterator> {
        let reader = py.detach(|| self.inner.events()).map_err(py_err(py))?;
        Ok(RawEventIterator { bundle: self.inner.clone(), reader: Mutex::new(reader) })
    }

    /// Replays the bundle into its reduced graph (GIL released); see
    /// `replay_bundle` for `partial`, `compat` and `lenient`.
    #[pyo3(signature = (*, partial=false, compat=None, lenient=false))]
    fn reduce(&self, py: Python<'_>, partial: bool, compat: Option<&str>, lenient: bool) -> PyResult<PyRolloutTrace> {
        let bundle = (*self.inner).clone();
        let options = crate::reducer::ReplayOptions {
            limits: *bundle.limits(),
            ..super::batch::replay_options(py, compat, None, partial, lenient, None)?
        };
        let replay = py.detach(|| crate::reducer::replay_with(bundle, &options)).map_err(py_err(py))?;
        Ok(PyRolloutTrace::from_replay(replay))
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner
    }

    fn __hash__(&self) -> u64 {
        value_hash(&*self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "<TraceBundle {} trace_id={} root_thread_id={}>",
            self.inner.root().display(),
            self.manifest().trace_id,
            self.manifest().root_thread_id
        )
    }

    /// Pickles the path, manifest and limits; unpickling reads nothing.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let this = slf.get();
        let restore = py.get_type::<Self>().getattr("_restore")?;
        let manifest = crate::json::to_compact_string(this.manifest());
        let limits = this.inner.limits();
        let limits = (
            limits.max_record_bytes,
            limits.max_bundle_bytes,
            limits.max_events,
            limits.max_payloads,
            limits.max_json_depth,
        );
        Ok((restore, (this.inner.root(), manifest, limits).into_pyobject(py)?))
    }

    #[staticmethod]
    fn _restore(py: Python<'_>, path: PathBuf, manifest: &str, limits: (u64, u64, u64, u64, u32)) -> PyResult<Self> {
        let manifest: Manifest = serde_json::from_str(manifest).map_err(|err| {
            py_err(py)(Error::new(ErrorKind::Bundle, format!("unpickle manifest: {err}")).with_bundle(&path))
        })?;
        let (max_record_bytes, max_bundle_bytes, max_events, max_payloads, max_json_depth) = limits;
        let limits = Limits { max_record_bytes, max_bundle_bytes, max_events, max_payloads, max_json_depth };
        Ok(PyTraceBundle { inner: Arc::new(TraceBundle::from_parts(path, manifest, limits)) })
    }
}

/// Iterator over the raw events of a bundle. Safe to share between threads
/// (each event is handed out once).
#[pyclass(frozen, module = "rollout_trace", name = "RawEventIterator")]
pub struct RawEventIterator {
    bundle: Arc<TraceBundle>,
    reader: Mutex<EventReader>,
}

#[pymethods]
impl RawEventIterator {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyRawEvent>> {
        // The lock is only taken with the GIL released, so a thread waiting
        // for it never holds the GIL.
        let next = py.detach(|| self.reader.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).next());
        match next {
            None => Ok(None),
            Some(Err(error)) => Err(py_err(py)(error)),
            Some(Ok(located)) => {
                Ok(Some(PyRawEvent { event: located.event, line: located.line, bundle: self.bundle.clone() }))
            }
        }
    }
}

/// One line of `trace.jsonl`: the envelope fields as attributes, the
/// payload's fields as `payload`, as attributes (when not shadowed by an
/// envelope field) and as `event["field"]`.
///
/// Payload references inside are `RawPayloadRef` objects bound to the
/// bundle; `kind` and `summary` of `tool_call_started` are `ToolCallKind` and
/// `ToolCallSummary`; everything else is plain Python data.
#[pyclass(frozen, module = "rollout_trace", name = "RawEvent")]
pub struct PyRawEvent {
    event: RawTraceEvent,
    line: u64,
    bundle: Arc<TraceBundle>,
}

impl PyRawEvent {
    fn payload_ref(&self, reference: &RawPayloadRef) -> PyRawPayloadRef {
        PyRawPayloadRef::new(reference.clone(), Some(self.bundle.clone()))
    }

    fn payload_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let payload = &self.event.payload;
        let dict = to_plain(py, payload)?.cast_into::<PyDict>()?;
        dict.del_item("type")?;
        for (field, reference) in single_payload_refs(payload) {
            dict.set_item(field, reference.map(|reference| self.payload_ref(reference)))?;
        }
        match payload {
            RawTraceEventPayload::ToolCallStarted { kind, summary, .. } => {
                dict.set_item("kind", ToolCallKind::from(kind.clone()))?;
                dict.set_item("summary", ToolCallSummary::from(summary.clone()))?;
            }
            RawTraceEventPayload::Other { payloads, metadata, .. } => {
                let refs = payloads.iter().map(|reference| self.payload_ref(reference));
                dict.set_item("payloads", PyTuple::new(py, refs)?)?;
                dict.set_item("metadata", json_to_py(py, metadata)?)?;
            }
            _ => {}
        }
        Ok(dict)
    }
}

/// The fields of an event payload that hold one (optional) payload ref.
fn single_payload_refs(payload: &RawTraceEventPayload) -> Vec<(&'static str, Option<&RawPayloadRef>)> {
    use RawTraceEventPayload as P;
    match payload {
        P::ThreadStarted { metadata_payload, .. } => vec![("metadata_payload", metadata_payload.as_ref())],
        P::InferenceStarted { request_payload, .. } | P::CompactionRequestStarted { request_payload, .. } => {
            vec![("request_payload", Some(request_payload))]
        }
        P::InferenceCompleted { response_payload, .. } | P::CompactionRequestCompleted { response_payload, .. } => {
            vec![("response_payload", Some(response_payload))]
        }
        P::InferenceFailed { partial_response_payload, .. }
        | P::InferenceCancelled { partial_response_payload, .. } => {
            vec![("partial_response_payload", partial_response_payload.as_ref())]
        }
        P::ToolCallStarted { invocation_payload, .. } => vec![("invocation_payload", invocation_payload.as_ref())],
        P::ToolCallRuntimeStarted { runtime_payload, .. } | P::ToolCallRuntimeEnded { runtime_payload, .. } => {
            vec![("runtime_payload", Some(runtime_payload))]
        }
        P::ToolCallEnded { result_payload, .. } => vec![("result_payload", result_payload.as_ref())],
        P::CodeCellInitialResponse { response_payload, .. } | P::CodeCellEnded { response_payload, .. } => {
            vec![("response_payload", response_payload.as_ref())]
        }
        P::CompactionInstalled { checkpoint_payload, .. } => vec![("checkpoint_payload", Some(checkpoint_payload))],
        P::AgentResultObserved { carried_payload, .. } => vec![("carried_payload", carried_payload.as_ref())],
        P::ProtocolEventObserved { event_payload, .. } => vec![("event_payload", Some(event_payload))],
        P::RolloutStarted { .. }
        | P::RolloutEnded { .. }
        | P::ThreadEnded { .. }
        | P::CodexTurnStarted { .. }
        | P::CodexTurnEnded { .. }
        | P::McpToolCallCorrelationAssigned { .. }
        | P::CodeCellStarted { .. }
        | P::CompactionRequestFailed { .. }
        | P::Other { .. } => Vec::new(),
    }
}

#[pymethods]
impl PyRawEvent {
    #[getter]
    fn schema_version(&self) -> u32 {
        self.event.schema_version
    }

    #[getter]
    fn seq(&self) -> u64 {
        self.event.seq
    }

    #[getter]
    fn wall_time_unix_ms(&self) -> i64 {
        self.event.wall_time_unix_ms
    }

    #[getter]
    fn rollout_id(&self) -> &str {
        &self.event.rollout_id
    }

    #[getter]
    fn thread_id(&self) -> Option<&str> {
        self.event.thread_id.as_deref()
    }

    #[getter]
    fn codex_turn_id(&self) -> Option<&str> {
        self.event.codex_turn_id.as_deref()
    }

    /// The payload's `type`, e.g. ``"inference_started"``.
    #[getter]
    fn r#type(&self) -> &'static str {
        self.event.payload.type_name()
    }

    /// The 1-based line of `trace.jsonl` this event was read from.
    #[getter]
    fn line(&self) -> u64 {
        self.line
    }

    /// The payload's fields (without `type`), built anew on each access.
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.payload_dict(py)
    }

    /// Every payload reference of the event, in field order.
    #[getter]
    fn payload_refs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.event.payload.payload_refs().into_iter().map(|reference| self.payload_ref(reference)))
    }

    fn __getattr__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        self.payload_dict(py)?.get_item(name)?.ok_or_else(|| {
            PyAttributeError::new_err(format!(
                "'RawEvent' ({}) has no attribute '{name}'",
                self.event.payload.type_name()
            ))
        })
    }

    fn __getitem__<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        self.payload_dict(py)?.get_item(key)?.ok_or_else(|| PyKeyError::new_err(key.to_string()))
    }

    /// The whole event as plain data, as `json.loads` of its line gives it
    /// (numbers as in `RawPayloadRef.load`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let dict = to_plain(py, &self.event)?;
        if let RawTraceEventPayload::Other { metadata, .. } = &self.event.payload {
            dict.get_item("payload")?.set_item("metadata", json_to_py(py, metadata)?)?;
        }
        Ok(dict)
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.event == other.event
    }

    fn __hash__(&self) -> u64 {
        // `RawTraceEvent` holds free JSON (not `Hash`); its compact text is
        // equal exactly when the events are.
        value_hash(&crate::json::to_compact_string(&self.event))
    }

    fn __repr__(&self) -> String {
        let mut text = format!("<RawEvent seq={} {}", self.event.seq, self.event.payload.type_name());
        if let Some(thread) = &self.event.thread_id {
            text.push_str(&format!(" thread={thread}"));
        }
        if let Some(turn) = &self.event.codex_turn_id {
            text.push_str(&format!(" turn={turn}"));
        }
        text.push('>');
        text
    }
}
