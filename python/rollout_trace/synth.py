"""Deterministic generator of realistic rollout trace bundles.

``generate(out_dir, seed=...)`` writes, through :class:`rollout_trace.TraceWriter`,
the bundle a Codex session would leave behind, with the events, envelope
context and payload shapes of the real producers (spec 04-producers). The
session tells one story, a developer fixing a locale bug in a Rust ledger
tool:

1. the agent runs the failing tests and starts the project's REPL in
   parallel (``exec_command``), then types into that same process
   (``write_stdin``, sent as an incremental ``previous_response_id``
   request), which ends it;
2. it takes an inventory in a code-mode cell (``exec``): the cell runs
   ``exec_command`` itself, yields, and finishes while the model ``wait``-s;
3. optional turns reading and searching code, until the bundle is about
   ``target_mb`` megabytes, compacting the history when it grows large;
4. the fix: a remote compaction (if none happened yet) replaces the
   history, then ``apply_patch`` and a passing test run;
5. it delegates to ``children`` helper agents (``spawn_agent``), waits for
   their results (``wait_agent``), sends the first one a message and a
   follow-up task and closes the others (``close_agent``); the helpers run
   in their own threads of the bundle, their events interleaved with the
   parent's; shutting the session down ends the first helper.

Requests carry the whole history, as HTTP requests do, except a few that
go out incrementally, so requests grow with the conversation until a
compaction resets it. Generation is deterministic: the clock and every id
derive from ``seed``, so equal arguments give a byte-identical bundle.

Run ``python -m rollout_trace.synth OUT_DIR [--seed N] [--target-mb M]
[--children K]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shlex
import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Generator, Iterator, Optional, Union

from rollout_trace import TraceWriter

# 2026-01-05T09:30:00Z: the session's start, before the seed's jitter.
START_UNIX_MS = 1_767_605_400_000
MODEL = "gpt-5.1-codex"
PROVIDER = "openai"
REASONING_EFFORT = "medium"
CWD = "/home/dev/src/ledgerline"
CONTEXT_WINDOW = 272_000
# Remote compaction keeps at most this many of the user's own messages.
KEPT_USER_MESSAGES = 8

Json = Any  # a JSON value: dicts, lists, str, int, float, bool, None
Obj = dict[str, Any]  # a JSON object
Item = Obj  # one Responses API model item
# What an agent yields to the scheduler: None to let others run, or a
# predicate that must hold before the agent runs again.
Wait = Optional[Callable[[], bool]]
Steps = Generator[Wait, None, None]  # a turn, or a part of one
ToolSteps = Generator[Wait, None, Item]  # the rest of a tool call, ending with its output item


def compact_json(value: Json) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------------
# Clock and ids


class Clock:
    """The injected clock: time moves only when the generator says so."""

    def __init__(self, rng: random.Random, start_ms: int) -> None:
        self._rng = rng
        self.now = start_ms

    def __call__(self) -> int:
        return self.now

    def tick(self, low: int = 1, high: int = 30) -> int:
        self.now += self._rng.randint(low, high)
        return self.now


class Ids:
    """Seeded ids in the shapes Codex and the provider use."""

    _ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

    def __init__(self, rng: random.Random, clock: Clock) -> None:
        self._rng = rng
        self._clock = clock

    def uuid4(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def uuid7(self) -> str:
        """A time-ordered UUID (Codex thread and turn ids), from the clock."""
        value = (self._clock.now & (2**48 - 1)) << 80
        value |= 0x7 << 76 | self._rng.getrandbits(12) << 64 | 0b10 << 62 | self._rng.getrandbits(62)
        return str(uuid.UUID(int=value))

    def hex(self, digits: int) -> str:
        return format(self._rng.getrandbits(digits * 4), f"0{digits}x")

    def call_id(self) -> str:
        return "call_" + "".join(self._rng.choice(self._ALNUM) for _ in range(24))

    def response_id(self) -> str:
        return "resp_" + self.hex(48)

    def upstream_request_id(self) -> str:
        return "req_" + self.hex(32)

    def item_id(self, prefix: str) -> str:
        return f"{prefix}_{self.hex(48)}"

    def encrypted(self, size: int) -> str:
        """An opaque blob shaped like the provider's encrypted content."""
        return "gAAAAA" + base64.urlsafe_b64encode(self._rng.randbytes(size)).decode()


# ---------------------------------------------------------------------------
# Model items (Responses API)


def message(role: str, text: str) -> Item:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


def function_call(name: str, arguments: str, call_id: str) -> Item:
    return {"type": "function_call", "name": name, "arguments": arguments, "call_id": call_id}


def function_call_output(call_id: str, output: str) -> Item:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def custom_tool_call(name: str, text: str, call_id: str) -> Item:
    return {"type": "custom_tool_call", "call_id": call_id, "name": name, "input": text}


def custom_tool_call_output(call_id: str, output: Json) -> Item:
    return {"type": "custom_tool_call_output", "call_id": call_id, "output": output}


def as_sent(item: Item) -> Item:
    """An output item as later requests carry it: without the provider's
    item id, and without readable reasoning text (only the trace keeps it)."""
    return {
        key: value
        for key, value in item.items()
        if key != "id" and not (key == "content" and item["type"] == "reasoning")
    }


def delivery(form: str, author: str, recipient: str, content: str, trigger_turn: bool) -> Item:
    """A message between agents as the recipient's model sees it: an
    ``agent_message`` item, or (legacy) an assistant message whose text is
    the JSON inter-agent communication."""
    if form == "agent_message":
        return {
            "type": "agent_message",
            "author": author,
            "recipient": recipient,
            "content": [{"type": "input_text", "text": content}],
        }
    communication = {
        "author": author,
        "recipient": recipient,
        "other_recipients": [],
        "content": content,
        "trigger_turn": trigger_turn,
    }
    return message("assistant", compact_json(communication))


# ---------------------------------------------------------------------------
# Static context: instructions, tool definitions, environment


INSTRUCTIONS = (
    "You are Codex, a coding agent in the user's terminal. Prefer `rg` for searching. Keep changes minimal; "
    "run the relevant tests before finishing, and reference files as `path:line`."
)


def _function_tool(name: str, description: str, properties: Obj, required: list[str]) -> Obj:
    parameters = {"type": "object", "properties": properties, "required": required}
    return {"type": "function", "name": name, "description": description, "parameters": parameters}


_STRING = {"type": "string"}
_NUMBER = {"type": "number"}
BASE_TOOLS = [
    _function_tool(
        "exec_command",
        "Runs a command in a PTY, returning output or a session ID for ongoing interaction.",
        {"cmd": _STRING, "workdir": _STRING, "yield_time_ms": _NUMBER},
        ["cmd"],
    ),
    _function_tool(
        "write_stdin",
        "Writes characters to an existing exec session and returns recent output.",
        {"session_id": _NUMBER, "chars": _STRING},
        ["session_id"],
    ),
    {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch in the apply_patch format."},
    {
        "type": "custom",
        "name": "exec",
        "description": "Run JavaScript in a code-mode cell; tools are available as `tools.<name>`.",
    },
    _function_tool(
        "wait", "Waits for a yielded code-mode cell and returns its output.", {"cell_id": _STRING}, ["cell_id"]
    ),
]
AGENT_TOOLS = [
    _function_tool(
        "spawn_agent",
        "Starts a helper agent on a task.",
        {"task_name": _STRING, "message": _STRING},
        ["task_name", "message"],
    ),
    _function_tool(
        "send_message",
        "Sends a message to an agent without starting a turn.",
        {"target": _STRING, "message": _STRING},
        ["target", "message"],
    ),
    _function_tool(
        "followup_task",
        "Gives an agent a new task and starts its turn.",
        {"target": _STRING, "message": _STRING},
        ["target", "message"],
    ),
    _function_tool("wait_agent", "Waits until agents finish their turn.", {"targets": {"type": "array"}}, ["targets"]),
    _function_tool("close_agent", "Shuts an agent down.", {"target": _STRING}, ["target"]),
]

PERMISSIONS = (
    "<permissions instructions>Sandbox: danger-full-access. Approval policy: never.</permissions instructions>"
)
ENVIRONMENT = "<environment_context>\n  <cwd>" + CWD + "</cwd>\n  <shell>bash</shell>\n</environment_context>"


# ---------------------------------------------------------------------------
# Generated file and command output


_WORDS = (
    "amount account posting ledger currency balance entry locale "
    "separator decimal journal commodity price payee tag period"
).split()
_RUST_LINES = [
    "pub fn {a}_{b}(input: &str) -> Result<{A}, ParseError> {{",
    "    let {a} = input.trim().split('{c}').collect::<Vec<_>>();",
    "    if {a}.is_empty() {{ return Err(ParseError::Empty{{ at: {n} }}); }}",
    "    // {A} values are normalized before they reach the {b} table.",
    "    let {b} = {A}::from_parts(&{a}, ctx.locale())?;",
    "    match {a}.len() {{ 0 => None, {n} => Some({b}), _ => unreachable!() }}",
    "}}",
    "",
    "#[derive(Debug, Clone, PartialEq)]",
    "pub struct {A}{B} {{ pub {a}: {A}, pub {b}: Option<{B}> }}",
    "impl From<{A}> for {B} {{ fn from(v: {A}) -> Self {{ Self::new(v.{a}) }} }}",
]


def rust_source(rng: random.Random, size: int) -> str:
    """About ``size`` characters of plausible Rust, numbered like ``nl -ba``."""
    lines: list[str] = []
    total = 0
    while total < size:
        a, b = rng.choice(_WORDS), rng.choice(_WORDS)
        text = rng.choice(_RUST_LINES).format(
            a=a, b=b, A=a.title(), B=b.title(), c=rng.choice(",.'_"), n=rng.randint(1, 9)
        )
        line = f"{len(lines) + 1:6}\t{text}"
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines) + "\n"


def search_hits(rng: random.Random, pattern: str, size: int) -> str:
    lines = []
    total = 0
    while total < size:
        path = f"crates/ledger-{rng.choice(['core', 'cli', 'fmt'])}/src/{rng.choice(_WORDS)}.rs"
        line = f"{path}:{rng.randint(3, 480)}:    let {rng.choice(_WORDS)} = {pattern}({rng.choice(_WORDS)})?;"
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines) + "\n"


def parsed_command(cmd: str) -> list[Obj]:
    """The runtime's parsed view of a shell command (``parsed_cmd``)."""
    words = shlex.split(cmd)
    if "|" in words:
        words = words[: words.index("|")]
    if words[0] in ("sed", "cat", "nl"):
        return [{"type": "read", "cmd": cmd, "name": os.path.basename(words[-1]), "path": words[-1]}]
    if words[0] == "rg":
        return [{"type": "search", "cmd": cmd, "query": words[-2], "path": words[-1]}]
    if words[0] in ("ls", "fd"):
        return [{"type": "list_files", "cmd": cmd, "path": words[-1]}]
    return [{"type": "unknown", "cmd": cmd}]


def tool_kind(name: str) -> Obj:
    """The dispatch's tool kind for a tool name (04-producers §9.2)."""
    kinds = {
        "exec_command": "exec_command",
        "local_shell": "exec_command",
        "shell": "exec_command",
        "shell_command": "exec_command",
        "write_stdin": "write_stdin",
        "apply_patch": "apply_patch",
        "spawn_agent": "spawn_agent",
        "send_message": "send_message",
        "followup_task": "assign_agent_task",
        "assign_task": "assign_agent_task",
        "wait_agent": "wait_agent",
        "close_agent": "close_agent",
        "interrupt_agent": "close_agent",
    }
    if name in kinds:
        return {"type": kinds[name]}
    return {"type": "other", "name": name}


def preview(text: str) -> str:
    return text[:160] + "..." if len(text) > 160 else text


# ---------------------------------------------------------------------------
# The bundle and the scheduler


class Bundle:
    """The writer plus what every producer shares: clock, ids, process-wide
    counters, and a running byte count of what was written."""

    def __init__(self, out_dir: Path, seed: int) -> None:
        self.rng = random.Random(seed)
        self.clock = Clock(self.rng, START_UNIX_MS + self.rng.randrange(3_600_000))
        self.ids = Ids(self.rng, self.clock)
        self.trace_id = self.ids.uuid4()
        self.root_thread_id = self.ids.uuid7()
        self.writer = TraceWriter.create(
            out_dir, self.trace_id, self.root_thread_id, self.root_thread_id, clock=self.clock
        )
        self.path = Path(out_dir)
        self._payload_bytes = 0
        self._next_process_id = 1000 + self.rng.randrange(60000)
        self._compaction_requests = 0

    def payload(self, kind: str, value: Json) -> Obj:
        ref = self.writer.write_json_payload(kind, value)
        self._payload_bytes += os.path.getsize(self.path / ref["path"])
        return ref

    def emit(self, payload: Obj, thread_id: Optional[str] = None, turn_id: Optional[str] = None) -> None:
        self.clock.tick()
        self.writer.append(payload, thread_id, turn_id)

    def size(self) -> int:
        """Bytes written so far (payload files and event log)."""
        return self._payload_bytes + os.path.getsize(self.path / "trace.jsonl")

    def process_id(self) -> str:
        self._next_process_id += self.rng.randint(1, 40)
        return str(self._next_process_id)

    def compaction_request_id(self) -> str:
        self._compaction_requests += 1
        return f"compaction_request:{self._compaction_requests}"

    def close(self) -> None:
        self.writer.close()


class Scheduler:
    """Runs agents as cooperative tasks, interleaving their events the way
    concurrent threads of one session interleave in a real bundle. The
    choice of who runs next comes from the seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._tasks: list[list[Any]] = []  # [steps, wait]

    def start(self, steps: Iterator[Wait]) -> None:
        self._tasks.append([steps, None])

    def run(self) -> None:
        while self._tasks:
            ready = [task for task in self._tasks if task[1] is None or task[1]()]
            if not ready:
                raise RuntimeError("synthetic agents deadlocked")
            task = self._rng.choice(ready)
            try:
                task[1] = next(task[0])
            except StopIteration:
                self._tasks.remove(task)


# ---------------------------------------------------------------------------
# Tools: each has a model-visible call item and emits its dispatch events in
# two phases, `start` (while the response still streams) and `finish`.


class Tool:
    """A direct model tool call traced through the dispatch hook."""

    name = ""

    def __init__(self, agent: "Agent", arguments: Obj) -> None:
        self.agent = agent
        self.call_id = agent.bundle.ids.call_id()
        self.arguments = compact_json(arguments)

    def item(self) -> Item:
        return function_call(self.name, self.arguments, self.call_id)

    def invocation(self) -> Obj:
        return {
            "tool_name": self.name,
            "tool_namespace": None,
            "payload": {"type": "function", "arguments": self.arguments},
        }

    def start(self) -> None:
        self.agent.tool_started(
            self.call_id, self.call_id, None, {"type": "model"}, self.name, self.arguments, self.invocation()
        )

    def finish(self) -> ToolSteps:
        """Runs the rest of the call; returns the output item for the history."""
        raise NotImplementedError

    def result(self, output: str, status: str = "completed") -> Item:
        """Ends the call with a direct response and returns its output item."""
        item = function_call_output(self.call_id, output)
        self.agent.tool_ended(self.call_id, status, {"type": "direct_response", "response_item": item})
        return item


def unified_exec_output(chunk_id: str, seconds: float, process: str, output: str) -> str:
    """The unified exec tool's model-visible result text."""
    return (
        f"Chunk ID: {chunk_id}\nWall time: {seconds:.4f} seconds\n{process}\n"
        f"Original token count: {max(1, len(output) // 4)}\nOutput:\n{output}"
    )


class ExecCommand(Tool):
    """``exec_command``: a unified exec process with exec begin/end runtime
    events. With ``keeps_running`` the process outlives the call and is
    driven by later ``write_stdin`` calls, the last of which ends it."""

    name = "exec_command"

    def __init__(
        self,
        agent: "Agent",
        cmd: str,
        output: str,
        exit_code: int = 0,
        *,
        keeps_running: bool = False,
        seconds: float = 1.0,
    ) -> None:
        arguments = {"cmd": cmd, "workdir": CWD, "yield_time_ms": 10000}
        super().__init__(agent, arguments)
        self.cmd = cmd
        self.output = output
        self.exit_code = exit_code
        self.keeps_running = keeps_running
        self.seconds = seconds
        self.process_id = agent.bundle.process_id()
        self.transcript = output  # everything the process printed
        self.begin: Obj = {}

    def start(self) -> None:
        super().start()
        self.runtime_begin()

    def runtime_begin(self) -> None:
        agent = self.agent
        self.begin = {
            "call_id": self.call_id,
            "process_id": self.process_id,
            "turn_id": agent.turn_id,
            "started_at_ms": agent.bundle.clock.now,
            "command": ["/bin/bash", "-lc", self.cmd],
            "cwd": CWD,
            "parsed_cmd": parsed_command(self.cmd),
            "source": "unified_exec_startup",
        }
        agent.runtime_event("tool_call_runtime_started", self.call_id, self.begin)

    def runtime_end(self) -> None:
        """The exec end event: the process exited."""
        agent = self.agent
        agent.bundle.clock.tick(int(self.seconds * 900), int(self.seconds * 1100))
        elapsed = agent.bundle.clock.now - self.begin["started_at_ms"]
        end = {
            "call_id": self.call_id,
            "process_id": self.process_id,
            "turn_id": self.begin["turn_id"],
            "completed_at_ms": agent.bundle.clock.now,
            "command": self.begin["command"],
            "cwd": CWD,
            "parsed_cmd": self.begin["parsed_cmd"],
            "source": self.begin["source"],
            "stdout": self.transcript,
            "stderr": "",
            "aggregated_output": self.transcript,
            "exit_code": self.exit_code,
            "duration": {"secs": elapsed // 1000, "nanos": elapsed % 1000 * 1_000_000},
            "formatted_output": self.transcript,
            "status": "completed" if self.exit_code == 0 else "failed",
        }
        agent.runtime_event(
            "tool_call_runtime_ended", self.call_id, end, "completed" if self.exit_code == 0 else "failed"
        )

    def finish(self) -> ToolSteps:
        yield None
        chunk = self.agent.bundle.ids.hex(6)
        if self.keeps_running:
            self.agent.bundle.clock.tick(900, 1100)
            text = unified_exec_output(chunk, 1.0, f"Process running with session ID {self.process_id}", self.output)
            return self.result(text)
        self.runtime_end()
        text = unified_exec_output(chunk, self.seconds, f"Process exited with code {self.exit_code}", self.output)
        return self.result(text, "completed" if self.exit_code == 0 else "failed")


class WriteStdin(Tool):
    """``write_stdin`` to a running ``exec_command`` process. The terminal
    operation comes from the invocation (the runtime emits no exec begin for
    it); if the input ends the process, that exec's end event is emitted."""

    name = "write_stdin"

    def __init__(self, agent: "Agent", process: ExecCommand, chars: str, output: str, *, exits: bool = False) -> None:
        super().__init__(agent, {"session_id": int(process.process_id), "chars": chars, "yield_time_ms": 2000})
        self.process = process
        self.output = output
        self.exits = exits

    def finish(self) -> ToolSteps:
        yield None
        self.process.transcript += self.output
        chunk = self.agent.bundle.ids.hex(6)
        if self.exits:
            self.process.runtime_end()
            state = "Process exited with code 0"
        else:
            self.agent.bundle.clock.tick(300, 700)
            state = f"Process running with session ID {self.process.process_id}"
        return self.result(unified_exec_output(chunk, 0.5, state, self.output))


class ApplyPatch(Tool):
    """``apply_patch``, a freeform (custom) tool, with patch begin/end runtime events."""

    name = "apply_patch"

    def __init__(self, agent: "Agent", path: str, diff: str) -> None:
        super().__init__(agent, {})
        self.path = path
        self.diff = diff
        self.patch = f"*** Begin Patch\n*** Update File: {path}\n{diff}*** End Patch\n"

    def item(self) -> Item:
        return custom_tool_call(self.name, self.patch, self.call_id)

    def start(self) -> None:
        invocation = {
            "tool_name": self.name,
            "tool_namespace": None,
            "payload": {"type": "custom", "input": self.patch},
        }
        self.agent.tool_started(self.call_id, self.call_id, None, {"type": "model"}, self.name, self.patch, invocation)
        self.begin = {
            "call_id": self.call_id,
            "turn_id": self.agent.turn_id,
            "auto_approved": True,
            "changes": {f"{CWD}/{self.path}": {"update": {"unified_diff": self.diff, "move_path": None}}},
        }
        self.agent.runtime_event("tool_call_runtime_started", self.call_id, self.begin)

    def finish(self) -> ToolSteps:
        yield None
        stdout = f"Success. Updated the following files:\nM {self.path}\n"
        end = dict(self.begin, stdout=stdout, stderr="", success=True, status="completed")
        self.agent.runtime_event("tool_call_runtime_ended", self.call_id, end, "completed")
        item = custom_tool_call_output(self.call_id, stdout)
        self.agent.tool_ended(self.call_id, "completed", {"type": "direct_response", "response_item": item})
        return item


class NestedExec:
    """An ``exec_command`` called from JavaScript in a code cell: no
    model-visible call id, a code-mode result value instead of an item."""

    def __init__(self, cell: "CodeCell", cmd: str, output: str) -> None:
        agent = cell.agent
        self.agent = agent
        self.cell = cell
        self.exec = ExecCommand(agent, cmd, output, seconds=0.3)
        cell.runtime_tools += 1
        self.runtime_tool_id = f"tool-{cell.runtime_tools}"

    def start(self) -> None:
        arguments = compact_json({"cmd": self.exec.cmd})
        invocation = {
            "tool_name": "exec_command",
            "tool_namespace": None,
            "payload": {"type": "function", "arguments": arguments},
        }
        requester = {"type": "code_cell", "runtime_cell_id": self.cell.runtime_cell_id}
        self.agent.tool_started(
            self.exec.call_id, None, self.runtime_tool_id, requester, "exec_command", arguments, invocation
        )
        self.exec.runtime_begin()

    def finish(self) -> None:
        self.exec.runtime_end()
        value = {
            "chunk_id": self.agent.bundle.ids.hex(6),
            "wall_time_seconds": 0.3,
            "exit_code": 0,
            "original_token_count": max(1, len(self.exec.output) // 4),
            "output": self.exec.output,
        }
        self.agent.tool_ended(self.exec.call_id, "completed", {"type": "code_mode_response", "value": value})


class CodeCell(Tool):
    """A model-authored ``exec`` cell. It shares the Tool interface but is
    not a traced tool call: its life is told by ``code_cell_*`` events. The first nested command runs before the
    cell yields; the second runs while the model waits on the cell."""

    name = "exec"

    def __init__(
        self, agent: "Agent", source: str, first: tuple[str, str], second: tuple[str, str], partial: str, final: str
    ) -> None:
        super().__init__(agent, {})
        agent.code_cells += 1
        self.runtime_cell_id = str(agent.code_cells)
        self.source = source
        self.runtime_tools = 0
        self.nested = [NestedExec(self, *first), NestedExec(self, *second)]
        self.partial = partial
        self.final = final

    def item(self) -> Item:
        return custom_tool_call(self.name, self.source, self.call_id)

    def start(self) -> None:
        event = {
            "type": "code_cell_started",
            "runtime_cell_id": self.runtime_cell_id,
            "model_visible_call_id": self.call_id,
            "source_js": self.source,
        }
        self.agent.emit(event)
        self.nested[0].start()  # dispatched before the response that holds the cell completes

    def finish(self) -> ToolSteps:
        yield None
        self.nested[0].finish()
        content = [{"type": "input_text", "text": self.partial}]
        response = {"response": {"Yielded": {"cell_id": self.runtime_cell_id, "content_items": content}}}
        self.agent.cell_event("code_cell_initial_response", self.runtime_cell_id, "yielded", response)
        return custom_tool_call_output(
            self.call_id,
            [{"type": "input_text", "text": f"Script running with cell ID {self.runtime_cell_id}"}] + content,
        )

    def complete(self) -> None:
        """Runs the rest of the script (while a `wait` holds the model)."""
        nested = self.nested[1]
        nested.start()
        nested.finish()
        content = [{"type": "input_text", "text": self.final}]
        response = {
            "response": {"Result": {"cell_id": self.runtime_cell_id, "content_items": content, "error_text": None}}
        }
        self.agent.cell_event("code_cell_ended", self.runtime_cell_id, "completed", response)


class WaitForCell(Tool):
    """The code-mode ``wait`` tool: an ordinary traced call whose arguments
    name the cell; the cell ends inside it."""

    name = "wait"

    def __init__(self, agent: "Agent", cell: CodeCell) -> None:
        super().__init__(agent, {"cell_id": cell.runtime_cell_id, "yield_time_ms": 30000})
        self.cell = cell

    def finish(self) -> ToolSteps:
        yield None
        self.cell.complete()
        return self.result(f"Script completed\n{self.cell.final}")


class SpawnAgent(Tool):
    """``spawn_agent``: collab spawn begin and end events, or only a
    sub-agent ``started`` activity (see ``Child.form``); the helper's
    session then starts in the same bundle."""

    name = "spawn_agent"

    def __init__(self, agent: "Agent", child: "Child") -> None:
        super().__init__(agent, {"task_name": child.task_name, "message": child.task})
        self.child = child

    def start(self) -> None:
        super().start()
        if self.child.form == "legacy":
            begin = {
                "call_id": self.call_id,
                "started_at_ms": self.agent.bundle.clock.now,
                "sender_thread_id": self.agent.thread_id,
                "prompt": self.child.task,
                "model": MODEL,
                "reasoning_effort": REASONING_EFFORT,
            }
            self.agent.runtime_event("tool_call_runtime_started", self.call_id, begin)

    def finish(self) -> ToolSteps:
        yield None
        agent, child = self.agent, self.child
        if child.form == "agent_message":
            activity = {
                "event_id": self.call_id,
                "occurred_at_ms": agent.bundle.clock.now,
                "agent_thread_id": child.thread_id,
                "agent_path": child.agent_path,
                "kind": "started",
            }
            agent.runtime_event("tool_call_runtime_ended", self.call_id, activity, "completed")
        else:
            end = {
                "call_id": self.call_id,
                "completed_at_ms": agent.bundle.clock.now,
                "sender_thread_id": agent.thread_id,
                "new_thread_id": child.thread_id,
                "new_agent_nickname": child.nickname,
                "new_agent_role": child.role,
                "prompt": child.task,
                "model": MODEL,
                "reasoning_effort": REASONING_EFFORT,
                "status": "pending_init",
            }
            agent.runtime_event("tool_call_runtime_ended", self.call_id, end, "completed")
        child.deliver(delivery(child.form, agent.agent_path, child.agent_path, child.task, True), trigger=True)
        agent.scheduler.start(child.run())
        return self.result(compact_json({"agent_id": child.thread_id, "nickname": child.nickname}))


class MessageAgent(Tool):
    """``send_message`` (queued, no turn) or ``followup_task`` (starts a
    turn): collab interaction begin/end, then delivery to the helper."""

    def __init__(self, agent: "Agent", name: str, child: "Child", text: str) -> None:
        self.name = name
        super().__init__(agent, {"target": child.agent_path, "message": text})
        self.child = child
        self.text = text

    def start(self) -> None:
        super().start()
        agent = self.agent
        self.begin = {
            "call_id": self.call_id,
            "started_at_ms": agent.bundle.clock.now,
            "sender_thread_id": agent.thread_id,
            "receiver_thread_id": self.child.thread_id,
            "prompt": self.text,
        }
        agent.runtime_event("tool_call_runtime_started", self.call_id, self.begin)

    def finish(self) -> ToolSteps:
        yield None
        agent, child = self.agent, self.child
        end = {
            "call_id": self.call_id,
            "completed_at_ms": agent.bundle.clock.now,
            "sender_thread_id": agent.thread_id,
            "receiver_thread_id": child.thread_id,
            "receiver_agent_nickname": child.nickname,
            "receiver_agent_role": child.role,
            "prompt": self.text,
            "status": child.status(),
        }
        agent.runtime_event("tool_call_runtime_ended", self.call_id, end, "completed")
        trigger = self.name == "followup_task"
        item = self.result(compact_json({"submission_id": agent.bundle.ids.uuid7()}) if trigger else "Message queued.")
        child.deliver(delivery(child.form, agent.agent_path, child.agent_path, self.text, trigger), trigger=trigger)
        return item


class WaitAgent(Tool):
    """``wait_agent``: blocks until the helpers delivered ``results`` results."""

    name = "wait_agent"

    def __init__(self, agent: "Agent", children: list["Child"], results: int) -> None:
        super().__init__(agent, {"targets": [child.agent_path for child in children], "timeout_ms": 600000})
        self.children = children
        self.results = results

    def start(self) -> None:
        super().start()
        agent = self.agent
        self.begin = {
            "sender_thread_id": agent.thread_id,
            "receiver_thread_ids": [child.thread_id for child in self.children],
            "call_id": self.call_id,
        }
        agent.runtime_event("tool_call_runtime_started", self.call_id, self.begin)

    def finish(self) -> ToolSteps:
        yield lambda: all(child.results >= self.results for child in self.children)
        agent = self.agent
        statuses = {child.thread_id: child.status() for child in self.children}
        end = {"sender_thread_id": agent.thread_id, "call_id": self.call_id, "statuses": statuses}
        agent.runtime_event("tool_call_runtime_ended", self.call_id, end, "completed")
        return self.result(
            compact_json({"status": {child.agent_path: child.status() for child in self.children}, "timed_out": False})
        )


class CloseAgent(Tool):
    """``close_agent``: collab close begin, the helper shuts down, close end."""

    name = "close_agent"

    def __init__(self, agent: "Agent", child: "Child") -> None:
        super().__init__(agent, {"target": child.agent_path})
        self.child = child

    def start(self) -> None:
        super().start()
        agent = self.agent
        self.begin = {
            "call_id": self.call_id,
            "started_at_ms": agent.bundle.clock.now,
            "sender_thread_id": agent.thread_id,
            "receiver_thread_id": self.child.thread_id,
        }
        agent.runtime_event("tool_call_runtime_started", self.call_id, self.begin)

    def finish(self) -> ToolSteps:
        child = self.child
        previous = child.status()
        child.closing = True
        yield lambda: child.ended
        agent = self.agent
        end = {
            "call_id": self.call_id,
            "completed_at_ms": agent.bundle.clock.now,
            "sender_thread_id": agent.thread_id,
            "receiver_thread_id": child.thread_id,
            "receiver_agent_nickname": child.nickname,
            "receiver_agent_role": child.role,
            "status": previous,
        }
        agent.runtime_event("tool_call_runtime_ended", self.call_id, end, "completed")
        return self.result(compact_json({"previous_status": previous}))


# ---------------------------------------------------------------------------
# Agents (threads)


class Agent:
    """One thread of the session: its model history and the events of its
    turns, inference attempts, tools and compactions."""

    def __init__(self, bundle: Bundle, scheduler: Scheduler, thread_id: str, agent_path: str, tools: list[Obj]) -> None:
        self.bundle = bundle
        self.scheduler = scheduler
        self.rng = bundle.rng
        self.thread_id = thread_id
        self.agent_path = agent_path
        self.tools = tools
        # What every request carries besides the history, for token counts.
        self.context_bytes = len(INSTRUCTIONS) + len(compact_json(tools))
        self.turn_id: Optional[str] = None
        self.history: list[Item] = []
        self.history_bytes = 0
        self.user_messages: list[Item] = []  # the user's own prompts, kept by compaction
        self.code_cells = 0
        self.compactions = 0
        self.cached_tokens = 0
        self.last_answer = ""
        # The latest response and the history length it ended at, for an
        # incremental request.
        self.last_response: Optional[tuple[str, int]] = None

    # -- events ------------------------------------------------------------

    def emit(self, payload: Obj) -> None:
        """An event with this thread's envelope context."""
        self.bundle.emit(payload, self.thread_id, self.turn_id)

    def protocol(self, event: Obj) -> None:
        """A wrapped protocol event (no envelope context)."""
        ref = self.bundle.payload("protocol_event", event)
        self.bundle.emit({"type": "protocol_event_observed", "event_type": event["type"], "event_payload": ref})

    def runtime_event(self, event_type: str, call_id: str, value: Obj, status: Optional[str] = None) -> None:
        ref = self.bundle.payload("tool_runtime_event", value)
        event: Obj = {"type": event_type, "tool_call_id": call_id}
        if status is not None:
            event["status"] = status
        event["runtime_payload"] = ref
        self.emit(event)

    def tool_started(
        self,
        call_id: str,
        visible_call_id: Optional[str],
        runtime_tool_id: Optional[str],
        requester: Obj,
        name: str,
        input_text: str,
        invocation: Obj,
    ) -> None:
        ref = self.bundle.payload("tool_invocation", invocation)
        summary = {"type": "generic", "label": name, "input_preview": preview(input_text), "output_preview": None}
        self.emit(
            {
                "type": "tool_call_started",
                "tool_call_id": call_id,
                "model_visible_call_id": visible_call_id,
                "code_mode_runtime_tool_id": runtime_tool_id,
                "requester": requester,
                "kind": tool_kind(name),
                "summary": summary,
                "invocation_payload": ref,
            }
        )

    def tool_ended(self, call_id: str, status: str, result: Obj) -> None:
        ref = self.bundle.payload("tool_result", result)
        self.emit({"type": "tool_call_ended", "tool_call_id": call_id, "status": status, "result_payload": ref})

    def cell_event(self, event_type: str, runtime_cell_id: str, status: str, response: Obj) -> None:
        ref = self.bundle.payload("tool_result", response)
        self.emit({"type": event_type, "runtime_cell_id": runtime_cell_id, "status": status, "response_payload": ref})

    # -- lifecycle ---------------------------------------------------------

    def start_thread(self, metadata: Obj) -> None:
        ref = self.bundle.payload("session_metadata", metadata)
        self.bundle.emit(
            {
                "type": "thread_started",
                "thread_id": self.thread_id,
                "agent_path": self.agent_path,
                "metadata_payload": ref,
            }
        )
        self.protocol(
            {
                "type": "session_configured",
                "session_id": self.thread_id,
                "model": MODEL,
                "model_provider_id": PROVIDER,
                "approval_policy": "never",
                "sandbox_policy": {"type": "danger-full-access"},
                "cwd": CWD,
                "reasoning_effort": REASONING_EFFORT,
                "history_log_id": 0,
                "history_entry_count": 0,
                "rollout_path": metadata["rollout_path"],
            }
        )

    def metadata(
        self,
        session_source: Json,
        task_name: Optional[str] = None,
        nickname: Optional[str] = None,
        role: Optional[str] = None,
    ) -> Obj:
        day = "2026/01/05"
        return {
            "thread_id": self.thread_id,
            "agent_path": self.agent_path,
            "task_name": task_name,
            "nickname": nickname,
            "agent_role": role,
            "session_source": session_source,
            "cwd": CWD,
            "rollout_path": f"/home/dev/.codex/sessions/{day}/rollout-2026-01-05T09-30-00-{self.thread_id}.jsonl",
            "model": MODEL,
            "provider_name": PROVIDER,
            "approval_policy": "never",
            "sandbox_policy": "DangerFullAccess",
        }

    def end_thread(self) -> None:
        self.protocol({"type": "shutdown_complete"})
        self.bundle.emit({"type": "thread_ended", "thread_id": self.thread_id, "status": "completed"})

    def begin_turn(self) -> None:
        self.turn_id = self.bundle.ids.uuid7()
        self.emit({"type": "codex_turn_started", "codex_turn_id": self.turn_id, "thread_id": self.thread_id})
        self.protocol({"type": "turn_started", "turn_id": self.turn_id, "model_context_window": CONTEXT_WINDOW})

    def end_turn(self) -> None:
        self.emit({"type": "codex_turn_ended", "codex_turn_id": self.turn_id, "status": "completed"})
        self.protocol({"type": "turn_complete", "turn_id": self.turn_id, "last_agent_message": self.last_answer})

    def record(self, item: Item) -> None:
        self.history.append(item)
        self.history_bytes += len(compact_json(item))

    def initial_context(self) -> None:
        self.record(message("developer", PERMISSIONS))
        self.record(message("user", ENVIRONMENT))

    def user(self, text: str) -> None:
        item = message("user", text)
        self.user_messages.append(item)
        self.record(item)

    # -- model ---------------------------------------------------------------

    def reasoning(self, summary: str, thought: Optional[str] = None) -> Item:
        item = {
            "type": "reasoning",
            "id": self.bundle.ids.item_id("rs"),
            "summary": [{"type": "summary_text", "text": summary}],
        }
        if thought is not None:
            item["content"] = [{"type": "reasoning_text", "text": thought}]
        item["encrypted_content"] = self.bundle.ids.encrypted(self.rng.randint(32, 112))
        return item

    def say(self, text: str, phase: str) -> Item:
        item = message("assistant", text)
        return {
            "type": "message",
            "id": self.bundle.ids.item_id("msg"),
            "role": "assistant",
            "content": item["content"],
            "phase": phase,
        }

    def request_body(self, incremental: bool) -> Obj:
        """The provider request: the whole history (HTTP), or on the websocket
        only what followed the previous response."""
        head: Obj
        if incremental and self.last_response is not None:
            response_id, sent = self.last_response
            head = {"type": "response.create", "model": MODEL, "instructions": INSTRUCTIONS}
            head.update(previous_response_id=response_id, input=self.history[sent:])
        else:
            head = {"model": MODEL, "instructions": INSTRUCTIONS, "input": list(self.history)}
        return {
            **head,
            "tools": self.tools,
            "tool_choice": "auto",
            "parallel_tool_calls": True,
            "reasoning": {"effort": REASONING_EFFORT, "summary": "auto"},
            "store": False,
            "stream": True,
            "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": self.thread_id,
        }

    def sample(self, outputs: list[Union[Item, "Tool"]], *, incremental: bool = False) -> Steps:
        """One inference attempt: the request, tools dispatched while the
        response streams, the completed response, then the tools' ends.
        ``outputs`` holds response items and Tools (standing for their call
        items)."""
        bundle = self.bundle
        call_id = bundle.ids.uuid4()
        request = bundle.payload("inference_request", self.request_body(incremental))
        self.emit(
            {
                "type": "inference_started",
                "inference_call_id": call_id,
                "thread_id": self.thread_id,
                "codex_turn_id": self.turn_id,
                "model": MODEL,
                "provider_name": PROVIDER,
                "request_payload": request,
            }
        )
        input_tokens = (self.context_bytes + self.history_bytes) // 4
        yield None
        bundle.clock.tick(700, 4200)
        tools = [output for output in outputs if isinstance(output, Tool)]
        items = [output.item() if isinstance(output, Tool) else output for output in outputs]
        for tool in tools:  # dispatched as each call item is done
            tool.start()
            bundle.clock.tick(20, 400)
        output_bytes = sum(len(compact_json(item)) for item in items)
        reasoning_tokens = self.rng.randint(40, 900)
        cached = min(self.cached_tokens, input_tokens) // 128 * 128
        usage = {
            "input_tokens": input_tokens,
            "cached_input_tokens": cached,
            "cache_write_input_tokens": 0,
            "output_tokens": output_bytes // 4 + reasoning_tokens,
            "reasoning_output_tokens": reasoning_tokens,
            "total_tokens": input_tokens + output_bytes // 4 + reasoning_tokens,
        }
        self.cached_tokens = input_tokens
        response_id, upstream = bundle.ids.response_id(), bundle.ids.upstream_request_id()
        response = {
            "response_id": response_id,
            "upstream_request_id": upstream,
            "token_usage": usage,
            "output_items": items,
        }
        ref = bundle.payload("inference_response", response)
        self.emit(
            {
                "type": "inference_completed",
                "inference_call_id": call_id,
                "response_id": response_id,
                "upstream_request_id": upstream,
                "response_payload": ref,
            }
        )
        for item in items:
            self.record(as_sent(item))
            if item["type"] == "message" and item.get("phase") == "final_answer":
                self.last_answer = item["content"][0]["text"]
        self.last_response = (response_id, len(self.history))
        for tool in tools:
            output = yield from tool.finish()
            self.record(output)

    def compact(self) -> Steps:
        """Remote compaction: the endpoint summarizes the history, and the
        replacement (the user's recent prompts and an encrypted summary) is
        installed in its place."""
        bundle = self.bundle
        compaction_id = bundle.ids.uuid4()
        request_id = bundle.compaction_request_id()
        body = {
            "model": MODEL,
            "input": list(self.history),
            "instructions": INSTRUCTIONS,
            "tools": self.tools,
            "parallel_tool_calls": True,
        }
        ref = bundle.payload("compaction_request", body)
        self.emit(
            {
                "type": "compaction_request_started",
                "compaction_id": compaction_id,
                "compaction_request_id": request_id,
                "thread_id": self.thread_id,
                "codex_turn_id": self.turn_id,
                "model": MODEL,
                "provider_name": PROVIDER,
                "request_payload": ref,
            }
        )
        yield None
        bundle.clock.tick(2000, 9000)
        replacement = self.user_messages[-KEPT_USER_MESSAGES:] + [
            {"type": "compaction", "encrypted_content": bundle.ids.encrypted(320)}
        ]
        ref = bundle.payload("compaction_response", {"output_items": replacement})
        self.emit(
            {
                "type": "compaction_request_completed",
                "compaction_id": compaction_id,
                "compaction_request_id": request_id,
                "response_payload": ref,
            }
        )
        ref = bundle.payload(
            "compaction_checkpoint", {"input_history": list(self.history), "replacement_history": replacement}
        )
        self.emit({"type": "compaction_installed", "compaction_id": compaction_id, "checkpoint_payload": ref})
        self.history, self.history_bytes = [], 0
        self.initial_context()
        for item in replacement:
            self.record(item)
        self.cached_tokens = 0
        self.last_response = None
        self.compactions += 1


class Child(Agent):
    """A helper agent spawned by the root: its own thread in the bundle,
    started by ``spawn_agent`` and driven by messages from the parent."""

    def __init__(self, root: "Root", index: int, spec: dict[str, str]) -> None:
        bundle = root.bundle
        suffix = "" if index < len(HELPERS) else f"_{index}"
        path = f"/root/{spec['task_name']}{suffix}"
        super().__init__(bundle, root.scheduler, bundle.ids.uuid7(), path, BASE_TOOLS[:1])
        self.parent = root
        self.task_name = path.rsplit("/", 1)[1]
        self.nickname = spec["nickname"]
        self.role = spec["role"]
        self.task = spec["task"]
        self.spec = spec
        # Helpers alternate between the two shapes multi-agent traffic takes
        # in real bundles, so both are exercised: "legacy" reports the spawn
        # with collab events and delivers messages as JSON text in an
        # assistant message; "agent_message" reports a sub-agent activity
        # and delivers `agent_message` items.
        self.form = "agent_message" if index % 2 else "legacy"
        self.mailbox: list[Item] = []
        self.triggered = False
        self.closing = False
        self.ended = False
        self.results = 0
        self.turns = 0

    def deliver(self, item: Item, *, trigger: bool) -> None:
        self.mailbox.append(item)
        self.triggered = self.triggered or trigger

    def status(self) -> Json:
        if self.ended:
            return "shutdown"
        if self.results == 0 or self.triggered:
            return "running"
        return {"completed": self.last_answer}

    def run(self) -> Iterator[Wait]:
        spawn = {
            "parent_thread_id": self.parent.thread_id,
            "depth": 1,
            "agent_path": self.agent_path,
            "agent_nickname": self.nickname,
            "agent_role": self.role,
        }
        self.start_thread(
            self.metadata({"subagent": {"thread_spawn": spawn}}, self.task_name, self.nickname, self.role)
        )
        self.initial_context()
        while True:
            yield lambda: self.triggered or self.closing
            if not self.triggered:
                self.end_thread()
                self.ended = True
                return
            self.triggered = False
            yield from self.work_turn()

    def work_turn(self) -> Steps:
        self.begin_turn()
        for item in self.mailbox:
            self.record(item)
        self.mailbox.clear()
        spec = self.spec
        if self.turns == 0:
            cmd, output = spec["command"], spec["output"]
            yield from self.sample(
                [
                    self.reasoning(spec["plan"]),
                    self.say(spec["commentary"], "commentary"),
                    ExecCommand(self, cmd, output),
                ]
            )
            answer = spec["answer"]
        else:
            cmd, output = spec["followup_command"], spec["followup_output"]
            yield from self.sample(
                [self.reasoning("Narrowing the findings to what was asked"), ExecCommand(self, cmd, output)]
            )
            answer = spec["followup_answer"]
        yield from self.sample([self.reasoning("Writing up the result"), self.say(answer, "final_answer")])
        self.turns += 1
        self.end_turn()
        self.report()

    def report(self) -> None:
        """The completion notification to the parent's mailbox, recorded as
        ``agent_result_observed`` in the helper's own context."""
        status = {"completed": self.last_answer}
        notification = (
            "<subagent_notification>"
            + compact_json({"agent_path": self.agent_path, "status": status})
            + "</subagent_notification>"
        )
        ref = self.bundle.payload(
            "agent_result", {"child_agent_path": self.agent_path, "message": notification, "status": status}
        )
        self.emit(
            {
                "type": "agent_result_observed",
                "edge_id": f"edge:agent_result:{self.thread_id}:{self.turn_id}:{self.parent.thread_id}",
                "child_thread_id": self.thread_id,
                "child_codex_turn_id": self.turn_id,
                "parent_thread_id": self.parent.thread_id,
                "message": notification,
                "carried_payload": ref,
            }
        )
        self.parent.mailbox.append(delivery(self.form, self.agent_path, self.parent.agent_path, notification, False))
        self.results += 1


HELPERS = [
    {
        "task_name": "ci_log_scanner",
        "nickname": "Vega",
        "role": "explorer",
        "task": "Scan ci/logs/ for other failures about locales or amount parsing; report test names only.",
        "plan": "Searching the CI logs for locale-related failures",
        "commentary": "Searching ci/logs for locale and separator failures.",
        "command": "rg -n -i 'locale|separator|parse_amount' ci/logs",
        "output": "ci/logs/linux-de_DE.log:812:test amount::tests::parse_amount_grouped ... FAILED\n"
        "ci/logs/linux-de_DE.log:830:thread 'amount::tests::parse_amount_grouped' panicked at 'unexpected ','\n"
        "ci/logs/macos-fr_FR.log:455:test report::tests::totals_round_trip ... FAILED\n",
        "answer": "Two: parse_amount_grouped (de_DE) and report::tests::totals_round_trip (fr_FR).",
        "followup_command": "rg -c FAILED ci/logs",
        "followup_output": "ci/logs/linux-de_DE.log:3\nci/logs/macos-fr_FR.log:1\nci/logs/linux-en_US.log:0\n",
        "followup_answer": "ledger-core: 3 (de_DE, amount parsing). ledger-fmt: 1 (fr_FR). en_US: none.",
    },
    {
        "task_name": "format_auditor",
        "nickname": "Orion",
        "role": "worker",
        "task": "Find where amounts are formatted for display and which places use the process locale.",
        "plan": "Listing the amount formatting call sites",
        "commentary": "Looking for Display impls and format calls on Amount.",
        "command": "rg -n 'impl fmt::Display for Amount|format_amount' crates",
        "output": "crates/ledger-core/src/amount.rs:141:impl fmt::Display for Amount {\n"
        "crates/ledger-fmt/src/report.rs:77:    let cell = format_amount(&total, &ctx.locale);\n"
        "crates/ledger-fmt/src/report.rs:203:    out.push_str(&format_amount(&line.amount, &ctx.locale));\n",
        "answer": "amount.rs:141 (locale independent); report.rs:77 and :203 use the process locale.",
        "followup_command": "rg -n 'ctx.locale' crates/ledger-fmt/src",
        "followup_output": "crates/ledger-fmt/src/report.rs:77\ncrates/ledger-fmt/src/report.rs:203\n",
        "followup_answer": "Only report.rs:77 and :203 read ctx.locale.",
    },
    {
        "task_name": "dependency_checker",
        "nickname": "Lyra",
        "role": "explorer",
        "task": "Check whether any dependency update in Cargo.lock since last week touches number formatting.",
        "plan": "Diffing Cargo.lock against last week",
        "commentary": "Comparing Cargo.lock with the version from last Monday.",
        "command": "git diff --stat HEAD@{7.days.ago} -- Cargo.lock",
        "output": " Cargo.lock | 12 ++++++------\n 1 file changed, 6 insertions(+), 6 deletions(-)\n",
        "answer": "Cargo.lock changed only for num-format 0.4.4 -> 0.4.5, which changed grouping for de_DE.",
        "followup_command": "git log -1 --format=%H -- Cargo.lock",
        "followup_output": "5f1c0de2a9b7e4f3c2d1a0b9e8f7d6c5b4a39281\n",
        "followup_answer": "The bump is commit 5f1c0de.",
    },
    {
        "task_name": "test_mapper",
        "nickname": "Atlas",
        "role": "worker",
        "task": "List the tests that exercise parse_amount, directly or through the journal parser.",
        "plan": "Finding callers of parse_amount in tests",
        "commentary": "Searching the test modules for parse_amount callers.",
        "command": "rg -n 'parse_amount' crates --glob '*tests*'",
        "output": "crates/ledger-core/src/amount/tests.rs:12:fn parse_amount_plain() {\n"
        "crates/ledger-core/src/amount/tests.rs:30:fn parse_amount_grouped() {\n",
        "answer": "Two direct tests (amount/tests.rs:12 and :30); journal parser tests reach it via parse_posting.",
        "followup_command": "rg -c 'parse_posting' crates/ledger-core/src/journal",
        "followup_output": "crates/ledger-core/src/journal/tests.rs:9\n",
        "followup_answer": "Nine journal tests call parse_posting.",
    },
]

# Questions for the exploration turns, each with the identifier to search for.
EXPLORATIONS = [
    ("Explain how {module}.rs turns a line into a {word}.", "parse_{word}"),
    ("Where is the {word} table filled? Show me the relevant part of {module}.rs.", "{word}_table"),
    ("Is `{word}` validated before it reaches {module}.rs? Check the callers.", "validate_{word}"),
    ("Summarize what {module}.rs does with {word} values, briefly.", "{word}"),
]


class Root(Agent):
    """The root thread: the user's session."""

    def __init__(self, bundle: Bundle, scheduler: Scheduler, children: int, target_bytes: Optional[int]) -> None:
        super().__init__(bundle, scheduler, bundle.root_thread_id, "/root", BASE_TOOLS + AGENT_TOOLS)
        self.children = children
        self.target_bytes = target_bytes
        self.mailbox: list[Item] = []  # deliveries from helpers, seen at the next request
        self.helpers: list[Child] = []
        # Bigger bundles compact later and read bigger files; smaller ones
        # keep turns small enough to land near the target.
        scale = target_bytes or 0
        self.compact_at = max(32 * 1024, min(scale // 40, 512 * 1024))
        self.output_size = max(1500, min(scale // 400, 12000))

    def sample(self, outputs: list[Union[Item, "Tool"]], *, incremental: bool = False) -> Steps:
        for item in self.mailbox:
            self.record(item)
        self.mailbox.clear()
        return (yield from super().sample(outputs, incremental=incremental))

    def run(self) -> Iterator[Wait]:
        bundle = self.bundle
        bundle.emit({"type": "rollout_started", "trace_id": bundle.trace_id, "root_thread_id": self.thread_id})
        self.start_thread(self.metadata("cli"))
        self.initial_context()
        yield None
        yield from self.turn_reproduce()
        yield from self.turn_inventory()
        last_turn = 0
        # Explore while another turn brings the final size closer to the target.
        while (
            self.target_bytes is not None and bundle.size() + self.tail_estimate() + last_turn // 2 < self.target_bytes
        ):
            before = bundle.size()
            yield from self.turn_explore()
            last_turn = bundle.size() - before
        yield from self.turn_fix()
        if self.children:
            yield from self.turn_delegate()
        # Shutting the session down shuts down the helpers still running.
        for child in self.helpers:
            child.closing = True
        yield lambda: all(child.ended for child in self.helpers)
        self.end_thread()
        bundle.emit({"type": "rollout_ended", "status": "completed"})

    def tail_estimate(self) -> int:
        """What the turns after exploring will write, from measurements of
        generated bundles: the compaction carries the history about twice,
        the delegation turn grows with the number of helpers."""
        delegation = 95_000 + 30_000 * self.children if self.children else 0
        return int(2.2 * self.history_bytes) + 45_000 + delegation

    def turn_reproduce(self) -> Steps:
        self.begin_turn()
        self.user("The parse_amount tests started failing after the locale change. Find out why; don't fix it yet.")
        test_log = (
            "running 14 tests\n"
            "test amount::tests::parse_amount_grouped ... FAILED\n\nfailures:\n\n"
            "---- amount::tests::parse_amount_grouped stdout ----\n"
            "panicked at crates/ledger-core/src/amount/tests.rs:33:9: UnexpectedChar { ch: ',', column: 3 }\n\n"
            "test result: FAILED. 13 passed; 1 failed; 0 ignored\n"
        )
        tests = ExecCommand(self, "cargo test -p ledger-core parse_amount", test_log, 101, seconds=6.2)
        repl = ExecCommand(self, "cargo run -q -p ledger-cli -- repl", "ledger> ", keeps_running=True, seconds=3.0)
        yield from self.sample(
            [
                self.reasoning(
                    "Running the failing tests and opening the REPL",
                    "The user wants a diagnosis: run the tests, and try amounts by hand.",
                ),
                self.say(
                    "I'll run the parse_amount tests and open the ledger REPL to try amounts by hand.", "commentary"
                ),
                tests,
                repl,
            ]
        )
        parse = WriteStdin(
            self,
            repl,
            "parse 1234.50 USD\nparse -1,234.50 USD\nquit\n",
            "1234.50 USD\nledger> error: unexpected ',' at column 3\nledger> bye\n",
            exits=True,
        )
        yield from self.sample([self.reasoning("Trying plain and grouped amounts"), parse], incremental=True)
        answer = (
            "`parse_amount` treats ',' as an invalid character: since the locale change the grouped amount "
            "`-1,234.50` reaches the tokenizer unnormalized and fails at column 3 "
            "(`crates/ledger-core/src/amount.rs:88`). Plain amounts still parse."
        )
        yield from self.sample([self.reasoning("Summarizing the cause"), self.say(answer, "final_answer")])
        self.end_turn()

    def turn_inventory(self) -> Steps:
        self.begin_turn()
        self.user(
            "Before fixing anything, give me a quick inventory: how many source files and TODOs are in ledger-core?"
        )
        source = (
            'const files = await tools.exec_command({ cmd: "git ls-files crates/ledger-core/src | wc -l" });\n'
            "text(`source files: ${files.output.trim()}`);\n"
            "yield_control();\n"
            "const todos = await tools.exec_command({ cmd: \"rg -c 'TODO|FIXME' crates/ledger-core/src\" });\n"
            "text(todos.output);\n"
        )
        todo_counts = (
            "crates/ledger-core/src/amount.rs:3\ncrates/ledger-core/src/journal/mod.rs:1\n"
            "crates/ledger-core/src/price.rs:2\n"
        )
        cell = CodeCell(
            self,
            source,
            ("git ls-files crates/ledger-core/src | wc -l", "23\n"),
            ("rg -c 'TODO|FIXME' crates/ledger-core/src", todo_counts),
            "source files: 23",
            todo_counts,
        )
        yield from self.sample([self.reasoning("Counting files and TODOs in one script"), cell])
        yield from self.sample([self.reasoning("Waiting for the TODO count"), WaitForCell(self, cell)])
        answer = (
            "ledger-core has 23 source files and 6 TODO/FIXME markers: "
            "3 in amount.rs, 2 in price.rs, 1 in journal/mod.rs."
        )
        yield from self.sample([self.say(answer, "final_answer")])
        self.end_turn()

    def turn_delegate(self) -> Steps:
        self.begin_turn()
        self.user(
            "Use helper agents to check the CI logs and the formatting code for related problems, then summarize."
        )
        helpers = [Child(self, index, HELPERS[index % len(HELPERS)]) for index in range(self.children)]
        self.helpers = helpers
        spawns = [SpawnAgent(self, child) for child in helpers]
        yield from self.sample([self.reasoning("Splitting the investigation"), *spawns])
        yield from self.sample([WaitAgent(self, helpers, 1)], incremental=True)
        first, rest = helpers[0], helpers[1:]
        send = MessageAgent(self, "send_message", first, "Also note which test binaries were affected.")
        followup = MessageAgent(
            self, "followup_task", first, "Summarize the failures by crate, in at most three lines."
        )
        closes = [CloseAgent(self, child) for child in rest]
        yield from self.sample([self.reasoning("Asking for a per-crate summary"), send, followup, *closes])
        yield from self.sample([WaitAgent(self, [first], 2)], incremental=True)
        answer = (
            "Helpers found the same separator bug in two more tests (de_DE and fr_FR CI runs); "
            "report formatting reads the process locale in two places."
        )
        yield from self.sample([self.reasoning("Combining the helpers' findings"), self.say(answer, "final_answer")])
        self.end_turn()

    def compact_if_needed(self, *, force: bool = False) -> Steps:
        if self.history_bytes > self.compact_at or (force and self.compactions == 0):
            yield from self.compact()

    def turn_explore(self) -> Steps:
        """An extra turn reading and searching code, to grow the bundle."""
        rng = self.rng
        self.begin_turn()
        question, pattern = rng.choice(EXPLORATIONS)
        word, module = rng.choice(_WORDS), rng.choice(_WORDS)
        self.user(question.format(module=module, word=word))
        yield from self.compact_if_needed()
        path = f"crates/ledger-core/src/{module}.rs"
        read = ExecCommand(
            self, f"sed -n '1,200p' {path}", rust_source(rng, rng.randint(self.output_size // 2, self.output_size))
        )
        yield from self.sample(
            [self.reasoning(f"Reading {module}.rs"), self.say(f"Reading `{path}`.", "commentary"), read]
        )
        search_for = pattern.format(word=word)
        search = ExecCommand(
            self,
            f"rg -n '{search_for}' crates",
            search_hits(rng, search_for, rng.randint(self.output_size // 4, self.output_size // 2)),
        )
        yield from self.sample([self.reasoning(f"Finding uses of {search_for}"), search])
        answer = (
            f"`{path}` builds each {word} through `{search_for}`; "
            "callers in ledger-core and ledger-fmt pass it the already trimmed input."
        )
        yield from self.sample([self.say(answer, "final_answer")])
        self.end_turn()

    def turn_fix(self) -> Steps:
        self.begin_turn()
        self.user("Go ahead: make parse_amount accept grouping separators, then rerun the tests.")
        yield from self.compact_if_needed(force=True)
        diff = (
            "@@ pub fn parse_amount(input: &str, locale: &Locale) -> Result<Amount, ParseError> {\n"
            "-    let digits = input.trim();\n"
            '+    let digits = input.trim().replace(locale.grouping_separator(), "");\n'
            "+    let digits = digits.as_str();\n"
        )
        patch = ApplyPatch(self, "crates/ledger-core/src/amount.rs", diff)
        yield from self.sample(
            [
                self.reasoning("Stripping grouping separators before tokenizing"),
                self.say("Stripping the locale's grouping separator before tokenizing.", "commentary"),
                patch,
            ]
        )
        passing = "running 14 tests\ntest result: ok. 14 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n"
        tests = ExecCommand(self, "cargo test -p ledger-core parse_amount", passing, seconds=5.4)
        yield from self.sample([self.reasoning("Rerunning the tests"), tests])
        answer = (
            "Fixed: `parse_amount` now removes the locale's grouping separator before tokenizing "
            "(`crates/ledger-core/src/amount.rs:88`). All 14 ledger-core amount tests pass."
        )
        yield from self.sample([self.say(answer, "final_answer")])
        self.end_turn()


# ---------------------------------------------------------------------------
# Entry points


def generate(
    out_dir: Union[str, "os.PathLike[str]"], *, seed: int = 0, target_mb: Optional[float] = None, children: int = 2
) -> Path:
    """Writes a realistic bundle into ``out_dir`` and returns its path.

    ``seed`` fixes every id, time and choice: equal arguments give
    byte-identical bundles. ``target_mb`` adds exploration turns until the
    bundle is about that many megabytes (10**6 bytes, usually within 15%);
    without it, or below the base story's size (about 0.3 MB with two
    helpers), the bundle holds the base story only. ``children`` is the
    number of helper agents the root spawns. Raises the writer's
    ``WriteError`` if ``out_dir`` already holds a bundle.
    """
    if children < 0:
        raise ValueError(f"children must be >= 0, got {children}")
    if target_mb is not None and target_mb <= 0:
        raise ValueError(f"target_mb must be positive, got {target_mb}")
    bundle = Bundle(Path(out_dir), seed)
    try:
        scheduler = Scheduler(bundle.rng)
        target = None if target_mb is None else int(target_mb * 1_000_000)
        scheduler.start(Root(bundle, scheduler, children, target).run())
        scheduler.run()
    finally:
        bundle.close()
    return bundle.path


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rollout_trace.synth", description="Write a deterministic, realistic rollout trace bundle."
    )
    parser.add_argument("out_dir", help="bundle directory to create (must not hold a bundle yet)")
    parser.add_argument("--seed", type=int, default=0, help="seed for ids, times and choices (default 0)")
    parser.add_argument("--target-mb", type=float, default=None, help="grow the bundle to about this many megabytes")
    parser.add_argument("--children", type=int, default=2, help="number of helper agents to spawn (default 2)")
    args = parser.parse_args(argv)
    if args.children < 0:
        parser.error("--children must be >= 0")
    if args.target_mb is not None and args.target_mb <= 0:
        parser.error("--target-mb must be positive")
    path = generate(args.out_dir, seed=args.seed, target_mb=args.target_mb, children=args.children)
    size = sum(file.stat().st_size for file in path.rglob("*") if file.is_file())
    print(f"{path} ({size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
