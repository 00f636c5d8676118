"""A tour of the rollout_trace Python API, type-checked with `mypy --strict`.

    python examples/api_tour.py BUNDLE               # replay the bundle
    python examples/api_tour.py BUNDLE STATE_JSON    # read a reduced state

Prints the threads with their conversations, the tool calls with their
terminal operations, the multi-agent edges, and peeks into one payload.
"""

from __future__ import annotations

import sys
from collections import Counter

import rollout_trace
from rollout_trace import (
    AgentThread,
    ConversationItem,
    InteractionEdge,
    RawPayloadRef,
    RolloutTrace,
    ToolCall,
    TraceBundle,
)


def open_trace(bundle_path: str, state_path: str | None) -> RolloutTrace:
    bundle = TraceBundle.open(bundle_path)
    if state_path is None:
        return bundle.reduce()
    return RolloutTrace.load(state_path, bundle=bundle)


def describe_item(item: ConversationItem) -> str:
    pieces: list[str] = []
    for part in item.body.parts:
        if part.type in ("text", "summary"):
            pieces.append(part.text[:60])
        elif part.type == "json":
            pieces.append(f"json {part.summary[:60]}")
        elif part.type == "code":
            pieces.append(f"{part.language}: {part.source[:60]}")
        else:
            pieces.append(part.type)
    channel = f"/{item.channel}" if item.channel is not None else ""
    return f"{item.role}{channel} {item.kind}: {' | '.join(pieces)}"


def show_thread(thread: AgentThread) -> None:
    origin = thread.origin
    parent = f" (spawned by {origin.parent_thread_id})" if origin.type == "spawned" else ""
    print(f"thread {thread.thread_id} {thread.agent_path}{parent}: {thread.execution.status}")
    for turn in thread.turns:
        print(f"  turn {turn.codex_turn_id}: {len(turn.inference_calls)} inference calls")
    for item in thread.conversation:
        print(f"  {item.item_id} {describe_item(item)}")
        for producer in item.producers:
            print(f"      produced by {producer!r}")


def show_tool_call(call: ToolCall) -> None:
    kind = call.kind
    label = f"{kind.server}/{kind.tool}" if kind.type == "mcp" else kind.type
    print(f"tool call {call.tool_call_id} {label} {call.execution.status} in {call.thread.agent_path}")
    summary = call.summary
    if summary.type == "generic" and summary.input_preview is not None:
        print(f"  input: {summary.input_preview[:80]}")
    cell = call.code_cell
    if cell is not None:
        print(f"  asked by code cell {cell.code_cell_id}")
    operation = call.terminal_operation
    if operation is not None:
        request = operation.request
        if request.type == "exec_command":
            print(f"  $ {request.display_command} (cwd {request.cwd})")
        result = operation.result
        if result is not None:
            print(f"  exit code {result.exit_code}, {len(result.stdout)} bytes of stdout")
        session = operation.session
        if session is not None:
            print(f"  terminal {session.terminal_id}: {len(session.operations)} operations")


def show_edge(edge: InteractionEdge) -> None:
    source = edge.source_object
    target = edge.target_object
    source_name = repr(source) if source is not None else f"(missing {edge.source.type})"
    target_name = repr(target) if target is not None else f"(missing {edge.target.type})"
    print(f"edge {edge.kind}: {source_name} -> {target_name}")


def peek_payload(payload: RawPayloadRef) -> None:
    if not payload.exists():
        print(f"{payload.raw_payload_id}: no file at {payload.path}")
        return
    value = payload.load()
    keys = sorted(value) if isinstance(value, dict) else []
    print(f"{payload.raw_payload_id} ({payload.kind}) keys: {keys}")


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        trace = open_trace(argv[1], argv[2] if len(argv) == 3 else None)
    except rollout_trace.TraceError as error:
        print(f"error: {error} (bundle={error.bundle}, line={error.line}, seq={error.seq})", file=sys.stderr)
        return 1

    print(repr(trace))
    root = trace.root_thread
    if root is not None:
        show_thread(root)
        for child in root.child_threads:
            show_thread(child)

    kinds = Counter(call.kind.type for call in trace.tool_calls.values())
    print(f"tool calls by kind: {dict(kinds)}")
    for call in trace.tool_calls.values():
        show_tool_call(call)

    for edge in trace.interaction_edges.values():
        show_edge(edge)

    tokens = sum(call.usage.output_tokens for call in trace.inference_calls.values() if call.usage is not None)
    print(f"output tokens: {tokens}")

    first_inference = next(iter(trace.inference_calls.values()), None)
    if first_inference is not None:
        peek_payload(first_inference.raw_request_payload)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
