"""The scenarios: scripted sessions, each recorded with a real ``codex exec``.

``SCENARIOS[name](release) -> Recording``. A scenario that a release cannot
do returns a Recording with ``ok=False`` and a note saying why (for
example ``exec fork`` before 0.149.0).
"""
from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import Callable

from .mock import (
    Script,
    Step,
    apply_patch,
    custom_tool_call,
    exec_cmd,
    function_call,
    message,
    reasoning,
    update_plan,
    web_search_call,
    write_stdin,
)
from .recorder import Recording, Session
from .releases import Release

SCENARIOS: dict[str, Callable[[Release], Recording]] = {}
#: scenarios recorded only on demand (not in CI)
ON_DEMAND: set[str] = set()


def scenario(name: str, on_demand: bool = False):
    def deco(fn):
        SCENARIOS[name] = fn
        if on_demand:
            ON_DEMAND.add(name)
        return fn

    return deco


def _finish(name: str, rel: Release, sess: Session, troot: Path | None, t0: float,
            note: str = "", expect_bundles: int = 1) -> Recording:
    sess.close()
    bundles = Session.bundles(troot) if troot is not None else []
    rec = Recording(name, rel.version, bundles[0] if bundles else None, bool(bundles), note,
                    time.monotonic() - t0, bundles[1:], sess.log)
    if not bundles:
        rec.note = (note + "; " if note else "") + "no bundle written; output: " + sess.output()[-600:]
    rec.session = sess  # type: ignore[attr-defined]
    return rec


def _simple(name: str, rel: Release, prompt: str, steps: list, *, provider_name="mock",
            config_extra="", files=None, args=(), timeout=120, interrupt=None, note="",
            children: list[Script] = (), mcp: bool = False) -> Recording:
    t0 = time.monotonic()
    if mcp:
        config_extra = config_extra + mcp_config()
    sess = Session(rel, [Script("root", steps, None), *children], provider_name=provider_name,
                   config_extra=config_extra, workdir_files=files)
    rc, troot = sess.run([*args, prompt], timeout=timeout,
                         interrupt=interrupt(sess) if interrupt else None)
    rec = _finish(name, rel, sess, troot, t0, note)
    rec.note = (rec.note + f" rc={rc}").strip()
    return rec


# ------------------------------------------------------------- scenarios


@scenario("chat")
def chat(rel: Release) -> Recording:
    return _simple("chat", rel, "Say hello.", [
        Step([reasoning("The user wants a greeting."), message("Hello! How can I help?")]),
    ])


@scenario("exec_ok")
def exec_ok(rel: Release) -> Recording:
    return _simple("exec_ok", rel, "List the files.", [
        Step([reasoning("I should list files."), exec_cmd("ls -1; echo listed")]),
        Step([reasoning("Files listed."), message("There is one file: notes.txt.")]),
    ], files={"notes.txt": b"hello\n"})


@scenario("exec_fail")
def exec_fail(rel: Release) -> Recording:
    return _simple("exec_fail", rel, "Read the missing file.", [
        Step([reasoning("Try to read it."), exec_cmd("cat does-not-exist.txt; echo oops >&2; exit 3")]),
        Step([reasoning("It failed."), message("The file does not exist (exit 3).")]),
    ])


PATCH1 = """*** Begin Patch
*** Add File: hello.py
+def hello():
+    return "hello"
*** End Patch"""

PATCH2 = """*** Begin Patch
*** Update File: hello.py
@@
 def hello():
-    return "hello"
+    return "hello, world"
*** End Patch"""


@scenario("multi_step")
def multi_step(rel: Release) -> Recording:
    return _simple("multi_step", rel, "Create hello.py, then change its greeting.", [
        Step([reasoning("Plan first."), update_plan([("Create hello.py", "in_progress"),
                                                      ("Change the greeting", "pending")],
                                                     "Two small steps.")]),
        Step([reasoning("Create the file."), apply_patch(PATCH1)]),
        Step([reasoning("Check it."), exec_cmd("cat hello.py")]),
        Step([update_plan([("Create hello.py", "completed"), ("Change the greeting", "in_progress")])]),
        Step([reasoning("Edit it."), apply_patch(PATCH2)]),
        Step([exec_cmd("python3 -c 'import hello; print(hello.hello())'")]),
        Step([update_plan([("Create hello.py", "completed"), ("Change the greeting", "completed")])]),
        Step([reasoning("All done."), message("hello.py now returns 'hello, world'.")]),
    ])



@scenario("terminal")
def terminal(rel: Release) -> Recording:
    """An interactive process in a terminal, fed by ``write_stdin``."""
    prog = "read a; echo got:$a; read b; echo bye:$b"
    return _simple("terminal", rel, "Talk to the interactive program.", [
        Step([reasoning("Start it."), exec_cmd(f"bash -c '{prog}'", yield_time_ms=500, tty=True)]),
        Step([reasoning("It waits for input."), write_stdin(chars="hello\n", yield_time_ms=500)]),
        Step([write_stdin(chars="world\n", yield_time_ms=1000)]),
        Step([reasoning("It finished."), message("The program echoed got:hello and bye:world.")]),
    ])


@scenario("unknown_tool")
def unknown_tool(rel: Release) -> Recording:
    return _simple("unknown_tool", rel, "Use the frobnicator.", [
        Step([reasoning("Call a tool that does not exist."),
              function_call("frobnicate", {"level": 3, "target": "all"})]),
        Step([custom_tool_call("no_such_freeform_tool", "some input")]),
        Step([message("That tool does not exist here.")]),
    ])


@scenario("web_search")
def web_search(rel: Release) -> Recording:
    return _simple("web_search", rel, "Search the web for the Rust release schedule.", [
        Step([reasoning("Search."), web_search_call("rust release schedule"),
              message("Rust releases every six weeks.")]),
    ])


@scenario("retry_500")
def retry_500(rel: Release) -> Recording:
    """The first request gets HTTP 500, codex retries."""
    return _simple("retry_500", rel, "Say hello after a server error.", [
        Step(status=500),
        Step([reasoning("Second try."), exec_cmd("echo after-retry")]),
        Step(status=500),
        Step([message("Hello after retries.")]),
    ])


@scenario("retry_drop")
def retry_drop(rel: Release) -> Recording:
    """The stream is dropped after two events, codex retries the request."""
    return _simple("retry_drop", rel, "Say hello after a dropped stream.", [
        Step([reasoning("First try, dropped."), message("never completed")], drop_after=2),
        Step([reasoning("Second try."), exec_cmd("echo after-drop")]),
        Step([message("partial")], drop_after=4),
        Step([message("Hello after a dropped stream.")]),
    ])


def _png(w: int = 4, h: int = 4, rgb=(220, 30, 30)) -> bytes:
    """A small valid PNG (solid colour)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\0" + bytes(rgb) * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


PNG = _png()


@scenario("view_image")
def view_image(rel: Release) -> Recording:
    return _simple("view_image", rel, "Look at dot.png.", [
        Step([reasoning("View the image."), function_call("view_image", {"path": "dot.png"})]),
        Step([reasoning("It is red; sample again."), exec_cmd("ls -l dot.png")]),
        Step([reasoning("Done."), message("dot.png is a tiny red square.")]),
    ], files={"dot.png": PNG})


def _wait_file(sess: Session, name: str):
    return lambda: (sess.work / name).exists()


@scenario("interrupted")
def interrupted(rel: Release) -> Recording:
    """SIGINT while a tool runs."""
    return _simple("interrupted", rel, "Run the slow command.", [
        Step([reasoning("Run it."), exec_cmd("touch started.flag; sleep 30; echo finished",
                                             yield_time_ms=20000)]),
        Step([message("It finished.")]),
    ], interrupt=lambda sess: (signal.SIGINT, _wait_file(sess, "started.flag")), timeout=60)


@scenario("killed")
def killed(rel: Release) -> Recording:
    """SIGKILL while a tool runs; the tool processes are ended by the harness."""
    return _simple("killed", rel, "Run the slow command.", [
        Step([reasoning("Run it."), exec_cmd("touch started.flag; sleep 30; echo finished",
                                             yield_time_ms=20000)]),
        Step([message("It finished.")]),
    ], interrupt=lambda sess: (signal.SIGKILL, _wait_file(sess, "started.flag")), timeout=60)


def _two_runs(name: str, rel: Release, second: Callable[[Session], list[str]], scripts) -> Recording:
    t0 = time.monotonic()
    sess = Session(rel, scripts, workdir_files={"notes.txt": b"hello\n"})
    rc1, troot1 = sess.run(["First, list the files."], timeout=90)
    if sess.thread_id is None:
        return _finish(name, rel, sess, troot1, t0, f"first run wrote no bundle (rc={rc1})")
    rc2, troot2 = sess.run(second(sess), timeout=90)
    rec = _finish(name, rel, sess, troot2, t0, f"rc={rc1},{rc2}")
    first = Session.bundles(troot1)
    if rec.ok:
        rec.extra_bundles = first + rec.extra_bundles
    return rec


@scenario("resume")
def resume(rel: Release) -> Recording:
    """``codex exec resume <id>``: the bundle of the resumed session (bundle-2: the first run)."""
    return _two_runs("resume", rel, lambda s: ["resume", s.thread_id, "Now count them. RESUME-MARK"], [
        Script("root", [
            Step([reasoning("List."), exec_cmd("ls -1")]),
            Step([message("One file: notes.txt.")]),
            Step([reasoning("Count."), exec_cmd("ls -1 | wc -l")]),
            Step([message("There is 1 file.")]),
        ]),
    ])


@scenario("fork")
def fork(rel: Release) -> Recording:
    """``codex exec fork <id>`` (from 0.149.0)."""
    if rel.vt < (0, 149, 0):
        return Recording("fork", rel.version, None, False, "no `codex exec fork` before 0.149.0",
                         unsupported=True)
    return _two_runs("fork", rel, lambda s: ["fork", s.thread_id, "Count them in the fork. FORK-MARK"], [
        Script("root", [
            Step([reasoning("List."), exec_cmd("ls -1")]),
            Step([message("One file: notes.txt.")]),
        ]),
        Script("fork", [
            Step([reasoning("Count in the fork."), exec_cmd("ls -1 | wc -l")]),
            Step([message("The fork counted 1 file.")]),
        ], marker="FORK-MARK"),
    ])



COMPACT_LIMIT = "model_auto_compact_token_limit = 4000"


@scenario("compaction")
def compaction(rel: Release) -> Recording:
    """Remote compaction: the provider is named ``OpenAI``, a low auto-compact limit."""
    big = {"input_tokens": 9000, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 50,
           "output_tokens_details": {"reasoning_tokens": 10}, "total_tokens": 9050}
    return _simple("compaction", rel, "Work through the files; compact when needed.", [
        Step([reasoning("Look around."), exec_cmd("ls -1")], usage=big),
        Step([reasoning("More."), exec_cmd("wc -c notes.txt")], usage=big),
        Step([reasoning("Done."), message("Finished after compaction.")]),
    ], provider_name="OpenAI", config_extra=COMPACT_LIMIT, files={"notes.txt": b"hello\n"})



def agent_call(name: str, args: dict):
    """A multi-agent v2 tool (namespace ``collaboration`` from 0.144.4)."""
    return function_call(name, args)


def _close_or_interrupt(target: str):
    def make(ctx):
        name = "close_agent" if ctx.has("close_agent") else "interrupt_agent"
        return function_call(name, {"target": target})(ctx)

    return make


MA = ["--enable", "multi_agent_v2"]


@scenario("multi_agent")
def multi_agent(rel: Release) -> Recording:
    """spawn_agent, wait_agent, followup_task, send_message, close/interrupt."""
    root = [
        Step([reasoning("Delegate."), agent_call("spawn_agent", {
            "task_name": "helper", "message": "CHILD-TASK-A: list the files and report."})]),
        Step([reasoning("Wait for it."), agent_call("wait_agent", {"timeout_ms": 30000})]),
        Step([reasoning("Ask more."), agent_call("followup_task", {
            "target": "helper", "message": "CHILD-FOLLOWUP: now count them."})]),
        Step([agent_call("wait_agent", {"timeout_ms": 30000})]),
        Step([agent_call("send_message", {"target": "helper", "message": "Thanks, that is all."})]),
        Step([_close_or_interrupt("helper")]),
        Step([reasoning("Report."), message("The helper found one file.")]),
    ]
    child = [
        Step([reasoning("Child lists."), exec_cmd("ls -1")]),
        Step([message("helper: one file, notes.txt")]),
        Step([reasoning("Child counts."), exec_cmd("ls -1 | wc -l")]),
        Step([message("helper: 1")]),
    ]
    return _simple("multi_agent", rel, "Use a helper agent to inspect the files.", root,
                   args=MA, files={"notes.txt": b"hello\n"},
                   children=[Script("helper", child, marker="CHILD-TASK-A")], timeout=150)



def wait_cell(yield_time_ms: int = 10000):
    """Code-mode ``wait`` on the cell id named in the newest exec output."""

    def make(ctx):
        import re

        cell = None
        for m in re.finditer(r"[Cc]ell[ _]?(?:ID|id)?[\s:=\"]*([0-9]+)", ctx.input_text()):
            cell = m.group(1)
        return function_call("wait", {"cell_id": cell or "1", "yield_time_ms": yield_time_ms})(ctx)

    return make


JS_QUICK = """const r = await tools.exec_command({cmd: "echo from-code-mode"});
text(typeof r === "string" ? r : (r.output ?? JSON.stringify(r)));
"""

JS_SLOW = """// @exec: {"yield_time_ms": 300}
text("starting");
const r = await tools.exec_command({cmd: "sleep 2; echo slow-done", yield_time_ms: 10000});
text(typeof r === "string" ? r : (r.output ?? JSON.stringify(r)));
"""

JS_FAIL = """throw new Error("deliberate failure");
"""


def code_mode_flag(rel: Release) -> list[str]:
    return ["--enable", "code_mode_only" if rel.vt < (0, 139, 0) else "code_mode"]


@scenario("code_mode")
def code_mode(rel: Release) -> Recording:
    """Code mode: an ``exec`` cell calling a nested tool, a yielded cell ended by ``wait``, a failing cell."""
    return _simple("code_mode", rel, "Use code mode to run commands.", [
        Step([reasoning("Run JS."), custom_tool_call("exec", JS_QUICK)]),
        Step([reasoning("A slow one."), custom_tool_call("exec", JS_SLOW)]),
        Step([reasoning("Wait for it."), wait_cell(10000)]),
        Step([custom_tool_call("exec", JS_FAIL)]),
        Step([reasoning("Done."), message("Code mode ran: from-code-mode, slow-done.")]),
    ], args=code_mode_flag(rel), note=" ".join(code_mode_flag(rel)))



@scenario("multi_agent_interrupt")
def multi_agent_interrupt(rel: Release) -> Recording:
    """A child busy in a long tool is interrupted (closed) by its parent."""
    root = [
        Step([reasoning("Delegate a slow job."), agent_call("spawn_agent", {
            "task_name": "sleeper", "message": "CHILD-TASK-SLOW: run the slow job."})]),
        Step([agent_call("wait_agent", {"timeout_ms": 1500})]),
        Step([reasoning("Too slow; stop it."), _close_or_interrupt("sleeper")]),
        Step([message("Stopped the slow helper.")]),
    ]
    child = [
        Step([reasoning("Slow job."), exec_cmd("sleep 20; echo slept", yield_time_ms=20000)]),
        Step([message("sleeper: done")]),
    ]
    return _simple("multi_agent_interrupt", rel, "Start a slow helper, then stop it.", root, args=MA,
                   children=[Script("sleeper", child, marker="CHILD-TASK-SLOW")], timeout=120)


def _long_steps(calls: int):
    steps = []
    for i in range(calls):
        items = [reasoning(f"Step {i}."), exec_cmd(f"echo step-{i}; ls -1 | head -3")]
        if i % 25 == 24:  # now and then two calls in one response
            items.append(exec_cmd(f"echo extra-{i}"))
        steps.append(Step(items))
    steps.append(Step([reasoning("All done."), message(f"Finished {calls} commands.")]))
    return steps


@scenario("long", on_demand=True)
def long_session(rel: Release) -> Recording:
    """Hundreds of exec calls (``ROLLOUT_TRACE_LONG_CALLS``, default 300) in one
    ``codex exec`` session, for benchmarks. One exec process runs one user turn;
    ``exec resume`` would start a new bundle, so the calls share one turn."""
    calls = int(os.environ.get("ROLLOUT_TRACE_LONG_CALLS", "300"))
    t0 = time.monotonic()
    sess = Session(rel, [Script("root", _long_steps(calls))], workdir_files={"notes.txt": b"x\n"})
    rc, troot = sess.run(["Run the long job."], timeout=3600)
    return _finish("long", rel, sess, troot, t0, f"{calls} exec calls, rc={rc}")


def mcp_config() -> str:
    import sys as _sys

    server = Path(__file__).resolve().parent / "mcp_server.py"
    return f"""
[mcp_servers.mock]
command = "{_sys.executable}"
args = ["{server}"]
startup_timeout_sec = 20
tool_timeout_sec = 20
"""


def mcp_tool(tool: str, args: dict):
    """An MCP tool of server ``mock`` by whatever name/namespace the request offers."""

    def make(ctx):
        for key, spec in ctx.tools.items():
            ns = spec.get("_namespace") or ""
            if key == f"mcp__mock__{tool}" or (ns.startswith("mcp__mock") and spec.get("name") == tool):
                return function_call(spec["name"], args, namespace=ns or None)(ctx)
        return function_call(f"mcp__mock__{tool}", args)(ctx)

    return make


def tool_search_call(query: str, limit: int | None = None):
    def make(ctx):
        args: dict = {"query": query}
        if limit is not None:
            args["limit"] = limit
        return {"type": "tool_search_call", "id": ctx.next_id("tsc"), "call_id": ctx.next_id("call"),
                "status": "completed", "execution": "client", "arguments": args}

    return make


def _find_mcp_tools(query: str, tries: int = 20):
    """A step: ``tool_search`` for the MCP tools where the request defers them;
    where neither they nor tool_search are offered yet (the MCP server is
    still starting), a short exec, and the same step again."""
    left = [tries]

    def step(ctx):
        if any(n.startswith("mcp__mock") for n in ctx.tools):
            return Step([reasoning("The MCP tools are there."), exec_cmd("echo mcp tools offered")])
        if ctx.has("tool_search"):
            return Step([reasoning("Find the MCP tools."), tool_search_call(query, 5)])
        left[0] -= 1
        return Step([reasoning("Wait for the MCP server."), exec_cmd("sleep 0.5")], again=left[0] > 0)

    return step


@scenario("mcp")
def mcp(rel: Release) -> Recording:
    """MCP tool calls (a stdio MCP server of the harness): a result and an error result;
    found with ``tool_search`` where the release defers MCP tools behind it."""
    return _simple("mcp", rel, "Use the mock MCP server.", [
        _find_mcp_tools("mock echo fail"),
        Step([reasoning("Call MCP echo."), mcp_tool("echo", {"text": "hi from mcp"})]),
        Step([reasoning("Call MCP fail."), mcp_tool("fail", {})]),
        Step([message("The MCP server echoed and then failed.")]),
    ], config_extra="", mcp=True)


BAD_PATCH = """*** Begin Patch
*** Update File: missing.py
@@
-old line
+new line
*** End Patch"""


@scenario("parallel")
def parallel(rel: Release) -> Recording:
    """Two exec calls in one response (parallel tool calls), then a patch that does not apply."""
    return _simple("parallel", rel, "Run two commands at once, then patch a missing file.", [
        Step([reasoning("Both at once."), exec_cmd("echo first; sleep 0.3"), exec_cmd("echo second")]),
        Step([reasoning("Patch."), apply_patch(BAD_PATCH)]),
        Step([reasoning("It failed."), message("Ran both; the patch did not apply.")]),
    ])
