//! Value classes: the small structs and tagged unions inside entities
//! (`ExecutionWindow`, `ConversationPart`, `ToolCallKind`, ...). Each holds
//! its own copy of the Rust value, made when the parent attribute is read.
//!
//! A tagged union is one class with `.type` and the fields of its variants;
//! reading a field its variant lacks raises `AttributeError` (so `hasattr`
//! works). Values that name other objects (`ProducerRef`, `TraceAnchor`,
//! parts with a payload, terminal observations) also keep the trace, to
//! resolve those names.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::convert::{enum_name, no_field, preview, str_tuple, to_plain, value_hash};
use super::entities::{
    AgentThread, CodeCell, Compaction, ConversationItem, Entity, InferenceCall, InteractionEdge, TerminalOperation,
    ToolCall,
};
use super::payload::PyRawPayloadRef;
use super::trace::TraceData;
use crate::model;
use crate::provenance::{self, OriginKind};

/// Declares a value class: the struct, its constructor, and a
/// `#[pymethods]` block with `to_dict`, value equality and hash, followed
/// by the class's own methods. `linked` classes also keep the trace.
macro_rules! value_class {
    (
        $(#[$doc:meta])*
        $name:ident($model:ty);
        $($methods:tt)*
    ) => {
        $(#[$doc])*
        #[pyclass(frozen, module = "rollout_trace")]
        pub struct $name {
            value: $model,
        }

        impl From<$model> for $name {
            fn from(value: $model) -> Self {
                $name { value }
            }
        }

        value_class!(@methods $name; $($methods)*);
    };
    (
        $(#[$doc:meta])*
        linked $name:ident($model:ty);
        $($methods:tt)*
    ) => {
        $(#[$doc])*
        #[pyclass(frozen, module = "rollout_trace")]
        pub struct $name {
            value: $model,
            trace: Arc<TraceData>,
        }

        impl $name {
            pub fn new(value: $model, trace: Arc<TraceData>) -> Self {
                $name { value, trace }
            }
        }

        value_class!(@methods $name; $($methods)*);
    };
    (@methods $name:ident; $($methods:tt)*) => {
        #[pymethods]
        impl $name {
            /// This value as plain data, exactly as in `state.json`.
            fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                to_plain(py, &self.value)
            }

            fn __eq__(&self, other: &Self) -> bool {
                self.value == other.value
            }

            fn __hash__(&self) -> u64 {
                value_hash(&self.value)
            }

            $($methods)*
        }
    };
}

value_class! {
    /// When something ran: start and end (wall time and event `seq`) and status.
    ExecutionWindow(model::ExecutionWindow);

    #[getter]
    fn started_at_unix_ms(&self) -> i64 {
        self.value.started_at_unix_ms
    }

    #[getter]
    fn started_seq(&self) -> u64 {
        self.value.started_seq
    }

    #[getter]
    fn ended_at_unix_ms(&self) -> Option<i64> {
        self.value.ended_at_unix_ms
    }

    #[getter]
    fn ended_seq(&self) -> Option<u64> {
        self.value.ended_seq
    }

    #[getter]
    fn status(&self) -> String {
        enum_name(&self.value.status)
    }

    /// `ended_at_unix_ms - started_at_unix_ms`, `None` while running.
    #[getter]
    fn duration_ms(&self) -> Option<i64> {
        self.value.ended_at_unix_ms.map(|ended| ended.saturating_sub(self.value.started_at_unix_ms))
    }

    fn __repr__(&self) -> String {
        let window = &self.value;
        let ended = window.ended_seq.map_or_else(|| "None".to_string(), |seq| seq.to_string());
        format!(
            "ExecutionWindow(status='{}', started_seq={}, ended_seq={ended})",
            enum_name(&window.status),
            window.started_seq
        )
    }
}

value_class! {
    /// Token counts of one inference.
    TokenUsage(model::TokenUsage);

    #[getter]
    fn input_tokens(&self) -> i64 {
        self.value.input_tokens
    }

    #[getter]
    fn cached_input_tokens(&self) -> i64 {
        self.value.cached_input_tokens
    }

    #[getter]
    /// `None` under profiles of releases before 0.147, which do not count it.
    fn cache_write_input_tokens(&self) -> Option<i64> {
        self.value.cache_write_input_tokens
    }

    #[getter]
    fn output_tokens(&self) -> i64 {
        self.value.output_tokens
    }

    #[getter]
    fn reasoning_output_tokens(&self) -> i64 {
        self.value.reasoning_output_tokens
    }

    fn __repr__(&self) -> String {
        let usage = &self.value;
        format!(
            "TokenUsage(input_tokens={}, cached_input_tokens={}, cache_write_input_tokens={}, output_tokens={}, reasoning_output_tokens={})",
            usage.input_tokens,
            usage.cached_input_tokens,
            usage.cache_write_input_tokens.map_or("None".to_string(), |n| n.to_string()),
            usage.output_tokens,
            usage.reasoning_output_tokens
        )
    }
}

value_class! {
    /// How a thread began: ``root``, or ``spawned`` by another thread.
    AgentOrigin(model::AgentOrigin);

    #[getter]
    fn r#type(&self) -> &'static str {
        match &self.value {
            model::AgentOrigin::Root => "root",
            model::AgentOrigin::Spawned { .. } => "spawned",
        }
    }

    #[getter]
    fn parent_thread_id(&self) -> PyResult<&str> {
        self.spawned("parent_thread_id").map(|(parent, _, _, _)| parent)
    }

    #[getter]
    fn spawn_edge_id(&self) -> PyResult<&str> {
        self.spawned("spawn_edge_id").map(|(_, edge, _, _)| edge)
    }

    #[getter]
    fn task_name(&self) -> PyResult<&str> {
        self.spawned("task_name").map(|(_, _, task, _)| task)
    }

    #[getter]
    fn agent_role(&self) -> PyResult<&str> {
        self.spawned("agent_role").map(|(_, _, _, role)| role)
    }

    fn __repr__(&self) -> String {
        match &self.value {
            model::AgentOrigin::Root => "<AgentOrigin root>".to_string(),
            model::AgentOrigin::Spawned { parent_thread_id, task_name, .. } => {
                format!("<AgentOrigin spawned parent={parent_thread_id} task={task_name}>")
            }
        }
    }
}

impl AgentOrigin {
    fn spawned(&self, field: &str) -> PyResult<(&str, &str, &str, &str)> {
        match &self.value {
            model::AgentOrigin::Spawned { parent_thread_id, spawn_edge_id, task_name, agent_role } => {
                Ok((parent_thread_id, spawn_edge_id, task_name, agent_role))
            }
            model::AgentOrigin::Root => Err(no_field("AgentOrigin", "root", field)),
        }
    }
}

value_class! {
    /// Author and recipient of an inter-agent message.
    AgentMessageMetadata(model::AgentMessageMetadata);

    #[getter]
    fn author(&self) -> &str {
        &self.value.author
    }

    #[getter]
    fn recipient(&self) -> &str {
        &self.value.recipient
    }

    fn __repr__(&self) -> String {
        format!("<AgentMessageMetadata {} -> {}>", self.value.author, self.value.recipient)
    }
}

value_class! {
    /// The content of a conversation item.
    linked ConversationBody(model::ConversationBody);

    #[getter]
    fn parts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let parts = self.value.parts.iter().map(|part| ConversationPart::new(part.clone(), self.trace.clone()));
        PyTuple::new(py, parts)
    }

    fn __repr__(&self) -> String {
        format!("<ConversationBody parts={}>", self.value.parts.len())
    }
}

value_class! {
    /// One part of a conversation body: ``text``, ``summary``, ``encoded``,
    /// ``json``, ``code`` or ``payload_ref``.
    linked ConversationPart(model::ConversationPart);

    #[getter]
    fn r#type(&self) -> &'static str {
        self.type_name()
    }

    /// The text of a ``text`` or ``summary`` part.
    #[getter]
    fn text(&self) -> PyResult<&str> {
        match &self.value {
            model::ConversationPart::Text { text } | model::ConversationPart::Summary { text } => Ok(text),
            _ => Err(self.missing("text")),
        }
    }

    /// The label of an ``encoded`` or ``payload_ref`` part.
    #[getter]
    fn label(&self) -> PyResult<&str> {
        match &self.value {
            model::ConversationPart::Encoded { label, .. } | model::ConversationPart::PayloadRef { label, .. } => Ok(label),
            _ => Err(self.missing("label")),
        }
    }

    #[getter]
    fn value(&self) -> PyResult<&str> {
        match &self.value {
            model::ConversationPart::Encoded { value, .. } => Ok(value),
            _ => Err(self.missing("value")),
        }
    }

    #[getter]
    fn summary(&self) -> PyResult<&str> {
        match &self.value {
            model::ConversationPart::Json { summary, .. } => Ok(summary),
            _ => Err(self.missing("summary")),
        }
    }

    /// The payload id of a ``json`` or ``payload_ref`` part.
    #[getter]
    fn raw_payload_id(&self) -> PyResult<&str> {
        self.payload_id().ok_or_else(|| self.missing("raw_payload_id"))
    }

    /// The payload of a ``json`` or ``payload_ref`` part.
    #[getter]
    fn raw_payload(&self, py: Python<'_>) -> PyResult<Py<PyRawPayloadRef>> {
        let id = self.payload_id().ok_or_else(|| self.missing("raw_payload"))?;
        self.trace.require_payload_ref(py, id, "conversation part")
    }

    #[getter]
    fn language(&self) -> PyResult<&str> {
        match &self.value {
            model::ConversationPart::Code { language, .. } => Ok(language),
            _ => Err(self.missing("language")),
        }
    }

    #[getter]
    fn source(&self) -> PyResult<&str> {
        match &self.value {
            model::ConversationPart::Code { source, .. } => Ok(source),
            _ => Err(self.missing("source")),
        }
    }

    fn __repr__(&self) -> String {
        use model::ConversationPart as P;
        let detail = match &self.value {
            P::Text { text } | P::Summary { text } => preview(text),
            P::Encoded { label, value } => format!("{label} ({} chars)", value.len()),
            P::Json { summary, raw_payload_id } => format!("{raw_payload_id} {}", preview(summary)),
            P::Code { language, source } => format!("{language} {}", preview(source)),
            P::PayloadRef { label, raw_payload_id } => format!("{label} {raw_payload_id}"),
        };
        format!("<ConversationPart {} {detail}>", self.type_name())
    }
}

impl ConversationPart {
    fn type_name(&self) -> &'static str {
        use model::ConversationPart as P;
        match &self.value {
            P::Text { .. } => "text",
            P::Summary { .. } => "summary",
            P::Encoded { .. } => "encoded",
            P::Json { .. } => "json",
            P::Code { .. } => "code",
            P::PayloadRef { .. } => "payload_ref",
        }
    }

    fn payload_id(&self) -> Option<&str> {
        match &self.value {
            model::ConversationPart::Json { raw_payload_id, .. }
            | model::ConversationPart::PayloadRef { raw_payload_id, .. } => Some(raw_payload_id),
            _ => None,
        }
    }

    fn missing(&self, field: &str) -> PyErr {
        no_field("ConversationPart", self.type_name(), field)
    }
}

value_class! {
    /// What produced a conversation item: ``inference``, ``tool``,
    /// ``code_cell``, ``compaction``, ``interaction_edge``, ``user_input`` or
    /// ``harness``.
    linked ProducerRef(model::ProducerRef);

    #[getter]
    fn r#type(&self) -> &'static str {
        self.type_name()
    }

    #[getter]
    fn inference_call_id(&self) -> PyResult<&str> {
        match &self.value {
            model::ProducerRef::Inference { inference_call_id } => Ok(inference_call_id),
            _ => Err(self.missing("inference_call_id")),
        }
    }

    #[getter]
    fn tool_call_id(&self) -> PyResult<&str> {
        match &self.value {
            model::ProducerRef::Tool { tool_call_id } => Ok(tool_call_id),
            _ => Err(self.missing("tool_call_id")),
        }
    }

    #[getter]
    fn code_cell_id(&self) -> PyResult<&str> {
        match &self.value {
            model::ProducerRef::CodeCell { code_cell_id } => Ok(code_cell_id),
            _ => Err(self.missing("code_cell_id")),
        }
    }

    #[getter]
    fn edge_id(&self) -> PyResult<&str> {
        match &self.value {
            model::ProducerRef::InteractionEdge { edge_id } => Ok(edge_id),
            _ => Err(self.missing("edge_id")),
        }
    }

    #[getter]
    fn compaction_id(&self) -> PyResult<&str> {
        match &self.value {
            model::ProducerRef::Compaction { compaction_id } => Ok(compaction_id),
            _ => Err(self.missing("compaction_id")),
        }
    }

    /// The producing object; `None` for ``user_input`` and ``harness`` or
    /// when it is not in the trace.
    #[getter]
    fn object<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        Self::resolve(py, &self.trace, &self.value)
    }

    fn __repr__(&self) -> String {
        use model::ProducerRef as P;
        match &self.value {
            P::UserInput | P::Harness => format!("<ProducerRef {}>", self.type_name()),
            P::Inference { inference_call_id: id }
            | P::Tool { tool_call_id: id }
            | P::CodeCell { code_cell_id: id }
            | P::InteractionEdge { edge_id: id }
            | P::Compaction { compaction_id: id } => format!("<ProducerRef {} {id}>", self.type_name()),
        }
    }
}

/// A view as a Python object, if there is one.
fn into_object<'py, E: Entity>(py: Python<'py>, view: Option<E>) -> PyResult<Option<Bound<'py, PyAny>>> {
    view.map(|view| Bound::new(py, view).map(Bound::into_any)).transpose()
}

impl ProducerRef {
    pub fn resolve<'py>(
        py: Python<'py>,
        trace: &Arc<TraceData>,
        producer: &model::ProducerRef,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        use model::ProducerRef as P;
        match producer {
            P::Inference { inference_call_id } => into_object(py, InferenceCall::lookup(trace, inference_call_id)),
            P::Tool { tool_call_id } => into_object(py, ToolCall::lookup(trace, tool_call_id)),
            P::CodeCell { code_cell_id } => into_object(py, CodeCell::lookup(trace, code_cell_id)),
            P::InteractionEdge { edge_id } => into_object(py, InteractionEdge::lookup(trace, edge_id)),
            P::Compaction { compaction_id } => into_object(py, Compaction::lookup(trace, compaction_id)),
            P::UserInput | P::Harness => Ok(None),
        }
    }

    fn type_name(&self) -> &'static str {
        use model::ProducerRef as P;
        match &self.value {
            P::UserInput => "user_input",
            P::Inference { .. } => "inference",
            P::Tool { .. } => "tool",
            P::CodeCell { .. } => "code_cell",
            P::InteractionEdge { .. } => "interaction_edge",
            P::Compaction { .. } => "compaction",
            P::Harness => "harness",
        }
    }

    fn missing(&self, field: &str) -> PyErr {
        no_field("ProducerRef", self.type_name(), field)
    }
}

value_class! {
    /// Who asked for a tool call: ``model`` or ``code_cell``.
    ToolCallRequester(model::ToolCallRequester);

    #[getter]
    fn r#type(&self) -> &'static str {
        match &self.value {
            model::ToolCallRequester::Model => "model",
            model::ToolCallRequester::CodeCell { .. } => "code_cell",
        }
    }

    #[getter]
    fn code_cell_id(&self) -> PyResult<&str> {
        match &self.value {
            model::ToolCallRequester::CodeCell { code_cell_id } => Ok(code_cell_id),
            model::ToolCallRequester::Model => Err(no_field("ToolCallRequester", "model", "code_cell_id")),
        }
    }

    fn __repr__(&self) -> String {
        match &self.value {
            model::ToolCallRequester::Model => "<ToolCallRequester model>".to_string(),
            model::ToolCallRequester::CodeCell { code_cell_id } => format!("<ToolCallRequester code_cell {code_cell_id}>"),
        }
    }
}

value_class! {
    /// What tool was called: ``exec_command``, ``mcp`` (with ``server`` and
    /// ``tool``), ``other`` (with ``name``), ...
    ToolCallKind(model::ToolCallKind);

    #[getter]
    fn r#type(&self) -> &'static str {
        self.value.type_name()
    }

    #[getter]
    fn server(&self) -> PyResult<&str> {
        match &self.value {
            model::ToolCallKind::Mcp { server, .. } => Ok(server),
            _ => Err(no_field("ToolCallKind", self.value.type_name(), "server")),
        }
    }

    #[getter]
    fn tool(&self) -> PyResult<&str> {
        match &self.value {
            model::ToolCallKind::Mcp { tool, .. } => Ok(tool),
            _ => Err(no_field("ToolCallKind", self.value.type_name(), "tool")),
        }
    }

    #[getter]
    fn name(&self) -> PyResult<&str> {
        match &self.value {
            model::ToolCallKind::Other { name } => Ok(name),
            _ => Err(no_field("ToolCallKind", self.value.type_name(), "name")),
        }
    }

    fn __repr__(&self) -> String {
        match &self.value {
            model::ToolCallKind::Mcp { server, tool } => format!("<ToolCallKind mcp {server}/{tool}>"),
            model::ToolCallKind::Other { name } => format!("<ToolCallKind other {name}>"),
            kind => format!("<ToolCallKind {}>", kind.type_name()),
        }
    }
}

value_class! {
    /// A short description of a tool call: ``terminal``, ``agent``,
    /// ``wait_agent`` or ``generic``.
    ToolCallSummary(model::ToolCallSummary);

    #[getter]
    fn r#type(&self) -> &'static str {
        self.type_name()
    }

    #[getter]
    fn operation_id(&self) -> PyResult<&str> {
        match &self.value {
            model::ToolCallSummary::Terminal { operation_id } => Ok(operation_id),
            _ => Err(self.missing("operation_id")),
        }
    }

    /// A string for ``agent``; a string or `None` for ``wait_agent``.
    #[getter]
    fn target_agent_path(&self) -> PyResult<Option<&str>> {
        match &self.value {
            model::ToolCallSummary::Agent { target_agent_path, .. } => Ok(Some(target_agent_path)),
            model::ToolCallSummary::WaitAgent { target_agent_path, .. } => Ok(target_agent_path.as_deref()),
            _ => Err(self.missing("target_agent_path")),
        }
    }

    #[getter]
    fn task_name(&self) -> PyResult<Option<&str>> {
        match &self.value {
            model::ToolCallSummary::Agent { task_name, .. } => Ok(task_name.as_deref()),
            _ => Err(self.missing("task_name")),
        }
    }

    #[getter]
    fn message_preview(&self) -> PyResult<&str> {
        match &self.value {
            model::ToolCallSummary::Agent { message_preview, .. } => Ok(message_preview),
            _ => Err(self.missing("message_preview")),
        }
    }

    #[getter]
    fn timeout_ms(&self) -> PyResult<Option<u64>> {
        match &self.value {
            model::ToolCallSummary::WaitAgent { timeout_ms, .. } => Ok(*timeout_ms),
            _ => Err(self.missing("timeout_ms")),
        }
    }

    #[getter]
    fn label(&self) -> PyResult<&str> {
        match &self.value {
            model::ToolCallSummary::Generic { label, .. } => Ok(label),
            _ => Err(self.missing("label")),
        }
    }

    #[getter]
    fn input_preview(&self) -> PyResult<Option<&str>> {
        match &self.value {
            model::ToolCallSummary::Generic { input_preview, .. } => Ok(input_preview.as_deref()),
            _ => Err(self.missing("input_preview")),
        }
    }

    #[getter]
    fn output_preview(&self) -> PyResult<Option<&str>> {
        match &self.value {
            model::ToolCallSummary::Generic { output_preview, .. } => Ok(output_preview.as_deref()),
            _ => Err(self.missing("output_preview")),
        }
    }

    fn __repr__(&self) -> String {
        use model::ToolCallSummary as S;
        let detail = match &self.value {
            S::Terminal { operation_id } => operation_id.clone(),
            S::Agent { target_agent_path, message_preview, .. } => {
                format!("{target_agent_path} {}", preview(message_preview))
            }
            S::WaitAgent { target_agent_path, .. } => target_agent_path.clone().unwrap_or_default(),
            S::Generic { label, input_preview, .. } => match input_preview {
                Some(input) => format!("{label} {}", preview(input)),
                None => label.clone(),
            },
        };
        format!("<ToolCallSummary {} {detail}>", self.type_name())
    }
}

impl ToolCallSummary {
    fn type_name(&self) -> &'static str {
        match &self.value {
            model::ToolCallSummary::Terminal { .. } => "terminal",
            model::ToolCallSummary::Agent { .. } => "agent",
            model::ToolCallSummary::WaitAgent { .. } => "wait_agent",
            model::ToolCallSummary::Generic { .. } => "generic",
        }
    }

    fn missing(&self, field: &str) -> PyErr {
        no_field("ToolCallSummary", self.type_name(), field)
    }
}

value_class! {
    /// What a terminal operation asked for: ``exec_command`` or ``write_stdin``.
    TerminalRequest(model::TerminalRequest);

    #[getter]
    fn r#type(&self) -> &'static str {
        self.type_name()
    }

    #[getter]
    fn command<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        match &self.value {
            model::TerminalRequest::ExecCommand { command, .. } => str_tuple(py, command),
            _ => Err(self.missing("command")),
        }
    }

    #[getter]
    fn display_command(&self) -> PyResult<&str> {
        match &self.value {
            model::TerminalRequest::ExecCommand { display_command, .. } => Ok(display_command),
            _ => Err(self.missing("display_command")),
        }
    }

    #[getter]
    fn cwd(&self) -> PyResult<&str> {
        match &self.value {
            model::TerminalRequest::ExecCommand { cwd, .. } => Ok(cwd),
            _ => Err(self.missing("cwd")),
        }
    }

    #[getter]
    fn stdin(&self) -> PyResult<&str> {
        match &self.value {
            model::TerminalRequest::WriteStdin { stdin, .. } => Ok(stdin),
            _ => Err(self.missing("stdin")),
        }
    }

    #[getter]
    fn yield_time_ms(&self) -> Option<u64> {
        match &self.value {
            model::TerminalRequest::ExecCommand { yield_time_ms, .. }
            | model::TerminalRequest::WriteStdin { yield_time_ms, .. } => *yield_time_ms,
        }
    }

    #[getter]
    fn max_output_tokens(&self) -> Option<u64> {
        match &self.value {
            model::TerminalRequest::ExecCommand { max_output_tokens, .. }
            | model::TerminalRequest::WriteStdin { max_output_tokens, .. } => *max_output_tokens,
        }
    }

    fn __repr__(&self) -> String {
        let detail = match &self.value {
            model::TerminalRequest::ExecCommand { display_command, .. } => preview(display_command),
            model::TerminalRequest::WriteStdin { stdin, .. } => preview(stdin),
        };
        format!("<TerminalRequest {} {detail}>", self.type_name())
    }
}

impl TerminalRequest {
    fn type_name(&self) -> &'static str {
        match &self.value {
            model::TerminalRequest::ExecCommand { .. } => "exec_command",
            model::TerminalRequest::WriteStdin { .. } => "write_stdin",
        }
    }

    fn missing(&self, field: &str) -> PyErr {
        no_field("TerminalRequest", self.type_name(), field)
    }
}

value_class! {
    /// The outcome of a terminal operation.
    TerminalResult(model::TerminalResult);

    #[getter]
    fn exit_code(&self) -> Option<i32> {
        self.value.exit_code
    }

    #[getter]
    fn stdout(&self) -> &str {
        &self.value.stdout
    }

    #[getter]
    fn stderr(&self) -> &str {
        &self.value.stderr
    }

    #[getter]
    fn formatted_output(&self) -> Option<&str> {
        self.value.formatted_output.as_deref()
    }

    #[getter]
    fn original_token_count(&self) -> Option<u64> {
        self.value.original_token_count
    }

    #[getter]
    fn chunk_id(&self) -> Option<&str> {
        self.value.chunk_id.as_deref()
    }

    fn __repr__(&self) -> String {
        let result = &self.value;
        let exit = result.exit_code.map_or_else(|| "None".to_string(), |code| code.to_string());
        format!("<TerminalResult exit_code={exit} stdout={} chars stderr={} chars>", result.stdout.len(), result.stderr.len())
    }
}

value_class! {
    /// Where the model saw a terminal operation's call and output.
    linked TerminalModelObservation(model::TerminalModelObservation);

    #[getter]
    fn call_item_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.value.call_item_ids)
    }

    #[getter]
    fn output_item_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        str_tuple(py, &self.value.output_item_ids)
    }

    #[getter]
    fn source(&self) -> String {
        enum_name(&self.value.source)
    }

    #[getter]
    fn call_items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ConversationItem::require_all(py, &self.trace, &self.value.call_item_ids, "terminal model observation")
    }

    #[getter]
    fn output_items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ConversationItem::require_all(py, &self.trace, &self.value.output_item_ids, "terminal model observation")
    }

    fn __repr__(&self) -> String {
        let observation = &self.value;
        format!(
            "<TerminalModelObservation {} call_items={} output_items={}>",
            enum_name(&observation.source),
            observation.call_item_ids.len(),
            observation.output_item_ids.len()
        )
    }
}

value_class! {
    /// One end of an interaction edge: a ``conversation_item``, a
    /// ``tool_call`` or a ``thread``.
    linked TraceAnchor(model::TraceAnchor);

    #[getter]
    fn r#type(&self) -> &'static str {
        Self::type_name(&self.value)
    }

    #[getter]
    fn item_id(&self) -> PyResult<&str> {
        match &self.value {
            model::TraceAnchor::ConversationItem { item_id } => Ok(item_id),
            _ => Err(self.missing("item_id")),
        }
    }

    #[getter]
    fn tool_call_id(&self) -> PyResult<&str> {
        match &self.value {
            model::TraceAnchor::ToolCall { tool_call_id } => Ok(tool_call_id),
            _ => Err(self.missing("tool_call_id")),
        }
    }

    #[getter]
    fn thread_id(&self) -> PyResult<&str> {
        match &self.value {
            model::TraceAnchor::Thread { thread_id } => Ok(thread_id),
            _ => Err(self.missing("thread_id")),
        }
    }

    /// The anchored object, `None` if it is not in the trace.
    #[getter]
    fn object<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        Self::resolve(py, &self.trace, &self.value)
    }

    fn __repr__(&self) -> String {
        format!("<TraceAnchor {}>", Self::describe(&self.value))
    }
}

impl TraceAnchor {
    pub fn resolve<'py>(
        py: Python<'py>,
        trace: &Arc<TraceData>,
        anchor: &model::TraceAnchor,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        match anchor {
            model::TraceAnchor::ConversationItem { item_id } => {
                into_object(py, ConversationItem::lookup(trace, item_id))
            }
            model::TraceAnchor::ToolCall { tool_call_id } => into_object(py, ToolCall::lookup(trace, tool_call_id)),
            model::TraceAnchor::Thread { thread_id } => into_object(py, AgentThread::lookup(trace, thread_id)),
        }
    }

    /// `type id`, for reprs.
    pub fn describe(anchor: &model::TraceAnchor) -> String {
        let id = match anchor {
            model::TraceAnchor::ConversationItem { item_id } => item_id,
            model::TraceAnchor::ToolCall { tool_call_id } => tool_call_id,
            model::TraceAnchor::Thread { thread_id } => thread_id,
        };
        format!("{} {id}", Self::type_name(anchor))
    }

    fn type_name(anchor: &model::TraceAnchor) -> &'static str {
        match anchor {
            model::TraceAnchor::ConversationItem { .. } => "conversation_item",
            model::TraceAnchor::ToolCall { .. } => "tool_call",
            model::TraceAnchor::Thread { .. } => "thread",
        }
    }

    fn missing(&self, field: &str) -> PyErr {
        no_field("TraceAnchor", Self::type_name(&self.value), field)
    }
}

value_class! {
    /// Where a conversation item came from (`ConversationItem.origin`):
    /// ``transcript`` (request input: user and harness messages),
    /// ``inference`` (the model wrote it), ``tool``, ``terminal_operation``
    /// (output of a tool call that ran one), ``code_cell`` (a code-mode
    /// runtime value), ``agent_message`` (delivered by an interaction edge)
    /// or ``compaction``. Every link found is set, not only the one that
    /// decides `type`; the others are `None`.
    linked ItemOrigin(provenance::ItemOrigin);

    #[getter]
    fn r#type(&self) -> &'static str {
        self.value.kind.as_str()
    }

    #[getter]
    fn inference_call_id(&self) -> Option<&str> {
        self.value.inference_call_id.as_deref()
    }

    #[getter]
    fn tool_call_id(&self) -> Option<&str> {
        self.value.tool_call_id.as_deref()
    }

    #[getter]
    fn code_cell_id(&self) -> Option<&str> {
        self.value.code_cell_id.as_deref()
    }

    #[getter]
    fn terminal_operation_id(&self) -> Option<&str> {
        self.value.terminal_operation_id.as_deref()
    }

    #[getter]
    fn edge_id(&self) -> Option<&str> {
        self.value.edge_id.as_deref()
    }

    #[getter]
    fn compaction_id(&self) -> Option<&str> {
        self.value.compaction_id.as_deref()
    }

    #[getter]
    fn inference_call(&self) -> Option<InferenceCall> {
        self.value.inference_call_id.as_ref().and_then(|id| InferenceCall::lookup(&self.trace, id))
    }

    #[getter]
    fn tool_call(&self) -> Option<ToolCall> {
        self.value.tool_call_id.as_ref().and_then(|id| ToolCall::lookup(&self.trace, id))
    }

    #[getter]
    fn code_cell(&self) -> Option<CodeCell> {
        self.value.code_cell_id.as_ref().and_then(|id| CodeCell::lookup(&self.trace, id))
    }

    #[getter]
    fn terminal_operation(&self) -> Option<TerminalOperation> {
        self.value.terminal_operation_id.as_ref().and_then(|id| TerminalOperation::lookup(&self.trace, id))
    }

    #[getter]
    fn interaction_edge(&self) -> Option<InteractionEdge> {
        self.value.edge_id.as_ref().and_then(|id| InteractionEdge::lookup(&self.trace, id))
    }

    #[getter]
    fn compaction(&self) -> Option<Compaction> {
        self.value.compaction_id.as_ref().and_then(|id| Compaction::lookup(&self.trace, id))
    }

    /// The object `type` names; `None` for ``transcript``.
    #[getter]
    fn object<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.value.kind {
            OriginKind::Compaction => into_object(py, self.compaction()),
            OriginKind::AgentMessage => into_object(py, self.interaction_edge()),
            OriginKind::CodeCell => into_object(py, self.code_cell()),
            OriginKind::TerminalOperation => into_object(py, self.terminal_operation()),
            OriginKind::Tool => into_object(py, self.tool_call()),
            OriginKind::Inference => into_object(py, self.inference_call()),
            OriginKind::Transcript => Ok(None),
        }
    }

    fn __repr__(&self) -> String {
        let origin = &self.value;
        let id = match origin.kind {
            OriginKind::Compaction => origin.compaction_id.as_deref(),
            OriginKind::AgentMessage => origin.edge_id.as_deref(),
            OriginKind::CodeCell => origin.code_cell_id.as_deref(),
            OriginKind::TerminalOperation => origin.terminal_operation_id.as_deref(),
            OriginKind::Tool => origin.tool_call_id.as_deref(),
            OriginKind::Inference => origin.inference_call_id.as_deref(),
            OriginKind::Transcript => None,
        };
        match id {
            Some(id) => format!("<ItemOrigin {} {id}>", origin.kind.as_str()),
            None => format!("<ItemOrigin {}>", origin.kind.as_str()),
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ExecutionWindow>()?;
    m.add_class::<TokenUsage>()?;
    m.add_class::<AgentOrigin>()?;
    m.add_class::<AgentMessageMetadata>()?;
    m.add_class::<ConversationBody>()?;
    m.add_class::<ConversationPart>()?;
    m.add_class::<ProducerRef>()?;
    m.add_class::<ToolCallRequester>()?;
    m.add_class::<ToolCallKind>()?;
    m.add_class::<ToolCallSummary>()?;
    m.add_class::<TerminalRequest>()?;
    m.add_class::<TerminalResult>()?;
    m.add_class::<TerminalModelObservation>()?;
    m.add_class::<TraceAnchor>()?;
    m.add_class::<ItemOrigin>()?;
    Ok(())
}
