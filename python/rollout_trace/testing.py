"""Helpers for tests of agent harnesses: assertions over a reduced trace
with readable failure diffs, and ``BundleBuilder``, which writes small
bundles through ``TraceWriter``.

::

    from rollout_trace.testing import assert_conversation, assert_tool_calls

    def test_agent_fixes_the_test(tmp_path):
        trace = run_my_harness(tmp_path)          # writes a bundle, replays it
        root = trace.root_thread
        assert_conversation(root, [("user", "fix the test"), ("assistant", ...)])
        assert_tool_calls(root, [("exec_command", "completed"), "apply_patch"])

Expected values match actual ones by these rules: a ``str`` must be
equal, ``...`` matches anything, a compiled ``re.Pattern`` must be found
(``pattern.search``) in the value.

With the pytest plugin (installed with the package) the ``rollout_bundle``
fixture gives a ``BundleBuilder`` writing into the test's temporary
directory.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import EllipsisType
from typing import Any, Union

from rollout_trace._native import (
    AgentThread,
    CodeCell,
    CodexTurn,
    ConversationItem,
    InferenceCall,
    RolloutTrace,
    ToolCall,
    TraceWriter,
    replay_bundle,
)
from rollout_trace.analysis import body_text, tool_call_name

__all__ = [
    "BundleBuilder",
    "Matcher",
    "assert_conversation",
    "assert_tool_calls",
    "assistant",
    "custom_tool_call",
    "custom_tool_call_output",
    "developer",
    "function_call",
    "function_call_output",
    "item_text",
    "reasoning",
    "tool_call_name",
    "user",
]

Matcher = Union[str, EllipsisType, "re.Pattern[str]"]
ConversationEntry = tuple[str, Matcher]
ToolCallEntry = Union[str, tuple[Matcher, ...], dict[str, Matcher]]
ToolCallSource = Union[RolloutTrace, AgentThread, CodexTurn, InferenceCall, CodeCell, Sequence[ToolCall]]

_PREVIEW = 80


def _matches(expected: Matcher, actual: str | None) -> bool:
    if expected is ...:
        return True
    if isinstance(expected, re.Pattern):
        return actual is not None and expected.search(actual) is not None
    return expected == actual


def _show(value: str | None) -> str:
    """A value on one line, cut to a readable length."""
    if value is None:
        return "None"
    text = value.replace("\n", "\\n")
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"


def _show_expected(expected: Matcher) -> str:
    if expected is ...:
        return "..."
    if isinstance(expected, re.Pattern):
        return f"re.compile({expected.pattern!r})"
    return _show(expected)


def _diff_message(title: str, expected: list[str], actual: list[str]) -> str:
    diff = difflib.unified_diff(expected, actual, "expected", "actual", lineterm="", n=max(len(expected), len(actual)))
    return "\n".join([title, *diff])


Row = tuple[list[str], list[Union[str, None]]]


def _compare(title: str, rows: list[Row], expected: list[list[Matcher]]) -> None:
    """Fails with a diff unless each actual row (its fields as shown, its
    values as matched) matches the expected row at the same position.

    Expected rows that match are shown as the actual line, so the diff
    marks only the rows that differ.
    """
    actual_lines = [" | ".join(shown) for shown, _ in rows]
    expected_lines: list[str] = []
    ok = len(rows) == len(expected)
    for index, want in enumerate(expected):
        if index < len(rows):
            values = rows[index][1]
            if len(want) <= len(values) and all(_matches(m, value) for m, value in zip(want, values)):
                expected_lines.append(actual_lines[index])
                continue
        ok = False
        expected_lines.append(" | ".join(_show_expected(matcher) for matcher in want))
    if not ok:
        raise AssertionError(_diff_message(title, expected_lines, actual_lines))


# --------------------------------------------------------------- conversation


def item_text(item: ConversationItem) -> str:
    """The text ``assert_conversation`` compares: the item's text, summary,
    code and JSON-summary parts, one per line."""
    return body_text(item)


def assert_conversation(
    thread: AgentThread,
    expected: Sequence[ConversationEntry],
    *,
    kinds: Sequence[str] | None = ("message",),
    roles: Sequence[str] | None = ("user", "assistant"),
) -> None:
    """Asserts the thread's conversation, as ``(role, text)`` pairs in
    order, is ``expected``.

    Only items of the given ``kinds`` and ``roles`` count (by default the
    user's and the assistant's messages; ``None`` keeps every kind or
    role). A failure shows both sides as a diff, one line per item.
    """
    items = [
        item
        for item in thread.conversation
        if (kinds is None or item.kind in kinds) and (roles is None or item.role in roles)
    ]
    rows: list[Row] = []
    for item in items:
        text = item_text(item)
        rows.append(([item.role, _show(text)], [item.role, text]))
    wanted: list[list[Matcher]] = [[role, text] for role, text in expected]
    filters = f"kinds {list(kinds) if kinds else 'all'}, roles {list(roles) if roles else 'all'}"
    title = (
        f"conversation of thread {thread.agent_path} ({thread.thread_id}) does not match "
        f"({len(wanted)} expected, {len(rows)} found; {filters}):"
    )
    _compare(title, rows, wanted)


# --------------------------------------------------------------- tool calls


def _tool_detail(call: ToolCall) -> str | None:
    operation = call.terminal_operation
    if operation is not None:
        request = operation.request
        return request.display_command if request.type == "exec_command" else request.stdin
    summary = call.summary
    if summary.type == "generic":
        return summary.input_preview
    if summary.type == "agent":
        return summary.message_preview
    return None


def _tool_calls_of(source: ToolCallSource) -> tuple[list[ToolCall], str]:
    if isinstance(source, RolloutTrace):
        calls = sorted(source.tool_calls.values(), key=lambda call: call.execution.started_seq)
        return calls, f"trace {source.trace_id}"
    if isinstance(source, AgentThread):
        return list(source.tool_calls), f"thread {source.agent_path} ({source.thread_id})"
    if isinstance(source, CodexTurn):
        return list(source.tool_calls), f"turn {source.codex_turn_id}"
    if isinstance(source, InferenceCall):
        return list(source.tool_calls), f"inference {source.inference_call_id}"
    if isinstance(source, CodeCell):
        return list(source.nested_tool_calls), f"code cell {source.code_cell_id}"
    return list(source), "the given calls"


_TOOL_FIELDS = ("name", "status", "detail")


def assert_tool_calls(source: ToolCallSource, expected: Sequence[ToolCallEntry]) -> None:
    """Asserts the tool calls of ``source`` (a trace, thread, turn,
    inference, code cell or a list of calls), in start order, are
    ``expected``.

    Each entry is a name (``"exec_command"``; ``server/tool`` for MCP, the
    tool's name for ``other``), a tuple ``(name, status, detail)`` cut
    anywhere after the name, or a dict with any of ``name``, ``status``,
    ``detail``. ``detail`` is the command of a terminal call, the input
    preview of other calls, the message of an agent call.
    """
    calls, where = _tool_calls_of(source)
    rows: list[Row] = []
    for call in calls:
        name, status, detail = tool_call_name(call), call.execution.status, _tool_detail(call)
        shown = [name, status] + ([_show(detail)] if detail else [])
        rows.append((shown, [name, status, detail]))
    wanted: list[list[Matcher]] = []
    for entry in expected:
        if isinstance(entry, str):
            wanted.append([entry])
        elif isinstance(entry, dict):
            unknown = set(entry) - set(_TOOL_FIELDS)
            if unknown:
                raise TypeError(f"assert_tool_calls: unknown keys {sorted(unknown)} (use {list(_TOOL_FIELDS)})")
            wanted.append([entry.get(field, ...) for field in _TOOL_FIELDS])
        else:
            wanted.append(list(entry))
    title = f"tool calls of {where} do not match ({len(wanted)} expected, {len(rows)} found):"
    _compare(title, rows, wanted)


# --------------------------------------------------------------- building bundles


def user(text: str) -> dict[str, Any]:
    """A user message, as a request input item."""
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def developer(text: str) -> dict[str, Any]:
    """A developer (harness) message, as a request input item."""
    return {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": text}]}


def assistant(text: str, phase: str = "final_answer") -> dict[str, Any]:
    """An assistant message, as a response output item."""
    return {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}], "phase": phase}


def reasoning(summary: str) -> dict[str, Any]:
    """A reasoning item with a readable summary."""
    return {"type": "reasoning", "summary": [{"type": "summary_text", "text": summary}]}


def function_call(name: str, arguments: dict[str, Any] | str, call_id: str) -> dict[str, Any]:
    """A function tool call the model makes (arguments as a dict or JSON text)."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"type": "function_call", "name": name, "arguments": text, "call_id": call_id}


def function_call_output(call_id: str, output: str) -> dict[str, Any]:
    """The output of a function tool call, as the next request sends it."""
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def custom_tool_call(name: str, text: str, call_id: str) -> dict[str, Any]:
    """A freeform (custom) tool call, such as ``apply_patch``."""
    return {"type": "custom_tool_call", "name": name, "input": text, "call_id": call_id}


def custom_tool_call_output(call_id: str, output: str) -> dict[str, Any]:
    """The output of a custom tool call."""
    return {"type": "custom_tool_call_output", "call_id": call_id, "output": output}


_SIMPLE_KINDS = {
    "exec_command",
    "write_stdin",
    "apply_patch",
    "web",
    "image_generation",
    "spawn_agent",
    "assign_agent_task",
    "send_message",
    "wait_agent",
    "close_agent",
}


class BundleBuilder:
    """Writes a small, replayable bundle of one agent thread through
    ``TraceWriter``, in the order Codex's producers write events.

    ::

        bundle = BundleBuilder(tmp_path / "bundle")
        with bundle.turn():
            bundle.inference([user("fix the test")], [function_call("exec_command", {"cmd": "pytest"}, "c1")])
            bundle.tool_call("c1", "exec_command", detail="pytest")
            bundle.inference([function_call_output("c1", "1 passed")], [assistant("fixed")])
        trace = bundle.replay()

    Time is a deterministic clock (``start_unix_ms``, then ``step_ms`` per
    event), so bundles are the same on every run. The first inference of
    the thread sends its input as a full request; later ones send only the
    new input, continuing the previous response (``previous_response_id``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        trace_id: str = "trace-1",
        rollout_id: str = "rollout-1",
        thread_id: str = "thread-root",
        model: str = "gpt-test",
        start_unix_ms: int = 1_700_000_000_000,
        step_ms: int = 100,
    ) -> None:
        self.path = Path(path)
        self.thread_id = thread_id
        self.model = model
        self._now = start_unix_ms
        self._step = step_ms
        self._turns = 0
        self._inferences = 0
        self._turn: str | None = None
        self._previous_response: str | None = None
        self._finished = False
        self.writer = TraceWriter.create(self.path, trace_id, rollout_id, thread_id, clock=self._clock)
        self.writer.append({"type": "rollout_started", "trace_id": trace_id, "root_thread_id": thread_id})
        self.writer.append({"type": "thread_started", "thread_id": thread_id, "agent_path": "/root", "metadata_payload": None})

    def _clock(self) -> int:
        self._now += self._step
        return self._now

    def _in_turn(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self._turn is None:
            raise RuntimeError("BundleBuilder: start a turn first (with builder.turn(): ...)")
        return self.writer.append(payload, thread_id=self.thread_id, codex_turn_id=self._turn)

    @contextmanager
    def turn(self, status: str = "completed") -> Iterator[str]:
        """A Codex turn around the block; yields its id. The turn ends with
        ``status`` (``failed`` if the block raises)."""
        if self._turn is not None:
            raise RuntimeError("BundleBuilder: turns do not nest")
        self._turns += 1
        turn_id = f"turn-{self._turns}"
        self._turn = turn_id
        self._in_turn({"type": "codex_turn_started", "codex_turn_id": turn_id, "thread_id": self.thread_id})
        ended = "failed"
        try:
            yield turn_id
            ended = status
        finally:
            self._in_turn({"type": "codex_turn_ended", "codex_turn_id": turn_id, "status": ended})
            self._turn = None

    def inference(
        self,
        input: Sequence[dict[str, Any]],
        output: Sequence[dict[str, Any]],
        *,
        usage: dict[str, int] | None = None,
    ) -> str:
        """One completed inference: the request's new ``input`` items, the
        response's ``output`` items and optional token ``usage`` (keys of
        ``TokenUsage``). Returns the inference call id."""
        self._inferences += 1
        call_id = f"inference-{self._inferences}"
        response_id = f"resp-{self._inferences}"
        request: dict[str, Any] = {"input": list(input), "model": self.model}
        if self._previous_response is not None:
            request["previous_response_id"] = self._previous_response
        request_ref = self.writer.write_json_payload("inference_request", request)
        self._in_turn(
            {
                "type": "inference_started",
                "inference_call_id": call_id,
                "thread_id": self.thread_id,
                "codex_turn_id": self._turn,
                "model": self.model,
                "provider_name": "test-provider",
                "request_payload": request_ref,
            }
        )
        token_usage = None
        if usage is not None:
            token_usage = {
                name: usage.get(name, 0)
                for name in ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens")
            }
            token_usage["total_tokens"] = token_usage["input_tokens"] + token_usage["output_tokens"]
        response = {
            "response_id": response_id,
            "upstream_request_id": None,
            "token_usage": token_usage,
            "output_items": list(output),
        }
        response_ref = self.writer.write_json_payload("inference_response", response)
        self._in_turn(
            {
                "type": "inference_completed",
                "inference_call_id": call_id,
                "response_id": response_id,
                "upstream_request_id": None,
                "response_payload": response_ref,
            }
        )
        self._previous_response = response_id
        return call_id

    def tool_call(self, call_id: str, kind: str, *, status: str = "completed", detail: str | None = None) -> str:
        """A tool call the model asked for with ``call_id`` (the call id of
        its call item), started and ended with ``status``. ``kind`` is a
        tool kind (``exec_command``, ``apply_patch``, ...) or any other
        tool's name. Returns the tool call id (the call id)."""
        kind_value: dict[str, Any] = {"type": kind} if kind in _SIMPLE_KINDS else {"type": "other", "name": kind}
        self._in_turn(
            {
                "type": "tool_call_started",
                "tool_call_id": call_id,
                "model_visible_call_id": call_id,
                "code_mode_runtime_tool_id": None,
                "requester": {"type": "model"},
                "kind": kind_value,
                "summary": {"type": "generic", "label": kind, "input_preview": detail, "output_preview": None},
                "invocation_payload": None,
            }
        )
        self._in_turn({"type": "tool_call_ended", "tool_call_id": call_id, "status": status, "result_payload": None})
        return call_id

    def finish(self, status: str = "completed") -> Path:
        """Ends the thread and the rollout with ``status`` and closes the
        writer; returns the bundle directory. Idempotent."""
        if not self._finished:
            if self._turn is not None:
                raise RuntimeError("BundleBuilder: finish() inside a turn")
            self.writer.append({"type": "thread_ended", "thread_id": self.thread_id, "status": status})
            self.writer.append({"type": "rollout_ended", "status": status})
            self.writer.close()
            self._finished = True
        return self.path

    def replay(self) -> RolloutTrace:
        """Finishes the bundle (if not yet) and replays it."""
        return replay_bundle(self.finish())

