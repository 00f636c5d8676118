//! Compaction requests and installed checkpoints (reducer core §9).

use serde_json::Value;

use super::conversation::{normalize_items, Sighting};
use super::{EventContext, Reducer};
use crate::error::{Error, Result};
use crate::format::{ExecutionStatus, RawPayloadRef};
use crate::model::{
    Compaction, CompactionRequest, ConversationItemKind, ConversationRole, ExecutionWindow, ProducerRef,
};

pub(crate) struct CompactionRequestStart<'e> {
    pub compaction_id: &'e str,
    pub compaction_request_id: &'e str,
    pub thread_id: &'e str,
    pub codex_turn_id: &'e str,
    pub model: &'e str,
    pub provider_name: &'e str,
    pub request_payload: &'e RawPayloadRef,
}

impl Reducer {
    pub(super) fn compaction_request_started(
        &mut self,
        cx: EventContext<'_>,
        start: CompactionRequestStart<'_>,
    ) -> Result<()> {
        let rid = start.compaction_request_id;
        if self.trace.compaction_requests.contains_key(rid) {
            return Err(Error::reduce(format!("duplicate compaction request start for {rid}")));
        }
        self.thread_mut(start.thread_id)?;
        let turn = self.trace.codex_turns.get(start.codex_turn_id).ok_or_else(|| {
            Error::reduce(format!("compaction request {rid} referenced unknown codex turn {}", start.codex_turn_id))
        })?;
        if turn.thread_id != start.thread_id {
            return Err(Error::reduce(format!(
                "compaction request {rid} used thread {}, but codex turn {} belongs to {}",
                start.thread_id, start.codex_turn_id, turn.thread_id
            )));
        }
        self.trace.compaction_requests.insert(
            rid.to_string(),
            CompactionRequest {
                compaction_request_id: rid.to_string(),
                compaction_id: start.compaction_id.to_string(),
                thread_id: start.thread_id.to_string(),
                codex_turn_id: start.codex_turn_id.to_string(),
                execution: ExecutionWindow::running(cx.wall_time_unix_ms, cx.seq),
                model: start.model.to_string(),
                provider_name: start.provider_name.to_string(),
                raw_request_payload_id: start.request_payload.raw_payload_id.clone(),
                raw_response_payload_id: None,
            },
        );
        Ok(())
    }

    /// `compaction_request_completed` (with its response) or
    /// `compaction_request_failed` (without).
    pub(super) fn compaction_request_ended(
        &mut self,
        cx: EventContext<'_>,
        compaction_id: &str,
        rid: &str,
        response_payload: Option<&RawPayloadRef>,
    ) -> Result<()> {
        let request =
            self.trace.compaction_requests.get_mut(rid).ok_or_else(|| {
                Error::reduce(format!("compaction request completion referenced unknown request {rid}"))
            })?;
        if request.compaction_id != compaction_id {
            return Err(Error::reduce(format!(
                "compaction request {rid} completion used compaction {compaction_id}, but start used {}",
                request.compaction_id
            )));
        }
        let status = if response_payload.is_some() { ExecutionStatus::Completed } else { ExecutionStatus::Failed };
        request.execution.end(cx.wall_time_unix_ms, cx.seq, status);
        request.raw_response_payload_id = response_payload.map(|p| p.raw_payload_id.clone());
        Ok(())
    }

    pub(super) fn compaction_installed(
        &mut self,
        cx: EventContext<'_>,
        compaction_id: &str,
        checkpoint: &RawPayloadRef,
    ) -> Result<()> {
        let thread = cx.thread_id.ok_or_else(|| {
            Error::reduce(format!("compaction installed event {compaction_id} did not include a thread id"))
        })?;
        let turn = cx.codex_turn_id.ok_or_else(|| {
            Error::reduce(format!("compaction installed event {compaction_id} did not include a codex turn id"))
        })?;
        if self.trace.compactions.contains_key(compaction_id) {
            return Err(Error::reduce(format!("duplicate compaction install for {compaction_id}")));
        }
        self.thread_mut(thread)?;
        let turn_thread = &self
            .trace
            .codex_turns
            .get(turn)
            .ok_or_else(|| {
                Error::reduce(format!("compaction install {compaction_id} referenced unknown codex turn {turn}"))
            })?
            .thread_id;
        if turn_thread != thread {
            return Err(Error::reduce(format!(
                "compaction install {compaction_id} used thread {thread}, but codex turn {turn} belongs to {turn_thread}"
            )));
        }

        let pid = checkpoint.raw_payload_id.as_str();
        let body = self.read_payload(checkpoint)?;
        let history = |key: &str| {
            body.get(key).and_then(Value::as_array).ok_or_else(|| {
                Error::reduce(format!("compaction checkpoint payload {pid} did not contain array {key}"))
            })
        };
        let (input_history, replacement_history) = (history("input_history")?, history("replacement_history")?);
        let input = normalize_items(input_history, pid, &self.rules)?;
        let replacement = normalize_items(replacement_history, pid, &self.rules)?;

        let at = Sighting { thread, turn, wall_time_unix_ms: cx.wall_time_unix_ms };
        let producer = [ProducerRef::Compaction { compaction_id: compaction_id.to_string() }];
        let snapshot = self.snapshots.get(thread).cloned().unwrap_or_default();
        let input_items = self.reconcile_detached(input, &snapshot, &[], at)?;
        let marker = super::conversation::Candidate {
            role: ConversationRole::Assistant,
            channel: None,
            kind: ConversationItemKind::CompactionMarker,
            agent_message: None,
            parts: Vec::new(),
            call_id: None,
            images: Vec::new(),
        };
        let marker_item = self.create_item(&marker, &producer, at);
        // Every replacement entry is new, even if identical to old history.
        let replacement_items = self.reconcile_detached(replacement, &[], &producer, at)?;

        self.list_in_thread(thread, &input_items);
        self.list_in_thread(thread, &[marker_item]);
        self.list_in_thread(thread, &replacement_items);
        let (input_item_ids, replacement_item_ids) = (self.items.ids(&input_items), self.items.ids(&replacement_items));
        let marker_item_id = self.items.id(marker_item).clone();
        let request_ids = self
            .trace
            .compaction_requests
            .values()
            .filter(|request| request.compaction_id == compaction_id)
            .map(|request| request.compaction_request_id.clone())
            .collect();
        self.pending_replacements.insert(thread.to_string(), replacement_items);
        self.trace.compactions.insert(
            compaction_id.to_string(),
            Compaction {
                compaction_id: compaction_id.to_string(),
                thread_id: thread.to_string(),
                codex_turn_id: turn.to_string(),
                installed_at_unix_ms: cx.wall_time_unix_ms,
                marker_item_id,
                request_ids,
                input_item_ids,
                replacement_item_ids,
            },
        );
        Ok(())
    }
}
