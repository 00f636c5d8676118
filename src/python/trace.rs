//! `RolloutTrace`: the reduced graph, kept in Rust and shown to Python
//! through lazy views, plus `TraceMapping`, the read-only mapping view of
//! each of its maps.

use std::collections::HashMap;
use std::ops::Bound as RangeBound;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyString, PyTuple, PyType};

use super::bundle::PyTraceBundle;
use super::convert::{enum_name, to_plain, value_hash};
use super::entities::{
    call_python, AgentThread, CodeCell, CodexTurn, Compaction, CompactionRequest, ConversationItem, Entity,
    InferenceCall, InteractionEdge, TerminalOperation, TerminalSession, ToolCall,
};
use super::errors::{diagnostic_to_py, py_err};
use super::payload::PyRawPayloadRef;
use crate::bundle::TraceBundle;
use crate::error::{Error, ErrorKind};
use crate::model;
use crate::reducer::{Diagnostic, RepairNote};

/// The immutable graph every view of one trace shares.
pub struct TraceData {
    pub model: model::RolloutTrace,
    pub bundle: Option<Arc<TraceBundle>>,
    /// One `RawPayloadRef` object per payload id, made on first request, so
    /// that every path to a payload shares its `load()` cache.
    payload_refs: Mutex<HashMap<String, Py<PyRawPayloadRef>>>,
    /// Hashing walks the whole graph; do it once.
    hash: OnceLock<u64>,
    /// What a partial or lenient replay left out; empty for a complete one.
    diagnostics: Vec<Diagnostic>,
    /// Lines of `trace.jsonl` read as events, when this trace was replayed.
    events_read: Option<u64>,
    /// Where opt-in repairs changed the result.
    repairs: Vec<RepairNote>,
}

impl TraceData {
    fn new(
        model: model::RolloutTrace,
        bundle: Option<Arc<TraceBundle>>,
        diagnostics: Vec<Diagnostic>,
        events_read: Option<u64>,
    ) -> Arc<Self> {
        Arc::new(TraceData {
            model,
            bundle,
            payload_refs: Mutex::new(HashMap::new()),
            hash: OnceLock::new(),
            diagnostics,
            events_read,
            repairs: Vec::new(),
        })
    }

    /// The shared `RawPayloadRef` object for a payload id, `None` if the
    /// trace has no such payload.
    pub fn payload_ref(&self, py: Python<'_>, id: &str) -> PyResult<Option<Py<PyRawPayloadRef>>> {
        let Some(reference) = self.model.raw_payloads.get(id) else {
            return Ok(None);
        };
        if let Some(existing) = self.lock_payload_refs().get(id) {
            return Ok(Some(existing.clone_ref(py)));
        }
        // Built outside the lock: making a Python object may run arbitrary
        // Python code (GC), which must not happen while the lock is held.
        let candidate = Py::new(py, PyRawPayloadRef::new(reference.clone(), self.bundle.clone()))?;
        let chosen =
            self.lock_payload_refs().entry(id.to_string()).or_insert_with(|| candidate.clone_ref(py)).clone_ref(py);
        drop(candidate);
        Ok(Some(chosen))
    }

    /// The payload for an id the model says must exist.
    pub fn require_payload_ref(&self, py: Python<'_>, id: &str, holder: &str) -> PyResult<Py<PyRawPayloadRef>> {
        self.payload_ref(py, id)?.ok_or_else(|| dangling(py, holder, "raw_payloads", id))
    }

    fn lock_payload_refs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Py<PyRawPayloadRef>>> {
        self.payload_refs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The `StateError` for an id that should name an object of the trace but
/// does not (only possible in a hand-made or corrupted `state.json`).
pub fn dangling(py: Python<'_>, holder: &str, collection: &str, id: &str) -> PyErr {
    py_err(py)(Error::new(ErrorKind::State, format!("{holder} refers to {id:?}, which is not in {collection}")))
}

/// The reduced graph of one rollout (`state.json`).
///
/// Scalars are attributes; each map is a read-only `TraceMapping` in key
/// order whose values are made only when read.
#[pyclass(frozen, module = "rollout_trace", name = "RolloutTrace")]
pub struct PyRolloutTrace {
    data: Arc<TraceData>,
}

impl PyRolloutTrace {
    pub fn new(model: model::RolloutTrace, bundle: Option<Arc<TraceBundle>>) -> Self {
        PyRolloutTrace { data: TraceData::new(model, bundle, Vec::new(), None) }
    }

    /// The result of a replay, partial or not, with its bundle attached.
    pub fn from_replay(replay: crate::reducer::Replay) -> Self {
        let mut data =
            TraceData::new(replay.trace, Some(Arc::new(replay.bundle)), replay.diagnostics, Some(replay.events));
        Arc::get_mut(&mut data).expect("just made").repairs = replay.repairs;
        PyRolloutTrace { data }
    }

    fn mapping(&self, collection: Collection) -> TraceMapping {
        TraceMapping::new(self.data.clone(), collection)
    }
}

/// Parses `state.json` text and checks that every map key is its value's id.
fn parse_state(bytes: &[u8]) -> Result<model::RolloutTrace, Error> {
    let model = model::RolloutTrace::from_json(bytes)
        .map_err(|err| Error::new(ErrorKind::State, format!("parse state.json: {err}")).with_line(err.line() as u64))?;
    check_keys(&model).map_err(|message| Error::new(ErrorKind::State, message))?;
    Ok(model)
}

fn check_keys(trace: &model::RolloutTrace) -> Result<(), String> {
    fn check<T>(name: &str, map: &model::Map<T>, id: impl Fn(&T) -> &str) -> Result<(), String> {
        match map.iter().find(|(key, value)| key.as_str() != id(value)) {
            Some((key, value)) => Err(format!("{name} key {key:?} holds an object with id {:?}", id(value))),
            None => Ok(()),
        }
    }
    check("threads", &trace.threads, |v| &v.thread_id)?;
    check("codex_turns", &trace.codex_turns, |v| &v.codex_turn_id)?;
    check("conversation_items", &trace.conversation_items, |v| &v.item_id)?;
    check("inference_calls", &trace.inference_calls, |v| &v.inference_call_id)?;
    check("code_cells", &trace.code_cells, |v| &v.code_cell_id)?;
    check("tool_calls", &trace.tool_calls, |v| &v.tool_call_id)?;
    check("terminal_sessions", &trace.terminal_sessions, |v| &v.terminal_id)?;
    check("terminal_operations", &trace.terminal_operations, |v| &v.operation_id)?;
    check("compactions", &trace.compactions, |v| &v.compaction_id)?;
    check("compaction_requests", &trace.compaction_requests, |v| &v.compaction_request_id)?;
    check("interaction_edges", &trace.interaction_edges, |v| &v.edge_id)?;
    check("raw_payloads", &trace.raw_payloads, |v| &v.raw_payload_id)
}

/// The `bundle=` argument: `None`, a `TraceBundle`, or a path to open.
fn bundle_argument(py: Python<'_>, bundle: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Arc<TraceBundle>>> {
    let Some(bundle) = bundle.filter(|bundle| !bundle.is_none()) else {
        return Ok(None);
    };
    if let Ok(opened) = bundle.cast::<PyTraceBundle>() {
        return Ok(Some(opened.get().arc()));
    }
    let path: PathBuf = bundle.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "bundle must be a TraceBundle, a path or None, not {}",
            bundle.get_type().name().map(|name| name.to_string()).unwrap_or_default()
        ))
    })?;
    let opened = py.detach(|| TraceBundle::open(&path)).map_err(py_err(py))?;
    Ok(Some(Arc::new(opened)))
}

#[pymethods]
impl PyRolloutTrace {
    /// Reads a `state.json` file. Give `bundle` (a `TraceBundle` or its
    /// path) to make raw payloads loadable. Raises `StateError`.
    #[staticmethod]
    #[pyo3(signature = (path, bundle = None))]
    fn load(py: Python<'_>, path: PathBuf, bundle: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let bundle = bundle_argument(py, bundle)?;
        let model = py
            .detach(|| {
                let bytes = std::fs::read(&path).map_err(|err| {
                    Error::new(ErrorKind::State, format!("read {}: {err}", path.display())).with_file(&path)
                })?;
                parse_state(&bytes).map_err(|error| error.with_file(&path))
            })
            .map_err(py_err(py))?;
        Ok(Self::new(model, bundle))
    }

    /// Reads `state.json` text (`str` or `bytes`). Raises `StateError`.
    #[staticmethod]
    #[pyo3(signature = (text, bundle = None))]
    fn from_json(py: Python<'_>, text: &Bound<'_, PyAny>, bundle: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let bundle = bundle_argument(py, bundle)?;
        let parsed = if let Ok(text) = text.cast::<PyString>() {
            let text = text.to_str()?;
            py.detach(|| parse_state(text.as_bytes()))
        } else if let Ok(bytes) = text.cast::<PyBytes>() {
            let bytes = bytes.as_bytes();
            py.detach(|| parse_state(bytes))
        } else if let Ok(bytes) = text.cast::<PyByteArray>() {
            let bytes = bytes.to_vec();
            py.detach(|| parse_state(&bytes))
        } else {
            return Err(PyTypeError::new_err("from_json() takes str or bytes"));
        };
        Ok(Self::new(parsed.map_err(py_err(py))?, bundle))
    }

    /// The exact `state.json` text (pretty, no trailing newline).
    fn to_json(&self, py: Python<'_>) -> String {
        py.detach(|| self.data.model.to_json())
    }

    /// Writes `state.json` text to `path` atomically (temporary file in the
    /// same directory, then rename) and durably (synced before it returns;
    /// `sync=False` skips that). Raises `WriteError`.
    #[pyo3(signature = (path, *, sync=true))]
    fn save(&self, py: Python<'_>, path: PathBuf, sync: bool) -> PyResult<()> {
        let durability = super::batch::durability(sync);
        py.detach(|| crate::output::write_atomic_as(&path, durability, |out| self.data.model.write_json(out)))
            .map_err(py_err(py))
    }

    /// What a partial or lenient replay left out, in line order, as the
    /// `TraceError`s the events raised (with `kind`, `message`, `file`,
    /// `line`, `seq`, `raw_payload_id`, plus `event_type` and `depends_on`,
    /// the line of the skipped event it failed for want of); empty when the
    /// whole bundle replayed.
    #[getter]
    fn diagnostics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let errors = self.data.diagnostics.iter().map(|diagnostic| diagnostic_to_py(py, diagnostic).into_value(py));
        PyTuple::new(py, errors)
    }

    /// True when this trace comes from a partial or lenient replay that
    /// left events out.
    #[getter]
    fn is_partial(&self) -> bool {
        !self.data.diagnostics.is_empty()
    }

    /// Where opt-in repairs (`repair=`) made the result depart from the
    /// reference's: dicts with `repair`, `line`, `seq`, `raw_payload_id`
    /// and `message`, in replay order.
    #[getter]
    fn repairs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let notes = self.data.repairs.iter().map(|note| {
            let dict = pyo3::types::PyDict::new(py);
            dict.set_item("repair", note.repair.name())?;
            dict.set_item("line", note.line)?;
            dict.set_item("seq", note.seq)?;
            dict.set_item("raw_payload_id", &note.raw_payload_id)?;
            dict.set_item("message", &note.message)?;
            Ok(dict)
        });
        PyTuple::new(py, notes.collect::<PyResult<Vec<_>>>()?)
    }

    /// Lines of `trace.jsonl` read as events (applied or left out); `None`
    /// for a trace loaded from `state.json`.
    #[getter]
    fn events_read(&self) -> Option<u64> {
        self.data.events_read
    }

    /// What a person asks first: status, duration, threads, turns, models
    /// and token totals, tool calls by kind, terminal commands, compactions
    /// and edges, as plain data.
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let summary = py.detach(|| crate::summary::Summary::of(&self.data.model));
        to_plain(py, &summary)
    }

    /// `summary()` as text, each line at most `width` characters.
    #[pyo3(signature = (width=80))]
    fn summary_text(&self, py: Python<'_>, width: usize) -> String {
        py.detach(|| crate::summary::Summary::of(&self.data.model).render(width))
    }

    /// Prints threads, turns, inference calls and tool calls as a tree with
    /// statuses and durations, to `file` (default `sys.stdout`).
    #[pyo3(signature = (file = None))]
    fn print_tree(slf: &Bound<'_, Self>, file: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let kwargs = PyDict::new(slf.py());
        kwargs.set_item("file", file)?;
        call_python(slf.py(), "rollout_trace.analysis", "print_tree", slf.as_any(), Some(&kwargs))?;
        Ok(())
    }

    /// The trace as HTML: a summary, then each thread's conversation with
    /// tool calls folded under the inference that issued them (Jupyter
    /// calls this).
    fn _repr_html_<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        call_python(slf.py(), "rollout_trace.analysis", "trace_html", slf.as_any(), None)
    }

    /// Column-oriented tables of the trace (threads, turns,
    /// conversation_items, inference_calls, tool_calls,
    /// terminal_operations, code_cells, interaction_edges), each row
    /// keyed by `trace_id` and the object's id (see `rollout_trace.tables`).
    fn tables<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        call_python(slf.py(), "rollout_trace.tables", "trace_tables", slf.as_any(), None)
    }

    /// The whole trace as plain Python data (as `json.loads(to_json())`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, &self.data.model)
    }

    /// The bundle payloads are read from; `None` for a trace read from
    /// `state.json` without one.
    #[getter]
    fn bundle(&self) -> Option<PyTraceBundle> {
        self.data.bundle.clone().map(PyTraceBundle::from_arc)
    }

    #[getter]
    fn schema_version(&self) -> u32 {
        self.data.model.schema_version
    }

    #[getter]
    fn trace_id(&self) -> &str {
        &self.data.model.trace_id
    }

    #[getter]
    fn rollout_id(&self) -> &str {
        &self.data.model.rollout_id
    }

    #[getter]
    fn started_at_unix_ms(&self) -> i64 {
        self.data.model.started_at_unix_ms
    }

    #[getter]
    fn ended_at_unix_ms(&self) -> Option<i64> {
        self.data.model.ended_at_unix_ms
    }

    #[getter]
    fn status(&self) -> String {
        enum_name(&self.data.model.status)
    }

    #[getter]
    fn root_thread_id(&self) -> &str {
        &self.data.model.root_thread_id
    }

    /// The root thread, `None` if no event started it.
    #[getter]
    fn root_thread(&self) -> Option<AgentThread> {
        AgentThread::lookup(&self.data, &self.data.model.root_thread_id)
    }

    #[getter]
    fn threads(&self) -> TraceMapping {
        self.mapping(Collection::Threads)
    }

    #[getter]
    fn codex_turns(&self) -> TraceMapping {
        self.mapping(Collection::CodexTurns)
    }

    #[getter]
    fn conversation_items(&self) -> TraceMapping {
        self.mapping(Collection::ConversationItems)
    }

    #[getter]
    fn inference_calls(&self) -> TraceMapping {
        self.mapping(Collection::InferenceCalls)
    }

    #[getter]
    fn code_cells(&self) -> TraceMapping {
        self.mapping(Collection::CodeCells)
    }

    #[getter]
    fn tool_calls(&self) -> TraceMapping {
        self.mapping(Collection::ToolCalls)
    }

    #[getter]
    fn terminal_sessions(&self) -> TraceMapping {
        self.mapping(Collection::TerminalSessions)
    }

    #[getter]
    fn terminal_operations(&self) -> TraceMapping {
        self.mapping(Collection::TerminalOperations)
    }

    #[getter]
    fn compactions(&self) -> TraceMapping {
        self.mapping(Collection::Compactions)
    }

    #[getter]
    fn compaction_requests(&self) -> TraceMapping {
        self.mapping(Collection::CompactionRequests)
    }

    #[getter]
    fn interaction_edges(&self) -> TraceMapping {
        self.mapping(Collection::InteractionEdges)
    }

    #[getter]
    fn raw_payloads(&self) -> TraceMapping {
        self.mapping(Collection::RawPayloads)
    }

    /// Equal when the reduced graphs are equal (the bundle does not count).
    fn __eq__(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.data, &other.data) || self.data.model == other.data.model
    }

    fn __hash__(&self) -> u64 {
        *self.data.hash.get_or_init(|| value_hash(&self.data.model))
    }

    fn __repr__(&self) -> String {
        let model = &self.data.model;
        let counts: Vec<String> = Collection::ALL
            .iter()
            .filter(|collection| **collection != Collection::RawPayloads)
            .map(|collection| (collection.name(), collection.len(model)))
            .filter(|(_, len)| *len > 0)
            .map(|(name, len)| format!("{name}={len}"))
            .collect();
        format!(
            "<RolloutTrace {} rollout_id={} status={}{}{}>",
            model.trace_id,
            model.rollout_id,
            enum_name(&model.status),
            if counts.is_empty() { "" } else { " " },
            counts.join(" ")
        )
    }

    /// Pickles the graph (compact JSON), the bundle location and the
    /// diagnostics of a partial replay; the other side reads no file to
    /// unpickle.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let this = slf.get();
        let state = py.detach(|| crate::json::to_compact_string(&this.data.model));
        let diagnostics: Vec<PickledDiagnostic> = this.data.diagnostics.iter().map(pickle_diagnostic).collect();
        let restore = py.get_type::<Self>().getattr("_restore")?;
        let args = (PyBytes::new(py, state.as_bytes()), this.bundle(), diagnostics, this.data.events_read);
        Ok((restore, args.into_pyobject(py)?))
    }

    #[staticmethod]
    #[pyo3(signature = (state, bundle, diagnostics=Vec::new(), events_read=None))]
    fn _restore(
        py: Python<'_>,
        state: &[u8],
        bundle: Option<PyRef<'_, PyTraceBundle>>,
        diagnostics: Vec<PickledDiagnostic>,
        events_read: Option<u64>,
    ) -> PyResult<Self> {
        let model = py.detach(|| parse_state(state)).map_err(py_err(py))?;
        let diagnostics = diagnostics.into_iter().map(unpickle_diagnostic).collect::<PyResult<_>>()?;
        let bundle = bundle.map(|bundle| bundle.arc());
        Ok(PyRolloutTrace { data: TraceData::new(model, bundle, diagnostics, events_read) })
    }
}

/// A diagnostic as pickled: kind name, message, the location's bundle, file,
/// line, seq and payload id, then the event type and the line depended on.
type PickledDiagnostic = (
    String,
    String,
    Option<PathBuf>,
    Option<PathBuf>,
    Option<u64>,
    Option<u64>,
    Option<String>,
    Option<String>,
    Option<u64>,
);

fn pickle_diagnostic(diagnostic: &Diagnostic) -> PickledDiagnostic {
    let Diagnostic { error, event_type, depends_on_line } = diagnostic;
    let at = &error.location;
    let kind = error.kind.as_str().to_string();
    let event_type = event_type.map(str::to_string);
    let (bundle, file) = (at.bundle.clone(), at.file.clone());
    (
        kind,
        error.message.clone(),
        bundle,
        file,
        at.line,
        at.seq,
        at.raw_payload_id.clone(),
        event_type,
        *depends_on_line,
    )
}

fn unpickle_diagnostic(pickled: PickledDiagnostic) -> PyResult<Diagnostic> {
    let (kind, message, bundle, file, line, seq, raw_payload_id, event_type, depends_on_line) = pickled;
    let kind = ErrorKind::from_name(&kind)
        .ok_or_else(|| PyTypeError::new_err(format!("unpickling a diagnostic of unknown kind {kind:?}")))?;
    let mut error = Error::new(kind, message);
    error.location = crate::error::Location { bundle, file, line, seq, raw_payload_id };
    let event_type = event_type.and_then(|name| crate::compat::EVENTS_ALL.iter().copied().find(|known| *known == name));
    Ok(Diagnostic { error, event_type, depends_on_line })
}

/// Replays the bundle at `path` into its reduced graph (GIL released).
/// Raises a `TraceError` subclass naming the bundle, file, line and `seq`.
/// With `partial=True`, a bundle whose log ends mid-line or holds an event
/// that cannot be read or reduced gives the trace of every event before it,
/// with `is_partial` set and the dropped event in `diagnostics`.
/// With `lenient=True` every event that cannot be read or reduced is left
/// out (with those that fail for want of it) and the rest reduced: the
/// result is the strict replay of the bundle without the events listed in
/// `diagnostics`.
/// `read_ahead=False` reads payloads on the calling thread only. `compat`
/// names the Codex release (or family) whose reducer to match, e.g.
/// `"codex-0.147.0"`; the default is the newest release's, `"crate"` the
/// seed crate's.
#[pyfunction]
#[pyo3(signature = (path, *, partial=false, limits=None, read_ahead=true, compat=None, lenient=false, repair=None))]
#[allow(clippy::too_many_arguments)]
pub fn replay_bundle(
    py: Python<'_>,
    path: PathBuf,
    partial: bool,
    limits: Option<super::batch::PyLimits>,
    read_ahead: bool,
    compat: Option<&str>,
    lenient: bool,
    repair: Option<Bound<'_, PyAny>>,
) -> PyResult<PyRolloutTrace> {
    let options = crate::reducer::ReplayOptions {
        read_ahead,
        ..super::batch::replay_options(py, compat, limits.as_ref(), partial, lenient, repair.as_ref())?
    };
    let replay = py.detach(|| crate::reducer::replay_bundle_with(&path, &options)).map_err(py_err(py))?;
    Ok(PyRolloutTrace::from_replay(replay))
}

/// The twelve maps of a trace, by their `state.json` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    Threads,
    CodexTurns,
    ConversationItems,
    InferenceCalls,
    CodeCells,
    ToolCalls,
    TerminalSessions,
    TerminalOperations,
    Compactions,
    CompactionRequests,
    InteractionEdges,
    RawPayloads,
}

/// Runs `$body` with `$map` bound to the map of `$collection` in `$model`;
/// the maps differ in value type, so each arm is compiled separately.
macro_rules! with_map {
    ($collection:expr, $model:expr, |$map:ident| $body:expr) => {
        match $collection {
            Collection::Threads => {
                let $map = &$model.threads;
                $body
            }
            Collection::CodexTurns => {
                let $map = &$model.codex_turns;
                $body
            }
            Collection::ConversationItems => {
                let $map = &$model.conversation_items;
                $body
            }
            Collection::InferenceCalls => {
                let $map = &$model.inference_calls;
                $body
            }
            Collection::CodeCells => {
                let $map = &$model.code_cells;
                $body
            }
            Collection::ToolCalls => {
                let $map = &$model.tool_calls;
                $body
            }
            Collection::TerminalSessions => {
                let $map = &$model.terminal_sessions;
                $body
            }
            Collection::TerminalOperations => {
                let $map = &$model.terminal_operations;
                $body
            }
            Collection::Compactions => {
                let $map = &$model.compactions;
                $body
            }
            Collection::CompactionRequests => {
                let $map = &$model.compaction_requests;
                $body
            }
            Collection::InteractionEdges => {
                let $map = &$model.interaction_edges;
                $body
            }
            Collection::RawPayloads => {
                let $map = &$model.raw_payloads;
                $body
            }
        }
    };
}

impl Collection {
    const ALL: [Collection; 12] = [
        Self::Threads,
        Self::CodexTurns,
        Self::ConversationItems,
        Self::InferenceCalls,
        Self::CodeCells,
        Self::ToolCalls,
        Self::TerminalSessions,
        Self::TerminalOperations,
        Self::Compactions,
        Self::CompactionRequests,
        Self::InteractionEdges,
        Self::RawPayloads,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Threads => "threads",
            Self::CodexTurns => "codex_turns",
            Self::ConversationItems => "conversation_items",
            Self::InferenceCalls => "inference_calls",
            Self::CodeCells => "code_cells",
            Self::ToolCalls => "tool_calls",
            Self::TerminalSessions => "terminal_sessions",
            Self::TerminalOperations => "terminal_operations",
            Self::Compactions => "compactions",
            Self::CompactionRequests => "compaction_requests",
            Self::InteractionEdges => "interaction_edges",
            Self::RawPayloads => "raw_payloads",
        }
    }

    fn len(self, model: &model::RolloutTrace) -> usize {
        with_map!(self, model, |map| map.len())
    }

    fn contains(self, model: &model::RolloutTrace, key: &str) -> bool {
        with_map!(self, model, |map| map.contains_key(key))
    }

    /// The first key after `previous` (or the first key), in key order.
    fn key_after(self, model: &model::RolloutTrace, previous: Option<&str>) -> Option<String> {
        let lower = previous.map_or(RangeBound::Unbounded, RangeBound::Excluded);
        with_map!(self, model, |map| map
            .range::<str, _>((lower, RangeBound::Unbounded))
            .next()
            .map(|(key, _)| key.clone()))
    }

    fn same_contents(self, a: &model::RolloutTrace, b: &model::RolloutTrace) -> bool {
        match self {
            Self::Threads => a.threads == b.threads,
            Self::CodexTurns => a.codex_turns == b.codex_turns,
            Self::ConversationItems => a.conversation_items == b.conversation_items,
            Self::InferenceCalls => a.inference_calls == b.inference_calls,
            Self::CodeCells => a.code_cells == b.code_cells,
            Self::ToolCalls => a.tool_calls == b.tool_calls,
            Self::TerminalSessions => a.terminal_sessions == b.terminal_sessions,
            Self::TerminalOperations => a.terminal_operations == b.terminal_operations,
            Self::Compactions => a.compactions == b.compactions,
            Self::CompactionRequests => a.compaction_requests == b.compaction_requests,
            Self::InteractionEdges => a.interaction_edges == b.interaction_edges,
            Self::RawPayloads => a.raw_payloads == b.raw_payloads,
        }
    }

    /// The Python object for `key`, which must be in the map.
    fn value<'py>(self, py: Python<'py>, trace: &Arc<TraceData>, key: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        fn entity<'py, E: Entity>(
            py: Python<'py>,
            trace: &Arc<TraceData>,
            key: &str,
        ) -> PyResult<Option<Bound<'py, PyAny>>> {
            E::lookup(trace, key).map(|view| Bound::new(py, view).map(Bound::into_any)).transpose()
        }
        match self {
            Self::Threads => entity::<AgentThread>(py, trace, key),
            Self::CodexTurns => entity::<CodexTurn>(py, trace, key),
            Self::ConversationItems => entity::<ConversationItem>(py, trace, key),
            Self::InferenceCalls => entity::<InferenceCall>(py, trace, key),
            Self::CodeCells => entity::<CodeCell>(py, trace, key),
            Self::ToolCalls => entity::<ToolCall>(py, trace, key),
            Self::TerminalSessions => entity::<TerminalSession>(py, trace, key),
            Self::TerminalOperations => entity::<TerminalOperation>(py, trace, key),
            Self::Compactions => entity::<Compaction>(py, trace, key),
            Self::CompactionRequests => entity::<CompactionRequest>(py, trace, key),
            Self::InteractionEdges => entity::<InteractionEdge>(py, trace, key),
            Self::RawPayloads => Ok(trace.payload_ref(py, key)?.map(|reference| reference.into_bound(py).into_any())),
        }
    }
}

/// A read-only mapping over one map of a `RolloutTrace` (`trace.tool_calls`,
/// ...): keys in order, values made only when read. Registered as a
/// `collections.abc.Mapping`.
#[pyclass(frozen, mapping, generic, module = "rollout_trace", name = "TraceMapping")]
pub struct TraceMapping {
    trace: Arc<TraceData>,
    collection: Collection,
}

impl TraceMapping {
    pub fn new(trace: Arc<TraceData>, collection: Collection) -> Self {
        if !REGISTERED_AS_MAPPING.load(std::sync::atomic::Ordering::Relaxed) {
            // Only a failure to import collections.abc could fail this; the
            // mapping works without the registration.
            Python::attach(|py| {
                let _ = register_as_mapping(py);
            });
        }
        TraceMapping { trace, collection }
    }
}

static REGISTERED_AS_MAPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes `TraceMapping` a virtual subclass of `collections.abc.Mapping`, so
/// that `isinstance(trace.threads, Mapping)` holds. Importing
/// collections.abc costs about 2 ms, a sixth of the command line's
/// start-up, so this happens at module import only if it is imported
/// already, else when the first mapping is made.
fn register_as_mapping(py: Python<'_>) -> PyResult<()> {
    if REGISTERED_AS_MAPPING.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    let mapping = py.import("collections.abc")?.getattr("Mapping")?;
    mapping.call_method1("register", (py.get_type::<TraceMapping>(),))?;
    Ok(())
}

/// The `collections.abc` view classes, imported once.
fn abc_class<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyType>> {
    cell.import(py, "collections.abc", name)
}

#[pymethods]
impl TraceMapping {
    /// The `state.json` name of the map, e.g. ``"tool_calls"``.
    #[getter]
    fn name(&self) -> &'static str {
        self.collection.name()
    }

    fn __len__(&self) -> usize {
        self.collection.len(&self.trace.model)
    }

    fn __contains__(&self, key: &Bound<'_, PyAny>) -> bool {
        match key.cast::<PyString>() {
            Ok(key) => key.to_str().is_ok_and(|key| self.collection.contains(&self.trace.model, key)),
            Err(_) => false,
        }
    }

    fn __getitem__<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let found = match key.cast::<PyString>() {
            Ok(text) => self.collection.value(py, &self.trace, text.to_str()?)?,
            Err(_) => None,
        };
        found.ok_or_else(|| PyKeyError::new_err(key.clone().unbind()))
    }

    /// `mapping[key]`, or `default` when the key is absent.
    #[pyo3(signature = (key, default = None, /))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let found = match key.cast::<PyString>() {
            Ok(text) => self.collection.value(py, &self.trace, text.to_str()?)?,
            Err(_) => None,
        };
        Ok(found.or(default).unwrap_or_else(|| py.None().into_bound(py)))
    }

    fn __iter__(&self) -> TraceMappingKeys {
        TraceMappingKeys { trace: self.trace.clone(), collection: self.collection, cursor: Mutex::new(Cursor::Start) }
    }

    fn keys<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        static KEYS_VIEW: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        abc_class(slf.py(), &KEYS_VIEW, "KeysView")?.call1((slf,))
    }

    fn values<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        static VALUES_VIEW: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        abc_class(slf.py(), &VALUES_VIEW, "ValuesView")?.call1((slf,))
    }

    fn items<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        static ITEMS_VIEW: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        abc_class(slf.py(), &ITEMS_VIEW, "ItemsView")?.call1((slf,))
    }

    /// Equal to another `TraceMapping` of the same map with equal contents,
    /// or to any mapping with the same keys and equal values.
    fn __eq__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let this = slf.get();
        if let Ok(other) = other.cast::<TraceMapping>() {
            let other = other.get();
            let equal = this.collection == other.collection
                && (Arc::ptr_eq(&this.trace, &other.trace)
                    || this.collection.same_contents(&this.trace.model, &other.trace.model));
            return Ok(equal.into_pyobject(py)?.to_owned().into_any().unbind());
        }
        static MAPPING: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        if !other.is_instance(abc_class(py, &MAPPING, "Mapping")?)? {
            return Ok(py.NotImplemented());
        }
        if other.len()? != this.__len__() {
            return Ok(false.into_pyobject(py)?.to_owned().into_any().unbind());
        }
        let mut previous: Option<String> = None;
        while let Some(key) = this.collection.key_after(&this.trace.model, previous.as_deref()) {
            let mine = this.collection.value(py, &this.trace, &key)?;
            let theirs = match other.get_item(&key) {
                Ok(value) => value,
                Err(err) if err.is_instance_of::<PyKeyError>(py) => {
                    return Ok(false.into_pyobject(py)?.to_owned().into_any().unbind());
                }
                Err(err) => return Err(err),
            };
            if !mine.map_or(Ok(false), |mine| mine.eq(theirs))? {
                return Ok(false.into_pyobject(py)?.to_owned().into_any().unbind());
            }
            previous = Some(key);
        }
        Ok(true.into_pyobject(py)?.to_owned().into_any().unbind())
    }

    // Unhashable, like `dict` and `types.MappingProxyType`.
    #[classattr]
    const __hash__: Option<Py<PyAny>> = None;

    fn __repr__(&self) -> String {
        format!("<TraceMapping {}: {} items>", self.collection.name(), self.__len__())
    }

    /// Pickles as `getattr(trace, name)`.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let trace = Bound::new(py, PyRolloutTrace { data: self.trace.clone() })?;
        let getattr = py.import("builtins")?.getattr("getattr")?;
        Ok((getattr, (trace, self.collection.name()).into_pyobject(py)?))
    }
}

enum Cursor {
    Start,
    After(String),
    Done,
}

/// Iterator over the keys of a `TraceMapping`, in key order.
#[pyclass(frozen, module = "rollout_trace", name = "TraceMappingKeys")]
pub struct TraceMappingKeys {
    trace: Arc<TraceData>,
    collection: Collection,
    cursor: Mutex<Cursor>,
}

#[pymethods]
impl TraceMappingKeys {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self) -> Option<String> {
        // Only Rust work under the lock: no Python code can run and wait on it.
        let mut cursor = self.cursor.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let next = match &*cursor {
            Cursor::Start => self.collection.key_after(&self.trace.model, None),
            Cursor::After(previous) => self.collection.key_after(&self.trace.model, Some(previous)),
            Cursor::Done => None,
        };
        *cursor = match &next {
            Some(key) => Cursor::After(key.clone()),
            None => Cursor::Done,
        };
        next
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRolloutTrace>()?;
    m.add_class::<TraceMapping>()?;
    m.add_class::<TraceMappingKeys>()?;
    m.add_function(wrap_pyfunction!(replay_bundle, m)?)?;
    // Virtual subclass: isinstance(trace.threads, Mapping) holds, and
    // typing/abc users treat it as one (see `register_as_mapping`).
    let py = m.py();
    if py.import("sys")?.getattr("modules")?.contains("collections.abc")? {
        register_as_mapping(py)?;
    }
    Ok(())
}
