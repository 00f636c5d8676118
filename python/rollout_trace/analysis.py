"""Reading a rollout: transcripts, trees and HTML views of a reduced trace.

The native classes expose these as methods (``thread.transcript()``,
``trace.print_tree()``, ``_repr_html_`` for Jupyter); the functions here
are what those methods call, usable directly too::

    trace = rollout_trace.replay_bundle("bundle")
    print(trace.root_thread.transcript(max_chars=200))
    trace.print_tree()

Every view is built from the graph's navigation (``tool_call.inference_call``,
``item.origin``, ``thread.children``); nothing here re-reads the bundle.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Sequence
from typing import IO, NamedTuple

from rollout_trace._native import (
    AgentThread,
    CodeCell,
    CodexTurn,
    ConversationItem,
    ConversationPart,
    ExecutionWindow,
    InferenceCall,
    RolloutTrace,
    ToolCall,
)

__all__ = [
    "body_text",
    "fold",
    "human_duration",
    "item_html",
    "print_tree",
    "thread_html",
    "trace_html",
    "transcript",
    "tree_text",
    "tool_call_label",
    "tool_call_name",
]

# --------------------------------------------------------------- text bits


def human_duration(ms: int | None) -> str:
    """``950ms``, ``12.3s``, ``2m05s``, ``2h05m``; ``running`` for ``None``."""
    if ms is None:
        return "running"
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms // 1000
    if seconds < 60:
        return f"{seconds}.{(ms % 1000) // 100}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def fold(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars`` characters, saying how much was left out."""
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}… [{len(text) - max_chars} more chars]"


def _part_text(part: ConversationPart) -> str:
    kind = part.type
    if kind == "text":
        return part.text
    if kind == "summary":
        return f"(summary) {part.text}"
    if kind == "encoded":
        return f"[{part.label}: {len(part.value)} encoded chars]"
    if kind == "json":
        return f"{part.summary} [json {part.raw_payload_id}]"
    if kind == "code":
        return part.source
    return f"[{part.label}: {part.raw_payload_id}]"


def body_text(item: ConversationItem) -> str:
    """The item's body as plain text, one paragraph per part."""
    return "\n".join(_part_text(part) for part in item.body.parts)


def _status(window: ExecutionWindow) -> str:
    return f"[{window.status}] {human_duration(window.duration_ms)}"


def _one_line(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def tool_call_name(call: ToolCall) -> str:
    """A tool call's name: its kind, ``server/tool`` for MCP, the tool's
    own name for ``other``."""
    kind = call.kind
    if kind.type == "mcp":
        return f"{kind.server}/{kind.tool}"
    if kind.type == "other":
        return kind.name
    return kind.type


def tool_call_label(call: ToolCall) -> str:
    """What a tool call did, in one line: its name and command or input."""
    name = tool_call_name(call)
    operation = call.terminal_operation
    if operation is not None:
        request = operation.request
        detail = f"$ {request.display_command}" if request.type == "exec_command" else f"stdin {request.stdin!r}"
        return f"{name} {_one_line(detail)}"
    summary = call.summary
    if summary.type == "agent":
        return f"{name} -> {summary.target_agent_path or '?'}"
    if summary.type == "generic" and summary.input_preview:
        return f"{name} {_one_line(summary.input_preview)}"
    return name


def _item_heading(item: ConversationItem) -> str:
    role = item.role if item.channel is None else f"{item.role}/{item.channel}"
    heading = f"{role} {item.kind}"
    if item.call_id is not None:
        heading += f" call_id={item.call_id}"
    if item.agent_message is not None:
        heading += f" ({item.agent_message.author} -> {item.agent_message.recipient})"
    origin = item.origin
    if origin.type not in ("inference", "transcript"):
        heading += f" <- {origin.type}"
    return heading


# --------------------------------------------------------------- transcript


def transcript(thread: AgentThread, *, max_chars: int = 400) -> str:
    """The thread's conversation as text: a heading per item (position,
    role/channel, kind, call id, where it came from if not the model or
    the transcript), then each part of its body indented, folded past
    ``max_chars`` characters."""
    nickname = f' "{thread.nickname}"' if thread.nickname else ""
    lines = [
        f"thread {thread.agent_path}{nickname} ({thread.thread_id}) "
        f"{_status(thread.execution)}, {len(thread.conversation_item_ids)} items"
    ]
    for position, item in enumerate(thread.conversation, start=1):
        lines.append(f"[{position}] {_item_heading(item)}")
        for part in item.body.parts:
            lines.extend("    " + line for line in fold(_part_text(part), max_chars).splitlines())
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------- tree


def _branches(children: Sequence[list[str]], prefix: str) -> list[str]:
    """Draws child subtrees (each a list of lines) under a node."""
    lines: list[str] = []
    for index, child in enumerate(children):
        last = index == len(children) - 1
        head, rest = child[0], child[1:]
        lines.append(prefix + ("└─ " if last else "├─ ") + head)
        pad = prefix + ("   " if last else "│  ")
        lines.extend(pad + line for line in rest)
    return lines


def _node(head: str, children: Sequence[list[str]]) -> list[str]:
    return [head] + _branches(children, "")


def _tool_node(call: ToolCall) -> list[str]:
    return [f"tool {tool_call_label(call)} {_status(call.execution)}"]


def _cell_node(cell: CodeCell) -> list[str]:
    head = f"code cell {cell.code_cell_id} [{cell.runtime_status}] {human_duration(cell.execution.duration_ms)}"
    return _node(head, [_tool_node(call) for call in cell.nested_tool_calls])


def _inference_node(call: InferenceCall, tools: list[ToolCall], cells: list[CodeCell]) -> list[str]:
    head = f"inference {call.model} {_status(call.execution)}"
    usage = call.usage
    if usage is not None:
        head += f" tokens in {usage.input_tokens} out {usage.output_tokens}"
    children = [_cell_node(cell) for cell in cells] + [_tool_node(tool) for tool in tools]
    return _node(head, children)


class TurnWork(NamedTuple):
    """A turn's code cells and tool calls by the inference call of the
    turn that issued them; those no inference of the turn issued are loose.
    Tool calls made by a code cell are left to their cell."""

    inferences: list[InferenceCall]
    tools_of: dict[str, list[ToolCall]]
    cells_of: dict[str, list[CodeCell]]
    loose_cells: list[CodeCell]
    loose_tools: list[ToolCall]


def turn_work(turn: CodexTurn) -> TurnWork:
    inferences = list(turn.inference_calls)
    work = TurnWork(inferences, {call.inference_call_id: [] for call in inferences},
                    {call.inference_call_id: [] for call in inferences}, [], [])
    for cell in turn.code_cells:
        issuer = cell.inference_call
        if issuer is not None and issuer.inference_call_id in work.cells_of:
            work.cells_of[issuer.inference_call_id].append(cell)
        else:
            work.loose_cells.append(cell)
    for tool in turn.tool_calls:
        if tool.code_cell is not None:
            continue
        issuer = tool.inference_call
        if issuer is not None and issuer.inference_call_id in work.tools_of:
            work.tools_of[issuer.inference_call_id].append(tool)
        else:
            work.loose_tools.append(tool)
    return work


def _turn_node(turn: CodexTurn) -> list[str]:
    """A turn: its inference calls, each with the code cells and tool
    calls it issued; calls no inference of the turn issued come last."""
    work = turn_work(turn)
    children = [
        _inference_node(call, work.tools_of[call.inference_call_id], work.cells_of[call.inference_call_id])
        for call in work.inferences
    ]
    loose = [_cell_node(cell) for cell in work.loose_cells] + [_tool_node(tool) for tool in work.loose_tools]
    return _node(f"turn {turn.codex_turn_id} {_status(turn.execution)}", children + loose)


def _thread_node(thread: AgentThread) -> list[str]:
    nickname = f' "{thread.nickname}"' if thread.nickname else ""
    head = f"thread {thread.agent_path}{nickname} {_status(thread.execution)}"
    turns = [_turn_node(turn) for turn in thread.turns]
    children = [_thread_node(child) for child in thread.children]
    return _node(head, turns + children)


def tree_text(trace: RolloutTrace) -> str:
    """``print_tree``'s text: the rollout, its threads (children under their
    parent), their turns, each turn's inference calls with the tool calls
    and code cells they issued (nested tool calls under their cell)."""
    duration = None if trace.ended_at_unix_ms is None else trace.ended_at_unix_ms - trace.started_at_unix_ms
    head = f"rollout {trace.rollout_id} [{trace.status}] {human_duration(duration)}"
    # Threads whose parent is missing from the trace are drawn at the top.
    roots = [thread for thread in trace.threads.values() if thread.parent is None]
    roots.sort(key=lambda thread: thread.execution.started_seq)
    return "\n".join(_node(head, [_thread_node(thread) for thread in roots])) + "\n"


def print_tree(trace: RolloutTrace, file: IO[str] | None = None) -> None:
    """Prints ``tree_text(trace)`` to ``file`` (default ``sys.stdout``)."""
    (file or sys.stdout).write(tree_text(trace))


# --------------------------------------------------------------- HTML

_STYLE = """<style>
.rt-view{font-family:system-ui,sans-serif;font-size:13px;line-height:1.4}
.rt-view details{margin:2px 0 2px 12px}
.rt-view summary{cursor:pointer}
.rt-item{border-left:3px solid #bbb;margin:4px 0;padding:2px 8px}
.rt-role-user{border-color:#2a7ae2}.rt-role-assistant{border-color:#2e9e4f}
.rt-role-tool{border-color:#c08a00}.rt-role-developer,.rt-role-system{border-color:#888}
.rt-head{color:#555;font-size:12px}
.rt-body{white-space:pre-wrap;margin:2px 0;font-family:ui-monospace,monospace}
.rt-inference{border:1px solid #ddd;border-radius:4px;margin:6px 0;padding:2px 6px}
.rt-status-failed,.rt-status-aborted,.rt-status-cancelled{color:#c62828}
</style>"""

_FOLD_HTML = 600


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _status_html(window: ExecutionWindow) -> str:
    return (
        f'<span class="rt-status-{_esc(window.status)}">[{_esc(window.status)}]</span> '
        f"{_esc(human_duration(window.duration_ms))}"
    )


def _body_html(text: str) -> str:
    if len(text) <= _FOLD_HTML:
        return f'<div class="rt-body">{_esc(text)}</div>'
    return (
        f"<details><summary>{_esc(text[:200])}… ({len(text)} chars)</summary>"
        f'<div class="rt-body">{_esc(text)}</div></details>'
    )


def _item_block(item: ConversationItem) -> str:
    return (
        f'<div class="rt-item rt-role-{_esc(item.role)}" data-item-id="{_esc(item.item_id)}">'
        f'<div class="rt-head">{_esc(_item_heading(item))}</div>{_body_html(body_text(item))}</div>'
    )


def item_html(item: ConversationItem) -> str:
    """One conversation item as HTML."""
    return f'<div class="rt-view">{_STYLE}{_item_block(item)}</div>'


def _tool_block(call: ToolCall, shown: set[str]) -> str:
    """A tool call, folded: its call item(s) and output item(s)."""
    inner = [_item_block(item) for item in call.model_visible_call_items]
    inner.extend(_item_block(item) for item in call.model_visible_output_items)
    shown.update(call.model_visible_call_item_ids)
    shown.update(call.model_visible_output_item_ids)
    summary = f"tool {_esc(tool_call_label(call))} {_status_html(call.execution)}"
    return (
        f'<details data-tool-call-id="{_esc(call.tool_call_id)}">'
        f'<summary>{summary}</summary>{"".join(inner)}</details>'
    )


def _cell_block(cell: CodeCell, shown: set[str]) -> str:
    """A code cell, folded: its source, nested and wait tool calls, outputs."""
    inner = [_item_block(cell.source_item)]
    inner.extend(_tool_block(call, shown) for call in cell.nested_tool_calls)
    inner.extend(_item_block(item) for item in cell.output_items)
    shown.add(cell.source_item_id)
    shown.update(cell.output_item_ids)
    summary = (
        f"code cell {_esc(cell.code_cell_id)} [{_esc(cell.runtime_status)}] "
        f"{_esc(human_duration(cell.execution.duration_ms))}, {len(cell.nested_tool_call_ids)} nested tool calls"
    )
    return (
        f'<details data-code-cell-id="{_esc(cell.code_cell_id)}">'
        f'<summary>{summary}</summary>{"".join(inner)}</details>'
    )


def _inference_block(call: InferenceCall, shown: set[str], cells_by_source: dict[str, CodeCell]) -> str:
    """An inference and its response items; the tool calls and code cells
    it issued are folded where their call item stands."""
    tools_by_item: dict[str, ToolCall] = {}
    for tool in call.tool_calls:
        for item_id in tool.model_visible_call_item_ids:
            tools_by_item[item_id] = tool
    parts: list[str] = []
    for item in call.response_items:
        if item.item_id in shown:
            continue
        if item.item_id in cells_by_source:
            parts.append(_cell_block(cells_by_source[item.item_id], shown))
        elif item.item_id in tools_by_item:
            parts.append(_tool_block(tools_by_item[item.item_id], shown))
        else:
            parts.append(_item_block(item))
            shown.add(item.item_id)
    usage = call.usage
    tokens = "" if usage is None else f", {usage.input_tokens} in / {usage.output_tokens} out tokens"
    summary = f"inference {_esc(call.model)} {_status_html(call.execution)}{_esc(tokens)}"
    return (
        f'<details open class="rt-inference" data-inference-call-id="{_esc(call.inference_call_id)}">'
        f'<summary>{summary}</summary>{"".join(parts)}</details>'
    )


def _conversation_html(thread: AgentThread) -> str:
    """The thread's items in order; each inference is drawn as one block
    where its first response item appears."""
    issuer: dict[str, InferenceCall] = {}
    for call in thread.inference_calls:
        for item_id in call.response_item_ids:
            issuer.setdefault(item_id, call)
    cells_by_source = {cell.source_item_id: cell for cell in thread.code_cells}
    shown: set[str] = set()
    parts: list[str] = []
    for item in thread.conversation:
        if item.item_id in shown:
            continue
        issued_by = issuer.get(item.item_id)
        if issued_by is not None:
            parts.append(_inference_block(issued_by, shown, cells_by_source))
        if item.item_id not in shown:
            parts.append(_item_block(item))
            shown.add(item.item_id)
    return "".join(parts)


def _thread_summary(thread: AgentThread) -> str:
    nickname = f' "{thread.nickname}"' if thread.nickname else ""
    return (
        f"thread {_esc(thread.agent_path)}{_esc(nickname)} {_status_html(thread.execution)}, "
        f"{len(thread.conversation_item_ids)} items"
    )


def thread_html(thread: AgentThread) -> str:
    """The thread's conversation as HTML, tool calls folded under the
    inference that issued them."""
    return (
        f'<div class="rt-view" data-thread-id="{_esc(thread.thread_id)}">{_STYLE}'
        f"<div><b>{_thread_summary(thread)}</b></div>{_conversation_html(thread)}</div>"
    )


def trace_html(trace: RolloutTrace) -> str:
    """The trace as HTML: its summary, then every thread's conversation
    (folded; the root thread open)."""
    threads = sorted(trace.threads.values(), key=lambda thread: thread.execution.started_seq)
    blocks = []
    for thread in threads:
        is_root = thread.thread_id == trace.root_thread_id
        blocks.append(
            f'<details{" open" if is_root else ""} data-thread-id="{_esc(thread.thread_id)}">'
            f"<summary>{_thread_summary(thread)}</summary>{_conversation_html(thread)}</details>"
        )
    return (
        f'<div class="rt-view" data-trace-id="{_esc(trace.trace_id)}">{_STYLE}'
        f"<pre>{_esc(trace.summary_text(width=100))}</pre>{''.join(blocks)}</div>"
    )

