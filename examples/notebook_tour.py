"""Analysing a rollout, notebook style: each ``# %%`` cell runs on its own in
Jupyter or VS Code, or run the whole script:

    python examples/notebook_tour.py [BUNDLE]     # default: examples/realistic-bundle

On the realistic example bundle: provenance questions, reading the
rollout, tables, and the pytest helpers. Its output is in the README
("Analysis"); tests/test_notebook_tour.py checks that they agree.
"""

# %% Open the bundle
from __future__ import annotations

import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

import rollout_trace
from rollout_trace import InteractionEdge
from rollout_trace.testing import (
    BundleBuilder,
    assert_conversation,
    assert_tool_calls,
    assistant,
    function_call,
    function_call_output,
    user,
)

EXAMPLES = Path(__file__).resolve().parent
bundle = Path(sys.argv[1]) if len(sys.argv) > 1 else EXAMPLES / "realistic-bundle"
trace = rollout_trace.replay_bundle(bundle)
root = trace.root_thread
assert root is not None


def heading(title: str) -> None:
    print(f"\n## {title}")


# %% Which inference issued a tool call, and what had the model seen?
heading("which inference issued the failing test run")
failed = next(call for call in trace.tool_calls.values() if call.execution.status == "failed")
inference = failed.inference_call
assert inference is not None and failed.terminal_operation is not None
print(f"{failed.kind.type} {failed.terminal_operation.request.display_command!r} [{failed.execution.status}]")
print(f"  issued by inference {inference.inference_call_id} ({inference.model})")
print(f"  which saw {len(inference.request_items)} items: {dict(Counter(item.role for item in inference.request_items))}")
print(f"  and started {[call.kind.type for call in inference.tool_calls]}")

# %% Where did each conversation item come from?
heading("where the root thread's items came from")
print(dict(Counter(item.origin.type for item in root.conversation)))
for item_id in ("conversation_item:3", "conversation_item:8", "conversation_item:18", "conversation_item:66"):
    item = trace.conversation_items[item_id]
    origin = item.origin
    print(f"{item_id} {item.role} {item.kind} <- {origin.type} {type(origin.object).__name__ if origin.object else ''}")

# %% A code cell and everything it did
heading("the code cell's nested activity")
for cell in trace.code_cells.values():
    assert cell.inference_call is not None
    print(f"{cell.code_cell_id} [{cell.runtime_status}] written by inference {cell.inference_call.inference_call_id}")
    for operation in cell.terminal_operations:
        exit_code = operation.result.exit_code if operation.result else None
        print(f"  {operation.tool_call.kind.type}: {operation.request.display_command} -> exit {exit_code}")
    print(f"  waited on by {[call.tool_call_id for call in cell.wait_tool_calls]}")
    print(f"  gave the model: {cell.output_items[0].body.parts[0].text!r}")

# %% Terminal processes: who started them, what happened next
heading("a terminal session and its operations")
session = max(trace.terminal_sessions.values(), key=lambda session: len(session.operation_ids))
print(f"terminal {session.terminal_id} created by {session.created_by_operation.operation_id}")
for operation in session.operations:
    request = operation.request
    detail = request.display_command if request.type == "exec_command" else repr(request.stdin)
    print(f"  {operation.operation_id} {operation.kind}: {detail}")


# %% Agents: who spawned, messaged, heard from and closed whom
heading("the helpers and the edges between the agents")


def describe(edge: InteractionEdge) -> str:
    source = edge.source_thread.agent_path if edge.source_thread else "?"
    target = edge.target_thread.agent_path if edge.target_thread else "?"
    made_by = f" by tool call {edge.tool_call.kind.type}" if edge.tool_call else ""
    return f"{edge.kind}: {source} -> {target}{made_by}"


for child in root.children:
    assert child.parent == root
    print(f"{child.agent_path} ({child.nickname}), task {child.origin.task_name!r}")
    for edge in child.edges:
        print(f"  {describe(edge)}")

# %% Reading the rollout: the tree and a transcript
heading("trace.print_tree()")
trace.print_tree()

heading("transcript of a helper (bodies folded at 70 characters)")
auditor = root.children[1]
print(auditor.transcript(max_chars=70), end="")

# %% In Jupyter, the last expression of a cell renders as HTML
html = root._repr_html_()
print(f"\n(root thread as HTML: {len(html)} characters, {html.count('<details')} folds)")

# %% Tables with join keys
heading("tables")
tables = trace.tables()
for name, table in tables.items():
    print(f"{name:20} {len(table):3} rows  {', '.join(table.column_names[:5])}, ...")
by_name = Counter((row["name"], row["status"]) for row in tables.tool_calls.rows)
print("tool calls by name and status:")
for (name, status), count in sorted(by_name.items()):
    print(f"  {name:18} {status:10} {count}")
tokens = sum(tables.inference_calls.columns["output_tokens"])
print(f"output tokens: {tokens}")
# With pandas: tables.tool_calls.to_pandas().merge(tables.inference_calls.to_pandas(),
#                                                   on=["trace_id", "inference_call_id"])
# Many bundles at once: rollout_trace.tables_many(paths).write_parquet("out/")

# %% pytest helpers: assertions with readable diffs
heading("rollout_trace.testing")
assert_tool_calls(
    trace.code_cells["code_cell:call_hQHm6cqLAera5k3g6TpWY1qQ"],
    [("exec_command", "completed", re.compile("git ls-files")), ("exec_command", "completed", re.compile("TODO"))],
)
try:
    assert_conversation(auditor, [("assistant", ...), ("assistant", "amount.rs:141")], roles=["assistant"])
except AssertionError as failure:
    print(failure)

# %% Building a bundle for a harness test (the `rollout_bundle` pytest fixture does this in tmp_path)
with tempfile.TemporaryDirectory() as scratch:
    builder = BundleBuilder(Path(scratch) / "bundle")
    with builder.turn():
        builder.inference([user("fix the test")], [function_call("exec_command", {"cmd": "pytest"}, "c1")])
        builder.tool_call("c1", "exec_command", detail="pytest")
        builder.inference([function_call_output("c1", "1 passed")], [assistant("Fixed.")])
    built = builder.replay()
    assert_conversation(built.root_thread or root, [("user", "fix the test"), ("assistant", "Fixed.")])
    assert_tool_calls(built, [("exec_command", "completed", "pytest")])
    print(f"built a bundle with {len(built.tool_calls)} tool call; its assertions pass")
