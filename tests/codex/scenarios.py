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
            children: list[Script] = ()) -> Recording:
    t0 = time.monotonic()
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
        Step([reasoning("It is red."), message("dot.png is a tiny red square.")]),
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
        return Recording("fork", rel.version, None, False, "no `codex exec fork` before 0.149.0")
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


#: the committed offline corpus (tests/data/codex): filled at the end of the module
OFFLINE_SUBSET: dict[str, list[str]] = {}
