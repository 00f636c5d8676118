"""A scripted mock of the OpenAI Responses API (stdlib only).

``MockModel`` serves ``POST /v1/responses`` (server-sent events) and
``POST /v1/responses/compact`` (JSON) on 127.0.0.1. Requests are told apart
by thread (the ``thread-id`` / ``session_id`` header, or the thread id in
``client_metadata``); each thread gets its own script, picked on the
thread's first request by a marker string found in its input (searched from
the newest input item backwards), so a child agent's task text or a fork's
prompt selects the child's or the fork's script.

A script is a list of steps; each request to the thread takes the next
step. A step is a ``Step`` or a callable ``f(ctx) -> Step``; its items are
dicts or callables ``f(ctx) -> dict`` resolved against the request (the
tools it offers), so one scenario drives releases whose tools differ
(``exec_command`` vs ``shell``, freeform vs function ``apply_patch``, ...).
"""
from __future__ import annotations

import http.server
import itertools
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

# ---------------------------------------------------------------- steps


@dataclass
class Step:
    items: list = field(default_factory=list)
    #: HTTP status; anything but 200 answers with an error body, no stream
    status: int = 200
    #: close the connection after this many SSE events (no response.completed)
    drop_after: int | None = None
    #: seconds to wait before answering
    delay: float = 0.0
    #: keep the stream open (after the items) until the server stops or
    #: ``release`` is set: for interrupt / kill scenarios
    hang: bool = False
    usage: dict | None = None
    #: compact endpoint (``/responses/compact``) step: output items
    compact: bool = False
    #: the thread's next request gets this same script step again
    again: bool = False


@dataclass
class Ctx:
    server: "MockModel"
    thread: "ThreadState"
    body: dict
    headers: dict
    path: str

    @property
    def tools(self) -> dict[str, dict]:
        """name -> tool spec, namespaced tools as ``ns.name`` and ``name``."""
        out: dict[str, dict] = {}
        offered = list(self.body.get("tools") or [])
        for item in self.body.get("input") or []:
            if isinstance(item, dict) and item.get("type") == "tool_search_output":
                offered += item.get("tools") or []  # tools discovered by tool_search
        for t in offered:
            if t.get("type") == "namespace":
                ns = t.get("name")
                for sub in t.get("tools") or []:
                    spec = dict(sub, _namespace=ns)
                    out.setdefault(sub.get("name"), spec)
                    out[f"{ns}.{sub.get('name')}"] = spec
            elif t.get("name"):
                out.setdefault(t["name"], t)
            else:
                out.setdefault(t.get("type"), t)
        return out

    def has(self, name: str) -> bool:
        return name in self.tools

    def next_id(self, prefix: str) -> str:
        return self.server.next_id(prefix)

    def input_text(self) -> str:
        return json.dumps(self.body.get("input"))

    def last_outputs(self) -> list[dict]:
        """Tool outputs after the newest assistant-side item of the input."""
        out = []
        for item in reversed(self.body.get("input") or []):
            t = item.get("type")
            if t in ("function_call_output", "custom_tool_call_output"):
                out.append(item)
            elif t in ("function_call", "custom_tool_call"):
                continue
            else:
                break
        return list(reversed(out))


# ------------------------------------------------------------ item makers


def reasoning(text: str):
    def make(ctx: Ctx):
        rid = ctx.next_id("rs")
        return {
            "type": "reasoning",
            "id": rid,
            "summary": [{"type": "summary_text", "text": text}],
            "encrypted_content": f"enc:{rid}:{ctx.server.run_tag}",
        }

    return make


def message(text: str):
    def make(ctx: Ctx):
        return {
            "type": "message",
            "role": "assistant",
            "id": ctx.next_id("msg"),
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }

    return make


def function_call(name: str, arguments: Any, namespace: str | None = None):
    def make(ctx: Ctx):
        ns = namespace
        if ns is None:
            spec = ctx.tools.get(name)
            if spec is not None:
                ns = spec.get("_namespace")
        args = arguments(ctx) if callable(arguments) else arguments
        item = {
            "type": "function_call",
            "id": ctx.next_id("fc"),
            "status": "completed",
            "call_id": ctx.next_id("call"),
            "name": name,
            "arguments": args if isinstance(args, str) else json.dumps(args),
        }
        if ns:
            item["namespace"] = ns
        return item

    return make


def custom_tool_call(name: str, input_text: str):
    def make(ctx: Ctx):
        return {
            "type": "custom_tool_call",
            "id": ctx.next_id("ctc"),
            "status": "completed",
            "call_id": ctx.next_id("call"),
            "name": name,
            "input": input_text,
        }

    return make


def exec_cmd(cmd: str, yield_time_ms: int | None = None, tty: bool = False):
    """A shell command with whatever exec tool the request offers."""

    def make(ctx: Ctx):
        tools = ctx.tools
        if "exec_command" in tools:
            args: dict = {"cmd": cmd}
            if yield_time_ms is not None:
                args["yield_time_ms"] = yield_time_ms
            if tty:
                args["tty"] = True
            return function_call("exec_command", args)(ctx)
        if "shell_command" in tools:
            return function_call("shell_command", {"command": cmd})(ctx)
        if "shell" in tools:
            return function_call("shell", {"command": ["bash", "-lc", cmd]})(ctx)
        return function_call("exec_command", {"cmd": cmd})(ctx)

    return make


def write_stdin(chars: str = "", yield_time_ms: int = 500):
    """``write_stdin`` to the terminal session named in the newest tool output
    ("Process running with session ID N"), else the last one in the input."""

    def make(ctx: Ctx):
        sid = None
        for out in reversed(ctx.last_outputs()):
            text = out.get("output")
            text = text if isinstance(text, str) else json.dumps(text)
            m = re.search(r"session ID (\d+)", text) or re.search(r'"session_id"\s*:\s*(\d+)', text)
            if m:
                sid = int(m.group(1))
                break
        if sid is None:
            found = re.findall(r"session ID (\d+)", ctx.input_text())
            sid = int(found[-1]) if found else 1
        return function_call(
            "write_stdin", {"session_id": sid, "chars": chars, "yield_time_ms": yield_time_ms}
        )(ctx)

    return make


def apply_patch(patch: str):
    def make(ctx: Ctx):
        spec = ctx.tools.get("apply_patch")
        if spec is not None and spec.get("type") == "custom":
            return custom_tool_call("apply_patch", patch)(ctx)
        if spec is not None:
            return function_call("apply_patch", {"input": patch})(ctx)
        # no apply_patch tool offered: the shell form codex intercepts
        return exec_cmd(f"apply_patch <<'EOF'\n{patch}\nEOF")(ctx)

    return make


def update_plan(steps: list[tuple[str, str]], explanation: str | None = None):
    args: dict = {"plan": [{"step": s, "status": st} for s, st in steps]}
    if explanation:
        args["explanation"] = explanation
    return function_call("update_plan", args)


def web_search_call(query: str):
    def make(ctx: Ctx):
        return {
            "type": "web_search_call",
            "id": ctx.next_id("ws"),
            "status": "completed",
            "action": {"type": "search", "query": query},
        }

    return make


def compaction_item():
    def make(ctx: Ctx):
        cid = ctx.next_id("cmp")
        return {"type": "compaction", "id": cid, "encrypted_content": f"compacted:{cid}:{ctx.server.run_tag}"}

    return make


def default_usage(ctx: Ctx) -> dict:
    n = len(json.dumps(ctx.body.get("input")))
    inp = max(1, n // 4)
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 12,
        "output_tokens_details": {"reasoning_tokens": 4},
        "total_tokens": inp + 12,
    }


# ---------------------------------------------------------------- server


@dataclass
class ThreadState:
    thread_id: str
    script: list
    name: str
    index: int = 0
    requests: int = 0


@dataclass
class Script:
    """One thread's script, chosen by ``marker`` (None: the root/fallback)."""

    name: str
    steps: list
    marker: str | None = None
    #: may be picked by more than one thread
    reusable: bool = False


class MockModel:
    def __init__(self, scripts: list[Script], default_text: str = "Done.", run_tag: str = "t"):
        self.scripts = list(scripts)
        self.claimed: set[str] = set()
        self.threads: dict[str, ThreadState] = {}
        self.default_text = default_text
        self.run_tag = run_tag
        self.lock = threading.Lock()
        self.counter = itertools.count(1)
        self.log: list[dict] = []
        self.compactions = 0
        self.keep_bodies = bool(os.environ.get("ROLLOUT_TRACE_MOCK_KEEP_BODIES"))
        self.bodies: list = []
        self.release = threading.Event()
        self.served = threading.Condition(self.lock)
        self.events: list[tuple[str, str, int]] = []  # (thread script name, path, step index)
        self.httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- bookkeeping
    def next_id(self, prefix: str) -> str:
        return f"{prefix}_{self.run_tag}_{next(self.counter)}"

    def _thread_key(self, headers: dict, body: dict) -> str:
        for h in ("thread-id", "thread_id", "session_id", "session-id", "x-client-request-id"):
            if headers.get(h):
                return headers[h]
        meta = body.get("client_metadata") or {}
        for k in ("thread_id", "session_id"):
            if meta.get(k):
                return meta[k]
        return body.get("prompt_cache_key") or "?"

    def _pick_script(self, body: dict) -> Script:
        items = body.get("input") or []
        texts = [json.dumps(i) for i in items] if isinstance(items, list) else [json.dumps(items)]
        candidates = [s for s in self.scripts if s.marker and (s.reusable or s.name not in self.claimed)]
        for text in reversed(texts):
            for s in candidates:
                if s.marker in text:
                    return s
        for s in self.scripts:
            if s.marker is None and s.name not in self.claimed:
                return s
        return Script("default", [], None, True)

    def thread_for(self, headers: dict, body: dict) -> ThreadState:
        key = self._thread_key(headers, body)
        with self.lock:
            st = self.threads.get(key)
            if st is None:
                s = self._pick_script(body)
                self.claimed.add(s.name)
                st = ThreadState(key, s.steps, s.name)
                self.threads[key] = st
            return st

    def next_step(self, ctx: Ctx, compact: bool) -> Step:
        st = ctx.thread
        with self.lock:
            st.requests += 1
            if st.index < len(st.script):
                step = st.script[st.index]
                st.index += 1
            else:
                step = None
            self.events.append((st.name, ctx.path, st.index))
            self.served.notify_all()
        if step is None:
            if compact:
                return Step(compact=True, items=[message("Summary of the conversation so far.")])
            return Step(items=[message(self.default_text)])
        if callable(step) and not isinstance(step, Step):
            step = step(ctx)
            if step.again:
                with self.lock:
                    st.index -= 1
        return step

    def wait_for_requests(self, name: str, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                n = sum(1 for e in self.events if e[0] == name)
                if n >= count:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.served.wait(left)

    # -- lifecycle
    def start(self) -> int:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                server.log.append({"method": "GET", "path": self.path})
                if self.path.rstrip("/").endswith("/models"):
                    body = json.dumps({"models": []}).encode()
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                else:
                    body = b'{"error":{"message":"not found"}}'
                    self.send_response(404)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                try:
                    server._post(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self.httpd.server_address[1]

    @property
    def port(self) -> int:
        assert self.httpd is not None
        return self.httpd.server_address[1]

    def stop(self) -> None:
        self.release.set()
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- request handling
    def _post(self, h: http.server.BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length else b""
        if (h.headers.get("content-encoding") or "").lower() == "zstd":
            raise RuntimeError("zstd request bodies are not supported by the mock")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        headers = {k.lower(): v for k, v in h.headers.items()}
        path = h.path.split("?")[0]
        if not path.endswith("/responses") and not path.endswith("/responses/compact"):
            self.log.append({"method": "POST", "path": path})
            data = b'{"error":{"message":"not found"}}'
            h.send_response(404)
            h.send_header("content-length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        compact = path.endswith("/compact")
        thread = self.thread_for(headers, body)
        ctx = Ctx(self, thread, body, headers, path)
        inp = body.get("input") if isinstance(body.get("input"), list) else []
        if compact:
            # legacy remote compaction endpoint: the replacement history
            users = [i for i in inp if i.get("type") == "message" and i.get("role") == "user"]
            step = Step(compact=True, items=users[-1:] + [compaction_item()])
            with self.lock:
                self.compactions += 1
        elif inp and inp[-1].get("type") == "compaction_trigger":
            # remote compaction v2: one `compaction` output item
            step = Step(items=[reasoning("Compacting."), compaction_item()])
            with self.lock:
                self.compactions += 1
        else:
            step = self.next_step(ctx, compact)
        self.log.append({"method": "POST", "path": path, "thread": thread.name, "step": thread.index})
        if self.keep_bodies:
            self.bodies.append((path, thread.name, headers, body))
        if step.delay:
            time.sleep(step.delay)
        if step.status != 200:
            data = json.dumps({"error": {"message": "mock failure", "type": "server_error"}}).encode()
            h.send_response(step.status)
            h.send_header("content-type", "application/json")
            h.send_header("content-length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        items = [i(ctx) if callable(i) else i for i in step.items]
        if compact or step.compact:
            data = json.dumps({"output": items}).encode()
            h.send_response(200)
            h.send_header("content-type", "application/json")
            h.send_header("content-length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        usage = step.usage(ctx) if callable(step.usage) else (step.usage or default_usage(ctx))
        rid = self.next_id("resp")
        events: list[dict] = [
            {"type": "response.created", "response": {"id": rid, "status": "in_progress", "output": []}}
        ]
        for idx, item in enumerate(items):
            added = dict(item)
            if added.get("type") == "message":
                added["content"] = []
                added["status"] = "in_progress"
            events.append({"type": "response.output_item.added", "output_index": idx, "item": added})
            if item.get("type") == "message":
                for c, part in enumerate(item.get("content") or []):
                    text = part.get("text", "")
                    half = len(text) // 2
                    for piece in (text[:half], text[half:]):
                        if piece:
                            events.append(
                                {
                                    "type": "response.output_text.delta",
                                    "item_id": item.get("id"),
                                    "output_index": idx,
                                    "content_index": c,
                                    "delta": piece,
                                }
                            )
            elif item.get("type") == "reasoning":
                for s, part in enumerate(item.get("summary") or []):
                    events.append(
                        {
                            "type": "response.reasoning_summary_text.delta",
                            "item_id": item.get("id"),
                            "output_index": idx,
                            "summary_index": s,
                            "delta": part.get("text", ""),
                        }
                    )
            events.append({"type": "response.output_item.done", "output_index": idx, "item": item})
        completed = {
            "type": "response.completed",
            "response": {"id": rid, "status": "completed", "output": items, "usage": usage},
        }
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("cache-control", "no-cache")
        h.send_header("x-request-id", f"req_{rid}")
        h.send_header("connection", "close")
        h.end_headers()
        h.close_connection = True

        def send(ev: dict) -> None:
            h.wfile.write(f"event: {ev['type']}\ndata: {json.dumps(ev)}\n\n".encode())
            h.wfile.flush()

        for n, ev in enumerate(events):
            if step.drop_after is not None and n >= step.drop_after:
                try:
                    h.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            send(ev)
        if step.hang:
            self.release.wait()
            return
        send(completed)
