//! Multi-agent interaction edges: spawn, assign, send, close and agent
//! results (reducer tools §6).
//!
//! A delivery is known on the sender's side (a tool call or a result event)
//! before the recipient's conversation shows the message. Until an item that
//! carries it is reconciled, the edge waits in `pending_edges`.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::items::{Delivery, ItemRef};
use super::{push_unique, EventContext, Reducer};
use crate::error::{Error, Result};
use crate::format::{RawPayloadRef, ToolCallKind};
use crate::model::{
    ConversationItem, ConversationItemKind, ConversationPart, ConversationRole, InteractionEdge, InteractionEdgeKind,
    TraceAnchor,
};

/// A delivery waiting for its recipient item (§6.4).
#[derive(Debug, Clone)]
pub(crate) struct PendingEdge {
    edge_id: String,
    kind: InteractionEdgeKind,
    source: TraceAnchor,
    target_thread_id: String,
    message_author: String,
    message_content: String,
    /// For spawns: the child thread to target if no item ever shows up.
    spawn_fallback_thread: Option<String>,
    started_at_unix_ms: i64,
    ended_at_unix_ms: Option<i64>,
    carried_raw_payload_ids: Vec<String>,
}

impl PendingEdge {
    fn same_delivery(&self, other: &PendingEdge) -> bool {
        self.kind == other.kind
            && self.source == other.source
            && self.target_thread_id == other.target_thread_id
            && self.message_author == other.message_author
            && self.message_content == other.message_content
            && self.spawn_fallback_thread == other.spawn_fallback_thread
    }

    fn into_edge(self, target: TraceAnchor, carried_item_ids: Vec<String>) -> InteractionEdge {
        InteractionEdge {
            edge_id: self.edge_id,
            kind: self.kind,
            source: self.source,
            target,
            started_at_unix_ms: self.started_at_unix_ms,
            ended_at_unix_ms: self.ended_at_unix_ms,
            carried_item_ids,
            carried_raw_payload_ids: self.carried_raw_payload_ids,
        }
    }
}

pub(crate) struct AgentResult<'e> {
    pub edge_id: &'e str,
    pub child_thread_id: &'e str,
    pub child_codex_turn_id: &'e str,
    pub parent_thread_id: &'e str,
    pub message: &'e str,
    pub carried_payload: Option<&'e RawPayloadRef>,
}

/// `ended` of merged observations: the later one, or whichever exists.
fn merge_ended(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

// ---------------------------------------------------------------------------
// Protocol payload shapes (§6.3)

/// A thread id in a protocol payload: any UUID spelling, kept canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ThreadId(String);

impl<'de> Deserialize<'de> for ThreadId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        canonical_uuid(&text)
            .map(ThreadId)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid thread id {text:?}: not a UUID")))
    }
}

/// Lowercase hyphenated form of a UUID written hyphenated, simple, braced
/// or as a `urn:uuid:` URN, in any case.
fn canonical_uuid(text: &str) -> Option<String> {
    let inner = if let Some(rest) = text.strip_prefix("urn:uuid:") {
        rest
    } else if let Some(rest) = text.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        rest
    } else {
        text
    };
    let hex: String = match inner.len() {
        32 => inner.to_string(),
        36 => {
            let bytes = inner.as_bytes();
            if [8, 13, 18, 23].iter().any(|&i| bytes[i] != b'-') {
                return None;
            }
            inner.chars().filter(|c| *c != '-').collect()
        }
        _ => return None,
    };
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    Some(format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]))
}

/// An agent path: `/morpheus`, or `/root` plus lowercase segments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AgentPath(String);

fn is_agent_path(path: &str) -> bool {
    if path == "/morpheus" {
        return true;
    }
    let Some(rest) = path.strip_prefix("/root") else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return false;
    };
    rest.split('/').all(|segment| {
        !segment.is_empty()
            && segment != "root"
            && segment.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

impl<'de> Deserialize<'de> for AgentPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if is_agent_path(&text) {
            Ok(AgentPath(text))
        } else {
            Err(serde::de::Error::custom(format!("invalid agent path {text:?}")))
        }
    }
}

/// A sub-agent status; only its validity matters to the reducer.
#[derive(Debug)]
struct AgentStatus;

impl<'de> Deserialize<'de> for AgentStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let valid = match &value {
            Value::String(s) => {
                matches!(s.as_str(), "pending_init" | "running" | "interrupted" | "shutdown" | "not_found")
            }
            Value::Object(map) if map.len() == 1 => match map.iter().next() {
                Some((key, inner)) if key == "completed" => inner.is_string() || inner.is_null(),
                Some((key, inner)) if key == "errored" => inner.is_string(),
                _ => false,
            },
            _ => false,
        };
        if valid {
            Ok(AgentStatus)
        } else {
            Err(serde::de::Error::custom(format!("invalid agent status {}", crate::json::to_compact_string(&value))))
        }
    }
}

/// A non-empty string.
#[derive(Debug)]
struct NonEmpty;

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        if String::deserialize(deserializer)?.is_empty() {
            Err(serde::de::Error::custom("expected a non-empty string"))
        } else {
            Ok(NonEmpty)
        }
    }
}

#[allow(dead_code)] // fields are parsed for validation, as the reference does
#[derive(Debug, Deserialize)]
struct InteractionBegin {
    call_id: String,
    started_at_ms: Option<i64>,
    sender_thread_id: ThreadId,
    receiver_thread_id: ThreadId,
    prompt: String,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
struct InteractionEnd {
    call_id: String,
    completed_at_ms: Option<i64>,
    sender_thread_id: ThreadId,
    receiver_thread_id: ThreadId,
    receiver_agent_nickname: Option<String>,
    receiver_agent_role: Option<String>,
    prompt: String,
    status: AgentStatus,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
struct SpawnEnd {
    call_id: String,
    completed_at_ms: Option<i64>,
    sender_thread_id: ThreadId,
    new_thread_id: Option<ThreadId>,
    new_agent_nickname: Option<String>,
    new_agent_role: Option<String>,
    prompt: String,
    model: String,
    reasoning_effort: NonEmpty,
    status: AgentStatus,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
struct CloseBegin {
    call_id: String,
    started_at_ms: Option<i64>,
    sender_thread_id: ThreadId,
    receiver_thread_id: ThreadId,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
struct CloseEnd {
    call_id: String,
    completed_at_ms: Option<i64>,
    sender_thread_id: ThreadId,
    receiver_thread_id: ThreadId,
    receiver_agent_nickname: Option<String>,
    receiver_agent_role: Option<String>,
    status: AgentStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ActivityKind {
    Started,
    Interacted,
    Interrupted,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
struct SubAgentActivity {
    event_id: String,
    occurred_at_ms: Option<i64>,
    agent_thread_id: ThreadId,
    agent_path: AgentPath,
    kind: ActivityKind,
}

/// Releases before 0.142.5 read agent-lifecycle payloads only with the
/// `call_id` that later releases no longer write.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
struct ActivityCallId {
    call_id: String,
}

/// The legacy text form of a delivered message.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
struct InterAgentCommunication {
    author: AgentPath,
    recipient: AgentPath,
    #[serde(default)]
    other_recipients: Vec<AgentPath>,
    content: String,
    encrypted_content: Option<String>,
    trigger_turn: bool,
    id: Option<String>,
    internal_chat_message_metadata_passthrough: Option<serde_json::Map<String, Value>>,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Value, payload: &RawPayloadRef) -> Result<T> {
    T::deserialize(body).map_err(|err| Error::reduce(err.to_string()).with_payload(&payload.raw_payload_id))
}

/// (author, content, recipient) of a recipient-side delivery item (§6.5).
fn delivery(item: &ConversationItem) -> Option<(String, String, String)> {
    if item.role != ConversationRole::Assistant || item.kind != ConversationItemKind::Message {
        return None;
    }
    let parts = item.body.parts.as_slice();
    match &item.agent_message {
        Some(meta) => {
            let content = match parts {
                [ConversationPart::Text { text }] => text,
                [ConversationPart::Encoded { label, value }]
                | [ConversationPart::Text { .. }, ConversationPart::Encoded { label, value }]
                    if label == "encrypted_content" =>
                {
                    value
                }
                _ => return None,
            };
            Some((meta.author.clone(), content.clone(), meta.recipient.clone()))
        }
        None => {
            let [ConversationPart::Text { text }] = parts else {
                return None;
            };
            let message: InterAgentCommunication = serde_json::from_str(text).ok()?;
            let content = message.encrypted_content.unwrap_or(message.content);
            Some((message.author.0, content, message.recipient.0))
        }
    }
}

impl Reducer {
    /// (author, content) when the item is a delivery addressed to its
    /// thread; worked out once per item (see `Delivery`).
    fn delivery_of_item(&mut self, item: ItemRef) -> Option<&(String, String)> {
        if let Delivery::Unknown = self.items.get(item).delivery {
            let stored = self.stored(item);
            let thread = self.trace.threads.get(&stored.thread_id)?;
            let found = delivery(stored)
                .filter(|(_, _, recipient)| *recipient == thread.agent_path)
                .map(|(author, content, _)| Delivery::Yes(Box::new((author, content))));
            self.items.get_mut(item).delivery = found.unwrap_or(Delivery::No);
        }
        match &self.items.get(item).delivery {
            Delivery::Yes(delivery) => Some(delivery),
            Delivery::No | Delivery::Unknown => None,
        }
    }

    /// Is the item a delivery item of its thread from `author` with `content`?
    fn is_delivery_of(&mut self, item: ItemRef, author: &str, content: &str) -> bool {
        self.delivery_of_item(item).is_some_and(|(a, c)| a == author && c == content)
    }

    /// *tool-payload-ids*: invocation, runtime payloads, result, unique.
    fn tool_payload_ids(&self, tool_call_id: &str) -> Vec<String> {
        let tool = &self.trace.tool_calls[tool_call_id];
        let mut ids = Vec::new();
        for id in tool
            .raw_invocation_payload_id
            .iter()
            .chain(&tool.raw_runtime_payload_ids)
            .chain(tool.raw_result_payload_id.iter())
        {
            push_unique(&mut ids, id.clone());
        }
        ids
    }

    /// The agent path of a thread, the author of what it sends.
    fn author_of(&self, thread_id: &str) -> Result<String> {
        self.trace
            .threads
            .get(thread_id)
            .map(|thread| thread.agent_path.clone())
            .ok_or_else(|| Error::reduce(format!("agent edge referenced unknown thread {thread_id}")))
    }

    /// A pending record sent by a tool call.
    #[allow(clippy::too_many_arguments)]
    fn tool_edge(
        &self,
        tool_call_id: &str,
        edge_id: String,
        kind: InteractionEdgeKind,
        target_thread_id: String,
        content: String,
        spawn_fallback_thread: Option<String>,
        ended_at_unix_ms: Option<i64>,
    ) -> Result<PendingEdge> {
        let tool = &self.trace.tool_calls[tool_call_id];
        Ok(PendingEdge {
            edge_id,
            kind,
            source: TraceAnchor::ToolCall { tool_call_id: tool_call_id.to_string() },
            target_thread_id,
            message_author: self.author_of(&tool.thread_id)?,
            message_content: content,
            spawn_fallback_thread,
            started_at_unix_ms: tool.execution.started_at_unix_ms,
            ended_at_unix_ms,
            carried_raw_payload_ids: self.tool_payload_ids(tool_call_id),
        })
    }

    /// The `message` argument of an agent tool's invocation (activity edges).
    fn invocation_message(&mut self, tool_call_id: &str) -> Result<String> {
        let tool = &self.trace.tool_calls[tool_call_id];
        let invocation_id = tool.raw_invocation_payload_id.as_ref().ok_or_else(|| {
            Error::reduce(format!("agent activity tool call {tool_call_id} missing invocation payload"))
        })?;
        let payload = self.trace.raw_payloads.get(invocation_id).cloned().ok_or_else(|| {
            Error::reduce(format!(
                "agent activity tool call {tool_call_id} referenced missing invocation payload {invocation_id}"
            ))
        })?;
        let payload = &payload;
        let invocation = self.read_payload(payload)?;
        let arguments = Self::invocation_arguments(&invocation).ok_or_else(|| {
            Error::reduce(format!("agent activity tool call {tool_call_id} missing function arguments"))
        })?;
        let arguments: Value = serde_json::from_str(arguments)
            .map_err(|_| Error::reduce(format!("parse agent activity tool call {tool_call_id} arguments")))?;
        arguments
            .as_object()
            .and_then(|object| object.get("message"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| Error::reduce(format!("parse agent activity tool call {tool_call_id} arguments")))
    }

    /// Start hook (§6.2): message and close tools announce their target.
    pub(super) fn agent_runtime_started(
        &mut self,
        tool_call_id: &str,
        kind: &ToolCallKind,
        payload: &RawPayloadRef,
    ) -> Result<()> {
        match kind {
            ToolCallKind::AssignAgentTask | ToolCallKind::SendMessage => {
                let begin: InteractionBegin = parse(&self.read_payload(payload)?, payload)?;
                let edge = self.tool_edge(
                    tool_call_id,
                    format!("edge:tool:{tool_call_id}"),
                    message_edge_kind(kind),
                    begin.receiver_thread_id.0,
                    begin.prompt,
                    None,
                    None,
                )?;
                self.queue_or_resolve(edge)
            }
            ToolCallKind::CloseAgent => {
                let begin: CloseBegin = parse(&self.read_payload(payload)?, payload)?;
                self.close_edge(tool_call_id, &begin.receiver_thread_id.0, None)
            }
            _ => Ok(()),
        }
    }

    /// End hook (§6.2), with the runtime-end payload already read.
    pub(super) fn agent_runtime_ended(
        &mut self,
        cx: EventContext<'_>,
        tool_call_id: &str,
        kind: &ToolCallKind,
        payload: &RawPayloadRef,
        body: &Value,
    ) -> Result<()> {
        let ended = Some(cx.wall_time_unix_ms);
        if body.as_object().is_some_and(|object| object.contains_key("agent_thread_id")) {
            if self.rules.agent_activity_needs_call_id {
                parse::<ActivityCallId>(body, payload)?;
            }
            let activity: SubAgentActivity = parse(body, payload)?;
            let child = activity.agent_thread_id.0;
            return match (kind, activity.kind) {
                (ToolCallKind::SpawnAgent, ActivityKind::Started) => {
                    let thread = self.trace.tool_calls[tool_call_id].thread_id.clone();
                    let content = self.invocation_message(tool_call_id)?;
                    let edge = self.tool_edge(
                        tool_call_id,
                        format!("edge:spawn:{thread}:{child}"),
                        InteractionEdgeKind::SpawnAgent,
                        child.clone(),
                        content,
                        Some(child),
                        ended,
                    )?;
                    self.queue_or_resolve(edge)
                }
                (ToolCallKind::AssignAgentTask | ToolCallKind::SendMessage, ActivityKind::Interacted) => {
                    let content = self.invocation_message(tool_call_id)?;
                    let edge = self.tool_edge(
                        tool_call_id,
                        format!("edge:tool:{tool_call_id}"),
                        message_edge_kind(kind),
                        child,
                        content,
                        None,
                        ended,
                    )?;
                    self.queue_or_resolve(edge)
                }
                (ToolCallKind::CloseAgent, ActivityKind::Interrupted) => self.close_edge(tool_call_id, &child, ended),
                (kind, activity) => Err(Error::reduce(format!(
                    "sub-agent activity {activity:?} does not match tool call kind {kind:?}"
                ))),
            };
        }
        match kind {
            ToolCallKind::SpawnAgent => {
                let end: SpawnEnd = parse(body, payload)?;
                let Some(child) = end.new_thread_id else {
                    return Ok(());
                };
                let edge = self.tool_edge(
                    tool_call_id,
                    format!("edge:spawn:{}:{}", end.sender_thread_id.0, child.0),
                    InteractionEdgeKind::SpawnAgent,
                    child.0.clone(),
                    end.prompt,
                    Some(child.0),
                    ended,
                )?;
                self.queue_or_resolve(edge)
            }
            ToolCallKind::AssignAgentTask | ToolCallKind::SendMessage => {
                let end: InteractionEnd = parse(body, payload)?;
                let edge = self.tool_edge(
                    tool_call_id,
                    format!("edge:tool:{tool_call_id}"),
                    message_edge_kind(kind),
                    end.receiver_thread_id.0,
                    end.prompt,
                    None,
                    ended,
                )?;
                self.queue_or_resolve(edge)
            }
            ToolCallKind::CloseAgent => {
                let end: CloseEnd = parse(body, payload)?;
                self.close_edge(tool_call_id, &end.receiver_thread_id.0, ended)
            }
            _ => Ok(()),
        }
    }

    /// *close-edge* (§6.8): never pending; no edge to an unknown thread.
    fn close_edge(&mut self, tool_call_id: &str, target_thread: &str, ended: Option<i64>) -> Result<()> {
        if !self.trace.threads.contains_key(target_thread) {
            return Ok(());
        }
        let tool = &self.trace.tool_calls[tool_call_id];
        let edge = InteractionEdge {
            edge_id: format!("edge:tool:{tool_call_id}"),
            kind: InteractionEdgeKind::CloseAgent,
            source: TraceAnchor::ToolCall { tool_call_id: tool_call_id.to_string() },
            target: TraceAnchor::Thread { thread_id: target_thread.to_string() },
            started_at_unix_ms: tool.execution.started_at_unix_ms,
            ended_at_unix_ms: ended,
            carried_item_ids: Vec::new(),
            carried_raw_payload_ids: self.tool_payload_ids(tool_call_id),
        };
        self.upsert_edge(edge)
    }

    /// §6.9: a child's result on its way to the parent.
    pub(super) fn agent_result_observed(&mut self, cx: EventContext<'_>, result: AgentResult<'_>) -> Result<()> {
        let author = self.author_of(result.child_thread_id)?;
        let child = &self.trace.threads[result.child_thread_id];
        // The child's latest plain assistant message of that turn; ties go
        // to the greatest id.
        let source_item = child
            .conversation_item_ids
            .iter()
            .map(|id| self.stored(ItemRef::of(id)))
            .filter(|item| {
                item.thread_id == result.child_thread_id
                    && item.codex_turn_id.as_deref() == Some(result.child_codex_turn_id)
                    && item.role == ConversationRole::Assistant
                    && item.kind == ConversationItemKind::Message
                    && item.agent_message.is_none()
            })
            .max_by(|a, b| (a.first_seen_at_unix_ms, &a.item_id).cmp(&(b.first_seen_at_unix_ms, &b.item_id)));
        let source = match source_item {
            Some(item) => TraceAnchor::ConversationItem { item_id: item.item_id.clone() },
            None => TraceAnchor::Thread { thread_id: result.child_thread_id.to_string() },
        };
        let edge = PendingEdge {
            edge_id: result.edge_id.to_string(),
            kind: InteractionEdgeKind::AgentResult,
            source,
            target_thread_id: result.parent_thread_id.to_string(),
            message_author: author,
            message_content: result.message.to_string(),
            spawn_fallback_thread: None,
            started_at_unix_ms: cx.wall_time_unix_ms,
            ended_at_unix_ms: Some(cx.wall_time_unix_ms),
            carried_raw_payload_ids: result.carried_payload.map(|p| p.raw_payload_id.clone()).into_iter().collect(),
        };
        self.queue_or_resolve(edge)
    }

    /// *queue-or-resolve* (§6.4).
    fn queue_or_resolve(&mut self, pending: PendingEdge) -> Result<()> {
        if let Some(thread) = self.trace.threads.get(&pending.target_thread_id) {
            let items: Vec<ItemRef> = thread.conversation_item_ids.iter().map(|id| ItemRef::of(id)).collect();
            for item in items {
                if !self.items.get(item).edge_target
                    && self.is_delivery_of(item, &pending.message_author, &pending.message_content)
                {
                    let item_id = self.items.id(item).clone();
                    return self.upsert_for_item(pending, item_id);
                }
            }
        }
        if let Some(existing) = self.pending_edges.iter_mut().find(|p| p.edge_id == pending.edge_id) {
            if !existing.same_delivery(&pending) {
                return Err(Error::reduce(format!(
                    "pending interaction edge {} was observed with conflicting delivery data",
                    pending.edge_id
                )));
            }
            existing.started_at_unix_ms = existing.started_at_unix_ms.min(pending.started_at_unix_ms);
            existing.ended_at_unix_ms = merge_ended(existing.ended_at_unix_ms, pending.ended_at_unix_ms);
            for id in pending.carried_raw_payload_ids {
                push_unique(&mut existing.carried_raw_payload_ids, id);
            }
            return Ok(());
        }
        self.pending_edges.push(pending);
        Ok(())
    }

    fn upsert_for_item(&mut self, pending: PendingEdge, item_id: String) -> Result<()> {
        let target = TraceAnchor::ConversationItem { item_id: item_id.clone() };
        self.upsert_edge(pending.into_edge(target, vec![item_id]))
    }

    /// *upsert-edge*: a second observation must agree on the endpoints.
    fn upsert_edge(&mut self, edge: InteractionEdge) -> Result<()> {
        if let Some(target) = upsert_edge(&mut self.trace.interaction_edges, edge)? {
            self.items.get_mut(target).edge_target = true;
        }
        Ok(())
    }

    /// Hook (c) of §3.6: a reconciled delivery item resolves the first
    /// pending record waiting for it.
    pub(super) fn resolve_pending_edge_for_item(&mut self, item: ItemRef) -> Result<()> {
        if self.pending_edges.is_empty() || self.items.get(item).edge_target {
            return Ok(());
        }
        let Some((author, content)) = self.delivery_of_item(item).cloned() else {
            return Ok(());
        };
        let thread = &self.stored(item).thread_id;
        let Some(index) = self
            .pending_edges
            .iter()
            .position(|p| p.target_thread_id == *thread && p.message_author == author && p.message_content == content)
        else {
            return Ok(());
        };
        let pending = self.pending_edges.remove(index);
        let item_id = self.items.id(item).clone();
        self.upsert_for_item(pending, item_id)
    }

    /// §6.7: the tool's result payload travels with its edge.
    pub(super) fn attach_tool_result_to_edge(&mut self, tool_call_id: &str, result_payload_id: &str) {
        let source = TraceAnchor::ToolCall { tool_call_id: tool_call_id.to_string() };
        if let Some(edge) = self.trace.interaction_edges.values_mut().find(|edge| edge.source == source) {
            push_unique(&mut edge.carried_raw_payload_ids, result_payload_id.to_string());
        } else if let Some(pending) = self.pending_edges.iter_mut().find(|pending| pending.source == source) {
            push_unique(&mut pending.carried_raw_payload_ids, result_payload_id.to_string());
        }
    }

    /// §6.10: after the last event, spawns fall back to the child thread.
    pub(super) fn resolve_spawn_edge_fallbacks(&mut self) -> Result<()> {
        for edge in self.spawn_edge_fallbacks()? {
            self.upsert_edge(edge)?;
        }
        self.pending_edges.clear();
        Ok(())
    }

    /// The edges of spawns whose delivery never showed up, to the child
    /// thread: what the end of the replay adds (a live snapshot adds them
    /// to its copy).
    pub(super) fn spawn_edge_fallbacks(&self) -> Result<Vec<InteractionEdge>> {
        let mut edges = Vec::new();
        for pending in &self.pending_edges {
            let Some(fallback) = pending.spawn_fallback_thread.clone() else {
                continue;
            };
            if pending.kind != InteractionEdgeKind::SpawnAgent {
                return Err(Error::reduce(format!(
                    "non-spawn interaction edge {} carried a spawn fallback target",
                    pending.edge_id
                )));
            }
            if !self.trace.threads.contains_key(&fallback) {
                continue;
            }
            edges.push(pending.clone().into_edge(TraceAnchor::Thread { thread_id: fallback }, Vec::new()));
        }
        Ok(edges)
    }
}

/// Adds an edge, or merges it into the one with its id (the same endpoints,
/// the widest time window, every carried id once). Returns the item a new
/// edge targets.
pub(super) fn upsert_edge(
    edges: &mut crate::model::Map<InteractionEdge>,
    edge: InteractionEdge,
) -> Result<Option<ItemRef>> {
    match edges.get_mut(&edge.edge_id) {
        Some(existing) => {
            if existing.kind != edge.kind || existing.source != edge.source || existing.target != edge.target {
                return Err(Error::reduce(format!(
                    "interaction edge {} was observed with conflicting endpoints",
                    edge.edge_id
                )));
            }
            existing.started_at_unix_ms = existing.started_at_unix_ms.min(edge.started_at_unix_ms);
            existing.ended_at_unix_ms = merge_ended(existing.ended_at_unix_ms, edge.ended_at_unix_ms);
            for id in edge.carried_item_ids {
                push_unique(&mut existing.carried_item_ids, id);
            }
            for id in edge.carried_raw_payload_ids {
                push_unique(&mut existing.carried_raw_payload_ids, id);
            }
            Ok(None)
        }
        None => {
            let target = match &edge.target {
                TraceAnchor::ConversationItem { item_id } => Some(ItemRef::of(item_id)),
                _ => None,
            };
            edges.insert(edge.edge_id.clone(), edge);
            Ok(target)
        }
    }
}

fn message_edge_kind(kind: &ToolCallKind) -> InteractionEdgeKind {
    match kind {
        ToolCallKind::AssignAgentTask => InteractionEdgeKind::AssignAgentTask,
        _ => InteractionEdgeKind::SendMessage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_canonicalized() {
        let canonical = "0b6e1f0c-6f4e-4a53-8b0b-2a0d5a1c9e11";
        for spelling in [
            canonical,
            "0B6E1F0C-6F4E-4A53-8B0B-2A0D5A1C9E11",
            "0b6e1f0c6f4e4a538b0b2a0d5a1c9e11",
            "{0b6e1f0c-6f4e-4a53-8b0b-2a0d5a1c9e11}",
            "urn:uuid:0b6e1f0c-6f4e-4a53-8b0b-2a0d5a1c9e11",
        ] {
            assert_eq!(canonical_uuid(spelling).as_deref(), Some(canonical), "{spelling}");
        }
        for bad in ["thread-main", "", "0b6e1f0c-6f4e-4a53-8b0b-2a0d5a1c9e1g", "0b6e1f0c06f4e04a5308b0b02a0d5a1c9e11"] {
            assert_eq!(canonical_uuid(bad), None, "{bad}");
        }
    }

    #[test]
    fn agent_paths_follow_the_protocol_grammar() {
        for good in ["/root", "/morpheus", "/root/file_counter", "/root/a/b_2"] {
            assert!(is_agent_path(good), "{good}");
        }
        for bad in
            ["", "/", "/root/", "/root//a", "/root/Upper", "/root/root", "/root/..", "/rooted", "root", "/morpheus/a"]
        {
            assert!(!is_agent_path(bad), "{bad}");
        }
    }

    #[test]
    fn agent_statuses() {
        for good in [r#""running""#, r#"{"completed":null}"#, r#"{"completed":"ok"}"#, r#"{"errored":"x"}"#] {
            assert!(serde_json::from_str::<AgentStatus>(good).is_ok(), "{good}");
        }
        for bad in [r#""done""#, r#"{"errored":null}"#, r#"{"completed":1}"#, "3"] {
            assert!(serde_json::from_str::<AgentStatus>(bad).is_err(), "{bad}");
        }
    }
}
