//! The realistic example bundle (`examples/realistic-bundle`, written by
//! `rollout_trace.synth` the way Codex's producers write bundles) reduced
//! into the graph the spec promises: helpers with spawn edges that land on
//! their task messages, a terminal session shared by an exec and a
//! write_stdin, a code cell with its nested and wait tools, a compaction
//! whose replacement the next request reuses, and the message, close and
//! result edges between the agents.

use std::path::{Path, PathBuf};

use rollout_trace::model::{
    AgentOrigin, ConversationChannel, ConversationItem, ConversationItemKind, ConversationPart, ConversationRole,
    ExecutionStatus, InteractionEdge, InteractionEdgeKind, RolloutStatus, RolloutTrace, TerminalOperationKind,
    TerminalRequest, ToolCall, ToolCallKind, ToolCallRequester, TraceAnchor,
};
use rollout_trace::replay_bundle;
use serde_json::Value;

fn bundle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/realistic-bundle")
}

fn reduce() -> RolloutTrace {
    replay_bundle(bundle()).unwrap_or_else(|err| panic!("the realistic bundle does not reduce: {err:#}"))
}

fn tool<'a>(trace: &'a RolloutTrace, id: &str) -> &'a ToolCall {
    trace.tool_calls.get(id).unwrap_or_else(|| panic!("no tool call {id}"))
}

fn item<'a>(trace: &'a RolloutTrace, id: &str) -> &'a ConversationItem {
    trace.conversation_items.get(id).unwrap_or_else(|| panic!("no conversation item {id}"))
}

fn texts(item: &ConversationItem) -> Vec<&str> {
    item.body
        .parts
        .iter()
        .filter_map(|part| match part {
            ConversationPart::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// The `message` argument the model gave a multi-agent tool, read from its
/// invocation payload.
fn message_argument(trace: &RolloutTrace, tool_call: &ToolCall) -> String {
    let payload_id = tool_call.raw_invocation_payload_id.as_ref().expect("invocation payload");
    let path = bundle().join(&trace.raw_payloads[payload_id].path);
    let invocation: Value = serde_json::from_slice(&std::fs::read(&path).expect("invocation file")).expect("JSON");
    let arguments: Value =
        serde_json::from_str(invocation["payload"]["arguments"].as_str().expect("arguments")).expect("JSON arguments");
    arguments["message"].as_str().expect("message argument").to_string()
}

/// The author and content of a message delivered from one agent to
/// another, in either form the producers write (spec 03 §6.5).
fn delivered(item: &ConversationItem) -> (String, String) {
    assert_eq!(
        (item.role, item.kind),
        (ConversationRole::Assistant, ConversationItemKind::Message),
        "{}",
        item.item_id
    );
    let text = texts(item);
    assert_eq!(text.len(), 1, "{}: {text:?}", item.item_id);
    match &item.agent_message {
        Some(routing) => (routing.author.clone(), text[0].to_string()),
        None => {
            let communication: Value = serde_json::from_str(text[0]).expect("inter-agent JSON");
            let field = |key: &str| communication[key].as_str().expect("string field").to_string();
            (field("author"), field("content"))
        }
    }
}

fn edges(trace: &RolloutTrace, kind: InteractionEdgeKind) -> Vec<&InteractionEdge> {
    trace.interaction_edges.values().filter(|edge| edge.kind == kind).collect()
}

fn source_tool<'a>(trace: &'a RolloutTrace, edge: &InteractionEdge) -> &'a ToolCall {
    match &edge.source {
        TraceAnchor::ToolCall { tool_call_id } => tool(trace, tool_call_id),
        other => panic!("{} has source {other:?}", edge.edge_id),
    }
}

fn target_item(edge: &InteractionEdge) -> &str {
    match &edge.target {
        TraceAnchor::ConversationItem { item_id } => {
            assert_eq!(edge.carried_item_ids, std::slice::from_ref(item_id), "{}", edge.edge_id);
            item_id
        }
        other => panic!("{} targets {other:?}, not a conversation item", edge.edge_id),
    }
}

/// The spawned threads, each with the spawn tool call that started it.
fn helpers(trace: &RolloutTrace) -> Vec<(&str, &str)> {
    trace
        .threads
        .values()
        .filter_map(|thread| match &thread.origin {
            AgentOrigin::Spawned { parent_thread_id, spawn_edge_id, .. } => {
                assert_eq!(parent_thread_id, &trace.root_thread_id);
                Some((thread.thread_id.as_str(), spawn_edge_id.as_str()))
            }
            AgentOrigin::Root => None,
        })
        .collect()
}

#[test]
fn reduces_to_a_completed_rollout_of_a_root_and_its_helpers() {
    let trace = reduce();
    assert_eq!(trace.status, RolloutStatus::Completed);
    assert!(trace.ended_at_unix_ms.is_some());
    let root = &trace.threads[&trace.root_thread_id];
    assert_eq!(root.origin, AgentOrigin::Root);
    assert!(helpers(&trace).len() >= 2, "expected at least two helpers");
    assert_eq!(trace.threads.len(), helpers(&trace).len() + 1);
    for thread in trace.threads.values() {
        assert_eq!(thread.execution.status, ExecutionStatus::Completed, "{}", thread.thread_id);
    }
    for turn in trace.codex_turns.values() {
        assert_eq!(turn.execution.status, ExecutionStatus::Completed, "{}", turn.codex_turn_id);
    }
    let root_turns = trace.codex_turns.values().filter(|turn| turn.thread_id == root.thread_id).count();
    assert!(root_turns >= 4, "{root_turns} root turns");
}

#[test]
fn every_inference_completes_with_token_usage() {
    let trace = reduce();
    assert!(trace.inference_calls.len() >= 15);
    for call in trace.inference_calls.values() {
        assert_eq!(call.execution.status, ExecutionStatus::Completed, "{}", call.inference_call_id);
        let usage = call.usage.unwrap_or_else(|| panic!("{} has no usage", call.inference_call_id));
        assert!(usage.input_tokens > 0 && usage.output_tokens > 0);
        assert!(usage.cached_input_tokens <= usage.input_tokens);
        assert!(!call.response_item_ids.is_empty());
    }
}

#[test]
fn full_requests_repeat_the_history_and_incremental_ones_extend_it() {
    let trace = reduce();
    let root = &trace.threads[&trace.root_thread_id];
    let mut calls: Vec<_> = trace.inference_calls.values().filter(|call| call.thread_id == root.thread_id).collect();
    calls.sort_by_key(|call| call.execution.started_seq);
    // Consecutive requests of a turn repeat the previous request and its
    // response, item for item, whether sent in full or incrementally.
    let mut prefixes = 0;
    for pair in calls.windows(2) {
        let [earlier, later] = pair else { unreachable!() };
        if earlier.codex_turn_id != later.codex_turn_id {
            continue;
        }
        let mut seen = earlier.request_item_ids.clone();
        seen.extend(earlier.response_item_ids.iter().map(|id| id.as_str().into()));
        assert!(
            later.request_item_ids.starts_with(&seen),
            "{} does not extend {}",
            later.inference_call_id,
            earlier.inference_call_id
        );
        prefixes += 1;
    }
    assert!(prefixes >= 8, "{prefixes} follow-up requests");
    // Request items of the thread are mostly reused: the conversation has far
    // fewer items than the requests mention.
    let mentioned: usize = calls.iter().map(|call| call.request_item_ids.len()).sum();
    assert!(root.conversation_item_ids.len() * 3 < mentioned);
}

#[test]
fn spawn_edges_target_the_task_message_delivered_to_each_helper() {
    let trace = reduce();
    for (thread_id, spawn_edge_id) in helpers(&trace) {
        let edge = &trace.interaction_edges[spawn_edge_id];
        assert_eq!(edge.kind, InteractionEdgeKind::SpawnAgent);
        let spawn = source_tool(&trace, edge);
        assert_eq!(spawn.kind, ToolCallKind::SpawnAgent);
        assert_eq!(spawn.thread_id, trace.root_thread_id);
        assert!(edge.ended_at_unix_ms.is_some());
        let target = target_item(edge);
        assert_eq!(item(&trace, target).thread_id, thread_id);
        assert_eq!(delivered(item(&trace, target)), ("/root".to_string(), message_argument(&trace, spawn)));
        // The task opens the helper's conversation, after its initial context.
        let helper = &trace.threads[thread_id];
        assert!(helper.conversation_item_ids[..3].contains(&target.to_string()));
    }
}

#[test]
fn exec_and_write_stdin_share_one_terminal_session() {
    let trace = reduce();
    let shared: Vec<_> = trace.terminal_sessions.values().filter(|session| session.operation_ids.len() >= 2).collect();
    assert_eq!(shared.len(), 1, "one session is reused");
    let session = shared[0];
    assert_eq!(session.thread_id, trace.root_thread_id);
    let operations: Vec<_> = session.operation_ids.iter().map(|id| &trace.terminal_operations[id]).collect();
    let exec = operations[0];
    assert_eq!(exec.kind, TerminalOperationKind::ExecCommand);
    assert_eq!(session.created_by_operation_id, exec.operation_id);
    let stdin = operations.iter().find(|op| op.kind == TerminalOperationKind::WriteStdin).expect("a write_stdin");
    for op in [exec, *stdin] {
        assert_eq!(op.terminal_id.as_deref(), Some(session.terminal_id.as_str()));
        assert_eq!(op.execution.status, ExecutionStatus::Completed);
        assert!(op.result.is_some());
        let tool_call = tool(&trace, &op.tool_call_id);
        assert_eq!(tool_call.terminal_operation_id.as_deref(), Some(op.operation_id.as_str()));
        assert_eq!(op.model_observations.len(), 1, "{} is seen by the model", op.operation_id);
    }
    match &stdin.request {
        TerminalRequest::WriteStdin { stdin, .. } => assert!(stdin.ends_with("quit\n"), "{stdin:?}"),
        other => panic!("write_stdin request {other:?}"),
    }
    // The process ended during the write: its exit is the exec's result.
    let exit = exec.result.as_ref().expect("exec result");
    assert_eq!(exit.exit_code, Some(0));
    assert!(exit.stdout.ends_with("bye\n"));
    assert!(exec.execution.ended_seq > Some(stdin.execution.started_seq));
}

#[test]
fn the_code_cell_owns_its_nested_tools_and_wait() {
    let trace = reduce();
    assert_eq!(trace.code_cells.len(), 1);
    let cell = trace.code_cells.values().next().expect("a code cell");
    assert_eq!(cell.execution.status, ExecutionStatus::Completed);
    assert!(cell.yielded_seq.is_some() && cell.yielded_seq < cell.execution.ended_seq);
    let source = item(&trace, &cell.source_item_id);
    assert_eq!(source.kind, ConversationItemKind::CustomToolCall);
    assert!(matches!(&source.body.parts[..], [ConversationPart::Code { source, .. }] if *source == cell.source_js));
    assert!(!cell.output_item_ids.is_empty());

    let requested_by_cell: Vec<&str> = trace
        .tool_calls
        .values()
        .filter(|call| call.requester == ToolCallRequester::CodeCell { code_cell_id: cell.code_cell_id.clone() })
        .map(|call| call.tool_call_id.as_str())
        .collect();
    assert_eq!(requested_by_cell.len(), 2);
    let mut nested: Vec<&str> = cell.nested_tool_call_ids.iter().map(String::as_str).collect();
    nested.sort();
    assert_eq!(nested, requested_by_cell);
    for id in &cell.nested_tool_call_ids {
        let nested = tool(&trace, id);
        assert_eq!(nested.kind, ToolCallKind::ExecCommand);
        assert_eq!(nested.model_visible_call_id, None);
        assert!(nested.code_mode_runtime_tool_id.is_some());
        assert!(nested.terminal_operation_id.is_some());
    }

    assert_eq!(cell.wait_tool_call_ids.len(), 1);
    let wait = tool(&trace, &cell.wait_tool_call_ids[0]);
    assert_eq!(wait.kind, ToolCallKind::Other { name: "wait".into() });
    assert_eq!(wait.requester, ToolCallRequester::Model);
    // The cell ended inside the wait.
    assert!(cell.execution.ended_seq > Some(wait.execution.started_seq));
    assert!(cell.execution.ended_seq < wait.execution.ended_seq);
}

#[test]
fn the_request_after_the_compaction_reuses_its_replacement_history() {
    let trace = reduce();
    assert_eq!(trace.compactions.len(), 1);
    let compaction = trace.compactions.values().next().expect("a compaction");
    assert_eq!(compaction.request_ids.len(), 1);
    let request = &trace.compaction_requests[&compaction.request_ids[0]];
    assert_eq!(request.execution.status, ExecutionStatus::Completed);
    assert!(request.raw_response_payload_id.is_some());

    let marker = item(&trace, &compaction.marker_item_id);
    assert_eq!(marker.kind, ConversationItemKind::CompactionMarker);
    assert!(compaction.input_item_ids.len() > compaction.replacement_item_ids.len());
    let summary = item(&trace, compaction.replacement_item_ids.last().expect("replacement items"));
    assert_eq!(summary.channel, Some(ConversationChannel::Summary));
    assert!(matches!(&summary.body.parts[..], [ConversationPart::Encoded { .. }]));

    let next = trace
        .inference_calls
        .values()
        .filter(|call| {
            call.thread_id == compaction.thread_id
                && call.execution.started_at_unix_ms >= compaction.installed_at_unix_ms
        })
        .min_by_key(|call| call.execution.started_seq)
        .expect("a request after the compaction");
    assert_eq!(next.codex_turn_id, compaction.codex_turn_id);
    for id in &compaction.replacement_item_ids {
        assert!(
            next.request_item_ids.iter().any(|listed| **listed == **id),
            "{} does not reuse {id}",
            next.inference_call_id
        );
    }
    // Nothing from before the compaction is sent again.
    for id in &compaction.input_item_ids {
        assert!(
            !next.request_item_ids.iter().any(|listed| **listed == **id),
            "{} resends {id}",
            next.inference_call_id
        );
    }
}

#[test]
fn messages_to_a_helper_target_the_items_it_receives() {
    let trace = reduce();
    for kind in [InteractionEdgeKind::SendMessage, InteractionEdgeKind::AssignAgentTask] {
        let found = edges(&trace, kind);
        assert_eq!(found.len(), 1, "{kind:?} edges");
        let edge = found[0];
        let sender = source_tool(&trace, edge);
        assert_eq!(edge.edge_id, format!("edge:tool:{}", sender.tool_call_id));
        assert_eq!(sender.thread_id, trace.root_thread_id);
        let target = item(&trace, target_item(edge));
        assert_ne!(target.thread_id, trace.root_thread_id);
        assert_eq!(delivered(target), ("/root".to_string(), message_argument(&trace, sender)));
        assert!(edge.ended_at_unix_ms.is_some());
        // Invocation, runtime begin and end, and result.
        assert_eq!(edge.carried_raw_payload_ids.len(), 4);
    }
}

#[test]
fn close_edges_target_helper_threads() {
    let trace = reduce();
    let closes = edges(&trace, InteractionEdgeKind::CloseAgent);
    assert!(!closes.is_empty());
    for edge in closes {
        assert_eq!(source_tool(&trace, edge).kind, ToolCallKind::CloseAgent);
        let TraceAnchor::Thread { thread_id } = &edge.target else {
            panic!("{} targets {:?}", edge.edge_id, edge.target)
        };
        assert!(helpers(&trace).iter().any(|(helper, _)| helper == thread_id));
        // The helper ended while it was being closed.
        let closed_at = trace.threads[thread_id].execution.ended_at_unix_ms.expect("helper ended");
        assert!(edge.started_at_unix_ms <= closed_at && Some(closed_at) <= edge.ended_at_unix_ms);
    }
}

#[test]
fn agent_results_run_from_the_helpers_answer_to_the_parents_notification() {
    let trace = reduce();
    let results = edges(&trace, InteractionEdgeKind::AgentResult);
    // One per helper turn: every helper's first turn and the follow-up.
    assert_eq!(results.len(), helpers(&trace).len() + 1);
    for edge in results {
        let TraceAnchor::ConversationItem { item_id: answer_id } = &edge.source else {
            panic!("{} has source {:?}", edge.edge_id, edge.source)
        };
        let answer = item(&trace, answer_id);
        assert_ne!(answer.thread_id, trace.root_thread_id);
        assert_eq!(answer.channel, Some(ConversationChannel::Final), "{answer_id} is the helper's answer");
        let helper = &trace.threads[&answer.thread_id];
        let turn = answer.codex_turn_id.as_deref().expect("turn");
        assert_eq!(edge.edge_id, format!("edge:agent_result:{}:{turn}:{}", helper.thread_id, trace.root_thread_id));
        let notification = item(&trace, target_item(edge));
        assert_eq!(notification.thread_id, trace.root_thread_id);
        assert_eq!(edge.carried_raw_payload_ids.len(), 1);
        // The notification names the helper and carries its answer.
        let (author, content) = delivered(notification);
        assert_eq!(author, helper.agent_path);
        let status = content
            .strip_prefix("<subagent_notification>")
            .and_then(|rest| rest.strip_suffix("</subagent_notification>"))
            .unwrap_or_else(|| panic!("notification {content:?}"));
        let status: Value = serde_json::from_str(status).expect("notification JSON");
        assert_eq!(status["status"]["completed"], texts(answer)[0]);
        assert!(trace
            .inference_calls
            .values()
            .any(|call| call.request_item_ids.iter().any(|id| **id == *notification.item_id)));
    }
}

#[test]
fn reduction_is_deterministic() {
    assert_eq!(reduce().to_json(), reduce().to_json());
}
