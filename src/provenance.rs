//! Provenance: lookups over the reduced graph that answer where something
//! came from. Which inference issued a tool call, where a conversation item
//! came from, which interaction edges touch a thread.
//!
//! Pure reads of a [`RolloutTrace`]; nothing here changes the graph. Each
//! lookup scans the maps it needs, which is fast enough for one question at
//! a time; tables over a whole trace call them once per row.

use serde::Serialize;

use crate::model::{
    CodeCell, ConversationItem, InferenceCall, InteractionEdge, ProducerRef, RolloutTrace, ToolCall, ToolCallRequester,
    TraceAnchor,
};

/// The inference whose response issued `call`.
///
/// A call the model made directly: the inference that lists it in
/// `tool_call_ids_started_by_response`, else (when the tool started before
/// its inference's response was reduced) the inference whose response
/// holds one of the call's `model_visible_call_item_ids`. A call a code
/// cell made: the inference that wrote the cell. The earliest one wins if
/// several qualify.
pub fn tool_call_inference<'a>(trace: &'a RolloutTrace, call: &ToolCall) -> Option<&'a InferenceCall> {
    if let ToolCallRequester::CodeCell { code_cell_id } = &call.requester {
        return trace.code_cells.get(code_cell_id).and_then(|cell| code_cell_inference(trace, cell));
    }
    earliest_inference(trace, |inference| inference.tool_call_ids_started_by_response.contains(&call.tool_call_id))
        .or_else(|| {
            earliest_inference(trace, |inference| {
                call.model_visible_call_item_ids.iter().any(|item| inference.response_item_ids.contains(item))
            })
        })
}

/// The inference whose response holds the cell's source (its
/// `custom_tool_call` item).
pub fn code_cell_inference<'a>(trace: &'a RolloutTrace, cell: &CodeCell) -> Option<&'a InferenceCall> {
    earliest_inference(trace, |inference| inference.response_item_ids.contains(&cell.source_item_id))
}

fn earliest_inference(trace: &RolloutTrace, keep: impl Fn(&InferenceCall) -> bool) -> Option<&InferenceCall> {
    trace
        .inference_calls
        .values()
        .filter(|inference| keep(inference))
        .min_by_key(|inference| inference.execution.started_seq)
}

/// Where a conversation item came from, by the first rule that applies:
///
/// 1. `compaction`: a compaction created it (its marker or a replacement
///    item);
/// 2. `agent_message`: an interaction edge delivered it (a spawn or task
///    message in a child, a result notification in a parent);
/// 3. `code_cell`: the output a code cell gave the model (a code-mode
///    runtime value);
/// 4. `terminal_operation`: the output of a tool call that ran a terminal
///    operation;
/// 5. `tool`: the output of any other tool call;
/// 6. `inference`: the model wrote it (a response item);
/// 7. `transcript`: none of those. It entered the conversation as request
///    input: the user's and the harness's messages in the model-visible
///    transcript.
///
/// Every link found is filled in, not only the one that decides the kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ItemOrigin {
    #[serde(rename = "type")]
    pub kind: OriginKind,
    pub inference_call_id: Option<String>,
    pub tool_call_id: Option<String>,
    pub code_cell_id: Option<String>,
    pub terminal_operation_id: Option<String>,
    pub edge_id: Option<String>,
    pub compaction_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginKind {
    Compaction,
    AgentMessage,
    CodeCell,
    TerminalOperation,
    Tool,
    Inference,
    Transcript,
}

impl OriginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compaction => "compaction",
            Self::AgentMessage => "agent_message",
            Self::CodeCell => "code_cell",
            Self::TerminalOperation => "terminal_operation",
            Self::Tool => "tool",
            Self::Inference => "inference",
            Self::Transcript => "transcript",
        }
    }
}

pub fn item_origin(trace: &RolloutTrace, item: &ConversationItem) -> ItemOrigin {
    let producer = |pick: fn(&ProducerRef) -> Option<&String>| item.produced_by.iter().find_map(pick).cloned();
    let inference_call_id = producer(|p| match p {
        ProducerRef::Inference { inference_call_id } => Some(inference_call_id),
        _ => None,
    });
    let tool_call_id = producer(|p| match p {
        ProducerRef::Tool { tool_call_id } => Some(tool_call_id),
        _ => None,
    });
    let code_cell_id = producer(|p| match p {
        ProducerRef::CodeCell { code_cell_id } => Some(code_cell_id),
        _ => None,
    });
    let compaction_id = producer(|p| match p {
        ProducerRef::Compaction { compaction_id } => Some(compaction_id),
        _ => None,
    });
    // A code cell's output reaches the model through the cell, so its
    // terminal operation is found through the operation's observations.
    let terminal_operation_id = tool_call_id
        .as_ref()
        .and_then(|id| trace.tool_calls.get(id))
        .and_then(|call| call.terminal_operation_id.clone())
        .or_else(|| {
            trace
                .terminal_operations
                .values()
                .filter(|operation| {
                    operation.model_observations.iter().any(|seen| seen.output_item_ids.contains(&item.item_id))
                })
                .min_by_key(|operation| operation.execution.started_seq)
                .map(|operation| operation.operation_id.clone())
        });
    let edge_id = delivering_edge(trace, &item.item_id).map(|edge| edge.edge_id.clone());

    // Compactions create items and are never attached later (spec 02 §7.7),
    // so a compaction producer comes first.
    let created_by_compaction = matches!(item.produced_by.first(), Some(ProducerRef::Compaction { .. }));
    let kind = if created_by_compaction {
        OriginKind::Compaction
    } else if edge_id.is_some() {
        OriginKind::AgentMessage
    } else if code_cell_id.is_some() {
        OriginKind::CodeCell
    } else if tool_call_id.is_some() && terminal_operation_id.is_some() {
        OriginKind::TerminalOperation
    } else if tool_call_id.is_some() {
        OriginKind::Tool
    } else if inference_call_id.is_some() {
        OriginKind::Inference
    } else {
        OriginKind::Transcript
    };
    ItemOrigin { kind, inference_call_id, tool_call_id, code_cell_id, terminal_operation_id, edge_id, compaction_id }
}

/// The earliest interaction edge that targets or carries the item.
fn delivering_edge<'a>(trace: &'a RolloutTrace, item_id: &str) -> Option<&'a InteractionEdge> {
    trace
        .interaction_edges
        .values()
        .filter(|edge| {
            matches!(&edge.target, TraceAnchor::ConversationItem { item_id: target } if target == item_id)
                || edge.carried_item_ids.iter().any(|carried| carried == item_id)
        })
        .min_by(|a, b| edge_order(a).cmp(&edge_order(b)))
}

fn edge_order(edge: &InteractionEdge) -> (i64, &str) {
    (edge.started_at_unix_ms, edge.edge_id.as_str())
}

/// The thread an anchor belongs to; `None` when the anchored object is not
/// in the trace.
pub fn anchor_thread_id<'a>(trace: &'a RolloutTrace, anchor: &'a TraceAnchor) -> Option<&'a str> {
    match anchor {
        TraceAnchor::ConversationItem { item_id } => {
            trace.conversation_items.get(item_id).map(|item| item.thread_id.as_str())
        }
        TraceAnchor::ToolCall { tool_call_id } => {
            trace.tool_calls.get(tool_call_id).map(|call| call.thread_id.as_str())
        }
        TraceAnchor::Thread { thread_id } => trace.threads.contains_key(thread_id).then_some(thread_id.as_str()),
    }
}

/// Every interaction edge with an end in the thread (spawned it, messaged
/// it, its results, closed it, and the same from it to its own children),
/// by start time.
pub fn thread_edges<'a>(trace: &'a RolloutTrace, thread_id: &str) -> Vec<&'a InteractionEdge> {
    let mut edges: Vec<&InteractionEdge> = trace
        .interaction_edges
        .values()
        .filter(|edge| {
            anchor_thread_id(trace, &edge.source) == Some(thread_id)
                || anchor_thread_id(trace, &edge.target) == Some(thread_id)
        })
        .collect();
    edges.sort_by(|a, b| edge_order(a).cmp(&edge_order(b)));
    edges
}

/// The multi-agent tool call behind an edge: its source, when that is a
/// tool call (spawn, task, message, close). Result edges run from the
/// child's last message and have none.
pub fn edge_tool_call<'a>(trace: &'a RolloutTrace, edge: &InteractionEdge) -> Option<&'a ToolCall> {
    match &edge.source {
        TraceAnchor::ToolCall { tool_call_id } => trace.tool_calls.get(tool_call_id),
        _ => None,
    }
}
