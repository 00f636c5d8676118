"""Provenance navigation: the questions the format was designed for, asked
of the realistic example bundle (exact answers) and of every conformance
state (answers consistent with the raw links of the graph)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import rollout_trace
from rollout_trace import AgentThread, ConversationItem, ItemOrigin, RolloutTrace, ToolCall

ROOT = Path(__file__).resolve().parents[1]
REALISTIC_BUNDLE = ROOT / "examples" / "realistic-bundle"
REALISTIC_CASE = ROOT / "tests" / "data" / "realistic"


def shared_dir() -> Path | None:
    configured = os.environ.get("ROLLOUT_TRACE_SHARED")
    path = Path(configured) if configured else ROOT.parent / "shared"
    return path if (path / "conformance").is_dir() else None


SHARED = shared_dir()
CONFORMANCE = SHARED / "conformance" if SHARED else None
OK_CASES = [REALISTIC_CASE] + (
    sorted(p for p in CONFORMANCE.iterdir() if (p / "expected.json").is_file()) if CONFORMANCE else []
)
needs_shared = pytest.mark.skipif(SHARED is None, reason="conformance cases not found (set ROLLOUT_TRACE_SHARED)")

ROOT_THREAD = "019b8db3-fcc1-70a5-bdca-2d3e42485e3a"
SCANNER = "019b8db4-ad4b-7241-b8f5-21027de8a234"
AUDITOR = "019b8db4-ad4b-7dd0-ade6-6ba39a1a7d6f"
CODE_CELL = "code_cell:call_hQHm6cqLAera5k3g6TpWY1qQ"


@pytest.fixture(scope="module")
def trace() -> RolloutTrace:
    return rollout_trace.replay_bundle(REALISTIC_BUNDLE)


def conformance(case: str) -> RolloutTrace:
    assert CONFORMANCE is not None
    return rollout_trace.replay_bundle(CONFORMANCE / case / "bundle")


# ------------------------------------------------ which inference issued a tool call


def test_tool_call_inference_is_the_response_that_started_it(trace: RolloutTrace) -> None:
    write = trace.tool_calls["call_C1F5s71irZ1thRhzP2N5rl08"]
    inference = write.inference_call
    assert inference is not None
    assert inference.inference_call_id == "0febd845-d0df-4e43-ad16-ee18552116dd"
    assert write in inference.tool_calls
    assert write.model_visible_call_items[0] in inference.response_items
    # What the model saw when it asked: the whole request, which holds the
    # outputs of the two exec calls before it.
    seen = [item.item_id for item in inference.request_items]
    assert seen[-2:] == ["conversation_item:8", "conversation_item:9"]
    assert {item.kind for item in inference.request_items} >= {"message", "function_call", "function_call_output"}


def test_two_calls_of_one_response_share_their_inference(trace: RolloutTrace) -> None:
    test_run = trace.tool_calls["call_6NgISIwGnzQ6itzm5JTGuE52"]
    repl = trace.tool_calls["call_ejGWbUno6N9jec3hQDz6j6AF"]
    assert test_run.inference_call == repl.inference_call
    assert test_run.inference_call is not None
    assert test_run.inference_call.tool_call_ids_started_by_response == (test_run.tool_call_id, repl.tool_call_id)


def test_every_model_tool_call_of_the_realistic_bundle_has_its_inference(trace: RolloutTrace) -> None:
    for call in trace.tool_calls.values():
        inference = call.inference_call
        assert inference is not None, call
        assert inference.thread_id == call.thread_id
        if call.requester.type == "model":
            assert call.tool_call_id in inference.tool_call_ids_started_by_response


def test_nested_tool_call_resolves_through_its_code_cell(trace: RolloutTrace) -> None:
    nested = trace.tool_calls["call_JjsAdvFVvCiRIPw9eWnSrWl8"]
    cell = nested.code_cell
    assert cell is not None and cell.code_cell_id == CODE_CELL
    assert nested.model_visible_call_item_ids == ()
    assert cell.inference_call is not None
    assert nested.inference_call == cell.inference_call
    assert cell.source_item in cell.inference_call.response_items


# ------------------------------------------------ where a conversation item came from


@pytest.mark.parametrize(
    ("item_id", "kind", "object_id"),
    [
        ("conversation_item:1", "transcript", None),  # developer instructions
        ("conversation_item:3", "transcript", None),  # the user's request
        ("conversation_item:4", "inference", "552f233a-8c25-466a-9ff3-9849b4e1357d"),
        ("conversation_item:6", "inference", "552f233a-8c25-466a-9ff3-9849b4e1357d"),  # a function call
        ("conversation_item:8", "terminal_operation", "terminal_operation:1"),  # exec output
        ("conversation_item:12", "terminal_operation", "terminal_operation:3"),  # write_stdin output
        ("conversation_item:18", "code_cell", CODE_CELL),  # code-mode runtime value
        ("conversation_item:34", "tool", "call_xKbMWHE032sB5hcwrMHfZQNp"),  # apply_patch output
        ("conversation_item:24", "compaction", "8c69778f-fd42-4697-a511-16565c646036"),  # marker
        ("conversation_item:25", "compaction", "8c69778f-fd42-4697-a511-16565c646036"),  # replacement
        ("conversation_item:48", "agent_message", f"edge:spawn:{ROOT_THREAD}:{SCANNER}"),  # spawn task
        ("conversation_item:71", "agent_message", "edge:tool:call_Fr8v7qZAXCHnAR3osSu5OJwk"),  # send_message
        ("conversation_item:66", "agent_message", None),  # a helper's result notification
    ],
)
def test_item_origin(trace: RolloutTrace, item_id: str, kind: str, object_id: str | None) -> None:
    origin = trace.conversation_items[item_id].origin
    assert isinstance(origin, ItemOrigin)
    assert origin.type == kind
    found = origin.object
    if kind == "transcript":
        assert found is None
    else:
        assert found is not None
    if object_id is not None:
        ids = {
            "inference": origin.inference_call_id,
            "terminal_operation": origin.terminal_operation_id,
            "code_cell": origin.code_cell_id,
            "tool": origin.tool_call_id,
            "compaction": origin.compaction_id,
            "agent_message": origin.edge_id,
        }
        assert ids[kind] == object_id


def test_origin_of_terminal_output_links_tool_and_operation(trace: RolloutTrace) -> None:
    origin = trace.conversation_items["conversation_item:8"].origin
    assert origin.tool_call is not None and origin.tool_call.tool_call_id == "call_6NgISIwGnzQ6itzm5JTGuE52"
    operation = origin.terminal_operation
    assert operation is not None
    assert operation.tool_call == origin.tool_call
    assert operation.result is not None and operation.result.exit_code == 101
    assert origin.inference_call is None
    assert origin.to_dict() == {
        "type": "terminal_operation",
        "inference_call_id": None,
        "tool_call_id": "call_6NgISIwGnzQ6itzm5JTGuE52",
        "code_cell_id": None,
        "terminal_operation_id": "terminal_operation:1",
        "edge_id": None,
        "compaction_id": None,
    }
    assert repr(origin) == "<ItemOrigin terminal_operation terminal_operation:1>"


def test_result_notification_comes_from_the_child_through_an_edge(trace: RolloutTrace) -> None:
    notification = trace.conversation_items["conversation_item:66"]
    edge = notification.origin.interaction_edge
    assert edge is not None and edge.kind == "agent_result"
    assert edge.target_object == notification
    assert edge.source_thread is not None and edge.source_thread.thread_id == AUDITOR
    assert edge.target_thread is not None and edge.target_thread.thread_id == ROOT_THREAD
    # The child's answer the notification carries was written by the model.
    answer = edge.source_object
    assert isinstance(answer, ConversationItem) and answer.origin.type == "inference"


def test_origin_value_semantics(trace: RolloutTrace) -> None:
    first = trace.conversation_items["conversation_item:18"].origin
    again = trace.conversation_items["conversation_item:18"].origin
    assert first == again and hash(first) == hash(again)
    assert first != trace.conversation_items["conversation_item:8"].origin


# ------------------------------------------------ code cells and their nested activity


def test_code_cell_nested_activity(trace: RolloutTrace) -> None:
    cell = trace.code_cells[CODE_CELL]
    assert [call.kind.type for call in cell.nested_tool_calls] == ["exec_command", "exec_command"]
    assert all(call.code_cell == cell for call in cell.nested_tool_calls)
    operations = cell.terminal_operations
    assert [operation.operation_id for operation in operations] == ["terminal_operation:4", "terminal_operation:5"]
    assert [operation.request.display_command for operation in operations] == [
        "/bin/bash -lc git ls-files crates/ledger-core/src | wc -l",
        "/bin/bash -lc rg -c 'TODO|FIXME' crates/ledger-core/src",
    ]
    assert [call.tool_call_id for call in cell.wait_tool_calls] == ["call_MHmpM3TRsLGe27ZoFBR6czyH"]
    assert [item.origin.type for item in cell.output_items] == ["code_cell"]
    assert cell.thread.code_cells == (cell,)
    assert cell.codex_turn.code_cells == (cell,)


# ------------------------------------------------ terminal processes


def test_terminal_session_creator_and_later_operations(trace: RolloutTrace) -> None:
    session = trace.terminal_sessions["34554"]
    creator = session.created_by_operation
    assert creator.kind == "exec_command"
    assert creator.request.display_command == "/bin/bash -lc cargo run -q -p ledger-cli -- repl"
    assert [operation.kind for operation in session.operations] == ["exec_command", "write_stdin"]
    later = session.operations[1]
    assert later.session == session
    assert later.tool_call.inference_call is not None
    assert later.tool_call.inference_call != creator.tool_call.inference_call


# ------------------------------------------------ threads and the edges between them


def test_thread_parent_children_and_edges(trace: RolloutTrace) -> None:
    root = trace.root_thread
    assert root is not None and root.parent is None
    assert [child.thread_id for child in root.children] == [SCANNER, AUDITOR]
    assert root.children == root.child_threads
    for child in root.children:
        assert child.parent == root == child.parent_thread

    scanner = trace.threads[SCANNER]
    kinds = [edge.kind for edge in scanner.edges]
    assert kinds == ["spawn_agent", "agent_result", "send_message", "assign_agent_task", "agent_result"]
    spawn = scanner.edges[0]
    assert spawn == scanner.spawn_edge
    assert spawn.tool_call is not None and spawn.tool_call.kind.type == "spawn_agent"
    assert spawn.tool_call.inference_call is not None
    assert spawn.target_thread == scanner and spawn.source_thread == root
    message = scanner.edges[2]
    assert message.tool_call is not None and message.tool_call.tool_call_id == "call_Fr8v7qZAXCHnAR3osSu5OJwk"
    assert [edge.tool_call for edge in scanner.edges if edge.kind == "agent_result"] == [None, None]

    auditor = trace.threads[AUDITOR]
    assert [edge.kind for edge in auditor.edges] == ["spawn_agent", "agent_result", "close_agent"]
    close = auditor.edges[-1]
    assert close.target_object == auditor
    assert close.tool_call is not None and close.tool_call.kind.type == "close_agent"
    # The root sees every edge: it made or received each one.
    assert set(root.edges) == set(trace.interaction_edges.values())


# ------------------------------------------------ conformance cases


@needs_shared
def test_conformance_tool_call_links_model_call() -> None:
    trace = conformance("reducer__conversation__tests__tool_call_links_model_call_and_followup_output_items")
    call = trace.tool_calls["tool-1"]
    assert call.inference_call is not None and call.inference_call.inference_call_id == "inference-1"
    [output] = call.model_visible_output_items
    assert output.origin.type == "tool" and output.origin.tool_call == call
    assert [item.origin.type for item in call.inference_call.request_items] == ["transcript"]


@needs_shared
def test_conformance_code_cell_nested_tool() -> None:
    trace = conformance("reducer__code_cell__tests__code_cell_lifecycle_links_nested_tools_waits_and_outputs")
    nested = trace.tool_calls["nested-tool-1"]
    cell = nested.code_cell
    assert cell is not None and cell.code_cell_id == "code_cell:call-code"
    assert cell.nested_tool_calls == (nested,)
    assert nested.inference_call is not None and nested.inference_call.inference_call_id == "inference-1"
    assert [item.origin.type for item in cell.output_items] == ["code_cell"]


@needs_shared
def test_conformance_terminal_session_operations() -> None:
    trace = conformance("reducer__tool__terminal__tests__write_stdin_operation_reuses_existing_terminal_session")
    [session] = trace.terminal_sessions.values()
    assert session.created_by_operation.tool_call.tool_call_id == "tool-start"
    assert [operation.tool_call.tool_call_id for operation in session.operations] == ["tool-start", "tool-stdin"]
    # No inference issued these calls in this case.
    assert all(operation.tool_call.inference_call is None for operation in session.operations)


@needs_shared
@pytest.mark.parametrize(
    ("case", "kind", "tool_call_id"),
    [
        ("reducer__tool__agents__tests__send_message_activity_targets_delivered_child_message", "send_message", "call-send-v2"),
        ("reducer__tool__agents__tests__close_agent_runtime_payload_targets_thread", "close_agent", "call-close"),
        ("reducer__tool__agents__tests__agent_result_edge_links_child_result_to_parent_notification", "agent_result", None),
        ("reducer__tool__agents__tests__spawn_runtime_payload_targets_delivered_child_message", "spawn_agent", None),
    ],
)
def test_conformance_agent_edges(case: str, kind: str, tool_call_id: str | None) -> None:
    trace = conformance(case)
    [edge] = [edge for edge in trace.interaction_edges.values() if edge.kind == kind]
    tool = edge.tool_call
    if kind == "agent_result":
        assert tool is None
    else:
        assert tool is not None and tool.thread == edge.source_thread
        if tool_call_id is not None:
            assert tool.tool_call_id == tool_call_id
    for thread in (edge.source_thread, edge.target_thread):
        assert thread is not None and edge in thread.edges
    if isinstance(edge.target_object, ConversationItem):
        assert edge.target_object.origin.type == "agent_message"
        assert edge.target_object.origin.interaction_edge == edge


# ------------------------------------------------ every state: navigation agrees with the raw links


def _check_tool_call(call: ToolCall) -> None:
    inference = call.inference_call
    if inference is None:
        return
    cell = call.code_cell
    if cell is not None:
        assert cell.inference_call == inference
        assert cell.source_item_id in inference.response_item_ids
    else:
        assert call.tool_call_id in inference.tool_call_ids_started_by_response or any(
            item in inference.response_item_ids for item in call.model_visible_call_item_ids
        )


def _check_item(trace: RolloutTrace, item: ConversationItem) -> None:
    origin = item.origin
    kinds = [producer.type for producer in item.produced_by]
    if origin.type == "transcript":
        assert kinds == []
        assert origin.edge_id is None
    elif origin.type == "inference":
        assert origin.inference_call is not None and item.item_id in origin.inference_call.response_item_ids
    elif origin.type in ("tool", "terminal_operation"):
        assert origin.tool_call is not None and item.item_id in origin.tool_call.model_visible_output_item_ids
        if origin.type == "terminal_operation":
            assert origin.terminal_operation == origin.tool_call.terminal_operation
    elif origin.type == "code_cell":
        assert origin.code_cell is not None and item.item_id in origin.code_cell.output_item_ids
    elif origin.type == "agent_message":
        edge = origin.interaction_edge
        assert edge is not None
        assert edge.target_object == item or item.item_id in edge.carried_item_ids
    else:
        assert origin.type == "compaction"
        compaction = origin.compaction
        if compaction is not None:  # a dangling producer id resolves to None
            assert item.item_id in (compaction.marker_item_id, *compaction.replacement_item_ids)


def _check_thread(trace: RolloutTrace, thread: AgentThread) -> None:
    for edge in thread.edges:
        assert thread in (edge.source_thread, edge.target_thread)
    starts = [(edge.started_at_unix_ms, edge.edge_id) for edge in thread.edges]
    assert starts == sorted(starts)
    for child in thread.children:
        assert child.parent == thread


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in OK_CASES])
def test_navigation_agrees_with_raw_links(case: Path) -> None:
    text = (case / "expected.json").read_text(encoding="utf-8")
    trace = RolloutTrace.from_json(text)
    state: dict[str, Any] = json.loads(text)
    for call in trace.tool_calls.values():
        _check_tool_call(call)
    for item in trace.conversation_items.values():
        _check_item(trace, item)
    touched: set[str] = set()
    for thread in trace.threads.values():
        _check_thread(trace, thread)
        touched.update(edge.edge_id for edge in thread.edges)
    # Every edge whose anchors resolve is seen from some thread.
    for edge in trace.interaction_edges.values():
        if edge.source_thread is not None or edge.target_thread is not None:
            assert edge.edge_id in touched
    assert len(state["interaction_edges"]) == len(trace.interaction_edges)
