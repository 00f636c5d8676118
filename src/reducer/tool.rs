//! Tool calls: lifecycle, MCP correlation, and links to the model-visible
//! call and output items (reducer tools §3).

use serde_json::Value;

use super::{push_unique, EventContext, Reducer};
use crate::error::{Error, Result};
use crate::format::{ExecutionStatus, RawPayloadRef, RawToolCallRequester, ToolCallKind, ToolCallSummary};
use crate::model::{ConversationItemKind, ExecutionWindow, ProducerRef, ToolCall, ToolCallRequester};

pub(crate) struct ToolStart<'e> {
    pub tool_call_id: &'e str,
    pub model_visible_call_id: Option<&'e str>,
    pub code_mode_runtime_tool_id: Option<&'e str>,
    pub requester: &'e RawToolCallRequester,
    pub kind: &'e ToolCallKind,
    pub summary: &'e ToolCallSummary,
    pub invocation_payload: Option<&'e RawPayloadRef>,
}

impl Reducer<'_> {
    /// `tool_call_started`, steps 1–14 of §3.1 in order.
    pub(super) fn tool_call_started(&mut self, cx: EventContext<'_>, start: ToolStart<'_>) -> Result<()> {
        let id = start.tool_call_id;
        if self.trace.tool_calls.contains_key(id) {
            return Err(Error::reduce(format!("duplicate tool call start for {id}")));
        }
        if let Some(mv) = start.model_visible_call_id {
            match self.tools_by_model_call.get(mv).map_or(0, Vec::len) {
                0 => {}
                1 => return Err(Error::reduce(format!("duplicate tool call for model-visible call id {mv}"))),
                _ => return Err(Error::reduce(format!("multiple tool calls matched model-visible call id {mv}"))),
            }
        }
        let thread = self.resolve_tool_thread(cx)?;
        let requester = match start.requester {
            RawToolCallRequester::Model => ToolCallRequester::Model,
            RawToolCallRequester::CodeCell { runtime_cell_id } => {
                let code_cell_id = self.code_cell_for_runtime_id(&thread, runtime_cell_id).ok_or_else(|| {
                    Error::reduce(format!(
                        "code-mode nested tool referenced unknown runtime cell {runtime_cell_id} in thread {thread}"
                    ))
                })?;
                ToolCallRequester::CodeCell { code_cell_id }
            }
        };
        let (call_items, output_items) = match start.model_visible_call_id {
            Some(mv) => (
                self.items_with_call_id(&thread, mv, ConversationItemKind::is_tool_call),
                self.items_with_call_id(&thread, mv, ConversationItemKind::is_tool_output),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let invocation = match start.invocation_payload {
            Some(payload) => Some((payload, self.read_payload(payload)?)),
            None => None,
        };
        let terminal_operation_id = match (&invocation, start.kind) {
            (Some((payload, body)), ToolCallKind::WriteStdin) => {
                Some(self.terminal_operation_from_invocation(cx, &thread, id, payload, body)?)
            }
            _ => None,
        };
        let summary = match &terminal_operation_id {
            Some(operation_id) => ToolCallSummary::Terminal { operation_id: operation_id.clone() },
            None => start.summary.clone(),
        };
        if let Some((payload, body)) = &invocation {
            self.link_wait_tool(&thread, id, payload, body)?;
        }

        if let Some(mv) = start.model_visible_call_id {
            self.tools_by_model_call.entry(mv.to_string()).or_default().push(id.to_string());
        }
        self.trace.tool_calls.insert(
            id.to_string(),
            ToolCall {
                tool_call_id: id.to_string(),
                mcp_call_id: None,
                model_visible_call_id: start.model_visible_call_id.map(str::to_string),
                code_mode_runtime_tool_id: start.code_mode_runtime_tool_id.map(str::to_string),
                thread_id: thread.clone(),
                started_by_codex_turn_id: cx.codex_turn_id.map(str::to_string),
                execution: ExecutionWindow::running(cx.wall_time_unix_ms, cx.seq),
                requester: requester.clone(),
                kind: start.kind.clone(),
                model_visible_call_item_ids: call_items,
                model_visible_output_item_ids: Vec::new(),
                terminal_operation_id,
                summary,
                raw_invocation_payload_id: start.invocation_payload.map(|p| p.raw_payload_id.clone()),
                raw_result_payload_id: None,
                raw_runtime_payload_ids: Vec::new(),
            },
        );
        if let ToolCallRequester::CodeCell { code_cell_id } = &requester {
            if let Some(cell) = self.trace.code_cells.get_mut(code_cell_id) {
                push_unique(&mut cell.nested_tool_call_ids, id.to_string());
            }
        }
        self.link_tool_to_inferences(id);
        for item in output_items {
            self.add_tool_output(id, &item);
        }
        self.sync_terminal_observation(id);
        Ok(())
    }

    /// §3.1 steps 3–4: the envelope thread, else the envelope turn's thread.
    fn resolve_tool_thread(&self, cx: EventContext<'_>) -> Result<String> {
        let unknown_turn = |turn: &str| Error::reduce(format!("tool call start referenced unknown Codex turn {turn}"));
        let thread = match (cx.thread_id, cx.codex_turn_id) {
            (Some(thread), _) => thread.to_string(),
            (None, Some(turn)) => self.trace.codex_turns.get(turn).ok_or_else(|| unknown_turn(turn))?.thread_id.clone(),
            (None, None) => {
                return Err(Error::reduce("tool call start did not include thread or Codex turn context"));
            }
        };
        if !self.trace.threads.contains_key(&thread) {
            return Err(Error::reduce(format!("tool call start referenced unknown thread {thread}")));
        }
        if let Some(turn) = cx.codex_turn_id {
            let turn_thread = &self.trace.codex_turns.get(turn).ok_or_else(|| unknown_turn(turn))?.thread_id;
            if *turn_thread != thread {
                return Err(Error::reduce(format!(
                    "tool call start used thread {thread}, but Codex turn {turn} belongs to {turn_thread}"
                )));
            }
        }
        Ok(thread)
    }

    pub(super) fn mcp_correlation_assigned(&mut self, tool_call_id: &str, mcp_call_id: &str) -> Result<()> {
        let tool = self
            .trace
            .tool_calls
            .get_mut(tool_call_id)
            .ok_or_else(|| Error::reduce(format!("MCP correlation referenced unknown tool call {tool_call_id}")))?;
        if tool.mcp_call_id.is_some() {
            return Err(Error::reduce(format!("duplicate MCP correlation for tool call {tool_call_id}")));
        }
        tool.mcp_call_id = Some(mcp_call_id.to_string());
        Ok(())
    }

    /// §3.3: records the payload; exec and write_stdin tools get their
    /// terminal operation here; message and close tools queue their edge.
    pub(super) fn tool_runtime_started(
        &mut self,
        cx: EventContext<'_>,
        tool_call_id: &str,
        payload: &RawPayloadRef,
    ) -> Result<()> {
        let tool = self
            .trace
            .tool_calls
            .get_mut(tool_call_id)
            .ok_or_else(|| Error::reduce(format!("tool runtime start referenced unknown call {tool_call_id}")))?;
        push_unique(&mut tool.raw_runtime_payload_ids, payload.raw_payload_id.clone());
        let kind = tool.kind.clone();
        if kind.is_terminal() {
            if tool.terminal_operation_id.is_some() {
                return Err(Error::reduce(format!(
                    "tool runtime start would create a second terminal operation for {tool_call_id}"
                )));
            }
            self.terminal_operation_from_runtime_start(cx, tool_call_id, payload)?;
            self.sync_terminal_observation(tool_call_id);
        }
        self.agent_runtime_started(tool_call_id, &kind, payload)
    }

    /// §3.4: ends the terminal operation (if any) and runs the agent hook.
    pub(super) fn tool_runtime_ended(
        &mut self,
        cx: EventContext<'_>,
        tool_call_id: &str,
        status: ExecutionStatus,
        payload: &RawPayloadRef,
    ) -> Result<()> {
        let tool = self
            .trace
            .tool_calls
            .get_mut(tool_call_id)
            .ok_or_else(|| Error::reduce(format!("tool runtime end referenced unknown call {tool_call_id}")))?;
        push_unique(&mut tool.raw_runtime_payload_ids, payload.raw_payload_id.clone());
        let (kind, operation) = (tool.kind.clone(), tool.terminal_operation_id.clone());
        // Read for every tool kind: sub-agent activity can arrive on any.
        let body = self.read_payload(payload)?;
        if let Some(operation_id) = operation {
            self.end_terminal_operation(cx, &operation_id, status, Some((payload, &body)))?;
        }
        self.agent_runtime_ended(cx, tool_call_id, &kind, payload, &body)
    }

    /// §3.5: closes the call; a dispatch-owned terminal operation ends too.
    pub(super) fn tool_call_ended(
        &mut self,
        cx: EventContext<'_>,
        tool_call_id: &str,
        status: ExecutionStatus,
        result: Option<&RawPayloadRef>,
    ) -> Result<()> {
        let tool = self
            .trace
            .tool_calls
            .get_mut(tool_call_id)
            .ok_or_else(|| Error::reduce(format!("tool call end referenced unknown call {tool_call_id}")))?;
        tool.execution.end(cx.wall_time_unix_ms, cx.seq, status);
        tool.raw_result_payload_id = result.map(|p| p.raw_payload_id.clone());
        let dispatch_owned_operation =
            tool.terminal_operation_id.clone().filter(|_| tool.raw_runtime_payload_ids.is_empty());
        if let Some(operation_id) = dispatch_owned_operation {
            let body = match result {
                Some(payload) => Some((payload, self.read_payload(payload)?)),
                None => None,
            };
            let payload = body.as_ref().map(|(payload, body)| (*payload, body));
            self.end_terminal_operation(cx, &operation_id, status, payload)?;
        }
        if let Some(payload) = result {
            self.attach_tool_result_to_edge(tool_call_id, &payload.raw_payload_id);
        }
        Ok(())
    }

    /// Tool hook of §3.6 for a reconciled item with a call id.
    pub(super) fn link_item_to_tool(&mut self, item_id: &str, call_id: &str, kind: ConversationItemKind) -> Result<()> {
        let tool_id = match self.tools_by_model_call.get(call_id).map(Vec::as_slice) {
            None | Some([]) => return Ok(()),
            Some([tool_id]) => tool_id.clone(),
            Some(_) => {
                return Err(Error::reduce(format!("multiple tool calls matched model-visible call id {call_id}")));
            }
        };
        if kind.is_tool_call() {
            let tool = self.trace.tool_calls.get_mut(&tool_id).expect("indexed tools exist");
            super::push_unique_str(&mut tool.model_visible_call_item_ids, item_id);
            self.link_tool_to_inferences(&tool_id);
            self.sync_terminal_observation(&tool_id);
        } else if kind.is_tool_output() {
            self.add_tool_output(&tool_id, item_id);
            self.sync_terminal_observation(&tool_id);
        }
        Ok(())
    }

    /// *add-output*: the item is this tool's output, produced by it.
    fn add_tool_output(&mut self, tool_id: &str, item_id: &str) {
        let tool = self.trace.tool_calls.get_mut(tool_id).expect("tool exists");
        super::push_unique_str(&mut tool.model_visible_output_item_ids, item_id);
        self.add_producer(item_id, ProducerRef::Tool { tool_call_id: tool_id.to_string() });
    }

    /// *link-to-inference* (§3.7): every inference whose current response
    /// holds one of the tool's call items lists the tool.
    fn link_tool_to_inferences(&mut self, tool_id: &str) {
        let call_items = &self.trace.tool_calls[tool_id].model_visible_call_item_ids;
        let inference_ids = super::sorted_ids(
            call_items.iter().filter_map(|item| self.inferences_by_response_item.get(item)).flatten(),
        );
        for inference_id in inference_ids {
            if let Some(call) = self.trace.inference_calls.get_mut(&inference_id) {
                super::push_unique_str(&mut call.tool_call_ids_started_by_response, tool_id);
            }
        }
    }

    /// `payload.arguments` of a dispatch invocation, when it is a string.
    pub(super) fn invocation_arguments(invocation: &Value) -> Option<&str> {
        invocation.get("payload")?.get("arguments")?.as_str()
    }
}
