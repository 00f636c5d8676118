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


#: the committed offline corpus (tests/data/codex): filled at the end of the module
OFFLINE_SUBSET: dict[str, list[str]] = {}
