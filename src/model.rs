//! The reduced model: `RolloutTrace` and everything in it (spec 01-format §6).
//!
//! Serialized pretty, this is `state.json`. Field order is serialization
//! order; maps are `BTreeMap`s because the reference sorts keys byte-wise.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::format::{
    CodeCellRuntimeStatus, ExecutionStatus, RawPayloadKind, RawPayloadRef, RolloutStatus, ToolCallKind, ToolCallSummary,
};

pub type Map<T> = BTreeMap<String, T>;

/// A conversation item id in an inference call's `request_item_ids`. Every
/// request lists its thread's whole conversation again, so a long session
/// names each item hundreds of times: the lists share one copy of each id.
pub type SharedItemId = std::sync::Arc<str>;

/// Fields that only some releases write: `Some(value)` is written (a `null`
/// too), `None` leaves the key out, as those releases' `state.json` does.
mod versioned {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(field: &Option<T>, serializer: S) -> Result<S::Ok, S::Error> {
        match field {
            Some(value) => value.serialize(serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
        T::deserialize(deserializer).map(Some)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RolloutTrace {
    pub schema_version: u32,
    pub trace_id: String,
    pub rollout_id: String,
    pub started_at_unix_ms: i64,
    pub ended_at_unix_ms: Option<i64>,
    pub status: RolloutStatus,
    pub root_thread_id: String,
    pub threads: Map<AgentThread>,
    pub codex_turns: Map<CodexTurn>,
    pub conversation_items: Map<ConversationItem>,
    pub inference_calls: Map<InferenceCall>,
    pub code_cells: Map<CodeCell>,
    pub tool_calls: Map<ToolCall>,
    pub terminal_sessions: Map<TerminalSession>,
    pub terminal_operations: Map<TerminalOperation>,
    pub compactions: Map<Compaction>,
    pub compaction_requests: Map<CompactionRequest>,
    pub interaction_edges: Map<InteractionEdge>,
    pub raw_payloads: Map<RawPayloadRef>,
}

impl RolloutTrace {
    /// The empty trace a replay starts from (reducer §1).
    pub fn new(manifest: &crate::format::Manifest) -> Self {
        RolloutTrace {
            schema_version: crate::format::SCHEMA_VERSION,
            trace_id: manifest.trace_id.clone(),
            rollout_id: manifest.rollout_id.clone(),
            started_at_unix_ms: manifest.started_at_unix_ms,
            ended_at_unix_ms: None,
            status: RolloutStatus::Running,
            root_thread_id: manifest.root_thread_id.clone(),
            threads: Map::new(),
            codex_turns: Map::new(),
            conversation_items: Map::new(),
            inference_calls: Map::new(),
            code_cells: Map::new(),
            tool_calls: Map::new(),
            terminal_sessions: Map::new(),
            terminal_operations: Map::new(),
            compactions: Map::new(),
            compaction_requests: Map::new(),
            interaction_edges: Map::new(),
            raw_payloads: Map::new(),
        }
    }

    /// The exact `state.json` text: pretty, 2-space indent, no trailing newline.
    pub fn to_json(&self) -> String {
        let mut text = Vec::new();
        // Writing into a `Vec` cannot fail, nor can serializing the model
        // (string keys only); the text is UTF-8 by construction.
        crate::state_json::write_state(self, &mut text).expect("serializing a JSON model cannot fail");
        String::from_utf8(text).unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
    }

    /// `to_json`, written to `out` as it is produced (several threads
    /// serialize it for a big trace; see [`crate::state_json`]).
    pub fn write_json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        crate::state_json::write_state(self, out)
    }

    /// Parse a `state.json` text back into the model.
    pub fn from_json(text: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExecutionWindow {
    pub started_at_unix_ms: i64,
    pub started_seq: u64,
    pub ended_at_unix_ms: Option<i64>,
    pub ended_seq: Option<u64>,
    pub status: ExecutionStatus,
}

impl ExecutionWindow {
    /// A window opened by the event at `seq`, still running.
    pub fn running(started_at_unix_ms: i64, started_seq: u64) -> Self {
        ExecutionWindow {
            started_at_unix_ms,
            started_seq,
            ended_at_unix_ms: None,
            ended_seq: None,
            status: ExecutionStatus::Running,
        }
    }

    pub fn end(&mut self, at_unix_ms: i64, seq: u64, status: ExecutionStatus) {
        self.ended_at_unix_ms = Some(at_unix_ms);
        self.ended_seq = Some(seq);
        self.status = status;
    }

    pub fn is_running(&self) -> bool {
        self.status == ExecutionStatus::Running
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgentThread {
    pub thread_id: String,
    pub agent_path: String,
    pub nickname: Option<String>,
    pub origin: AgentOrigin,
    pub execution: ExecutionWindow,
    pub default_model: Option<String>,
    /// Every item of the thread once, in first-seen order.
    pub conversation_item_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentOrigin {
    Root,
    Spawned { parent_thread_id: String, spawn_edge_id: String, task_name: String, agent_role: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CodexTurn {
    pub codex_turn_id: String,
    pub thread_id: String,
    pub execution: ExecutionWindow,
    /// Never filled by the reference reducer; kept for format fidelity.
    pub input_item_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConversationItem {
    pub item_id: String,
    pub thread_id: String,
    pub codex_turn_id: Option<String>,
    pub first_seen_at_unix_ms: i64,
    pub role: ConversationRole,
    pub channel: Option<ConversationChannel>,
    pub kind: ConversationItemKind,
    /// The only field of the model that is omitted (not `null`) when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_message: Option<AgentMessageMetadata>,
    pub body: ConversationBody,
    pub call_id: Option<String>,
    pub produced_by: Vec<ProducerRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgentMessageMetadata {
    pub author: String,
    pub recipient: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConversationBody {
    pub parts: Vec<ConversationPart>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationRole {
    System,
    Developer,
    User,
    Assistant,
    Tool,
}

impl ConversationRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Developer => "developer",
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::Tool => "tool",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationChannel {
    Analysis,
    Commentary,
    Final,
    Summary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationItemKind {
    Message,
    Reasoning,
    FunctionCall,
    FunctionCallOutput,
    CustomToolCall,
    CustomToolCallOutput,
    CompactionMarker,
}

impl ConversationItemKind {
    pub fn is_tool_call(self) -> bool {
        matches!(self, Self::FunctionCall | Self::CustomToolCall)
    }

    pub fn is_tool_output(self) -> bool {
        matches!(self, Self::FunctionCallOutput | Self::CustomToolCallOutput)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConversationPart {
    Text { text: String },
    Summary { text: String },
    Encoded { label: String, value: String },
    Json { summary: String, raw_payload_id: String },
    Code { language: String, source: String },
    PayloadRef { label: String, raw_payload_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProducerRef {
    UserInput,
    Inference { inference_call_id: String },
    Tool { tool_call_id: String },
    CodeCell { code_cell_id: String },
    InteractionEdge { edge_id: String },
    Compaction { compaction_id: String },
    Harness,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InferenceCall {
    pub inference_call_id: String,
    pub thread_id: String,
    pub codex_turn_id: String,
    pub execution: ExecutionWindow,
    pub model: String,
    pub provider_name: String,
    /// Outer `None`: a field the profile's releases do not write (before 0.133).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "versioned")]
    pub response_id: Option<Option<String>>,
    pub upstream_request_id: Option<String>,
    pub request_item_ids: Vec<SharedItemId>,
    pub response_item_ids: Vec<String>,
    pub tool_call_ids_started_by_response: Vec<String>,
    pub usage: Option<TokenUsage>,
    pub raw_request_payload_id: String,
    pub raw_response_payload_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    /// `None`: a field the profile's releases do not write (before 0.147).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_input_tokens: Option<i64>,
    pub output_tokens: i64,
    pub reasoning_output_tokens: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Compaction {
    pub compaction_id: String,
    pub thread_id: String,
    pub codex_turn_id: String,
    pub installed_at_unix_ms: i64,
    pub marker_item_id: String,
    pub request_ids: Vec<String>,
    pub input_item_ids: Vec<String>,
    pub replacement_item_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CompactionRequest {
    pub compaction_request_id: String,
    pub compaction_id: String,
    pub thread_id: String,
    pub codex_turn_id: String,
    pub execution: ExecutionWindow,
    pub model: String,
    pub provider_name: String,
    pub raw_request_payload_id: String,
    pub raw_response_payload_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CodeCell {
    pub code_cell_id: String,
    pub model_visible_call_id: String,
    pub thread_id: String,
    pub codex_turn_id: String,
    pub source_item_id: String,
    pub output_item_ids: Vec<String>,
    pub runtime_cell_id: Option<String>,
    pub execution: ExecutionWindow,
    pub runtime_status: CodeCellRuntimeStatus,
    pub initial_response_at_unix_ms: Option<i64>,
    pub initial_response_seq: Option<u64>,
    pub yielded_at_unix_ms: Option<i64>,
    pub yielded_seq: Option<u64>,
    pub source_js: String,
    pub nested_tool_call_ids: Vec<String>,
    pub wait_tool_call_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ToolCall {
    pub tool_call_id: String,
    /// Outer `None`: a field the profile's releases do not write (before 0.133).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "versioned")]
    pub mcp_call_id: Option<Option<String>>,
    pub model_visible_call_id: Option<String>,
    pub code_mode_runtime_tool_id: Option<String>,
    pub thread_id: String,
    pub started_by_codex_turn_id: Option<String>,
    pub execution: ExecutionWindow,
    pub requester: ToolCallRequester,
    pub kind: ToolCallKind,
    pub model_visible_call_item_ids: Vec<String>,
    pub model_visible_output_item_ids: Vec<String>,
    pub terminal_operation_id: Option<String>,
    pub summary: ToolCallSummary,
    pub raw_invocation_payload_id: Option<String>,
    pub raw_result_payload_id: Option<String>,
    pub raw_runtime_payload_ids: Vec<String>,
}

/// Who asked for a tool call, in reduced form (code cells by `code_cell_id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolCallRequester {
    Model,
    CodeCell { code_cell_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TerminalSession {
    pub terminal_id: String,
    pub thread_id: String,
    pub created_by_operation_id: String,
    pub operation_ids: Vec<String>,
    pub execution: ExecutionWindow,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TerminalOperation {
    pub operation_id: String,
    pub terminal_id: Option<String>,
    pub tool_call_id: String,
    pub kind: TerminalOperationKind,
    pub execution: ExecutionWindow,
    pub request: TerminalRequest,
    pub result: Option<TerminalResult>,
    pub model_observations: Vec<TerminalModelObservation>,
    pub raw_payload_ids: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminalOperationKind {
    ExecCommand,
    WriteStdin,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TerminalRequest {
    ExecCommand {
        command: Vec<String>,
        display_command: String,
        cwd: String,
        yield_time_ms: Option<u64>,
        max_output_tokens: Option<u64>,
    },
    WriteStdin {
        stdin: String,
        yield_time_ms: Option<u64>,
        max_output_tokens: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TerminalResult {
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub formatted_output: Option<String>,
    pub original_token_count: Option<u64>,
    pub chunk_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TerminalModelObservation {
    pub call_item_ids: Vec<String>,
    pub output_item_ids: Vec<String>,
    pub source: ModelObservationSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelObservationSource {
    DirectToolCall,
    CodeCellOutput,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InteractionEdge {
    pub edge_id: String,
    pub kind: InteractionEdgeKind,
    pub source: TraceAnchor,
    pub target: TraceAnchor,
    pub started_at_unix_ms: i64,
    pub ended_at_unix_ms: Option<i64>,
    pub carried_item_ids: Vec<String>,
    pub carried_raw_payload_ids: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractionEdgeKind {
    SpawnAgent,
    AssignAgentTask,
    SendMessage,
    AgentResult,
    CloseAgent,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TraceAnchor {
    ConversationItem { item_id: String },
    ToolCall { tool_call_id: String },
    Thread { thread_id: String },
}
