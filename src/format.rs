//! The on-disk bundle format: manifest, raw event envelope, event payloads and
//! payload references (spec 01-format §3–§5).
//!
//! Field order in every struct is the written order; serde derives reproduce
//! the reference bytes, and readers stay as lenient as the reference (unknown
//! keys ignored, optional fields may be absent or null).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// File names the reducer always uses, whatever the manifest says.
pub const MANIFEST_FILE: &str = "manifest.json";
pub const EVENT_LOG_FILE: &str = "trace.jsonl";
pub const PAYLOADS_DIR: &str = "payloads";
pub const STATE_FILE: &str = "state.json";
pub const SCHEMA_VERSION: u32 = 1;

/// `manifest.json`: identity and layout of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub trace_id: String,
    pub rollout_id: String,
    pub root_thread_id: String,
    pub started_at_unix_ms: i64,
    pub raw_event_log: String,
    pub payloads_dir: String,
}

/// A reference from an event to one payload file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RawPayloadRef {
    pub raw_payload_id: String,
    pub kind: RawPayloadKind,
    /// Relative to the bundle root.
    pub path: String,
}

/// Coarse role of a payload. Adjacently tagged: written as `{"type": ...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum RawPayloadKind {
    InferenceRequest,
    InferenceResponse,
    CompactionRequest,
    CompactionCheckpoint,
    CompactionResponse,
    ToolInvocation,
    ToolResult,
    ToolRuntimeEvent,
    TerminalRuntimeEvent,
    ProtocolEvent,
    SessionMetadata,
    AgentResult,
}

impl RawPayloadKind {
    pub const ALL: [RawPayloadKind; 12] = [
        Self::InferenceRequest,
        Self::InferenceResponse,
        Self::CompactionRequest,
        Self::CompactionCheckpoint,
        Self::CompactionResponse,
        Self::ToolInvocation,
        Self::ToolResult,
        Self::ToolRuntimeEvent,
        Self::TerminalRuntimeEvent,
        Self::ProtocolEvent,
        Self::SessionMetadata,
        Self::AgentResult,
    ];

    /// The snake_case spelling used on disk.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InferenceRequest => "inference_request",
            Self::InferenceResponse => "inference_response",
            Self::CompactionRequest => "compaction_request",
            Self::CompactionCheckpoint => "compaction_checkpoint",
            Self::CompactionResponse => "compaction_response",
            Self::ToolInvocation => "tool_invocation",
            Self::ToolResult => "tool_result",
            Self::ToolRuntimeEvent => "tool_runtime_event",
            Self::TerminalRuntimeEvent => "terminal_runtime_event",
            Self::ProtocolEvent => "protocol_event",
            Self::SessionMetadata => "session_metadata",
            Self::AgentResult => "agent_result",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// One line of `trace.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawTraceEvent {
    pub schema_version: u32,
    pub seq: u64,
    pub wall_time_unix_ms: i64,
    pub rollout_id: String,
    pub thread_id: Option<String>,
    pub codex_turn_id: Option<String>,
    pub payload: RawTraceEventPayload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutStatus {
    Running,
    Completed,
    Failed,
    Aborted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    Running,
    Completed,
    Failed,
    Cancelled,
    Aborted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeCellRuntimeStatus {
    Starting,
    Running,
    Yielded,
    Completed,
    Failed,
    Terminated,
}

/// Who asked for a tool call, as the runtime names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RawToolCallRequester {
    Model,
    CodeCell { runtime_cell_id: String },
}

/// Identical JSON in raw events and in `state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolCallKind {
    ExecCommand,
    WriteStdin,
    ApplyPatch,
    Mcp { server: String, tool: String },
    Web,
    ImageGeneration,
    SpawnAgent,
    AssignAgentTask,
    SendMessage,
    WaitAgent,
    CloseAgent,
    Other { name: String },
}

impl ToolCallKind {
    /// The `type` tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::ExecCommand => "exec_command",
            Self::WriteStdin => "write_stdin",
            Self::ApplyPatch => "apply_patch",
            Self::Mcp { .. } => "mcp",
            Self::Web => "web",
            Self::ImageGeneration => "image_generation",
            Self::SpawnAgent => "spawn_agent",
            Self::AssignAgentTask => "assign_agent_task",
            Self::SendMessage => "send_message",
            Self::WaitAgent => "wait_agent",
            Self::CloseAgent => "close_agent",
            Self::Other { .. } => "other",
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::ExecCommand | Self::WriteStdin)
    }
}

/// Identical JSON in raw events and in `state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolCallSummary {
    Terminal { operation_id: String },
    Agent { target_agent_path: String, task_name: Option<String>, message_preview: String },
    WaitAgent { target_agent_path: Option<String>, timeout_ms: Option<u64> },
    Generic { label: String, input_preview: Option<String>, output_preview: Option<String> },
}

/// Every event variant (01-format §5.1), in written field order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RawTraceEventPayload {
    RolloutStarted {
        trace_id: String,
        root_thread_id: String,
    },
    RolloutEnded {
        status: RolloutStatus,
    },
    ThreadStarted {
        thread_id: String,
        agent_path: String,
        metadata_payload: Option<RawPayloadRef>,
    },
    ThreadEnded {
        thread_id: String,
        status: RolloutStatus,
    },
    CodexTurnStarted {
        codex_turn_id: String,
        thread_id: String,
    },
    CodexTurnEnded {
        codex_turn_id: String,
        status: ExecutionStatus,
    },
    InferenceStarted {
        inference_call_id: String,
        thread_id: String,
        codex_turn_id: String,
        model: String,
        provider_name: String,
        request_payload: RawPayloadRef,
    },
    InferenceCompleted {
        inference_call_id: String,
        response_id: Option<String>,
        upstream_request_id: Option<String>,
        response_payload: RawPayloadRef,
    },
    InferenceFailed {
        inference_call_id: String,
        upstream_request_id: Option<String>,
        error: String,
        partial_response_payload: Option<RawPayloadRef>,
    },
    InferenceCancelled {
        inference_call_id: String,
        upstream_request_id: Option<String>,
        reason: String,
        partial_response_payload: Option<RawPayloadRef>,
    },
    ToolCallStarted {
        tool_call_id: String,
        model_visible_call_id: Option<String>,
        code_mode_runtime_tool_id: Option<String>,
        requester: RawToolCallRequester,
        kind: ToolCallKind,
        summary: ToolCallSummary,
        invocation_payload: Option<RawPayloadRef>,
    },
    McpToolCallCorrelationAssigned {
        tool_call_id: String,
        mcp_call_id: String,
    },
    ToolCallRuntimeStarted {
        tool_call_id: String,
        runtime_payload: RawPayloadRef,
    },
    ToolCallRuntimeEnded {
        tool_call_id: String,
        status: ExecutionStatus,
        runtime_payload: RawPayloadRef,
    },
    ToolCallEnded {
        tool_call_id: String,
        status: ExecutionStatus,
        result_payload: Option<RawPayloadRef>,
    },
    CodeCellStarted {
        runtime_cell_id: String,
        model_visible_call_id: String,
        source_js: String,
    },
    CodeCellInitialResponse {
        runtime_cell_id: String,
        status: CodeCellRuntimeStatus,
        response_payload: Option<RawPayloadRef>,
    },
    CodeCellEnded {
        runtime_cell_id: String,
        status: CodeCellRuntimeStatus,
        response_payload: Option<RawPayloadRef>,
    },
    CompactionRequestStarted {
        compaction_id: String,
        compaction_request_id: String,
        thread_id: String,
        codex_turn_id: String,
        model: String,
        provider_name: String,
        request_payload: RawPayloadRef,
    },
    CompactionRequestCompleted {
        compaction_id: String,
        compaction_request_id: String,
        response_payload: RawPayloadRef,
    },
    CompactionRequestFailed {
        compaction_id: String,
        compaction_request_id: String,
        error: String,
    },
    CompactionInstalled {
        compaction_id: String,
        checkpoint_payload: RawPayloadRef,
    },
    AgentResultObserved {
        edge_id: String,
        child_thread_id: String,
        child_codex_turn_id: String,
        parent_thread_id: String,
        message: String,
        carried_payload: Option<RawPayloadRef>,
    },
    ProtocolEventObserved {
        event_type: String,
        event_payload: RawPayloadRef,
    },
    Other {
        kind: String,
        summary: String,
        payloads: Vec<RawPayloadRef>,
        metadata: Value,
    },
}

impl RawTraceEventPayload {
    /// The `type` tag of this event.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::RolloutStarted { .. } => "rollout_started",
            Self::RolloutEnded { .. } => "rollout_ended",
            Self::ThreadStarted { .. } => "thread_started",
            Self::ThreadEnded { .. } => "thread_ended",
            Self::CodexTurnStarted { .. } => "codex_turn_started",
            Self::CodexTurnEnded { .. } => "codex_turn_ended",
            Self::InferenceStarted { .. } => "inference_started",
            Self::InferenceCompleted { .. } => "inference_completed",
            Self::InferenceFailed { .. } => "inference_failed",
            Self::InferenceCancelled { .. } => "inference_cancelled",
            Self::ToolCallStarted { .. } => "tool_call_started",
            Self::McpToolCallCorrelationAssigned { .. } => "mcp_tool_call_correlation_assigned",
            Self::ToolCallRuntimeStarted { .. } => "tool_call_runtime_started",
            Self::ToolCallRuntimeEnded { .. } => "tool_call_runtime_ended",
            Self::ToolCallEnded { .. } => "tool_call_ended",
            Self::CodeCellStarted { .. } => "code_cell_started",
            Self::CodeCellInitialResponse { .. } => "code_cell_initial_response",
            Self::CodeCellEnded { .. } => "code_cell_ended",
            Self::CompactionRequestStarted { .. } => "compaction_request_started",
            Self::CompactionRequestCompleted { .. } => "compaction_request_completed",
            Self::CompactionRequestFailed { .. } => "compaction_request_failed",
            Self::CompactionInstalled { .. } => "compaction_installed",
            Self::AgentResultObserved { .. } => "agent_result_observed",
            Self::ProtocolEventObserved { .. } => "protocol_event_observed",
            Self::Other { .. } => "other",
        }
    }

    /// Every payload reference this event carries, in field order: the refs
    /// the reducer registers before handling the event.
    pub fn payload_refs(&self) -> Vec<&RawPayloadRef> {
        match self {
            Self::ThreadStarted { metadata_payload, .. } => metadata_payload.iter().collect(),
            Self::InferenceStarted { request_payload, .. } | Self::CompactionRequestStarted { request_payload, .. } => {
                vec![request_payload]
            }
            Self::InferenceCompleted { response_payload, .. }
            | Self::CompactionRequestCompleted { response_payload, .. } => vec![response_payload],
            Self::InferenceFailed { partial_response_payload, .. }
            | Self::InferenceCancelled { partial_response_payload, .. } => partial_response_payload.iter().collect(),
            Self::ToolCallStarted { invocation_payload, .. } => invocation_payload.iter().collect(),
            Self::ToolCallRuntimeStarted { runtime_payload, .. }
            | Self::ToolCallRuntimeEnded { runtime_payload, .. } => vec![runtime_payload],
            Self::ToolCallEnded { result_payload, .. } => result_payload.iter().collect(),
            Self::CodeCellInitialResponse { response_payload, .. } | Self::CodeCellEnded { response_payload, .. } => {
                response_payload.iter().collect()
            }
            Self::CompactionInstalled { checkpoint_payload, .. } => vec![checkpoint_payload],
            Self::AgentResultObserved { carried_payload, .. } => carried_payload.iter().collect(),
            Self::ProtocolEventObserved { event_payload, .. } => vec![event_payload],
            Self::Other { payloads, .. } => payloads.iter().collect(),
            Self::RolloutStarted { .. }
            | Self::RolloutEnded { .. }
            | Self::ThreadEnded { .. }
            | Self::CodexTurnStarted { .. }
            | Self::CodexTurnEnded { .. }
            | Self::McpToolCallCorrelationAssigned { .. }
            | Self::CodeCellStarted { .. }
            | Self::CompactionRequestFailed { .. } => Vec::new(),
        }
    }
}
