"""The Python API over the reduced graph, checked against every conformance
case's `expected.json` (read with `RolloutTrace.from_json`, so these tests do
not depend on the reducer) and against a synthetic state that holds every
variant of every tagged union."""

from __future__ import annotations

import collections.abc
import copy
import json
import os
import pickle
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import rollout_trace
from rollout_trace import (
    AgentMessageMetadata,
    AgentOrigin,
    AgentThread,
    CodeCell,
    CodexTurn,
    Compaction,
    CompactionRequest,
    ConversationBody,
    ConversationItem,
    ConversationPart,
    ExecutionWindow,
    InferenceCall,
    InteractionEdge,
    PayloadError,
    ProducerRef,
    RawPayloadRef,
    RolloutTrace,
    StateError,
    TerminalModelObservation,
    TerminalOperation,
    TerminalRequest,
    TerminalResult,
    TerminalSession,
    TokenUsage,
    ToolCall,
    ToolCallKind,
    ToolCallRequester,
    ToolCallSummary,
    TraceAnchor,
    TraceBundle,
    TraceError,
    TraceMapping,
    UnsafePathError,
    WriteError,
)


def shared_dir() -> Path | None:
    configured = os.environ.get("ROLLOUT_TRACE_SHARED")
    path = Path(configured) if configured else Path(__file__).resolve().parents[1].parent / "shared"
    return path if (path / "conformance").is_dir() else None


SHARED = shared_dir()
# The realistic example bundle (examples/, with its reduced state as a golden
# file) is walked like the conformance cases, and needs no ../shared.
REALISTIC_CASE = Path(__file__).resolve().parent / "data" / "realistic"
OK_CASES = [REALISTIC_CASE] + (
    sorted(p for p in (SHARED / "conformance").iterdir() if (p / "expected.json").is_file()) if SHARED else []
)
needs_shared = pytest.mark.skipif(SHARED is None, reason="conformance cases not found (set ROLLOUT_TRACE_SHARED)")


def case_params() -> list[Any]:
    return [pytest.param(case, id=case.name) for case in OK_CASES]


def load_case(case: Path) -> tuple[RolloutTrace, str, dict[str, Any]]:
    text = (case / "expected.json").read_text(encoding="utf-8")
    return RolloutTrace.from_json(text, bundle=case / "bundle"), text, json.loads(text)


MAPS = {
    "threads": AgentThread,
    "codex_turns": CodexTurn,
    "conversation_items": ConversationItem,
    "inference_calls": InferenceCall,
    "code_cells": CodeCell,
    "tool_calls": ToolCall,
    "terminal_sessions": TerminalSession,
    "terminal_operations": TerminalOperation,
    "compactions": Compaction,
    "compaction_requests": CompactionRequest,
    "interaction_edges": InteractionEdge,
    "raw_payloads": RawPayloadRef,
}

# The class of a field whose JSON value is an object (or a list of objects).
CLASS_OF_FIELD = {
    "execution": ExecutionWindow,
    "usage": TokenUsage,
    "origin": AgentOrigin,
    "agent_message": AgentMessageMetadata,
    "body": ConversationBody,
    "parts": ConversationPart,
    "produced_by": ProducerRef,
    "requester": ToolCallRequester,
    "kind": ToolCallKind,
    "summary": ToolCallSummary,
    "request": TerminalRequest,
    "result": TerminalResult,
    "model_observations": TerminalModelObservation,
    "source": TraceAnchor,
    "target": TraceAnchor,
}

# Every field of every variant of each tagged union.
UNION_FIELDS = {
    AgentOrigin: {"parent_thread_id", "spawn_edge_id", "task_name", "agent_role"},
    ConversationPart: {"text", "label", "value", "summary", "raw_payload_id", "language", "source"},
    ProducerRef: {"inference_call_id", "tool_call_id", "code_cell_id", "edge_id", "compaction_id"},
    ToolCallRequester: {"code_cell_id"},
    ToolCallKind: {"server", "tool", "name"},
    ToolCallSummary: {
        "operation_id",
        "target_agent_path",
        "task_name",
        "message_preview",
        "timeout_ms",
        "label",
        "input_preview",
        "output_preview",
    },
    TerminalRequest: {"command", "display_command", "cwd", "stdin", "yield_time_ms", "max_output_tokens"},
    TraceAnchor: {"item_id", "tool_call_id", "thread_id"},
}
# Fields shared by every variant of a union: always readable.
UNION_COMMON = {TerminalRequest: {"yield_time_ms", "max_output_tokens"}}


def check_value(actual: Any, expected: Any, field: str) -> None:
    if isinstance(expected, dict):
        check_object(actual, expected, CLASS_OF_FIELD[field])
    elif isinstance(expected, list):
        assert isinstance(actual, tuple), field
        assert len(actual) == len(expected), field
        for one_actual, one_expected in zip(actual, expected):
            check_value(one_actual, one_expected, field)
    else:
        assert actual == expected, field
        assert type(actual) is type(expected), field


def check_object(obj: Any, expected: dict[str, Any], cls: type) -> None:
    """`obj` shows exactly `expected` (one object of state.json) through its
    attributes and `to_dict()`."""
    assert type(obj) is cls
    if cls is RawPayloadRef:
        assert (obj.raw_payload_id, obj.kind, obj.path) == (
            expected["raw_payload_id"],
            expected["kind"]["type"],
            expected["path"],
        )
        assert obj.to_dict() == expected
        return
    assert obj.to_dict() == expected
    for field, value in expected.items():
        if field == "type":
            assert obj.type == value
        else:
            check_value(getattr(obj, field), value, field)
    if cls is ConversationItem and "agent_message" not in expected:
        assert obj.agent_message is None
    for field in UNION_FIELDS.get(cls, set()) - expected.keys() - UNION_COMMON.get(cls, set()):
        assert not hasattr(obj, field), (cls, expected["type"], field)
        with pytest.raises(AttributeError, match=field):
            getattr(obj, field)
    # Repeated access gives equal objects with equal hashes.
    assert obj == obj
    short = repr(obj)
    assert len(short) < 300 and "\n" not in short


def walk(trace: RolloutTrace, expected: dict[str, Any]) -> int:
    """Checks every attribute of every object; returns how many it saw."""
    seen = 0
    for field, value in expected.items():
        if field in MAPS:
            mapping = getattr(trace, field)
            assert isinstance(mapping, TraceMapping)
            assert isinstance(mapping, collections.abc.Mapping)
            assert mapping.name == field
            assert len(mapping) == len(value)
            assert list(mapping) == list(value) == sorted(value)
            assert list(mapping.keys()) == list(value)
            for key, obj in mapping.items():
                assert key in mapping
                check_object(obj, value[key], MAPS[field])
                assert mapping[key] == obj and hash(mapping[key]) == hash(obj)
                seen += 1
            assert [obj.to_dict() for obj in mapping.values()] == list(value.values())
        else:
            assert getattr(trace, field) == value, field
            assert type(getattr(trace, field)) is type(value), field
    return seen


@pytest.mark.parametrize("case", case_params())
def test_state_json_round_trips_exactly(case: Path) -> None:
    trace, text, expected = load_case(case)
    assert trace.to_json() == text
    assert RolloutTrace.from_json(text.encode()).to_json() == text
    assert RolloutTrace.from_json(bytearray(text.encode())).to_json() == text
    assert trace.to_dict() == expected
    assert list(trace.to_dict()) == list(expected)


@pytest.mark.parametrize("case", case_params())
def test_every_object_and_attribute_matches_state_json(case: Path) -> None:
    trace, _, expected = load_case(case)
    assert walk(trace, expected) == sum(len(v) for v in expected.values() if isinstance(v, dict))


# (map, id field, companion, target map): ids the model guarantees.
ONE = [
    ("codex_turns", "thread_id", "thread", "threads"),
    ("conversation_items", "thread_id", "thread", "threads"),
    ("conversation_items", "codex_turn_id", "codex_turn", "codex_turns"),
    ("inference_calls", "thread_id", "thread", "threads"),
    ("inference_calls", "codex_turn_id", "codex_turn", "codex_turns"),
    ("compactions", "thread_id", "thread", "threads"),
    ("compactions", "codex_turn_id", "codex_turn", "codex_turns"),
    ("compactions", "marker_item_id", "marker_item", "conversation_items"),
    ("compaction_requests", "thread_id", "thread", "threads"),
    ("compaction_requests", "codex_turn_id", "codex_turn", "codex_turns"),
    ("code_cells", "thread_id", "thread", "threads"),
    ("code_cells", "codex_turn_id", "codex_turn", "codex_turns"),
    ("code_cells", "source_item_id", "source_item", "conversation_items"),
    ("tool_calls", "thread_id", "thread", "threads"),
    ("tool_calls", "started_by_codex_turn_id", "started_by_codex_turn", "codex_turns"),
    ("tool_calls", "terminal_operation_id", "terminal_operation", "terminal_operations"),
    ("terminal_sessions", "thread_id", "thread", "threads"),
    ("terminal_sessions", "created_by_operation_id", "created_by_operation", "terminal_operations"),
    ("terminal_operations", "terminal_id", "session", "terminal_sessions"),
    ("terminal_operations", "tool_call_id", "tool_call", "tool_calls"),
]
MANY = [
    ("threads", "conversation_item_ids", "conversation", "conversation_items"),
    ("codex_turns", "input_item_ids", "input_items", "conversation_items"),
    ("inference_calls", "request_item_ids", "request_items", "conversation_items"),
    ("inference_calls", "response_item_ids", "response_items", "conversation_items"),
    ("inference_calls", "tool_call_ids_started_by_response", "tool_calls", "tool_calls"),
    ("compactions", "request_ids", "requests", "compaction_requests"),
    ("compactions", "input_item_ids", "input_items", "conversation_items"),
    ("compactions", "replacement_item_ids", "replacement_items", "conversation_items"),
    ("code_cells", "output_item_ids", "output_items", "conversation_items"),
    ("code_cells", "nested_tool_call_ids", "nested_tool_calls", "tool_calls"),
    ("code_cells", "wait_tool_call_ids", "wait_tool_calls", "tool_calls"),
    ("tool_calls", "model_visible_call_item_ids", "model_visible_call_items", "conversation_items"),
    ("tool_calls", "model_visible_output_item_ids", "model_visible_output_items", "conversation_items"),
    ("terminal_sessions", "operation_ids", "operations", "terminal_operations"),
    ("interaction_edges", "carried_item_ids", "carried_items", "conversation_items"),
]
PAYLOAD_ONE = [
    ("inference_calls", "raw_request_payload_id", "raw_request_payload"),
    ("inference_calls", "raw_response_payload_id", "raw_response_payload"),
    ("compaction_requests", "raw_request_payload_id", "raw_request_payload"),
    ("compaction_requests", "raw_response_payload_id", "raw_response_payload"),
    ("tool_calls", "raw_invocation_payload_id", "raw_invocation_payload"),
    ("tool_calls", "raw_result_payload_id", "raw_result_payload"),
]
PAYLOAD_MANY = [
    ("tool_calls", "raw_runtime_payload_ids", "raw_runtime_payloads"),
    ("terminal_operations", "raw_payload_ids", "raw_payloads"),
    ("interaction_edges", "carried_raw_payload_ids", "carried_raw_payloads"),
]
ANCHOR_MAPS = {
    "conversation_item": ("conversation_items", "item_id"),
    "tool_call": ("tool_calls", "tool_call_id"),
    "thread": ("threads", "thread_id"),
}
PRODUCER_MAPS = {
    "inference": ("inference_calls", "inference_call_id"),
    "tool": ("tool_calls", "tool_call_id"),
    "code_cell": ("code_cells", "code_cell_id"),
    "interaction_edge": ("interaction_edges", "edge_id"),
    "compaction": ("compactions", "compaction_id"),
}


def in_start_order(trace: RolloutTrace, name: str, keep: Any) -> list[Any]:
    found = [obj for obj in getattr(trace, name).values() if keep(obj)]
    return sorted(found, key=lambda obj: obj.execution.started_seq)


def optional_lookup(mapping: TraceMapping[Any], key: str) -> Any:
    return mapping[key] if key in mapping else None


def check_navigation(trace: RolloutTrace, expected: dict[str, Any]) -> None:
    for name, id_field, companion, target in ONE:
        for key, value in expected[name].items():
            resolved = getattr(getattr(trace, name)[key], companion)
            if value[id_field] is None:
                assert resolved is None
            else:
                assert resolved == getattr(trace, target)[value[id_field]]
                assert type(resolved) is MAPS[target]
    for name, ids_field, companion, target in MANY:
        for key, value in expected[name].items():
            resolved = getattr(getattr(trace, name)[key], companion)
            assert isinstance(resolved, tuple)
            assert resolved == tuple(getattr(trace, target)[id] for id in value[ids_field])
    payloads = trace.raw_payloads
    for name, id_field, companion in PAYLOAD_ONE:
        for key, value in expected[name].items():
            resolved = getattr(getattr(trace, name)[key], companion)
            # Every path to a payload shares one RawPayloadRef (and its cache).
            assert resolved is (None if value[id_field] is None else payloads[value[id_field]])
    for name, ids_field, companion in PAYLOAD_MANY:
        for key, value in expected[name].items():
            resolved = getattr(getattr(trace, name)[key], companion)
            assert len(resolved) == len(value[ids_field])
            assert all(ref is payloads[id] for ref, id in zip(resolved, value[ids_field]))

    root = trace.root_thread
    assert root == optional_lookup(trace.threads, expected["root_thread_id"])
    for thread in trace.threads.values():
        assert list(thread.turns) == in_start_order(trace, "codex_turns", lambda t: t.thread_id == thread.thread_id)
        assert list(thread.inference_calls) == in_start_order(
            trace, "inference_calls", lambda c: c.thread_id == thread.thread_id
        )
        assert list(thread.tool_calls) == in_start_order(trace, "tool_calls", lambda c: c.thread_id == thread.thread_id)
        origin = expected["threads"][thread.thread_id]["origin"]
        if origin["type"] == "spawned":
            assert thread.parent_thread == optional_lookup(trace.threads, origin["parent_thread_id"])
            assert thread.spawn_edge == optional_lookup(trace.interaction_edges, origin["spawn_edge_id"])
        else:
            assert thread.parent_thread is None and thread.spawn_edge is None
        assert list(thread.child_threads) == in_start_order(
            trace,
            "threads",
            lambda t: t.origin.type == "spawned" and t.origin.parent_thread_id == thread.thread_id,
        )
    for turn in trace.codex_turns.values():
        assert list(turn.inference_calls) == in_start_order(
            trace, "inference_calls", lambda c: c.codex_turn_id == turn.codex_turn_id
        )
        assert list(turn.tool_calls) == in_start_order(
            trace, "tool_calls", lambda c: c.started_by_codex_turn_id == turn.codex_turn_id
        )
    for request in trace.compaction_requests.values():
        assert request.compaction == optional_lookup(trace.compactions, request.compaction_id)
    for call in trace.tool_calls.values():
        requester = call.requester
        if requester.type == "code_cell":
            assert call.code_cell == optional_lookup(trace.code_cells, requester.code_cell_id)
        else:
            assert call.code_cell is None
    for item in trace.conversation_items.values():
        producers = []
        for producer in item.produced_by:
            if producer.type in PRODUCER_MAPS:
                target, id_field = PRODUCER_MAPS[producer.type]
                obj = optional_lookup(getattr(trace, target), getattr(producer, id_field))
            else:
                obj = None
            assert producer.object == obj
            if obj is not None:
                producers.append(obj)
        assert list(item.producers) == producers
        for part in item.body.parts:
            if part.type in ("json", "payload_ref"):
                assert part.raw_payload is payloads[part.raw_payload_id]
            else:
                assert not hasattr(part, "raw_payload")
    for edge in trace.interaction_edges.values():
        for anchor, obj in ((edge.source, edge.source_object), (edge.target, edge.target_object)):
            target, id_field = ANCHOR_MAPS[anchor.type]
            assert obj == optional_lookup(getattr(trace, target), getattr(anchor, id_field))
            assert anchor.object == obj
    for operation in trace.terminal_operations.values():
        for observation in operation.model_observations:
            assert observation.call_items == tuple(trace.conversation_items[i] for i in observation.call_item_ids)
            assert observation.output_items == tuple(trace.conversation_items[i] for i in observation.output_item_ids)


@pytest.mark.parametrize("case", case_params())
def test_navigation_resolves_ids_to_objects(case: Path) -> None:
    trace, _, expected = load_case(case)
    check_navigation(trace, expected)


@pytest.mark.parametrize("case", case_params())
def test_objects_compare_and_hash_by_value(case: Path) -> None:
    trace, text, _ = load_case(case)
    again = RolloutTrace.from_json(text)  # another graph, no bundle
    assert again == trace and hash(again) == hash(trace)
    for name in MAPS:
        ours, theirs = getattr(trace, name), getattr(again, name)
        assert ours == theirs
        assert ours == dict(theirs.items())
        for key in ours:
            assert ours[key] == theirs[key] and hash(ours[key]) == hash(theirs[key])
        assert len(set(ours.values())) == len(ours)
    items = list(trace.conversation_items.values())
    for first, second in zip(items, items[1:]):
        assert first != second


@pytest.mark.parametrize("case", case_params())
def test_pickling_round_trips(case: Path) -> None:
    trace, _, expected = load_case(case)
    restored = pickle.loads(pickle.dumps(trace))
    assert restored == trace and restored.to_json() == trace.to_json()
    assert restored.bundle == trace.bundle
    bundle = trace.bundle
    assert bundle is not None
    assert pickle.loads(pickle.dumps(bundle)) == bundle
    for ref in trace.raw_payloads.values():
        copy_ = pickle.loads(pickle.dumps(ref))
        assert copy_ == ref and copy_.bundle == ref.bundle and not copy_.is_loaded
    for name in MAPS:
        assert pickle.loads(pickle.dumps(getattr(trace, name))) == getattr(trace, name)
        for obj in list(getattr(trace, name).values())[:3]:
            assert pickle.loads(pickle.dumps(obj)) == obj
    assert walk(restored, expected) > 0


def test_every_union_variant(all_variants: tuple[RolloutTrace, dict[str, Any]]) -> None:
    trace, expected = all_variants
    walk(trace, expected)
    check_navigation(trace, expected)
    parts = trace.conversation_items["item:all-parts"].body.parts
    assert [part.type for part in parts] == ["text", "summary", "encoded", "json", "code", "payload_ref"]
    kinds = {call.kind.type for call in trace.tool_calls.values()}
    assert kinds >= {"mcp", "web", "apply_patch", "image_generation", "wait_agent", "other"}
    mcp = trace.tool_calls["tool:mcp"]
    assert (mcp.kind.server, mcp.kind.tool) == ("files", "read")
    assert mcp.summary.type == "agent" and mcp.summary.task_name is None
    assert trace.tool_calls["tool:wait"].summary.timeout_ms == 18446744073709551615
    assert trace.inference_calls["inference:usage"].usage == trace.inference_calls["inference:usage"].usage
    usage = trace.inference_calls["inference:usage"].usage
    assert usage is not None and usage.cache_write_input_tokens == 7
    window = trace.inference_calls["inference:usage"].execution
    assert window.duration_ms == 25
    assert window.ended_seq == 9 and window.status == "completed"


@pytest.fixture
def all_variants() -> tuple[RolloutTrace, dict[str, Any]]:
    """A small state with every variant of every tagged union."""
    thread = {
        "thread_id": "thread:root",
        "agent_path": "/root",
        "nickname": "Ada",
        "origin": {"type": "root"},
        "execution": window(1, None, "running"),
        "default_model": "gpt",
        "conversation_item_ids": ["item:all-parts"],
    }
    child = dict(
        thread,
        thread_id="thread:child",
        agent_path="/root/child",
        nickname=None,
        origin={
            "type": "spawned",
            "parent_thread_id": "thread:root",
            "spawn_edge_id": "edge:spawn",
            "task_name": "count",
            "agent_role": "worker",
        },
        conversation_item_ids=[],
    )
    item = {
        "item_id": "item:all-parts",
        "thread_id": "thread:root",
        "codex_turn_id": None,
        "first_seen_at_unix_ms": 5,
        "role": "assistant",
        "channel": "final",
        "kind": "message",
        "agent_message": {"author": "/root", "recipient": "/root/child"},
        "body": {
            "parts": [
                {"type": "text", "text": "hello"},
                {"type": "summary", "text": "thinking"},
                {"type": "encoded", "label": "encrypted_content", "value": "gAAA"},
                {"type": "json", "summary": "{}", "raw_payload_id": "raw:1"},
                {"type": "code", "language": "javascript", "source": "text('hi')"},
                {"type": "payload_ref", "label": "image", "raw_payload_id": "raw:2"},
            ]
        },
        "call_id": None,
        "produced_by": [
            {"type": "user_input"},
            {"type": "inference", "inference_call_id": "inference:usage"},
            {"type": "tool", "tool_call_id": "tool:mcp"},
            {"type": "code_cell", "code_cell_id": "code_cell:missing"},
            {"type": "interaction_edge", "edge_id": "edge:spawn"},
            {"type": "compaction", "compaction_id": "compaction:missing"},
            {"type": "harness"},
        ],
    }
    inference = {
        "inference_call_id": "inference:usage",
        "thread_id": "thread:root",
        "codex_turn_id": "turn:1",
        "execution": window(3, 9, "completed"),
        "model": "gpt",
        "provider_name": "openai",
        "response_id": "resp",
        "upstream_request_id": "req",
        "request_item_ids": [],
        "response_item_ids": ["item:all-parts"],
        "tool_call_ids_started_by_response": ["tool:mcp"],
        "usage": {
            "input_tokens": 10,
            "cached_input_tokens": 2,
            "cache_write_input_tokens": 7,
            "output_tokens": 5,
            "reasoning_output_tokens": 1,
        },
        "raw_request_payload_id": "raw:1",
        "raw_response_payload_id": None,
    }
    turn = {
        "codex_turn_id": "turn:1",
        "thread_id": "thread:root",
        "execution": window(2, None, "running"),
        "input_item_ids": [],
    }
    tools: dict[str, Any] = {}
    kinds = [
        ("tool:mcp", {"type": "mcp", "server": "files", "tool": "read"}, agent_summary()),
        ("tool:web", {"type": "web"}, generic("web")),
        ("tool:patch", {"type": "apply_patch"}, generic("apply_patch")),
        ("tool:image", {"type": "image_generation"}, generic("image")),
        ("tool:assign", {"type": "assign_agent_task"}, generic("assign")),
        (
            "tool:wait",
            {"type": "wait_agent"},
            {"type": "wait_agent", "target_agent_path": None, "timeout_ms": 18446744073709551615},
        ),
        ("tool:other", {"type": "other", "name": "custom"}, generic("custom")),
        ("tool:exec", {"type": "exec_command"}, {"type": "terminal", "operation_id": "op:1"}),
    ]
    for seq, (tool_id, kind, summary) in enumerate(kinds, start=10):
        tools[tool_id] = {
            "tool_call_id": tool_id,
            "mcp_call_id": "mcp-1" if kind["type"] == "mcp" else None,
            "model_visible_call_id": None,
            "code_mode_runtime_tool_id": None,
            "thread_id": "thread:root",
            "started_by_codex_turn_id": "turn:1",
            "execution": window(seq, None, "running"),
            "requester": {"type": "code_cell", "code_cell_id": "code_cell:missing"}
            if kind["type"] == "web"
            else {"type": "model"},
            "kind": kind,
            "model_visible_call_item_ids": [],
            "model_visible_output_item_ids": [],
            "terminal_operation_id": "op:1" if kind["type"] == "exec_command" else None,
            "summary": summary,
            "raw_invocation_payload_id": None,
            "raw_result_payload_id": None,
            "raw_runtime_payload_ids": [],
        }
    operations = {
        "op:1": {
            "operation_id": "op:1",
            "terminal_id": None,
            "tool_call_id": "tool:exec",
            "kind": "exec_command",
            "execution": window(20, 21, "failed"),
            "request": {
                "type": "exec_command",
                "command": ["bash", "-lc", "ls"],
                "display_command": "ls",
                "cwd": "/",
                "yield_time_ms": None,
                "max_output_tokens": 100,
            },
            "result": {
                "exit_code": -1,
                "stdout": "",
                "stderr": "boom",
                "formatted_output": None,
                "original_token_count": 3,
                "chunk_id": "c",
            },
            "model_observations": [
                {"call_item_ids": ["item:all-parts"], "output_item_ids": [], "source": "code_cell_output"}
            ],
            "raw_payload_ids": ["raw:2"],
        },
        "op:2": {
            "operation_id": "op:2",
            "terminal_id": None,
            "tool_call_id": "tool:exec",
            "kind": "write_stdin",
            "execution": window(22, None, "cancelled"),
            "request": {"type": "write_stdin", "stdin": "q\n", "yield_time_ms": 5, "max_output_tokens": None},
            "result": None,
            "model_observations": [],
            "raw_payload_ids": [],
        },
    }
    edge = {
        "edge_id": "edge:spawn",
        "kind": "spawn_agent",
        "source": {"type": "tool_call", "tool_call_id": "tool:mcp"},
        "target": {"type": "thread", "thread_id": "thread:child"},
        "started_at_unix_ms": 4,
        "ended_at_unix_ms": None,
        "carried_item_ids": ["item:all-parts"],
        "carried_raw_payload_ids": ["raw:1", "raw:2"],
    }
    dangling_edge = dict(
        edge,
        edge_id="edge:dangling",
        kind="agent_result",
        source={"type": "conversation_item", "item_id": "item:missing"},
        target={"type": "thread", "thread_id": "thread:missing"},
    )
    state = {
        "schema_version": 1,
        "trace_id": "trace",
        "rollout_id": "rollout",
        "started_at_unix_ms": 1,
        "ended_at_unix_ms": 99,
        "status": "aborted",
        "root_thread_id": "thread:root",
        "threads": {"thread:child": child, "thread:root": thread},
        "codex_turns": {"turn:1": turn},
        "conversation_items": {"item:all-parts": item},
        "inference_calls": {"inference:usage": inference},
        "code_cells": {},
        "tool_calls": dict(sorted(tools.items())),
        "terminal_sessions": {},
        "terminal_operations": operations,
        "compactions": {},
        "compaction_requests": {},
        "interaction_edges": {"edge:dangling": dangling_edge, "edge:spawn": edge},
        "raw_payloads": {
            "raw:1": {"raw_payload_id": "raw:1", "kind": {"type": "inference_request"}, "path": "payloads/1.json"},
            "raw:2": {"raw_payload_id": "raw:2", "kind": {"type": "tool_result"}, "path": "payloads/2.json"},
        },
    }
    trace = RolloutTrace.from_json(json.dumps(state, indent=2))
    assert trace.to_json() == json.dumps(state, indent=2)
    return trace, state


def window(start: int, end: int | None, status: str) -> dict[str, Any]:
    return {
        "started_at_unix_ms": start * 10,
        "started_seq": start,
        "ended_at_unix_ms": None if end is None else start * 10 + 25,
        "ended_seq": end,
        "status": status,
    }


def generic(label: str) -> dict[str, Any]:
    return {"type": "generic", "label": label, "input_preview": "{}", "output_preview": None}


def agent_summary() -> dict[str, Any]:
    return {"type": "agent", "target_agent_path": "/root/child", "task_name": None, "message_preview": "go"}


# ------------------------------------------------------------ raw payloads


def copy_case(case: Path, tmp_path: Path) -> Path:
    target = tmp_path / case.name
    shutil.copytree(case, target)
    return target


TERMINAL_CASE = "reducer__tool__terminal__tests__exec_tool_reduces_to_terminal_operation_and_session"


@needs_shared
def test_payloads_are_read_only_on_load_and_cached(tmp_path: Path) -> None:
    assert SHARED is not None
    case = copy_case(SHARED / "conformance" / TERMINAL_CASE, tmp_path)
    trace, _, _ = load_case(case)
    call = trace.tool_calls["tool-1"]
    ref = call.raw_invocation_payload
    assert ref is not None and not ref.is_loaded
    path = case / "bundle" / ref.path
    assert ref.absolute_path == path.absolute() and ref.exists()
    assert ref.read_bytes() == path.read_bytes()
    assert not ref.is_loaded  # read_bytes does not fill the cache
    value = ref.load()
    assert value == json.loads(path.read_text()) and ref.is_loaded
    path.unlink()  # the cache needs no file any more
    assert ref.load() is value
    assert trace.tool_calls["tool-1"].raw_invocation_payload.load() is value
    assert not ref.exists()
    with pytest.raises(PayloadError) as raised:
        ref.read_bytes()
    assert raised.value.raw_payload_id == ref.raw_payload_id
    assert raised.value.bundle == str(case / "bundle")
    # A pickled ref does not carry the cache: it reads again, and now fails.
    with pytest.raises(PayloadError):
        pickle.loads(pickle.dumps(ref)).load()


@needs_shared
def test_missing_payload_file_is_fine_until_loaded(tmp_path: Path) -> None:
    assert SHARED is not None
    case = copy_case(SHARED / "conformance" / TERMINAL_CASE, tmp_path)
    shutil.rmtree(case / "bundle" / "payloads")
    trace, _, expected = load_case(case)
    assert walk(trace, expected) > 0
    ref = trace.inference_calls["inference-1"].raw_request_payload
    assert not ref.exists() and not ref.is_loaded
    with pytest.raises(PayloadError, match="raw_payload:1") as raised:
        ref.load()
    assert isinstance(raised.value, TraceError)
    assert raised.value.raw_payload_id == "raw_payload:1" and "payloads/1.json" in str(raised.value)
    assert raised.value.bundle == str(case / "bundle")


@needs_shared
def test_payload_paths_outside_the_bundle_are_refused(tmp_path: Path) -> None:
    assert SHARED is not None
    case = SHARED / "conformance" / TERMINAL_CASE
    state = json.loads((case / "expected.json").read_text())
    (tmp_path / "secret.json").write_text('{"secret": true}')
    bundle = shutil.copytree(case / "bundle", tmp_path / "bundle")
    (bundle / "payloads" / "link.json").symlink_to(tmp_path / "secret.json")
    for path in ("../secret.json", "/etc/passwd", "payloads/link.json"):
        state["raw_payloads"]["raw_payload:1"]["path"] = path
        trace = RolloutTrace.from_json(json.dumps(state), bundle=bundle)
        ref = trace.raw_payloads["raw_payload:1"]
        assert ref.path == path  # asking for the reference reads nothing
        for use in (ref.load, ref.read_bytes, ref.exists, lambda: ref.absolute_path):
            with pytest.raises(UnsafePathError, match="outside the bundle"):
                use()


@needs_shared
def test_a_trace_without_bundle_says_so_when_a_payload_is_read() -> None:
    assert SHARED is not None
    trace = RolloutTrace.load(SHARED / "conformance" / TERMINAL_CASE / "expected.json")
    assert trace.bundle is None
    ref = trace.raw_payloads["raw_payload:1"]
    assert ref.bundle is None and ref.path == "payloads/1.json"
    for use in (ref.load, ref.read_bytes, ref.exists, lambda: ref.absolute_path):
        with pytest.raises(PayloadError, match="without its bundle") as raised:
            use()
        assert raised.value.raw_payload_id == "raw_payload:1"


@needs_shared
def test_payload_numbers_become_int_or_float(tmp_path: Path) -> None:
    assert SHARED is not None
    bundle = shutil.copytree(SHARED / "conformance" / TERMINAL_CASE / "bundle", tmp_path / "bundle")
    (bundle / "payloads" / "1.json").write_text(
        '{"z": 1, "big": 123456789012345678901234567890, "neg": -9223372036854775809,'
        ' "u64": 18446744073709551615, "f": 1.5, "e": 1e400, "tiny": 1e-400, "s": "\\u00e9", "n": null,'
        ' "l": [true, false, {}], "a": 2}'
    )
    trace = RolloutTrace.load(SHARED / "conformance" / TERMINAL_CASE / "expected.json", bundle=bundle)
    value = trace.raw_payloads["raw_payload:1"].load()
    assert value == {
        "z": 1,
        "big": 123456789012345678901234567890,
        "neg": -9223372036854775809,
        "u64": 18446744073709551615,
        "f": 1.5,
        "e": float("inf"),
        "tiny": 0.0,
        "s": "é",
        "n": None,
        "l": [True, False, {}],
        "a": 2,
    }
    assert list(value)[:3] == ["z", "big", "neg"]  # keys keep their order in the file
    (bundle / "payloads" / "2.json").write_text("{not json")
    with pytest.raises(PayloadError, match="parse payload raw_payload:2"):
        trace.raw_payloads["raw_payload:2"].load()


# ------------------------------------------------------------ load / save


@needs_shared
def test_save_writes_state_json_atomically(tmp_path: Path) -> None:
    assert SHARED is not None
    trace, text, _ = load_case(SHARED / "conformance" / TERMINAL_CASE)
    target = tmp_path / "state.json"
    target.write_text("old")
    trace.save(target)
    assert target.read_text(encoding="utf-8") == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    trace.save(str(tmp_path / "again.json"))
    loaded = RolloutTrace.load(tmp_path / "again.json", bundle=trace.bundle)
    assert loaded == trace and loaded.bundle == trace.bundle
    with pytest.raises(WriteError) as raised:
        trace.save(tmp_path / "missing" / "state.json")
    assert "missing" in str(raised.value) and raised.value.file is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.json", "state.json"]


@needs_shared
def test_bundle_argument_accepts_paths_and_bundles(tmp_path: Path) -> None:
    assert SHARED is not None
    case = SHARED / "conformance" / TERMINAL_CASE
    state = case / "expected.json"
    by_bundle = RolloutTrace.load(state, bundle=TraceBundle.open(case / "bundle"))
    by_path = RolloutTrace.load(str(state), bundle=case / "bundle")
    by_str = RolloutTrace.load(state, bundle=str(case / "bundle"))
    assert by_bundle.bundle == by_path.bundle == by_str.bundle
    assert by_bundle.bundle is not None and by_bundle.bundle.path == case / "bundle"
    with pytest.raises(TypeError, match="bundle must be"):
        RolloutTrace.load(state, bundle=42)  # type: ignore[arg-type]
    with pytest.raises(rollout_trace.BundleError) as raised:
        RolloutTrace.load(state, bundle=tmp_path / "nowhere")
    assert raised.value.bundle == str(tmp_path / "nowhere")


def test_invalid_state_raises_state_error(tmp_path: Path) -> None:
    with pytest.raises(StateError) as raised:
        RolloutTrace.from_json('{\n  "schema_version": 1,\n  "trace_id": ')
    assert raised.value.line == 3 and "parse state.json" in str(raised.value)
    with pytest.raises(StateError, match="missing field"):
        RolloutTrace.from_json('{"schema_version": 1}')
    with pytest.raises(StateError) as raised:
        RolloutTrace.load(tmp_path / "absent.json")
    assert raised.value.file == str(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("[]")
    with pytest.raises(StateError) as raised:
        RolloutTrace.load(broken)
    assert str(broken) in str(raised.value)
    with pytest.raises(TypeError):
        RolloutTrace.from_json(42)  # type: ignore[arg-type]
    assert issubclass(StateError, TraceError)


def test_map_key_must_match_object_id(all_variants: tuple[RolloutTrace, dict[str, Any]]) -> None:
    _, state = all_variants
    state = copy.deepcopy(state)
    state["codex_turns"]["turn:other"] = state["codex_turns"].pop("turn:1")
    with pytest.raises(StateError, match='codex_turns key "turn:other"'):
        RolloutTrace.from_json(json.dumps(state))


def test_ids_missing_from_a_corrupted_state_raise_state_error(
    all_variants: tuple[RolloutTrace, dict[str, Any]],
) -> None:
    _, state = all_variants
    state = copy.deepcopy(state)
    state["threads"]["thread:root"]["conversation_item_ids"].append("item:gone")
    state["inference_calls"]["inference:usage"]["raw_request_payload_id"] = "raw:gone"
    trace = RolloutTrace.from_json(json.dumps(state))
    with pytest.raises(StateError, match="item:gone"):
        trace.threads["thread:root"].conversation
    with pytest.raises(StateError, match="raw:gone"):
        trace.inference_calls["inference:usage"].raw_request_payload


# ------------------------------------------------------------ mapping views


def test_mappings_behave_like_read_only_dicts(all_variants: tuple[RolloutTrace, dict[str, Any]]) -> None:
    trace, state = all_variants
    tools = trace.tool_calls
    assert isinstance(tools, collections.abc.Mapping)
    assert list(tools) == sorted(state["tool_calls"]) and len(tools) == 8
    assert "tool:web" in tools and "nope" not in tools and 3 not in tools
    assert tools.get("nope") is None and tools.get("nope", 5) == 5 and tools.get(3) is None
    assert tools.get("tool:web") == tools["tool:web"]
    with pytest.raises(KeyError):
        tools["nope"]
    with pytest.raises(KeyError):
        tools[3]  # type: ignore[index]
    assert tools.keys() & {"tool:web", "x"} == {"tool:web"}
    assert [key for key, _ in tools.items()] == list(tools.keys())
    assert list(tools.values()) == [tools[key] for key in tools]
    assert tools == {key: tools[key] for key in tools}
    assert tools != {}
    assert tools != trace.threads
    with pytest.raises(TypeError):
        hash(tools)
    with pytest.raises(TypeError):
        tools["x"] = None  # type: ignore[index]
    assert repr(tools) == "<TraceMapping tool_calls: 8 items>"
    assert TraceMapping[ToolCall] is not None  # runtime generic
    iterator = iter(tools)
    assert next(iterator) == "tool:assign"
    assert len(list(iterator)) == 7


def test_reprs_are_short_and_name_the_object(all_variants: tuple[RolloutTrace, dict[str, Any]]) -> None:
    trace, _ = all_variants
    assert repr(trace) == (
        "<RolloutTrace trace rollout_id=rollout status=aborted threads=2 codex_turns=1 conversation_items=1"
        " inference_calls=1 tool_calls=8 terminal_operations=2 interaction_edges=2>"
    )
    assert repr(trace.tool_calls["tool:mcp"]) == "<ToolCall tool:mcp mcp running thread=thread:root>"
    assert repr(trace.tool_calls["tool:mcp"].kind) == "<ToolCallKind mcp files/read>"
    assert repr(trace.raw_payloads["raw:1"]) == "<RawPayloadRef raw:1 inference_request payloads/1.json>"
    item = trace.conversation_items["item:all-parts"]
    assert repr(item) == '<ConversationItem item:all-parts assistant message "hello">'
    assert repr(item.body.parts[0]) == '<ConversationPart text "hello">'
    assert repr(trace.inference_calls["inference:usage"].execution) == (
        "ExecutionWindow(status='completed', started_seq=3, ended_seq=9)"
    )
    long_text = "x" * 10_000
    state = trace.to_dict()
    state["conversation_items"]["item:all-parts"]["body"]["parts"][0]["text"] = long_text
    big = RolloutTrace.from_json(json.dumps(state)).conversation_items["item:all-parts"]
    assert len(repr(big)) < 150 and len(repr(big.body.parts[0])) < 100


# ------------------------------------------------------------ laziness


def synthetic_state(tool_calls: int) -> str:
    """A pretty `state.json` with `tool_calls` tool calls (about 1 KB each)."""
    template = {
        "tool_call_id": "TOOL",
        "mcp_call_id": None,
        "model_visible_call_id": "call-TOOL",
        "code_mode_runtime_tool_id": None,
        "thread_id": "thread",
        "started_by_codex_turn_id": None,
        "execution": window(1, 2, "completed"),
        "requester": {"type": "model"},
        "kind": {"type": "other", "name": "custom"},
        "model_visible_call_item_ids": [],
        "model_visible_output_item_ids": [],
        "terminal_operation_id": None,
        "summary": {"type": "generic", "label": "custom", "input_preview": "x" * 600, "output_preview": None},
        "raw_invocation_payload_id": None,
        "raw_result_payload_id": None,
        "raw_runtime_payload_ids": [],
    }
    one = json.dumps(template, indent=2).replace("\n", "\n    ")
    entries = ",\n".join(f'    "tool-{n:07}": ' + one.replace("TOOL", f"tool-{n:07}") for n in range(tool_calls))
    head = {
        "schema_version": 1,
        "trace_id": "t",
        "rollout_id": "r",
        "started_at_unix_ms": 0,
        "ended_at_unix_ms": None,
        "status": "running",
        "root_thread_id": "thread",
    }
    parts = [json.dumps(head, indent=2)[:-2] + ",", '  "threads": {},', '  "codex_turns": {},']
    parts += ['  "conversation_items": {},', '  "inference_calls": {},', '  "code_cells": {},']
    parts += ['  "tool_calls": {\n' + entries + "\n  },"]
    for name in ("terminal_sessions", "terminal_operations", "compactions", "compaction_requests"):
        parts.append(f'  "{name}": {{}},')
    parts += ['  "interaction_edges": {},', '  "raw_payloads": {}', "}"]
    return "\n".join(parts)


def test_reading_one_object_does_not_convert_the_graph() -> None:
    """Python allocations when reading one tool call of a big trace stay tiny:
    nothing else of the graph becomes Python objects."""
    import tracemalloc

    megabytes = int(os.environ.get("ROLLOUT_TRACE_BIG_STATE_MB", "20"))
    text = synthetic_state(megabytes * 1000)
    assert len(text) > megabytes * 1_000_000
    trace = RolloutTrace.from_json(text)
    del text
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        tools = trace.tool_calls
        call = tools["tool-0000042"]
        assert call.kind.type == "other" and call.execution.status == "completed"
        assert call.summary.label == "custom" and len(tools) == megabytes * 1000
        assert "tool-0000043" in tools and call.raw_invocation_payload is None
        _, peak = tracemalloc.get_traced_memory()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert peak < 64 * 1024, peak
    assert grown < 64 * 1024, grown


# ------------------------------------------------------------ threads


@needs_shared
def test_many_threads_can_read_one_trace() -> None:
    assert SHARED is not None
    trace, _, expected = load_case(SHARED / "conformance" / TERMINAL_CASE)
    barrier = threading.Barrier(8)

    def read(_: int) -> list[Any]:
        barrier.wait()
        seen = []
        for _ in range(20):
            seen.append(trace.to_dict())
            seen.append([ref.load() for ref in trace.raw_payloads.values()])
            seen.append([obj.to_dict() for name in MAPS for obj in getattr(trace, name).values()])
        return seen

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(read, range(8)))
    assert all(result == results[0] for result in results)
    assert results[0][0] == expected
    # Every thread got the one cached object per payload.
    loaded = results[0][1]
    assert all(a is b for result in results for a, b in zip(result[1], loaded))


def test_parsing_and_serializing_release_the_gil() -> None:
    """While one thread parses or serializes a big state in Rust, another
    thread keeps running Python code."""
    import time

    text = synthetic_state(20_000)

    def share_of_window_with_progress(work: Any) -> float:
        stamps: list[float] = []
        stop = threading.Event()

        def spin() -> None:
            while not stop.is_set():
                stamps.append(time.perf_counter())

        spinner = threading.Thread(target=spin)
        spinner.start()
        while not stamps:
            time.sleep(0.001)
        start = time.perf_counter()
        work()
        end = time.perf_counter()
        stop.set()
        spinner.join()
        inside = [stamp for stamp in stamps if start <= stamp <= end]
        busy = sum(b - a for a, b in zip(inside, inside[1:]) if b - a < 0.002)
        return busy / (end - start)

    trace = RolloutTrace.from_json(text)
    for work in (lambda: RolloutTrace.from_json(text), trace.to_json):
        # Holding the GIL would leave the other thread no time at all inside
        # the window; on a free core it gets most of it, and still a fair
        # part when other processes load the machine (hence the low bar,
        # and retries).
        shares = []
        for _ in range(5):
            shares.append(share_of_window_with_progress(work))
            if shares[-1] > 0.15:
                break
        assert max(shares) > 0.15, shares


def test_error_hierarchy() -> None:
    for name in (
        "BundleError",
        "EventError",
        "PayloadError",
        "ReduceError",
        "LimitError",
        "UnsafePathError",
        "WriteError",
        "StateError",
    ):
        error = getattr(rollout_trace, name)
        assert issubclass(error, TraceError) and error.__module__ == "rollout_trace"
