//! Code cells: model-authored `exec` calls run by the code-mode runtime
//! (reducer tools §5).
//!
//! A cell's events can arrive before the `custom_tool_call` item that is its
//! source; until then the start and its lifecycle events wait in queues and
//! are replayed when a reconcile batch brings the item.

use std::collections::BTreeMap;

use serde_json::Value;

use super::items::ItemRef;
use super::{push_unique, EventContext, HashMap, Reducer};
use crate::error::{Error, Result};
use crate::format::{CodeCellRuntimeStatus, ExecutionStatus, RawPayloadRef};
use crate::model::{CodeCell, ConversationItemKind, ExecutionWindow, ProducerRef};

/// A lifecycle event after `code_cell_started`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lifecycle {
    InitialResponse(CodeCellRuntimeStatus),
    Ended(CodeCellRuntimeStatus),
}

impl Lifecycle {
    /// The event's name in error messages.
    fn name(self) -> &'static str {
        match self {
            Lifecycle::InitialResponse(_) => "code cell initial response",
            Lifecycle::Ended(_) => "code cell end",
        }
    }
}

#[derive(Debug, Clone)]
struct PendingStart {
    seq: u64,
    wall_time_unix_ms: i64,
    thread_id: String,
    codex_turn_id: Option<String>,
    runtime_cell_id: String,
    model_visible_call_id: String,
    source_js: String,
}

#[derive(Debug, Clone)]
struct PendingLifecycle {
    seq: u64,
    wall_time_unix_ms: i64,
    runtime_cell_id: String,
    event: Lifecycle,
}

#[derive(Debug, Default)]
pub(crate) struct CodeCellState {
    /// (thread, runtime cell id) → code cell id; never shrinks.
    runtime_index: HashMap<(String, String), String>,
    /// Starts waiting for their source item, by code cell id.
    pending_starts: BTreeMap<String, PendingStart>,
    /// Lifecycle events of queued cells, kept sorted by seq.
    pending_lifecycle: HashMap<String, Vec<PendingLifecycle>>,
}

fn execution_status(status: CodeCellRuntimeStatus) -> ExecutionStatus {
    match status {
        CodeCellRuntimeStatus::Starting | CodeCellRuntimeStatus::Running | CodeCellRuntimeStatus::Yielded => {
            ExecutionStatus::Running
        }
        CodeCellRuntimeStatus::Completed => ExecutionStatus::Completed,
        CodeCellRuntimeStatus::Failed => ExecutionStatus::Failed,
        CodeCellRuntimeStatus::Terminated => ExecutionStatus::Cancelled,
    }
}

/// §5.5 step 4 (also used for turn-end termination).
fn end_cell(cell: &mut CodeCell, seq: u64, wall_time_unix_ms: i64, status: CodeCellRuntimeStatus) {
    if cell.initial_response_at_unix_ms.is_none() {
        cell.initial_response_at_unix_ms = Some(wall_time_unix_ms);
        cell.initial_response_seq = Some(seq);
    }
    cell.execution.end(wall_time_unix_ms, seq, execution_status(status));
    cell.runtime_status = status;
}

fn apply_lifecycle(cell: &mut CodeCell, seq: u64, wall_time_unix_ms: i64, runtime_cell_id: &str, event: Lifecycle) {
    match event {
        Lifecycle::InitialResponse(status) => {
            cell.runtime_cell_id = Some(runtime_cell_id.to_string());
            if cell.initial_response_at_unix_ms.is_none() {
                cell.initial_response_at_unix_ms = Some(wall_time_unix_ms);
                cell.initial_response_seq = Some(seq);
            }
            if status == CodeCellRuntimeStatus::Yielded {
                cell.yielded_at_unix_ms = Some(wall_time_unix_ms);
                cell.yielded_seq = Some(seq);
            }
            cell.runtime_status = status;
        }
        Lifecycle::Ended(status) => end_cell(cell, seq, wall_time_unix_ms, status),
    }
}

impl Reducer {
    /// The code cell a runtime cell id names in a thread, queued or not.
    pub(super) fn code_cell_for_runtime_id(&self, thread: &str, runtime_cell_id: &str) -> Option<String> {
        self.code_cells.runtime_index.get(&(thread.to_string(), runtime_cell_id.to_string())).cloned()
    }

    /// §5.2 step 1: envelope thread, else the envelope turn's thread.
    fn code_cell_event_thread(&self, cx: EventContext<'_>, event: &str, runtime_cell_id: &str) -> Result<String> {
        match (cx.thread_id, cx.codex_turn_id) {
            (Some(thread), _) => Ok(thread.to_string()),
            (None, Some(turn)) => self.trace.codex_turns.get(turn).map(|t| t.thread_id.clone()).ok_or_else(|| {
                Error::reduce(format!("{event} {runtime_cell_id} referenced unknown Codex turn {turn}"))
            }),
            (None, None) => Err(Error::reduce(format!("{event} {runtime_cell_id} did not include a thread id"))),
        }
    }

    pub(super) fn code_cell_started(
        &mut self,
        cx: EventContext<'_>,
        runtime_cell_id: &str,
        model_visible_call_id: &str,
        source_js: &str,
    ) -> Result<()> {
        let thread = self.code_cell_event_thread(cx, "code cell start", runtime_cell_id)?;
        let code_cell_id = format!("code_cell:{model_visible_call_id}");
        let key = (thread.clone(), runtime_cell_id.to_string());
        match self.code_cells.runtime_index.get(&key) {
            Some(existing) if *existing != code_cell_id => {
                return Err(Error::reduce(format!(
                    "runtime code cell {runtime_cell_id} in thread {thread} mapped to both {existing} and {code_cell_id}"
                )));
            }
            Some(_) => {}
            None => {
                self.code_cells.runtime_index.insert(key, code_cell_id.clone());
            }
        }
        let start = PendingStart {
            seq: cx.seq,
            wall_time_unix_ms: cx.wall_time_unix_ms,
            thread_id: thread,
            codex_turn_id: cx.codex_turn_id.map(str::to_string),
            runtime_cell_id: runtime_cell_id.to_string(),
            model_visible_call_id: model_visible_call_id.to_string(),
            source_js: source_js.to_string(),
        };
        if self.has_source_item(&start) {
            return self.materialize_code_cell(code_cell_id, start);
        }
        if self.trace.code_cells.contains_key(&code_cell_id)
            || self.code_cells.pending_starts.contains_key(&code_cell_id)
        {
            return Err(Error::reduce(format!("duplicate code cell start for {code_cell_id}")));
        }
        self.code_cells.pending_starts.insert(code_cell_id, start);
        Ok(())
    }

    fn has_source_item(&self, start: &PendingStart) -> bool {
        !self
            .items_with_call_id(&start.thread_id, &start.model_visible_call_id, |k| {
                k == ConversationItemKind::CustomToolCall
            })
            .is_empty()
    }

    /// After every reconcile batch: materialize queued cells whose source
    /// item now exists, in ascending code cell id order (§5.3).
    pub(super) fn flush_pending_code_cell_starts(&mut self) -> Result<()> {
        if self.code_cells.pending_starts.is_empty() {
            return Ok(());
        }
        let ready: Vec<String> = self
            .code_cells
            .pending_starts
            .iter()
            .filter(|(_, start)| self.has_source_item(start))
            .map(|(id, _)| id.clone())
            .collect();
        for code_cell_id in ready {
            let start = self.code_cells.pending_starts.remove(&code_cell_id).expect("collected above");
            self.materialize_code_cell(code_cell_id, start)?;
        }
        Ok(())
    }

    fn materialize_code_cell(&mut self, code_cell_id: String, start: PendingStart) -> Result<()> {
        if self.trace.code_cells.contains_key(&code_cell_id) {
            return Err(Error::reduce(format!("duplicate code cell start for {code_cell_id}")));
        }
        let turn = start
            .codex_turn_id
            .clone()
            .ok_or_else(|| Error::reduce(format!("code cell start {code_cell_id} did not include a Codex turn id")))?;
        let thread = start.thread_id.clone();
        if !self.trace.threads.contains_key(&thread) {
            return Err(Error::reduce(format!("code cell start referenced unknown thread {thread}")));
        }
        let turn_thread = &self
            .trace
            .codex_turns
            .get(&turn)
            .ok_or_else(|| Error::reduce(format!("code cell start referenced unknown Codex turn {turn}")))?
            .thread_id;
        if *turn_thread != thread {
            return Err(Error::reduce(format!(
                "code cell start used thread {thread}, but Codex turn {turn} belongs to {turn_thread}"
            )));
        }
        let call_id = &start.model_visible_call_id;
        let source_item_id = self
            .items_with_call_id(&thread, call_id, |k| k == ConversationItemKind::CustomToolCall)
            .into_iter()
            .next()
            .expect("materialized only once the source item exists");
        let output_item_ids =
            self.items_with_call_id(&thread, call_id, |k| k == ConversationItemKind::CustomToolCallOutput);
        // Nested tools that started while the cell was queued.
        let nested_tool_call_ids = self
            .trace
            .tool_calls
            .values()
            .filter(|tool| {
                matches!(&tool.requester, crate::model::ToolCallRequester::CodeCell { code_cell_id: id } if *id == code_cell_id)
            })
            .map(|tool| tool.tool_call_id.clone())
            .collect();
        self.trace.code_cells.insert(
            code_cell_id.clone(),
            CodeCell {
                code_cell_id: code_cell_id.clone(),
                model_visible_call_id: call_id.clone(),
                thread_id: thread,
                codex_turn_id: turn,
                source_item_id,
                output_item_ids: Vec::new(),
                runtime_cell_id: Some(start.runtime_cell_id.clone()),
                execution: ExecutionWindow::running(start.wall_time_unix_ms, start.seq),
                runtime_status: CodeCellRuntimeStatus::Starting,
                initial_response_at_unix_ms: None,
                initial_response_seq: None,
                yielded_at_unix_ms: None,
                yielded_seq: None,
                source_js: start.source_js,
                nested_tool_call_ids,
                wait_tool_call_ids: Vec::new(),
            },
        );
        for item in output_item_ids {
            self.add_code_cell_output(&code_cell_id, &item);
        }
        let queued = self.code_cells.pending_lifecycle.remove(&code_cell_id).unwrap_or_default();
        let cell = self.trace.code_cells.get_mut(&code_cell_id).expect("inserted above");
        for event in queued {
            apply_lifecycle(cell, event.seq, event.wall_time_unix_ms, &event.runtime_cell_id, event.event);
        }
        Ok(())
    }

    /// `code_cell_initial_response` and `code_cell_ended` (§5.4, §5.5).
    pub(super) fn code_cell_lifecycle(
        &mut self,
        cx: EventContext<'_>,
        runtime_cell_id: &str,
        event: Lifecycle,
    ) -> Result<()> {
        let name = event.name();
        let thread = self.code_cell_event_thread(cx, name, runtime_cell_id)?;
        let code_cell_id = self.code_cell_for_runtime_id(&thread, runtime_cell_id).ok_or_else(|| {
            Error::reduce(format!("{name} referenced unknown runtime cell {runtime_cell_id} in thread {thread}"))
        })?;
        if let Some(cell) = self.trace.code_cells.get_mut(&code_cell_id) {
            apply_lifecycle(cell, cx.seq, cx.wall_time_unix_ms, runtime_cell_id, event);
            return Ok(());
        }
        if !self.code_cells.pending_starts.contains_key(&code_cell_id) {
            return Err(Error::reduce(format!("{name} referenced unknown cell {code_cell_id}")));
        }
        let queue = self.code_cells.pending_lifecycle.entry(code_cell_id).or_default();
        let at = queue.partition_point(|queued| queued.seq <= cx.seq);
        queue.insert(
            at,
            PendingLifecycle {
                seq: cx.seq,
                wall_time_unix_ms: cx.wall_time_unix_ms,
                runtime_cell_id: runtime_cell_id.to_string(),
                event,
            },
        );
        Ok(())
    }

    /// §5.7: an interrupted turn ends its running, materialized cells.
    pub(super) fn terminate_running_code_cells(
        &mut self,
        cx: EventContext<'_>,
        turn_id: &str,
        status: CodeCellRuntimeStatus,
    ) {
        for cell in self.trace.code_cells.values_mut() {
            if cell.codex_turn_id == turn_id && cell.execution.is_running() {
                end_cell(cell, cx.seq, cx.wall_time_unix_ms, status);
            }
        }
    }

    /// Hook (b) of §3.6: a custom tool output belongs to its code cell.
    /// Once linked, a sighting changes nothing: cells are never removed and
    /// their outputs and the item's producers only grow.
    pub(super) fn link_output_to_code_cell(&mut self, item: ItemRef, call_id: &str) {
        if self.items.get(item).code_cell_linked || self.trace.code_cells.is_empty() {
            return;
        }
        let code_cell_id = format!("code_cell:{call_id}");
        if self.trace.code_cells.contains_key(&code_cell_id) {
            let item_id = self.items.id(item).clone();
            self.add_code_cell_output(&code_cell_id, &item_id);
            self.items.get_mut(item).code_cell_linked = true;
        }
    }

    fn add_code_cell_output(&mut self, code_cell_id: &str, item_id: &str) {
        let cell = self.trace.code_cells.get_mut(code_cell_id).expect("cell exists");
        push_unique(&mut cell.output_item_ids, item_id.to_string());
        self.add_producer(item_id, ProducerRef::CodeCell { code_cell_id: code_cell_id.to_string() });
    }

    /// §5.9: a `wait` tool call is linked to the cell it waits on.
    pub(super) fn link_wait_tool(
        &mut self,
        thread: &str,
        tool_call_id: &str,
        payload: &RawPayloadRef,
        invocation: &Value,
    ) -> Result<()> {
        if invocation.get("tool_name").and_then(Value::as_str) != Some("wait") {
            return Ok(());
        }
        let pid = &payload.raw_payload_id;
        let arguments = Self::invocation_arguments(invocation).ok_or_else(|| {
            Error::reduce(format!("wait tool request payload {pid} did not contain function arguments"))
        })?;
        let arguments: Value = serde_json::from_str(arguments)
            .map_err(|_| Error::reduce(format!("wait tool request payload {pid} had invalid JSON arguments")))?;
        let runtime_cell_id = arguments
            .get("cell_id")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::reduce(format!("wait tool request payload {pid} did not contain cell_id")))?;
        let Some(code_cell_id) = self.code_cell_for_runtime_id(thread, runtime_cell_id) else {
            return Ok(());
        };
        if let Some(cell) = self.trace.code_cells.get_mut(&code_cell_id) {
            push_unique(&mut cell.wait_tool_call_ids, tool_call_id.to_string());
        }
        Ok(())
    }
}
