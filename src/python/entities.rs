//! Entity views: one frozen class per keyed object of the reduced graph
//! (`AgentThread`, `ToolCall`, ...). A view holds the shared trace and its
//! key; each attribute converts one field when it is read.
//!
//! Attributes carry the `state.json` names. Each id field has a companion
//! that resolves it: `thread_id` -> `thread`, `request_item_ids` ->
//! `request_items`, `raw_result_payload_id` -> `raw_result_payload`. An id
//! that the model guarantees but that is missing (a corrupted state) raises
//! `StateError`; ids that the reference reducer may leave dangling (a spawn
//! origin's parent or edge, a code-cell requester, a compaction request's
//! compaction, anchors and producers) resolve to `None` instead.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::PyClass;

use super::convert::{enum_name, preview, str_tuple, to_plain, value_hash};
use super::payload::PyRawPayloadRef;
use super::trace::{dangling, Collection, TraceData, TraceMapping};
use super::values::{
    AgentMessageMetadata, AgentOrigin, ConversationBody, ExecutionWindow, ItemOrigin, ProducerRef,
    TerminalModelObservation, TerminalRequest, TerminalResult, TokenUsage, ToolCallKind, ToolCallRequester,
    ToolCallSummary, TraceAnchor,
};
use crate::model;
use crate::provenance;

/// What every entity view shares: where its objects live in the model.
pub trait Entity: PyClass + Into<PyClassInitializer<Self>> + for<'py> IntoPyObject<'py> + Sized {
    type Model;
    const COLLECTION: Collection;

    fn map(trace: &model::RolloutTrace) -> &model::Map<Self::Model>;

    fn at(trace: Arc<TraceData>, key: String) -> Self;

    /// The view of `id`, `None` if the trace has no such object.
    fn lookup(trace: &Arc<TraceData>, id: &str) -> Option<Self> {
        Self::map(&trace.model).contains_key(id).then(|| Self::at(trace.clone(), id.to_string()))
    }

    /// The view of an id the model guarantees; `StateError` if it is missing.
    fn require(py: Python<'_>, trace: &Arc<TraceData>, id: &str, holder: &str) -> PyResult<Self> {
        Self::lookup(trace, id).ok_or_else(|| dangling(py, holder, Self::COLLECTION.name(), id))
    }

    /// The views of a list of guaranteed ids, in list order.
    fn require_all<'py, S: AsRef<str>>(
        py: Python<'py>,
        trace: &Arc<TraceData>,
        ids: &[S],
        holder: &str,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let views = ids.iter().map(|id| Self::require(py, trace, id.as_ref(), holder)).collect::<PyResult<Vec<_>>>()?;
        PyTuple::new(py, views)
    }

    /// The views of every object matching `keep`, ordered by `order` (ties
    /// in key order).
    fn select<'py>(
        py: Python<'py>,
        trace: &Arc<TraceData>,
        keep: impl Fn(&Self::Model) -> bool,
        order: impl Fn(&Self::Model) -> u64,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let mut found: Vec<(&String, &Self::Model)> =
            Self::map(&trace.model).iter().filter(|(_, value)| keep(value)).collect();
        found.sort_by_key(|(_, value)| order(value));
        PyTuple::new(py, found.into_iter().map(|(key, _)| Self::at(trace.clone(), key.clone())))
    }
}

/// The tuple of shared `RawPayloadRef`s for a list of payload ids.
fn payload_tuple<'py>(
    py: Python<'py>,
    trace: &TraceData,
    ids: &[String],
    holder: &str,
) -> PyResult<Bound<'py, PyTuple>> {
    let refs = ids.iter().map(|id| trace.require_payload_ref(py, id, holder)).collect::<PyResult<Vec<_>>>()?;
    PyTuple::new(py, refs)
}

fn optional_payload(
    py: Python<'_>,
    trace: &TraceData,
    id: Option<&String>,
    holder: &str,
) -> PyResult<Option<Py<PyRawPayloadRef>>> {
    id.map(|id| trace.require_payload_ref(py, id, holder)).transpose()
}

/// Calls `<module>.<name>(object, **kwargs)` of the Python package.
/// Rendering (transcripts, trees, HTML) and tables are written in Python
/// (`rollout_trace.analysis`, `rollout_trace.tables`); the native classes
/// expose them as methods through this.
pub fn call_python<'py>(
    py: Python<'py>,
    module: &str,
    name: &str,
    object: &Bound<'py, PyAny>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    py.import(module)?.getattr(name)?.call((object,), kwargs)
}

/// The views of some model objects of one map, in the given order.
fn views<'py, E: Entity>(py: Python<'py>, trace: &Arc<TraceData>, ids: Vec<String>) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, ids.into_iter().map(|id| E::at(trace.clone(), id)))
}

/// Declares an entity view class: the struct, its `Entity` impl, and a
/// `#[pymethods]` block with the shared methods (`to_dict`, value equality
/// and hash, pickling) followed by the class's own.
macro_rules! entity {
    (
        $(#[$doc:meta])*
        $name:ident($model:ty) in $field:ident as $collection:ident;
        $($methods:tt)*
    ) => {
        $(#[$doc])*
        #[pyclass(frozen, module = "rollout_trace")]
        pub struct $name {
            trace: Arc<TraceData>,
            key: String,
        }

        impl Entity for $name {
            type Model = $model;
            const COLLECTION: Collection = Collection::$collection;

            fn map(trace: &model::RolloutTrace) -> &model::Map<$model> {
                &trace.$field
            }

            fn at(trace: Arc<TraceData>, key: String) -> Self {
                $name { trace, key }
            }
        }

        impl $name {
            fn get(&self) -> &$model {
                // Views are made only for keys of the trace's map, which
                // never changes.
                self.trace.model.$field.get(&self.key).expect("an entity view's key is in its map")
            }

            /// How error messages name this object.
            fn holder(&self) -> String {
                format!("{} {:?}", stringify!($name), self.key)
            }
        }

        #[pymethods]
        impl $name {
            /// This object as plain data, exactly as in `state.json`.
            fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                to_plain(py, self.get())
            }

            /// Equal when the objects' values are equal.
            fn __eq__(&self, other: &Self) -> bool {
                (Arc::ptr_eq(&self.trace, &other.trace) && self.key == other.key) || self.get() == other.get()
            }

            fn __hash__(&self) -> u64 {
                value_hash(self.get())
            }

            /// Pickles as `trace.<map>[key]` (with the whole trace).
            fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
                let mapping = TraceMapping::new(self.trace.clone(), Collection::$collection);
                let getitem = py.import("operator")?.getattr("getitem")?;
                Ok((getitem, (mapping, self.key.as_str()).into_pyobject(py)?))
            }

            $($methods)*
        }
    };
}

entity! {
    /// An agent thread: the root agent or a spawned sub-agent.
    AgentThread(model::AgentThread) in threads as Threads;

    #[getter]
    fn thread_id(&self) -> &str {
        &self.get().thread_id
    }

    #[getter]
    fn agent_path(&self) -> &str {
        &self.get().agent_path
    }

    #[getter]
    fn nickname(&self) -> Option<&str> {
        self.get().nickname.as_deref()
    }

    #[getter]
    fn origin(&self) -> AgentOrigin {
        self.get().origin.clone().into()
    }

    #[getter]
    fn execution(&self) -> ExecutionWindow {
        self.get().execution.into()
    }

    #[getter]
    fn default_model(&self) -> Option<&str> {
        self.get().default_model.as_deref()
    }

    #[getter]
    fn conversation_item_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.get().conversation_item_ids)
    }

    /// The thread's conversation items in transcript (first-seen) order.
    #[getter]
    fn conversation<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ConversationItem::require_all(py, &self.trace, &self.get().conversation_item_ids, &self.holder())
    }

    /// The thread's Codex turns, in start order.
    #[getter]
    fn turns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        CodexTurn::select(py, &self.trace, |turn| turn.thread_id == self.key, |turn| turn.execution.started_seq)
    }

    /// The thread's inference calls, in start order.
    #[getter]
    fn inference_calls<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        InferenceCall::select(py, &self.trace, |call| call.thread_id == self.key, |call| call.execution.started_seq)
    }

    /// The thread's tool calls, in start order.
    #[getter]
    fn tool_calls<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ToolCall::select(py, &self.trace, |call| call.thread_id == self.key, |call| call.execution.started_seq)
    }

    /// The thread's code cells, in start order.
    #[getter]
    fn code_cells<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        CodeCell::select(py, &self.trace, |cell| cell.thread_id == self.key, |cell| cell.execution.started_seq)
    }

    /// The threads this one spawned, in start order.
    #[getter]
    fn child_threads<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        AgentThread::select(
            py,
            &self.trace,
            |thread| matches!(&thread.origin, model::AgentOrigin::Spawned { parent_thread_id, .. } if *parent_thread_id == self.key),
            |thread| thread.execution.started_seq,
        )
    }

    /// The spawning thread; `None` for the root or when it is not in the trace.
    #[getter]
    fn parent_thread(&self) -> Option<AgentThread> {
        match &self.get().origin {
            model::AgentOrigin::Spawned { parent_thread_id, .. } => AgentThread::lookup(&self.trace, parent_thread_id),
            model::AgentOrigin::Root => None,
        }
    }

    /// The spawn edge; `None` for the root or when it is not in the trace.
    #[getter]
    fn spawn_edge(&self) -> Option<InteractionEdge> {
        match &self.get().origin {
            model::AgentOrigin::Spawned { spawn_edge_id, .. } => InteractionEdge::lookup(&self.trace, spawn_edge_id),
            model::AgentOrigin::Root => None,
        }
    }

    /// Same as `parent_thread`.
    #[getter]
    fn parent(&self) -> Option<AgentThread> {
        self.parent_thread()
    }

    /// Same as `child_threads`.
    #[getter]
    fn children<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.child_threads(py)
    }

    /// Every interaction edge with an end in this thread, by start time:
    /// the edges that spawned, tasked, messaged and closed it and its
    /// results to its parent, and the same between it and its children.
    /// `edge.tool_call` is the multi-agent tool call behind an edge.
    #[getter]
    fn edges<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let ids = provenance::thread_edges(&self.trace.model, &self.key).into_iter().map(|edge| edge.edge_id.clone());
        views::<InteractionEdge>(py, &self.trace, ids.collect::<Vec<_>>())
    }

    /// The conversation as text: one block per item with its role,
    /// channel and kind, bodies longer than `max_chars` folded.
    #[pyo3(signature = (*, max_chars = 400))]
    fn transcript<'py>(slf: &Bound<'py, Self>, max_chars: usize) -> PyResult<Bound<'py, PyAny>> {
        let kwargs = PyDict::new(slf.py());
        kwargs.set_item("max_chars", max_chars)?;
        call_python(slf.py(), "rollout_trace.analysis", "transcript", slf.as_any(), Some(&kwargs))
    }

    /// The conversation as HTML, tool calls folded under the inference
    /// that issued them (Jupyter calls this).
    fn _repr_html_<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        call_python(slf.py(), "rollout_trace.analysis", "thread_html", slf.as_any(), None)
    }

    fn __repr__(&self) -> String {
        let thread = self.get();
        format!(
            "<AgentThread {} {} {} items={}>",
            thread.thread_id,
            thread.agent_path,
            enum_name(&thread.execution.status),
            thread.conversation_item_ids.len()
        )
    }
}

entity! {
    /// One Codex turn of a thread.
    CodexTurn(model::CodexTurn) in codex_turns as CodexTurns;

    #[getter]
    fn codex_turn_id(&self) -> &str {
        &self.get().codex_turn_id
    }

    #[getter]
    fn thread_id(&self) -> &str {
        &self.get().thread_id
    }

    #[getter]
    fn execution(&self) -> ExecutionWindow {
        self.get().execution.into()
    }

    #[getter]
    fn input_item_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.get().input_item_ids)
    }

    #[getter]
    fn thread(&self, py: Python<'_>) -> PyResult<AgentThread> {
        AgentThread::require(py, &self.trace, &self.get().thread_id, &self.holder())
    }

    #[getter]
    fn input_items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ConversationItem::require_all(py, &self.trace, &self.get().input_item_ids, &self.holder())
    }

    /// The turn's inference calls, in start order.
    #[getter]
    fn inference_calls<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        InferenceCall::select(py, &self.trace, |call| call.codex_turn_id == self.key, |call| call.execution.started_seq)
    }

    /// The turn's code cells, in start order.
    #[getter]
    fn code_cells<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        CodeCell::select(py, &self.trace, |cell| cell.codex_turn_id == self.key, |cell| cell.execution.started_seq)
    }

    /// The tool calls started by this turn, in start order.
    #[getter]
    fn tool_calls<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ToolCall::select(
            py,
            &self.trace,
            |call| call.started_by_codex_turn_id.as_deref() == Some(self.key.as_str()),
            |call| call.execution.started_seq,
        )
    }

    fn __repr__(&self) -> String {
        let turn = self.get();
        format!("<CodexTurn {} thread={} {}>", turn.codex_turn_id, turn.thread_id, enum_name(&turn.execution.status))
    }
}

entity! {
    /// One item of a thread's conversation (message, reasoning, tool call or
    /// output, compaction marker).
    ConversationItem(model::ConversationItem) in conversation_items as ConversationItems;

    #[getter]
    fn item_id(&self) -> &str {
        &self.get().item_id
    }

    #[getter]
    fn thread_id(&self) -> &str {
        &self.get().thread_id
    }

    #[getter]
    fn codex_turn_id(&self) -> Option<&str> {
        self.get().codex_turn_id.as_deref()
    }

    #[getter]
    fn first_seen_at_unix_ms(&self) -> i64 {
        self.get().first_seen_at_unix_ms
    }

    #[getter]
    fn role(&self) -> &'static str {
        self.get().role.as_str()
    }

    #[getter]
    fn channel(&self) -> Option<String> {
        self.get().channel.as_ref().map(enum_name)
    }

    #[getter]
    fn kind(&self) -> String {
        enum_name(&self.get().kind)
    }

    /// `None` when `state.json` omits it.
    #[getter]
    fn agent_message(&self) -> Option<AgentMessageMetadata> {
        self.get().agent_message.clone().map(Into::into)
    }

    #[getter]
    fn body(&self) -> ConversationBody {
        ConversationBody::new(self.get().body.clone(), self.trace.clone())
    }

    #[getter]
    fn call_id(&self) -> Option<&str> {
        self.get().call_id.as_deref()
    }

    #[getter]
    fn produced_by<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let refs = self.get().produced_by.iter().map(|producer| ProducerRef::new(producer.clone(), self.trace.clone()));
        PyTuple::new(py, refs)
    }

    /// The objects named by `produced_by`, in order; refs without an object
    /// (`user_input`, `harness`) or not in the trace are left out.
    #[getter]
    fn producers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let mut objects = Vec::new();
        for producer in &self.get().produced_by {
            if let Some(object) = ProducerRef::resolve(py, &self.trace, producer)? {
                objects.push(object);
            }
        }
        PyTuple::new(py, objects)
    }

    #[getter]
    fn thread(&self, py: Python<'_>) -> PyResult<AgentThread> {
        AgentThread::require(py, &self.trace, &self.get().thread_id, &self.holder())
    }

    #[getter]
    fn codex_turn(&self, py: Python<'_>) -> PyResult<Option<CodexTurn>> {
        let holder = self.holder();
        self.get().codex_turn_id.as_ref().map(|id| CodexTurn::require(py, &self.trace, id, &holder)).transpose()
    }

    /// Where the item came from: the transcript, an inference, a tool call,
    /// a terminal operation, a code cell, an agent message or a compaction
    /// (see `ItemOrigin`).
    #[getter]
    fn origin(&self) -> ItemOrigin {
        ItemOrigin::new(provenance::item_origin(&self.trace.model, self.get()), self.trace.clone())
    }

    /// The item as HTML (Jupyter calls this).
    fn _repr_html_<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        call_python(slf.py(), "rollout_trace.analysis", "item_html", slf.as_any(), None)
    }

    fn __repr__(&self) -> String {
        let item = self.get();
        let mut text = format!("<ConversationItem {} {} {}", item.item_id, item.role.as_str(), enum_name(&item.kind));
        if let Some(call_id) = &item.call_id {
            text.push_str(&format!(" call_id={call_id}"));
        }
        let first_text = item.body.parts.iter().find_map(|part| match part {
            model::ConversationPart::Text { text } | model::ConversationPart::Summary { text } => Some(text),
            _ => None,
        });
        if let Some(first_text) = first_text {
            text.push(' ');
            text.push_str(&preview(first_text));
        }
        text.push('>');
        text
    }
}

entity! {
    /// One model inference (request and response) of a thread.
    InferenceCall(model::InferenceCall) in inference_calls as InferenceCalls;

    #[getter]
    fn inference_call_id(&self) -> &str {
        &self.get().inference_call_id
    }

    #[getter]
    fn thread_id(&self) -> &str {
        &self.get().thread_id
    }

    #[getter]
    fn codex_turn_id(&self) -> &str {
        &self.get().codex_turn_id
    }

    #[getter]
    fn execution(&self) -> ExecutionWindow {
        self.get().execution.into()
    }

    #[getter]
    fn model(&self) -> &str {
        &self.get().model
    }

    #[getter]
    fn provider_name(&self) -> &str {
        &self.get().provider_name
    }

    #[getter]
    fn response_id(&self) -> Option<&str> {
        self.get().response_id.as_ref().and_then(|id| id.as_deref())
    }

    #[getter]
    fn upstream_request_id(&self) -> Option<&str> {
        self.get().upstream_request_id.as_deref()
    }

    #[getter]
    fn request_item_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.get().request_item_ids)
    }

    #[getter]
    fn response_item_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.get().response_item_ids)
    }

    #[getter]
    fn tool_call_ids_started_by_response<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.get().tool_call_ids_started_by_response)
    }

    #[getter]
    fn usage(&self) -> Option<TokenUsage> {
        self.get().usage.map(Into::into)
    }

    #[getter]
    fn raw_request_payload_id(&self) -> &str {
        &self.get().raw_request_payload_id
    }

    #[getter]
    fn raw_response_payload_id(&self) -> Option<&str> {
        self.get().raw_response_payload_id.as_deref()
    }

    #[getter]
    fn thread(&self, py: Python<'_>) -> PyResult<AgentThread> {
        AgentThread::require(py, &self.trace, &self.get().thread_id, &self.holder())
    }

    #[getter]
    fn codex_turn(&self, py: Python<'_>) -> PyResult<CodexTurn> {
        CodexTurn::require(py, &self.trace, &self.get().codex_turn_id, &self.holder())
    }

    /// The full input of the request, in order.
    #[getter]
    fn request_items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ConversationItem::require_all(py, &self.trace, &self.get().request_item_ids, &self.holder())
    }

    #[getter]
    fn response_items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ConversationItem::require_all(py, &self.trace, &self.get().response_item_ids, &self.holder())
    }

    /// The tool calls the response started (`tool_call_ids_started_by_response`).
    #[getter]
    fn tool_calls<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ToolCall::require_all(py, &self.trace, &self.get().tool_call_ids_started_by_response, &self.holder())
    }

    #[getter]
    fn raw_request_payload(&self, py: Python<'_>) -> PyResult<Py<PyRawPayloadRef>> {
        self.trace.require_payload_ref(py, &self.get().raw_request_payload_id, &self.holder())
    }

    #[getter]
    fn raw_response_payload(&self, py: Python<'_>) -> PyResult<Option<Py<PyRawPayloadRef>>> {
        optional_payload(py, &self.trace, self.get().raw_response_payload_id.as_ref(), &self.holder())
    }

    fn __repr__(&self) -> String {
        let call = self.get();
        format!(
            "<InferenceCall {} {} {} request_items={} response_items={}>",
            call.inference_call_id,
            call.model,
            enum_name(&call.execution.status),
            call.request_item_ids.len(),
            call.response_item_ids.len()
        )
    }
}

entity! {
    /// An installed context compaction of a thread.
    Compaction(model::Compaction) in compactions as Compactions;

    #[getter]
    fn compaction_id(&self) -> &str {
        &self.get().compaction_id
    }

    #[getter]
    fn thread_id(&self) -> &str {
        &self.get().thread_id
    }

    #[getter]
    fn codex_turn_id(&self) -> &str {
        &self.get().codex_turn_id
    }

    #[getter]
    fn installed_at_unix_ms(&self) -> i64 {
        self.get().installed_at_unix_ms
    }

    #[getter]
    fn marker_item_id(&self) -> &str {
        &self.get().marker_item_id
    }

    #[getter]
    fn request_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.get().request_ids)
    }

    #[getter]
    fn input_item_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.get().input_item_ids)
    }

    #[getter]
    fn replacement_item_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.get().replacement_item_ids)
    }

    #[getter]
    fn thread(&self, py: Python<'_>) -> PyResult<AgentThread> {
        AgentThread::require(py, &self.trace, &self.get().thread_id, &self.holder())
    }

    #[getter]
    fn codex_turn(&self, py: Python<'_>) -> PyResult<CodexTurn> {
        CodexTurn::require(py, &self.trace, &self.get().codex_turn_id, &self.holder())
    }

    #[getter]
    fn marker_item(&self, py: Python<'_>) -> PyResult<ConversationItem> {
        ConversationItem::require(py, &self.trace, &self.get().marker_item_id, &self.holder())
    }

    #[getter]
    fn requests<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        CompactionRequest::require_all(py, &self.trace, &self.get().request_ids, &self.holder())
    }

    #[getter]
    fn input_items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ConversationItem::require_all(py, &self.trace, &self.get().input_item_ids, &self.holder())
    }

    #[getter]
    fn replacement_items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ConversationItem::require_all(py, &self.trace, &self.get().replacement_item_ids, &self.holder())
    }

    fn __repr__(&self) -> String {
        let compaction = self.get();
        format!(
            "<Compaction {} thread={} input_items={} replacement_items={}>",
            compaction.compaction_id,
            compaction.thread_id,
            compaction.input_item_ids.len(),
            compaction.replacement_item_ids.len()
        )
    }
}

entity! {
    /// One request to the model that computes a compaction.
    CompactionRequest(model::CompactionRequest) in compaction_requests as CompactionRequests;

    #[getter]
    fn compaction_request_id(&self) -> &str {
        &self.get().compaction_request_id
    }

    #[getter]
    fn compaction_id(&self) -> &str {
        &self.get().compaction_id
    }

    #[getter]
    fn thread_id(&self) -> &str {
        &self.get().thread_id
    }

    #[getter]
    fn codex_turn_id(&self) -> &str {
        &self.get().codex_turn_id
    }

    #[getter]
    fn execution(&self) -> ExecutionWindow {
        self.get().execution.into()
    }

    #[getter]
    fn model(&self) -> &str {
        &self.get().model
    }

    #[getter]
    fn provider_name(&self) -> &str {
        &self.get().provider_name
    }

    #[getter]
    fn raw_request_payload_id(&self) -> &str {
        &self.get().raw_request_payload_id
    }

    #[getter]
    fn raw_response_payload_id(&self) -> Option<&str> {
        self.get().raw_response_payload_id.as_deref()
    }

    /// The compaction, `None` until one is installed.
    #[getter]
    fn compaction(&self) -> Option<Compaction> {
        Compaction::lookup(&self.trace, &self.get().compaction_id)
    }

    #[getter]
    fn thread(&self, py: Python<'_>) -> PyResult<AgentThread> {
        AgentThread::require(py, &self.trace, &self.get().thread_id, &self.holder())
    }

    #[getter]
    fn codex_turn(&self, py: Python<'_>) -> PyResult<CodexTurn> {
        CodexTurn::require(py, &self.trace, &self.get().codex_turn_id, &self.holder())
    }

    #[getter]
    fn raw_request_payload(&self, py: Python<'_>) -> PyResult<Py<PyRawPayloadRef>> {
        self.trace.require_payload_ref(py, &self.get().raw_request_payload_id, &self.holder())
    }

    #[getter]
    fn raw_response_payload(&self, py: Python<'_>) -> PyResult<Option<Py<PyRawPayloadRef>>> {
        optional_payload(py, &self.trace, self.get().raw_response_payload_id.as_ref(), &self.holder())
    }

    fn __repr__(&self) -> String {
        let request = self.get();
        format!(
            "<CompactionRequest {} compaction={} {} {}>",
            request.compaction_request_id,
            request.compaction_id,
            request.model,
            enum_name(&request.execution.status)
        )
    }
}

entity! {
    /// A code-mode cell: JavaScript the model ran, with its nested tools.
    CodeCell(model::CodeCell) in code_cells as CodeCells;

    #[getter]
    fn code_cell_id(&self) -> &str {
        &self.get().code_cell_id
    }

    #[getter]
    fn model_visible_call_id(&self) -> &str {
        &self.get().model_visible_call_id
    }

    #[getter]
    fn thread_id(&self) -> &str {
        &self.get().thread_id
    }

    #[getter]
    fn codex_turn_id(&self) -> &str {
        &self.get().codex_turn_id
    }

    #[getter]
    fn source_item_id(&self) -> &str {
        &self.get().source_item_id
    }

    #[getter]
    fn output_item_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.get().output_item_ids)
    }

    #[getter]
    fn runtime_cell_id(&self) -> Option<&str> {
        self.get().runtime_cell_id.as_deref()
    }

    #[getter]
    fn execution(&self) -> ExecutionWindow {
        self.get().execution.into()
    }

    #[getter]
    fn runtime_status(&self) -> String {
        enum_name(&self.get().runtime_status)
    }

    #[getter]
    fn initial_response_at_unix_ms(&self) -> Option<i64> {
        self.get().initial_response_at_unix_ms
    }

    #[getter]
    fn initial_response_seq(&self) -> Option<u64> {
        self.get().initial_response_seq
    }

    #[getter]
    fn yielded_at_unix_ms(&self) -> Option<i64> {
        self.get().yielded_at_unix_ms
    }

    #[getter]
    fn yielded_seq(&self) -> Option<u64> {
        self.get().yielded_seq
    }

    #[getter]
    fn source_js(&self) -> &str {
        &self.get().source_js
    }

    #[getter]
    fn nested_tool_call_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.get().nested_tool_call_ids)
    }

    #[getter]
    fn wait_tool_call_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.get().wait_tool_call_ids)
    }

    #[getter]
    fn thread(&self, py: Python<'_>) -> PyResult<AgentThread> {
        AgentThread::require(py, &self.trace, &self.get().thread_id, &self.holder())
    }

    #[getter]
    fn codex_turn(&self, py: Python<'_>) -> PyResult<CodexTurn> {
        CodexTurn::require(py, &self.trace, &self.get().codex_turn_id, &self.holder())
    }

    #[getter]
    fn source_item(&self, py: Python<'_>) -> PyResult<ConversationItem> {
        ConversationItem::require(py, &self.trace, &self.get().source_item_id, &self.holder())
    }

    #[getter]
    fn output_items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ConversationItem::require_all(py, &self.trace, &self.get().output_item_ids, &self.holder())
    }

    #[getter]
    fn nested_tool_calls<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ToolCall::require_all(py, &self.trace, &self.get().nested_tool_call_ids, &self.holder())
    }

    #[getter]
    fn wait_tool_calls<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ToolCall::require_all(py, &self.trace, &self.get().wait_tool_call_ids, &self.holder())
    }

    /// The terminal operations the cell's nested tool calls ran, in call order.
    #[getter]
    fn terminal_operations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let model = &self.trace.model;
        let ids: Vec<String> = self
            .get()
            .nested_tool_call_ids
            .iter()
            .filter_map(|id| model.tool_calls.get(id)?.terminal_operation_id.clone())
            .collect();
        TerminalOperation::require_all(py, &self.trace, &ids, &self.holder())
    }

    /// The inference whose response holds the cell's source item.
    #[getter]
    fn inference_call(&self) -> Option<InferenceCall> {
        let found = provenance::code_cell_inference(&self.trace.model, self.get())?;
        Some(InferenceCall::at(self.trace.clone(), found.inference_call_id.clone()))
    }

    fn __repr__(&self) -> String {
        let cell = self.get();
        format!(
            "<CodeCell {} {} nested_tool_calls={} {}>",
            cell.code_cell_id,
            enum_name(&cell.runtime_status),
            cell.nested_tool_call_ids.len(),
            preview(&cell.source_js)
        )
    }
}

entity! {
    /// One tool call, asked for by the model or by a code cell.
    ToolCall(model::ToolCall) in tool_calls as ToolCalls;

    #[getter]
    fn tool_call_id(&self) -> &str {
        &self.get().tool_call_id
    }

    #[getter]
    fn mcp_call_id(&self) -> Option<&str> {
        self.get().mcp_call_id.as_ref().and_then(|id| id.as_deref())
    }

    #[getter]
    fn model_visible_call_id(&self) -> Option<&str> {
        self.get().model_visible_call_id.as_deref()
    }

    #[getter]
    fn code_mode_runtime_tool_id(&self) -> Option<&str> {
        self.get().code_mode_runtime_tool_id.as_deref()
    }

    #[getter]
    fn thread_id(&self) -> &str {
        &self.get().thread_id
    }

    #[getter]
    fn started_by_codex_turn_id(&self) -> Option<&str> {
        self.get().started_by_codex_turn_id.as_deref()
    }

    #[getter]
    fn execution(&self) -> ExecutionWindow {
        self.get().execution.into()
    }

    #[getter]
    fn requester(&self) -> ToolCallRequester {
        self.get().requester.clone().into()
    }

    #[getter]
    fn kind(&self) -> ToolCallKind {
        self.get().kind.clone().into()
    }

    #[getter]
    fn model_visible_call_item_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.get().model_visible_call_item_ids)
    }

    #[getter]
    fn model_visible_output_item_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.get().model_visible_output_item_ids)
    }

    #[getter]
    fn terminal_operation_id(&self) -> Option<&str> {
        self.get().terminal_operation_id.as_deref()
    }

    #[getter]
    fn summary(&self) -> ToolCallSummary {
        self.get().summary.clone().into()
    }

    #[getter]
    fn raw_invocation_payload_id(&self) -> Option<&str> {
        self.get().raw_invocation_payload_id.as_deref()
    }

    #[getter]
    fn raw_result_payload_id(&self) -> Option<&str> {
        self.get().raw_result_payload_id.as_deref()
    }

    #[getter]
    fn raw_runtime_payload_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.get().raw_runtime_payload_ids)
    }

    #[getter]
    fn thread(&self, py: Python<'_>) -> PyResult<AgentThread> {
        AgentThread::require(py, &self.trace, &self.get().thread_id, &self.holder())
    }

    #[getter]
    fn started_by_codex_turn(&self, py: Python<'_>) -> PyResult<Option<CodexTurn>> {
        let holder = self.holder();
        self.get().started_by_codex_turn_id.as_ref().map(|id| CodexTurn::require(py, &self.trace, id, &holder)).transpose()
    }

    /// The code cell that asked for this call; `None` when the model asked,
    /// or when the cell is not in the trace.
    #[getter]
    fn code_cell(&self) -> Option<CodeCell> {
        match &self.get().requester {
            model::ToolCallRequester::CodeCell { code_cell_id } => CodeCell::lookup(&self.trace, code_cell_id),
            model::ToolCallRequester::Model => None,
        }
    }

    /// The inference whose response issued this call (for a call a code
    /// cell made, the inference that wrote the cell); `None` if no
    /// inference of the trace issued it. Its `request_items` are what the
    /// model saw.
    #[getter]
    fn inference_call(&self) -> Option<InferenceCall> {
        let found = provenance::tool_call_inference(&self.trace.model, self.get())?;
        Some(InferenceCall::at(self.trace.clone(), found.inference_call_id.clone()))
    }

    #[getter]
    fn model_visible_call_items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ConversationItem::require_all(py, &self.trace, &self.get().model_visible_call_item_ids, &self.holder())
    }

    #[getter]
    fn model_visible_output_items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ConversationItem::require_all(py, &self.trace, &self.get().model_visible_output_item_ids, &self.holder())
    }

    #[getter]
    fn terminal_operation(&self, py: Python<'_>) -> PyResult<Option<TerminalOperation>> {
        let holder = self.holder();
        self.get().terminal_operation_id.as_ref().map(|id| TerminalOperation::require(py, &self.trace, id, &holder)).transpose()
    }

    #[getter]
    fn raw_invocation_payload(&self, py: Python<'_>) -> PyResult<Option<Py<PyRawPayloadRef>>> {
        optional_payload(py, &self.trace, self.get().raw_invocation_payload_id.as_ref(), &self.holder())
    }

    #[getter]
    fn raw_result_payload(&self, py: Python<'_>) -> PyResult<Option<Py<PyRawPayloadRef>>> {
        optional_payload(py, &self.trace, self.get().raw_result_payload_id.as_ref(), &self.holder())
    }

    #[getter]
    fn raw_runtime_payloads<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        payload_tuple(py, &self.trace, &self.get().raw_runtime_payload_ids, &self.holder())
    }

    fn __repr__(&self) -> String {
        let call = self.get();
        format!(
            "<ToolCall {} {} {} thread={}>",
            call.tool_call_id,
            call.kind.type_name(),
            enum_name(&call.execution.status),
            call.thread_id
        )
    }
}

entity! {
    /// A terminal (process) that exec operations created and wrote to.
    TerminalSession(model::TerminalSession) in terminal_sessions as TerminalSessions;

    #[getter]
    fn terminal_id(&self) -> &str {
        &self.get().terminal_id
    }

    #[getter]
    fn thread_id(&self) -> &str {
        &self.get().thread_id
    }

    #[getter]
    fn created_by_operation_id(&self) -> &str {
        &self.get().created_by_operation_id
    }

    #[getter]
    fn operation_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.get().operation_ids)
    }

    #[getter]
    fn execution(&self) -> ExecutionWindow {
        self.get().execution.into()
    }

    #[getter]
    fn thread(&self, py: Python<'_>) -> PyResult<AgentThread> {
        AgentThread::require(py, &self.trace, &self.get().thread_id, &self.holder())
    }

    #[getter]
    fn created_by_operation(&self, py: Python<'_>) -> PyResult<TerminalOperation> {
        TerminalOperation::require(py, &self.trace, &self.get().created_by_operation_id, &self.holder())
    }

    #[getter]
    fn operations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        TerminalOperation::require_all(py, &self.trace, &self.get().operation_ids, &self.holder())
    }

    fn __repr__(&self) -> String {
        let session = self.get();
        format!(
            "<TerminalSession {} thread={} operations={} {}>",
            session.terminal_id,
            session.thread_id,
            session.operation_ids.len(),
            enum_name(&session.execution.status)
        )
    }
}

entity! {
    /// One exec_command or write_stdin on a terminal.
    TerminalOperation(model::TerminalOperation) in terminal_operations as TerminalOperations;

    #[getter]
    fn operation_id(&self) -> &str {
        &self.get().operation_id
    }

    #[getter]
    fn terminal_id(&self) -> Option<&str> {
        self.get().terminal_id.as_deref()
    }

    #[getter]
    fn tool_call_id(&self) -> &str {
        &self.get().tool_call_id
    }

    #[getter]
    fn kind(&self) -> String {
        enum_name(&self.get().kind)
    }

    #[getter]
    fn execution(&self) -> ExecutionWindow {
        self.get().execution.into()
    }

    #[getter]
    fn request(&self) -> TerminalRequest {
        self.get().request.clone().into()
    }

    #[getter]
    fn result(&self) -> Option<TerminalResult> {
        self.get().result.clone().map(Into::into)
    }

    #[getter]
    fn model_observations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let observations = self
            .get()
            .model_observations
            .iter()
            .map(|observation| TerminalModelObservation::new(observation.clone(), self.trace.clone()));
        PyTuple::new(py, observations)
    }

    #[getter]
    fn raw_payload_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.get().raw_payload_ids)
    }

    /// The terminal session, `None` when the operation has no terminal id.
    #[getter]
    fn session(&self, py: Python<'_>) -> PyResult<Option<TerminalSession>> {
        let holder = self.holder();
        self.get().terminal_id.as_ref().map(|id| TerminalSession::require(py, &self.trace, id, &holder)).transpose()
    }

    #[getter]
    fn tool_call(&self, py: Python<'_>) -> PyResult<ToolCall> {
        ToolCall::require(py, &self.trace, &self.get().tool_call_id, &self.holder())
    }

    #[getter]
    fn raw_payloads<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        payload_tuple(py, &self.trace, &self.get().raw_payload_ids, &self.holder())
    }

    fn __repr__(&self) -> String {
        let operation = self.get();
        let mut text = format!(
            "<TerminalOperation {} {} {}",
            operation.operation_id,
            enum_name(&operation.kind),
            enum_name(&operation.execution.status)
        );
        if let Some(terminal) = &operation.terminal_id {
            text.push_str(&format!(" terminal={terminal}"));
        }
        if let model::TerminalRequest::ExecCommand { display_command, .. } = &operation.request {
            text.push(' ');
            text.push_str(&preview(display_command));
        }
        text.push('>');
        text
    }
}

entity! {
    /// A multi-agent interaction: spawn, task, message, result or close.
    InteractionEdge(model::InteractionEdge) in interaction_edges as InteractionEdges;

    #[getter]
    fn edge_id(&self) -> &str {
        &self.get().edge_id
    }

    #[getter]
    fn kind(&self) -> String {
        enum_name(&self.get().kind)
    }

    #[getter]
    fn source(&self) -> TraceAnchor {
        TraceAnchor::new(self.get().source.clone(), self.trace.clone())
    }

    #[getter]
    fn target(&self) -> TraceAnchor {
        TraceAnchor::new(self.get().target.clone(), self.trace.clone())
    }

    #[getter]
    fn started_at_unix_ms(&self) -> i64 {
        self.get().started_at_unix_ms
    }

    #[getter]
    fn ended_at_unix_ms(&self) -> Option<i64> {
        self.get().ended_at_unix_ms
    }

    #[getter]
    fn carried_item_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.get().carried_item_ids)
    }

    #[getter]
    fn carried_raw_payload_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.get().carried_raw_payload_ids)
    }

    /// The object the source anchor names, `None` if it is not in the trace.
    #[getter]
    fn source_object<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        TraceAnchor::resolve(py, &self.trace, &self.get().source)
    }

    /// The object the target anchor names, `None` if it is not in the trace.
    #[getter]
    fn target_object<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        TraceAnchor::resolve(py, &self.trace, &self.get().target)
    }

    #[getter]
    fn carried_items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ConversationItem::require_all(py, &self.trace, &self.get().carried_item_ids, &self.holder())
    }

    #[getter]
    fn carried_raw_payloads<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        payload_tuple(py, &self.trace, &self.get().carried_raw_payload_ids, &self.holder())
    }

    /// The thread of the source anchor, `None` if it is not in the trace.
    #[getter]
    fn source_thread(&self) -> Option<AgentThread> {
        let id = provenance::anchor_thread_id(&self.trace.model, &self.get().source)?;
        AgentThread::lookup(&self.trace, id)
    }

    /// The thread of the target anchor, `None` if it is not in the trace.
    #[getter]
    fn target_thread(&self) -> Option<AgentThread> {
        let id = provenance::anchor_thread_id(&self.trace.model, &self.get().target)?;
        AgentThread::lookup(&self.trace, id)
    }

    /// The multi-agent tool call that made the edge (its source, for spawn,
    /// task, message and close edges); `None` for result edges.
    #[getter]
    fn tool_call(&self) -> Option<ToolCall> {
        let call = provenance::edge_tool_call(&self.trace.model, self.get())?;
        Some(ToolCall::at(self.trace.clone(), call.tool_call_id.clone()))
    }

    fn __repr__(&self) -> String {
        let edge = self.get();
        format!(
            "<InteractionEdge {} {} {} -> {}>",
            edge.edge_id,
            enum_name(&edge.kind),
            TraceAnchor::describe(&edge.source),
            TraceAnchor::describe(&edge.target)
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AgentThread>()?;
    m.add_class::<CodexTurn>()?;
    m.add_class::<ConversationItem>()?;
    m.add_class::<InferenceCall>()?;
    m.add_class::<Compaction>()?;
    m.add_class::<CompactionRequest>()?;
    m.add_class::<CodeCell>()?;
    m.add_class::<ToolCall>()?;
    m.add_class::<TerminalSession>()?;
    m.add_class::<TerminalOperation>()?;
    m.add_class::<InteractionEdge>()?;
    Ok(())
}
