//! Tool calls: lifecycle, MCP correlation, and links to the model-visible
//! call and output items (reducer tools §3).

use serde_json::Value;

use super::items::ItemRef;
use super::{push_unique, EventContext, HashMap, Reducer};
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

/// The tool call of a model-visible call id, and which of the tool's links
/// are known to be up to date.
///
/// Every request repeats the call and output items of earlier tool calls,
/// and every sighting runs the tool hook of §3.6 again: link-to-inference
/// (§3.7) and terminal-sync (§4.6) for the tool. Mostly that changes
/// nothing, and these flags say when it provably cannot:
///
/// * `inferences_linked`: link-to-inference ran, and since then the tool's
///   call items have not changed and no inference's response has come to
///   hold one of them. (A response that no longer holds one cannot make
///   the link add anything; nothing removes a tool from an inference.)
/// * `terminal_synced`: terminal-sync ran, and since then the tool's call
///   and output items and its terminal operation have not changed. (Only
///   terminal-sync writes the operation's observation.)
///
/// Whatever changes those inputs clears the flag; only the tool hook sets
/// it, after running the step.
pub(crate) struct ModelCallTool {
    tool_call_id: String,
    inferences_linked: bool,
    terminal_synced: bool,
}

/// A tool call with a model-visible call id, by its index in
/// `ModelCallTools`: an item keeps the one its hook found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ToolRef(u32);

/// Tool calls by model-visible call id. A second tool call for a call id
/// is refused at its start (§3.1), so there is at most one, and the hook's
/// "multiple tool calls matched" error cannot happen.
#[derive(Default)]
pub(crate) struct ModelCallTools {
    by_call_id: HashMap<String, ToolRef>,
    tools: Vec<ModelCallTool>,
}

impl ModelCallTools {
    fn find(&self, call_id: &str) -> Option<ToolRef> {
        self.by_call_id.get(call_id).copied()
    }

    fn add(&mut self, call_id: &str, tool_call_id: &str) {
        let tool = ToolRef(u32::try_from(self.tools.len()).expect("fewer than 2^32 tool calls"));
        self.tools.push(ModelCallTool {
            tool_call_id: tool_call_id.to_string(),
            inferences_linked: false,
            terminal_synced: false,
        });
        self.by_call_id.insert(call_id.to_string(), tool);
    }

    fn get(&self, tool: ToolRef) -> &ModelCallTool {
        &self.tools[tool.0 as usize]
    }

    fn get_mut(&mut self, tool: ToolRef) -> &mut ModelCallTool {
        &mut self.tools[tool.0 as usize]
    }
}

impl Reducer {
    /// `tool_call_started`, steps 1–14 of §3.1 in order.
    pub(super) fn tool_call_started(&mut self, cx: EventContext<'_>, start: ToolStart<'_>) -> Result<()> {
        let id = start.tool_call_id;
        if self.trace.tool_calls.contains_key(id) {
            return Err(Error::reduce(format!("duplicate tool call start for {id}")));
        }
        // So a model-visible call id has at most one tool call.
        if let Some(mv) = start.model_visible_call_id {
            if self.model_call_tools.find(mv).is_some() {
                return Err(Error::reduce(format!("duplicate tool call for model-visible call id {mv}")));
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
            self.model_call_tools.add(mv, id);
        }
        self.trace.tool_calls.insert(
            id.to_string(),
            ToolCall {
                tool_call_id: id.to_string(),
                mcp_call_id: Some(None),
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
        if matches!(tool.mcp_call_id, Some(Some(_))) {
            return Err(Error::reduce(format!("duplicate MCP correlation for tool call {tool_call_id}")));
        }
        tool.mcp_call_id = Some(Some(mcp_call_id.to_string()));
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
        let tool = self.record_runtime_payload(tool_call_id, payload, "start")?;
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

    /// The tool a runtime `start` or `end` event names, with the event's
    /// payload recorded on it.
    fn record_runtime_payload(
        &mut self,
        tool_call_id: &str,
        payload: &RawPayloadRef,
        event: &str,
    ) -> Result<&mut ToolCall> {
        let tool = self
            .trace
            .tool_calls
            .get_mut(tool_call_id)
            .ok_or_else(|| Error::reduce(format!("tool runtime {event} referenced unknown call {tool_call_id}")))?;
        push_unique(&mut tool.raw_runtime_payload_ids, payload.raw_payload_id.clone());
        Ok(tool)
    }

    /// §3.4: ends the terminal operation (if any) and runs the agent hook.
    pub(super) fn tool_runtime_ended(
        &mut self,
        cx: EventContext<'_>,
        tool_call_id: &str,
        status: ExecutionStatus,
        payload: &RawPayloadRef,
    ) -> Result<()> {
        let tool = self.record_runtime_payload(tool_call_id, payload, "end")?;
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

    /// Tool hook of §3.6 for a reconciled item with a call id. Each step
    /// runs only when it can change something (see `ModelCallTool`).
    pub(super) fn link_item_to_tool(&mut self, item: ItemRef, call_id: &str, kind: ConversationItemKind) {
        let is_call = kind.is_tool_call();
        if !is_call && !kind.is_tool_output() {
            return;
        }
        let tool = match self.items.get(item).tool {
            Some(tool) => tool,
            None => {
                let Some(tool) = self.model_call_tools.find(call_id) else {
                    return;
                };
                let tool_id = self.model_call_tools.get(tool).tool_call_id.clone();
                let item_id = self.items.id(item).clone();
                let added = if is_call {
                    let tool = self.trace.tool_calls.get_mut(&tool_id).expect("indexed tools exist");
                    super::push_unique_str(&mut tool.model_visible_call_item_ids, &item_id)
                } else {
                    self.add_tool_output(&tool_id, &item_id)
                };
                if added {
                    let links = self.model_call_tools.get_mut(tool);
                    links.inferences_linked &= !is_call;
                    links.terminal_synced = false;
                }
                self.items.get_mut(item).tool = Some(tool);
                tool
            }
        };
        let links = self.model_call_tools.get(tool);
        let (link, sync) = (is_call && !links.inferences_linked, !links.terminal_synced);
        if link || sync {
            let tool_id = links.tool_call_id.clone();
            if link {
                self.link_tool_to_inferences(&tool_id);
            }
            if sync {
                self.sync_terminal_observation(&tool_id);
            }
            let links = self.model_call_tools.get_mut(tool);
            links.inferences_linked |= is_call;
            links.terminal_synced = true;
        }
    }

    /// The links to inferences of the tool of `call_id` may be out of date:
    /// an inference's response now holds an item with that call id.
    pub(super) fn item_joined_response(&mut self, call_id: &str) {
        if let Some(tool) = self.model_call_tools.find(call_id) {
            self.model_call_tools.get_mut(tool).inferences_linked = false;
        }
    }

    /// The tool's terminal observation may be out of date: it has a new
    /// terminal operation.
    pub(super) fn tool_terminal_changed(&mut self, tool_call_id: &str) {
        let call_id = self.trace.tool_calls.get(tool_call_id).and_then(|tool| tool.model_visible_call_id.as_deref());
        if let Some(tool) = call_id.and_then(|call_id| self.model_call_tools.find(call_id)) {
            self.model_call_tools.get_mut(tool).terminal_synced = false;
        }
    }

    /// *add-output*: the item is this tool's output, produced by it.
    /// Whether the output list grew.
    fn add_tool_output(&mut self, tool_id: &str, item_id: &str) -> bool {
        let tool = self.trace.tool_calls.get_mut(tool_id).expect("tool exists");
        let added = super::push_unique_str(&mut tool.model_visible_output_item_ids, item_id);
        self.add_producer(item_id, ProducerRef::Tool { tool_call_id: tool_id.to_string() });
        added
    }

    /// *link-to-inference* (§3.7): every inference whose current response
    /// holds one of the tool's call items lists the tool. Each inference's
    /// list gets the tool at most once, so the order in which inferences
    /// are visited (ascending id in the spec) changes nothing.
    fn link_tool_to_inferences(&mut self, tool_id: &str) {
        let call_items = &self.trace.tool_calls[tool_id].model_visible_call_item_ids;
        for item in call_items {
            for inference_id in &self.items.get(ItemRef::of(item)).responding_inferences {
                if let Some(call) = self.trace.inference_calls.get_mut(inference_id) {
                    super::push_unique_str(&mut call.tool_call_ids_started_by_response, tool_id);
                }
            }
        }
    }

    /// `payload.arguments` of a dispatch invocation, when it is a string.
    pub(super) fn invocation_arguments(invocation: &Value) -> Option<&str> {
        invocation.get("payload")?.get("arguments")?.as_str()
    }
}
