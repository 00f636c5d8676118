//! Lenient replay: skip what cannot be reduced, keep the rest.
//!
//! The contract is exact: the lenient replay of a bundle equals the strict
//! replay of the same bundle with exactly the reported events removed. The
//! simplest way to keep it is to obtain it by construction: a failing event
//! is added to the set of skipped lines and the replay starts over without
//! it, as if it had never been written, so nothing it half-applied remains.
//! A line that cannot be read at all has no effect to undo and is only
//! reported. Clean bundles replay once, at the cost of a strict replay.
//!
//! An event that fails after an earlier one was skipped usually fails
//! because of it (the end of a call whose start was skipped). Its
//! diagnostic names that event: the latest skipped one about an object
//! (thread, turn, inference call or its response, tool call, code cell,
//! compaction) that the failing event or its error message refers to.

use std::collections::BTreeMap;

use crate::error::Error;
use crate::format::{RawTraceEvent, RawTraceEventPayload as E};

/// One event that a lenient or partial replay left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The error that made the event unusable, located by bundle, file,
    /// line and (when the line could be read) seq and payload.
    pub error: Error,
    /// The event's type, when its line could be read.
    pub event_type: Option<&'static str>,
    /// The line of the skipped event this one depended on.
    pub depends_on_line: Option<u64>,
}

impl Diagnostic {
    pub fn line(&self) -> Option<u64> {
        self.error.location.line
    }
}

/// The events skipped so far, by line, with what each was about.
#[derive(Debug, Default)]
pub(crate) struct Skipped {
    pub by_line: BTreeMap<u64, (Diagnostic, Vec<String>)>,
}

impl Skipped {
    pub fn contains(&self, line: u64) -> bool {
        self.by_line.contains_key(&line)
    }

    /// Records the event at `line`, which failed with `error`.
    pub fn add(&mut self, line: u64, error: Error, event: &RawTraceEvent) {
        let mut refs = referenced_ids(&event.payload);
        refs.extend(event.thread_id.as_deref());
        refs.extend(event.codex_turn_id.as_deref());
        // Ids an event reaches only through its payloads (a request's
        // previous_response_id) are named by its error.
        let named = |id: &str| id.len() >= MIN_NAMED_ID_LEN && error.message.contains(id);
        let depends_on_line = self
            .by_line
            .range(..line)
            .rev()
            .find(|(_, (_, subjects))| subjects.iter().any(|id| refs.contains(&id.as_str()) || named(id)))
            .map(|(&line, _)| line);
        let diagnostic = Diagnostic { error, event_type: Some(event.payload.type_name()), depends_on_line };
        let subjects = subject_ids(&event.payload).into_iter().map(str::to_string).collect();
        self.by_line.insert(line, (diagnostic, subjects));
    }

    pub fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.by_line.values().map(|(diagnostic, _)| diagnostic)
    }
}

/// Ids shorter than this are not looked for in error messages (too likely
/// to appear by chance); real ids are UUIDs or longer.
const MIN_NAMED_ID_LEN: usize = 8;

/// The objects an event is about: what a later event that refers to them
/// cannot do without.
fn subject_ids(event: &E) -> Vec<&str> {
    match event {
        E::RolloutStarted { root_thread_id, .. } => vec![root_thread_id],
        E::ThreadStarted { thread_id, .. } | E::ThreadEnded { thread_id, .. } => vec![thread_id],
        E::CodexTurnStarted { codex_turn_id, .. } | E::CodexTurnEnded { codex_turn_id, .. } => vec![codex_turn_id],
        E::InferenceCompleted { inference_call_id, response_id, .. } => {
            let mut ids = vec![inference_call_id.as_str()];
            ids.extend(response_id.as_deref());
            ids
        }
        E::InferenceStarted { inference_call_id, .. }
        | E::InferenceFailed { inference_call_id, .. }
        | E::InferenceCancelled { inference_call_id, .. } => vec![inference_call_id],
        E::ToolCallStarted { tool_call_id, model_visible_call_id, .. } => {
            let mut ids = vec![tool_call_id.as_str()];
            ids.extend(model_visible_call_id.as_deref());
            ids
        }
        E::McpToolCallCorrelationAssigned { tool_call_id, .. }
        | E::ToolCallRuntimeStarted { tool_call_id, .. }
        | E::ToolCallRuntimeEnded { tool_call_id, .. }
        | E::ToolCallEnded { tool_call_id, .. } => vec![tool_call_id],
        E::CodeCellStarted { runtime_cell_id, model_visible_call_id, .. } => {
            vec![runtime_cell_id, model_visible_call_id]
        }
        E::CodeCellInitialResponse { runtime_cell_id, .. } | E::CodeCellEnded { runtime_cell_id, .. } => {
            vec![runtime_cell_id]
        }
        E::CompactionRequestStarted { compaction_id, compaction_request_id, .. }
        | E::CompactionRequestCompleted { compaction_id, compaction_request_id, .. }
        | E::CompactionRequestFailed { compaction_id, compaction_request_id, .. } => {
            vec![compaction_id, compaction_request_id]
        }
        E::CompactionInstalled { compaction_id, .. } => vec![compaction_id],
        E::AgentResultObserved { edge_id, .. } => vec![edge_id],
        E::RolloutEnded { .. } | E::ProtocolEventObserved { .. } | E::Other { .. } => Vec::new(),
    }
}

/// Every object id an event names: its subjects and what they belong to.
fn referenced_ids(event: &E) -> Vec<&str> {
    let mut ids = subject_ids(event);
    match event {
        E::CodexTurnStarted { thread_id, .. } => ids.push(thread_id),
        E::InferenceStarted { thread_id, codex_turn_id, .. }
        | E::CompactionRequestStarted { thread_id, codex_turn_id, .. } => {
            ids.extend([thread_id.as_str(), codex_turn_id.as_str()])
        }
        E::AgentResultObserved { child_thread_id, child_codex_turn_id, parent_thread_id, .. } => {
            ids.extend([child_thread_id.as_str(), child_codex_turn_id.as_str(), parent_thread_id.as_str()])
        }
        _ => {}
    }
    ids
}
