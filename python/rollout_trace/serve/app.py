"""The viewer's server: a read-only JSON API over reduced traces, and the
static page that presents it.

Everything here converts: traces come from ``rollout_trace.replay_bundle``
(or ``reduce_batch`` for the bundle list) and are turned into JSON with the
typed views' navigation (``thread.turns``, ``call.inference_call``,
``item.origin``...). No bundle file is parsed here; raw payloads are read
through ``RawPayloadRef``.

Security model (see docs/serve.md): loopback by default; requests whose Host
header is not the bound host are refused (DNS rebinding); only GET/HEAD; the
only files served are the three static assets and payloads of bundles found
below the root, after checking the resolved path stays inside its bundle;
every id is looked up in the trace rather than used as a path; strict CSP,
no inline script, and the page builds its DOM with ``textContent`` only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

import rollout_trace
from rollout_trace.analysis import turn_work
from rollout_trace import _native
from rollout_trace._native import TraceError
from rollout_trace.analysis import body_text, tool_call_label, tool_call_name

TEXT_LIMIT = 4000          # characters of an item body sent with a transcript page
PAYLOAD_STREAM_BYTES = 1 << 20  # payload files above this are streamed while pretty-printed
TRACE_CACHE_SIZE = 6
TRACE_CACHE_BYTES = 1 << 30  # trace.jsonl bytes of the traces kept at once
SEARCH_LIMIT = 200
BIG_BUNDLE_BYTES = 8 << 20  # trace.jsonl size from which the list replays a bundle through the trace cache
SSE_LIFETIME = 60.0  # seconds before an event stream ends and the browser reconnects

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "app.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml"}

# Conversation items that carry context rather than what the user typed.
CONTEXT_PREFIXES = ("<environment_context", "# agents.md", "<user_instructions", "<agents_md", "<instructions",
                    "<permissions", "<user_shell_command", "<turn_aborted", "<subagent")


class NotFound(Exception):
    """An id that names nothing in this root or trace."""


# ---------------------------------------------------------------- watching bundles

def bundle_signature(path: Path) -> tuple[int, int, int]:
    """What decides whether a bundle changed: trace.jsonl size and mtime,
    manifest mtime (``-1`` for a missing file)."""
    try:
        log = os.stat(path / "trace.jsonl")
        size, mtime = log.st_size, log.st_mtime_ns
    except OSError:
        size = mtime = -1
    try:
        manifest = os.stat(path / "manifest.json").st_mtime_ns
    except OSError:
        manifest = -1
    return (size, mtime, manifest)


def signature_token(signature: tuple[int, int, int]) -> str:
    """The signature as a string (nanosecond mtimes do not survive JavaScript numbers)."""
    return "-".join(str(part) for part in signature)


async def watch_bundle(path: Path, interval: float) -> AsyncIterator[tuple[int, int, int]]:
    """Yields the bundle's signature each time it changes (first the current one).

    This is the one place that decides "the bundle changed" (a cheap stat);
    what changed is then read by the bundle's live follower (``Viewer.replay``
    follows running sessions), not by replaying it again.
    """
    last = None
    while True:
        now = await asyncio.to_thread(bundle_signature, path)
        if now != last:
            last = now
            yield now
        await asyncio.sleep(interval)


# ---------------------------------------------------------------- replay

@dataclass
class Loaded:
    """One bundle's reduced trace (or why there is none) and indexes made from it."""

    path: Path
    signature: tuple[int, int, int]
    trace: Any  # RolloutTrace | None
    error: str | None  # the strict replay's error; ``trace`` is then the lenient view (if any)
    reduced_ms: float
    cache: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Viewer:
    """The state of one ``serve``: the root, its bundles, summaries and traces."""

    def __init__(self, root: str | os.PathLike[str], *, compat: str | None = None, lenient: bool = False,
                 poll: float = 0.5, cache: bool = False) -> None:
        self.root = Path(root).resolve()
        self.single = (self.root / "manifest.json").is_file()
        self.compat = compat
        self.lenient = lenient
        self.poll = poll
        self._scan_lock = threading.Lock()
        self._scanned: tuple[float, dict[str, Path]] = (0.0, {})
        self._traces: OrderedDict[Path, Loaded] = OrderedDict()
        self._traces_lock = threading.Lock()
        # Running sessions are followed (rollout_trace.follow): a change is
        # applied incrementally instead of replaying the whole bundle again.
        self._followers: OrderedDict[Path, Any] = OrderedDict()
        self._followers_lock = threading.Lock()
        self._path_locks: dict[Path, threading.Lock] = {}
        self.index = SummaryIndex(self, summary_cache_file(self.root) if cache else None)
        self.index.start()

    def describe(self) -> str:
        return f"bundle {self.root}" if self.single else f"root {self.root}"

    def close(self) -> None:
        self.index.close()

    # -- bundles below the root

    def scan(self, max_age: float = 1.0) -> dict[str, Path]:
        """Bundle id (its path below the root, ``/``-separated) -> directory."""
        with self._scan_lock:
            when, found = self._scanned
            if time.monotonic() - when < max_age:
                return found
            if self.single:
                found = {self.root.name: self.root}
            else:
                found = {}
                for path in _native.find_bundles(self.root):
                    resolved = Path(path).resolve()
                    if resolved.is_relative_to(self.root) and resolved != self.root:
                        found[resolved.relative_to(self.root).as_posix()] = resolved
            self._scanned = (time.monotonic(), found)
            return found

    def bundle_path(self, bundle_id: str) -> Path:
        if not isinstance(bundle_id, str) or not bundle_id or len(bundle_id) > 4096 or "\x00" in bundle_id:
            raise NotFound("bad bundle id")
        found = self.scan()
        if bundle_id not in found:
            found = self.scan(max_age=0)
        if bundle_id not in found:
            raise NotFound(f"no bundle {bundle_id!r} in this root")
        return found[bundle_id]

    # -- replaying

    def _kwargs(self) -> dict[str, Any]:
        given: dict[str, Any] = {}
        if self.compat is not None:
            given["compat"] = self.compat
        if self.lenient:
            given["lenient"] = True
        return given

    def _followed(self, path: Path) -> Any:
        """The trace of a running session this viewer follows, brought up to
        date; None when it is not followed (or its log was replaced)."""
        with self._followers_lock:
            live = self._followers.get(path)
        if live is None:
            return None
        try:
            live.update()
            trace = live.trace
        except TraceError:
            trace = None
        if trace is None or live.ended:
            with self._followers_lock:
                self._followers.pop(path, None)
        return trace

    def _follow(self, path: Path, kwargs: dict[str, Any]) -> Any:
        """Starts following a running session; its trace (equal to a replay)."""
        live = rollout_trace.follow(path, **kwargs)
        with self._followers_lock:
            self._followers[path] = live
            while len(self._followers) > TRACE_CACHE_SIZE:
                self._followers.popitem(last=False)
        return live.trace

    def replay(self, path: Path, *, read_ahead: bool = True) -> tuple[Any, str | None]:
        """The trace and, if the strict replay failed, its error (the trace is then a partial replay or None)."""
        kwargs = self._kwargs()
        followed = self._followed(path)
        if followed is not None:
            return followed, None
        try:
            trace = rollout_trace.replay_bundle(path, read_ahead=read_ahead, **kwargs)
            if trace.status == "running" and hasattr(rollout_trace, "follow"):
                return self._follow(path, kwargs), None
            return trace, None
        except TraceError as error:
            strict_error = str(error)
        except TypeError as error:  # an option this version of rollout_trace lacks
            return None, f"cannot replay with {sorted(kwargs)}: {error}"
        # The lenient view: a lenient replay (failing events skipped) where this rollout_trace has one,
        # else the partial replay (every event before the first bad one).
        for fallback in ({**kwargs, "lenient": True}, {**kwargs, "partial": True}):
            try:
                return rollout_trace.replay_bundle(path, read_ahead=read_ahead, **fallback), strict_error
            except TypeError:
                continue
            except TraceError:
                continue
        return None, strict_error

    def loaded(self, bundle_id: str) -> Loaded:
        """The bundle's trace, reduced again when its files changed."""
        path = self.bundle_path(bundle_id)
        signature = bundle_signature(path)
        with self._traces_lock:
            entry = self._traces.get(path)
            if entry is not None and entry.signature == signature:
                self._traces.move_to_end(path)
                return entry
            path_lock = self._path_locks.setdefault(path, threading.Lock())
        with path_lock:
            with self._traces_lock:
                entry = self._traces.get(path)
                if entry is not None and entry.signature == signature:
                    return entry
            started = time.perf_counter()
            trace, error = self.replay(path)
            entry = Loaded(path, signature, trace, error, (time.perf_counter() - started) * 1000)
            self.index.offer(path, signature, trace, error)
            with self._traces_lock:
                self._traces[path] = entry
                self._traces.move_to_end(path)
                # At most TRACE_CACHE_SIZE traces, and not many big ones (keeping the newest whatever its size).
                while len(self._traces) > 1 and (
                        len(self._traces) > TRACE_CACHE_SIZE
                        or sum(max(0, e.signature[0]) for e in self._traces.values()) > TRACE_CACHE_BYTES):
                    self._traces.popitem(last=False)
            return entry

    def trace(self, bundle_id: str) -> tuple[Loaded, Any]:
        entry = self.loaded(bundle_id)
        if entry.trace is None:
            raise NotFound(f"bundle {bundle_id!r} cannot be replayed: {entry.error}")
        return entry, entry.trace


# ---------------------------------------------------------------- the bundle list

def summary_cache_file(root: Path) -> Path:
    """Where the list's rows are kept between runs: the user's cache directory, never the trace root."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:20]
    return base / "rollout-trace" / "serve" / f"summaries-{digest}.json"


class SummaryIndex:
    """One cheap row per bundle, computed in parallel (``reduce_batch``) on a
    background thread and cached by bundle signature."""

    def __init__(self, viewer: Viewer, cache_file: Path | None = None) -> None:
        self.viewer = viewer
        self.rows: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}
        self.version = 0
        self.pending = 0
        self._lock = threading.Lock()
        self._kick = threading.Event()
        self._closed = False
        self._dirty = False
        self.started: dict[Path, int | None] = {}
        self.cache_file = cache_file
        self._load_cache()
        self._thread = threading.Thread(target=self._loop, name="rollout-trace-serve-index", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.kick()

    def kick(self) -> None:
        self._kick.set()

    def _cache_key(self) -> str:
        return json.dumps([_native.__version__, str(self.viewer.root), self.viewer.compat, self.viewer.lenient])

    def _load_cache(self) -> None:
        """Rows of an earlier run (each still checked against its bundle's signature before use)."""
        if self.cache_file is None:
            return
        try:
            saved = json.loads(self.cache_file.read_text())
            if saved.get("key") != self._cache_key():
                return
            for path, signature, row in saved["rows"]:
                self.rows[Path(path)] = (tuple(signature), row)  # type: ignore[assignment]
        except (OSError, ValueError, KeyError, TypeError):
            self.rows.clear()

    def _save_cache(self) -> None:
        if self.cache_file is None or not self._dirty:
            return
        with self._lock:
            rows = [[str(path), list(signature), row] for path, (signature, row) in self.rows.items()]
            self._dirty = False
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.cache_file.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps({"key": self._cache_key(), "rows": rows}))
            os.replace(temporary, self.cache_file)
        except OSError:
            pass  # the cache is only an optimization

    def close(self) -> None:
        self._closed = True
        self._kick.set()

    def _loop(self) -> None:
        while not self._closed:
            self._kick.wait(timeout=max(self.viewer.poll * 4, 1.0))
            self._kick.clear()
            if self._closed:
                return
            try:
                self.refresh()
                self._save_cache()
            except Exception as error:  # keep the index alive; the rows say what failed
                print(f"rollout-trace serve: index refresh failed: {error!r}")

    def refresh(self) -> None:
        found = self.viewer.scan(max_age=0.2)
        by_path = {path: bundle_id for bundle_id, path in found.items()}
        stale: list[tuple[Path, tuple[int, int, int]]] = []
        for path in by_path:
            signature = bundle_signature(path)
            known = self.rows.get(path)
            if known is None or known[0] != signature:
                stale.append((path, signature))
        with self._lock:
            gone = [path for path in self.rows if path not in by_path]
            for path in gone:
                del self.rows[path]
            if gone:
                self.version += 1
                self._dirty = True
            self.pending = len(stale)
        if not stale:
            return
        stale.sort(key=lambda job: job[1][1], reverse=True)  # most recently written first: the list's first screen
        # Until a bundle is summarized its row shows when it started (the manifest alone says so).
        for path, _signature in stale:
            if path not in self.rows and path not in self.started:
                try:
                    self.started[path] = _native.TraceBundle.open(path).started_at_unix_ms
                except (TraceError, OSError):
                    self.started[path] = None
        with self._lock:
            self.version += 1
        # Big bundles are replayed through the trace cache, so a page opening one shares the replay.
        small = []
        for path, signature in stale:
            if signature[0] >= BIG_BUNDLE_BYTES:
                try:
                    self.viewer.loaded(by_path[path])  # offers its row back to the index
                except NotFound:
                    pass
            else:
                small.append((path, signature))
        stale = [(path, signature) for path, signature in small
                 if self.rows.get(path, (None,))[0] != signature]
        last_publish = time.monotonic()
        failed: list[tuple[Path, tuple[int, int, int]]] = []
        for path, signature, result in self._reduce(stale):
            if isinstance(result, TraceError) or result is None:
                failed.append((path, signature))
                continue
            row = summary_row(result)
            with self._lock:
                self.rows[path] = (signature, row)
                self.pending -= 1
                self._dirty = True
                if time.monotonic() - last_publish > 0.15:
                    self.version += 1
                    last_publish = time.monotonic()
        for path, signature in failed:
            trace, error = self.viewer.replay(path, read_ahead=False)
            row = summary_row(trace) if trace is not None else {"status": "unreadable"}
            row["error"] = error
            with self._lock:
                self.rows[path] = (signature, row)
                self.pending -= 1
                self._dirty = True
        with self._lock:
            self.pending = 0
            self.version += 1

    def offer(self, path: Path, signature: tuple[int, int, int], trace: Any, error: str | None) -> None:
        """A trace replayed for a page: its row, so the index need not replay it again."""
        row = summary_row(trace) if trace is not None else {"status": "unreadable"}
        if error is not None:
            row["error"] = error
        with self._lock:
            known = self.rows.get(path)
            if known is None or known[0] != signature:
                self.rows[path] = (signature, row)
                self.version += 1
                self._dirty = True

    def _reduce(self, stale: list[tuple[Path, tuple[int, int, int]]]) -> Iterator[tuple[Path, tuple[int, int, int], Any]]:
        kwargs = self.viewer._kwargs()
        if not kwargs:
            jobs: list[tuple[str, str | None]] = [(str(path), None) for path, _ in stale]
            for index, result, _partial in _native.reduce_batch(jobs, keep_traces=True):
                yield stale[index][0], stale[index][1], result
            return
        # Options reduce_batch does not take: one replay per bundle on a pool.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            results = pool.map(lambda job: self.viewer.replay(job[0], read_ahead=False), stale)
            for (path, signature), (trace, error) in zip(stale, results):
                yield path, signature, trace if error is None else None

    def snapshot(self) -> dict[str, Any]:
        found = self.viewer.scan()
        with self._lock:
            rows = []
            for bundle_id, path in found.items():
                known = self.rows.get(path)
                if known is None:
                    rows.append({"id": bundle_id, "state": "pending", "started": self.started.get(path)})
                else:
                    rows.append({"id": bundle_id, "state": "ready", **known[1]})
            return {"root": str(self.viewer.root), "single": self.viewer.single, "version": self.version,
                    "pending": sum(1 for row in rows if row["state"] == "pending"), "bundles": rows}


def is_context_text(text: str) -> bool:
    """Whether a user/developer message is injected context (AGENTS.md, environment) rather than typed."""
    head = text.lstrip()[:40].lower()
    return head.startswith(CONTEXT_PREFIXES)


def first_user_message(trace: Any) -> str | None:
    root = trace.root_thread
    if root is None:
        return None
    for item in root.conversation:
        if item.role == "user" and item.kind == "message":
            text = body_text(item)
            if not is_context_text(text):
                return text[:300]
    return None


def summary_row(trace: Any) -> dict[str, Any]:
    summary = trace.summary()
    usage = summary.get("usage") or {}
    tools = summary.get("tool_calls") or {}
    inference = summary.get("inference_calls") or {}
    turns = summary.get("turns") or {}
    tool_failures = sum(entry.get("failed", 0) for entry in tools.values())
    return {
        "status": summary["status"],
        "started": summary["started_at_unix_ms"],
        "ended": summary.get("ended_at_unix_ms"),
        "duration_ms": summary.get("duration_ms"),
        "models": sorted(summary.get("models") or {}),
        "usage": {
            "input": usage.get("input_tokens", 0),
            "cached": usage.get("cached_input_tokens", 0),
            "output": usage.get("output_tokens", 0),
            "reasoning": usage.get("reasoning_output_tokens", 0),
        },
        "threads": len(summary.get("threads") or []),
        "inference_calls": inference.get("total", 0),
        "tool_calls": sum(entry.get("calls", 0) for entry in tools.values()),
        "tool_failures": tool_failures,
        "failures": tool_failures + (inference.get("by_status") or {}).get("failed", 0)
        + (turns.get("by_status") or {}).get("failed", 0),
        "first_user": first_user_message(trace),
        "partial": bool(trace.is_partial),
        "error": None,
    }


# ---------------------------------------------------------------- presenting the graph

def window(execution: Any) -> dict[str, Any]:
    return {"status": execution.status, "start": execution.started_at_unix_ms, "end": execution.ended_at_unix_ms,
            "ms": execution.duration_ms}


def usage_dict(usage: Any) -> dict[str, int] | None:
    if usage is None:
        return None
    return {"input": usage.input_tokens, "cached": usage.cached_input_tokens, "output": usage.output_tokens,
            "reasoning": usage.reasoning_output_tokens}


def payload_ref(ref: Any) -> dict[str, Any] | None:
    if ref is None:
        return None
    try:
        size = os.stat(ref.absolute_path).st_size
    except OSError:
        size = None
    return {"id": ref.raw_payload_id, "kind": ref.kind, "path": ref.path, "size": size}


def anchor(value: Any) -> dict[str, str]:
    kind = value.type
    if kind == "conversation_item":
        return {"type": "item", "id": value.item_id}
    if kind == "tool_call":
        return {"type": "tool", "id": value.tool_call_id}
    return {"type": "thread", "id": value.thread_id}


def edge_dict(edge: Any) -> dict[str, Any]:
    source, target = edge.source_thread, edge.target_thread
    tool = edge.tool_call
    return {
        "id": edge.edge_id, "kind": edge.kind,
        "source_thread": source.thread_id if source is not None else None,
        "target_thread": target.thread_id if target is not None else None,
        "source": anchor(edge.source), "target": anchor(edge.target),
        "start": edge.started_at_unix_ms, "end": edge.ended_at_unix_ms,
        "tool_call_id": tool.tool_call_id if tool is not None else None,
        "carried_item_ids": list(edge.carried_item_ids),
    }


def thread_dict(thread: Any) -> dict[str, Any]:
    origin = thread.origin
    spawned = origin.type == "spawned"
    return {
        "id": thread.thread_id, "agent_path": thread.agent_path, "nickname": thread.nickname,
        "parent": origin.parent_thread_id if spawned else None,
        "task_name": origin.task_name if spawned else None,
        "agent_role": origin.agent_role if spawned else None,
        "spawn_edge_id": origin.spawn_edge_id if spawned else None,
        "model": thread.default_model, "window": window(thread.execution),
        "turns": len(thread.turns), "items": len(thread.conversation_item_ids),
        "inference_calls": len(thread.inference_calls), "tool_calls": len(thread.tool_calls),
    }


def overview(entry: Loaded, bundle_id: str) -> dict[str, Any]:
    trace = entry.trace
    summary = summary_row(trace)
    return {
        "id": bundle_id, "path": str(entry.path), "trace_id": trace.trace_id, "rollout_id": trace.rollout_id,
        "root_thread_id": trace.root_thread_id, "status": trace.status, "started": trace.started_at_unix_ms,
        "ended": trace.ended_at_unix_ms, "partial": bool(trace.is_partial),
        "diagnostics": [str(d) for d in trace.diagnostics], "error": entry.error,
        "reduced_ms": round(entry.reduced_ms, 1), "signature": signature_token(entry.signature),
        "summary": summary,
        "counts": {name: len(getattr(trace, name)) for name in (
            "threads", "codex_turns", "conversation_items", "inference_calls", "tool_calls", "terminal_operations",
            "code_cells", "compactions", "interaction_edges", "raw_payloads")},
        "threads": [thread_dict(thread) for thread in trace.threads.values()],
        "edges": [edge_dict(edge) for edge in trace.interaction_edges.values()],
    }


def tool_row(call: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"type": "tool", "id": call.tool_call_id, "name": tool_call_name(call),
                           "label": tool_call_label(call), "window": window(call.execution)}
    operation = call.terminal_operation
    if operation is not None:
        result = operation.result
        row["terminal"] = {"id": operation.operation_id, "kind": operation.kind,
                           "exit_code": result.exit_code if result is not None else None}
    return row


def cell_row(cell: Any) -> dict[str, Any]:
    return {"type": "cell", "id": cell.code_cell_id, "label": f"code cell {cell.runtime_cell_id or ''}".strip(),
            "runtime_status": cell.runtime_status, "window": window(cell.execution),
            "children": [tool_row(call) for call in cell.nested_tool_calls]}


def inference_row(call: Any, tools: list[Any], cells: list[Any]) -> dict[str, Any]:
    return {"type": "inference", "id": call.inference_call_id, "model": call.model, "window": window(call.execution),
            "usage": usage_dict(call.usage),
            "children": [cell_row(cell) for cell in cells] + [tool_row(tool) for tool in tools]}


def turn_previews(thread: Any) -> dict[str, str]:
    """What started each turn: the first message typed into it (not context, not a replayed copy), on one line."""
    previews: dict[str, str] = {}
    for item in thread.conversation:
        turn_id = item.codex_turn_id
        if turn_id is None or turn_id in previews or item.kind != "message":
            continue
        origin = item.origin.type
        if not ((origin == "transcript" and item.role == "user") or origin == "agent_message"):
            continue
        text = body_text(item)
        if origin == "agent_message":
            try:  # an agent message's body is the message envelope; show who says what
                envelope = json.loads(text)
                if isinstance(envelope.get("content"), str):
                    text = f"{envelope.get('author') or '?'}: {envelope['content']}"
            except (ValueError, AttributeError):
                pass
        if not is_context_text(text):
            previews[turn_id] = " ".join(text[:200].split())
    return previews


def timeline(trace: Any, thread: Any) -> dict[str, Any]:
    """Turns -> inference calls -> code cells and tool calls (as ``print_tree``), compactions in their turn."""
    compactions: dict[str, list[Any]] = {}
    for compaction in trace.compactions.values():
        if compaction.thread_id == thread.thread_id:
            compactions.setdefault(compaction.codex_turn_id, []).append(compaction)
    turns = []
    previews = turn_previews(thread)
    for turn in thread.turns:
        work = turn_work(turn)
        loose = [cell_row(cell) for cell in work.loose_cells] + [tool_row(tool) for tool in work.loose_tools]
        entries = [inference_row(call, work.tools_of[call.inference_call_id], work.cells_of[call.inference_call_id])
                   for call in work.inferences]
        for compaction in compactions.get(turn.codex_turn_id, []):
            requests = compaction.requests
            status = requests[-1].execution.status if requests else "completed"
            start = requests[0].execution.started_at_unix_ms if requests else compaction.installed_at_unix_ms
            entries.append({"type": "compaction", "id": compaction.compaction_id,
                            "label": f"compaction: {len(compaction.input_item_ids)} items -> "
                                     f"{len(compaction.replacement_item_ids)}",
                            "window": {"status": status, "start": start, "end": compaction.installed_at_unix_ms,
                                       "ms": compaction.installed_at_unix_ms - start}})
        entries.sort(key=lambda entry: entry["window"]["start"])
        turns.append({"type": "turn", "id": turn.codex_turn_id, "window": window(turn.execution),
                      "preview": previews.get(turn.codex_turn_id), "children": entries + loose})
    return {"thread": thread_dict(thread), "turns": turns}


def item_dict(item: Any, limit: int | None = TEXT_LIMIT, trace: Any = None) -> dict[str, Any]:
    text = body_text(item)
    tool = None
    if trace is not None and item.call_id is not None and item.kind in ("function_call", "custom_tool_call"):
        call = trace.tool_calls.get(item.call_id)
        if call is not None:
            tool = {"id": call.tool_call_id, "name": tool_call_name(call), "status": call.execution.status}
    origin = item.origin
    message = item.agent_message
    payloads = [part.raw_payload_id for part in item.body.parts if part.type in ("json", "payload_ref")]
    return {
        "id": item.item_id, "thread_id": item.thread_id, "turn_id": item.codex_turn_id, "role": item.role,
        "channel": item.channel, "kind": item.kind, "call_id": item.call_id, "at": item.first_seen_at_unix_ms,
        "text": text if limit is None else text[:limit], "length": len(text),
        "origin": {"type": origin.type, "id": _origin_id(origin)},
        "agent_message": {"author": message.author, "recipient": message.recipient} if message is not None else None,
        "payload_ids": payloads, "tool": tool,
    }


_ORIGIN_LINKS = {"inference": ("inference_call_id", "inference"), "tool": ("tool_call_id", "tool"),
                 "terminal_operation": ("terminal_operation_id", "terminal"), "code_cell": ("code_cell_id", "cell"),
                 "agent_message": ("edge_id", "edge"), "compaction": ("compaction_id", "compaction")}


def _origin_id(origin: Any) -> dict[str, str] | None:
    """The object an item's origin names, as a (kind, id) the page can open."""
    link = _ORIGIN_LINKS.get(origin.type)
    if link is None:
        return None
    value = getattr(origin, link[0])
    return {"type": link[1], "id": value} if value is not None else None


def transcript(trace: Any, thread: Any, offset: int, limit: int) -> dict[str, Any]:
    ids = thread.conversation_item_ids
    items = thread.conversation
    return {"thread_id": thread.thread_id, "total": len(ids), "offset": offset,
            "items": [item_dict(item, trace=trace) for item in items[offset:offset + limit]]}


def _get(mapping: Any, key: str, what: str) -> Any:
    if not isinstance(key, str) or len(key) > 1024:
        raise NotFound(f"bad {what} id")
    value = mapping.get(key)
    if value is None:
        raise NotFound(f"no {what} {key!r}")
    return value


def detail(trace: Any, kind: str, object_id: str) -> dict[str, Any]:
    """One object, for the detail panel: its fields, related ids and raw payload refs."""
    if kind == "tool":
        call = _get(trace.tool_calls, object_id, "tool call")
        out: dict[str, Any] = {**tool_row(call), "thread_id": call.thread_id, "turn_id": call.started_by_codex_turn_id,
                               "requester": call.requester.type, "summary": call.summary.to_dict()}
        issuer = call.inference_call
        out["inference_call_id"] = issuer.inference_call_id if issuer is not None else None
        cell = call.code_cell
        out["code_cell_id"] = cell.code_cell_id if cell is not None else None
        out["call_items"] = [item_dict(item, trace=trace) for item in call.model_visible_call_items]
        out["output_items"] = [item_dict(item, trace=trace) for item in call.model_visible_output_items]
        operation = call.terminal_operation
        if operation is not None:
            out["terminal_detail"] = terminal_dict(operation)
        out["edges"] = [edge.edge_id for edge in trace.interaction_edges.values()
                        if edge.tool_call is not None and edge.tool_call.tool_call_id == call.tool_call_id]
        out["payloads"] = [p for p in (payload_ref(call.raw_invocation_payload), payload_ref(call.raw_result_payload),
                                       *(payload_ref(r) for r in call.raw_runtime_payloads)) if p is not None]
        return out
    if kind == "inference":
        call = _get(trace.inference_calls, object_id, "inference call")
        return {"type": "inference", "id": call.inference_call_id, "thread_id": call.thread_id,
                "turn_id": call.codex_turn_id, "model": call.model, "provider": call.provider_name,
                "response_id": call.response_id, "upstream_request_id": call.upstream_request_id,
                "window": window(call.execution), "usage": usage_dict(call.usage),
                "request_items": len(call.request_item_ids),
                "response_items": [item_dict(item, trace=trace) for item in call.response_items],
                "tool_call_ids": list(call.tool_call_ids_started_by_response),
                "payloads": [p for p in (payload_ref(call.raw_request_payload),
                                         payload_ref(call.raw_response_payload)) if p is not None]}
    if kind == "item":
        item = _get(trace.conversation_items, object_id, "conversation item")
        out = {"type": "item", **item_dict(item, limit=None, trace=trace)}
        out["payloads"] = [payload_ref(trace.raw_payloads[pid]) for pid in out["payload_ids"] if pid in trace.raw_payloads]
        return out
    if kind == "cell":
        cell = _get(trace.code_cells, object_id, "code cell")
        issuer = cell.inference_call
        return {**cell_row(cell), "thread_id": cell.thread_id, "turn_id": cell.codex_turn_id,
                "source_js": cell.source_js, "inference_call_id": issuer.inference_call_id if issuer else None,
                "output_items": [item_dict(item, trace=trace) for item in cell.output_items],
                "wait_tool_call_ids": list(cell.wait_tool_call_ids),
                "terminal_operations": [terminal_dict(op) for op in cell.terminal_operations], "payloads": []}
    if kind == "edge":
        edge = _get(trace.interaction_edges, object_id, "interaction edge")
        return {"type": "edge", **edge_dict(edge), "carried_items": [item_dict(item, trace=trace) for item in edge.carried_items],
                "payloads": [payload_ref(ref) for ref in edge.carried_raw_payloads]}
    if kind == "compaction":
        compaction = _get(trace.compactions, object_id, "compaction")
        requests = compaction.requests
        return {"type": "compaction", "id": compaction.compaction_id, "thread_id": compaction.thread_id,
                "turn_id": compaction.codex_turn_id, "installed_at": compaction.installed_at_unix_ms,
                "marker_item_id": compaction.marker_item_id, "input_items": len(compaction.input_item_ids),
                "replacement_items": [item_dict(item, trace=trace) for item in compaction.replacement_items],
                "requests": [{"id": r.compaction_request_id, "model": r.model, "window": window(r.execution)}
                             for r in requests],
                "payloads": [p for r in requests for p in (payload_ref(r.raw_request_payload),
                                                           payload_ref(r.raw_response_payload)) if p is not None]}
    if kind == "turn":
        turn = _get(trace.codex_turns, object_id, "turn")
        return {"type": "turn", "id": turn.codex_turn_id, "thread_id": turn.thread_id, "window": window(turn.execution),
                "input_items": [item_dict(item, trace=trace) for item in turn.input_items], "payloads": []}
    if kind == "thread":
        thread = _get(trace.threads, object_id, "thread")
        return {"type": "thread", **thread_dict(thread), "edges": [edge.edge_id for edge in thread.edges],
                "payloads": []}
    if kind == "terminal":
        operation = _get(trace.terminal_operations, object_id, "terminal operation")
        return {"type": "terminal", **terminal_dict(operation),
                "payloads": [payload_ref(ref) for ref in operation.raw_payloads]}
    raise NotFound(f"no kind {kind!r}")


def terminal_dict(operation: Any) -> dict[str, Any]:
    request, result = operation.request, operation.result
    out: dict[str, Any] = {"id": operation.operation_id, "terminal_id": operation.terminal_id,
                           "tool_call_id": operation.tool_call_id, "kind": operation.kind,
                           "window": window(operation.execution)}
    if request.type == "exec_command":
        out["command"] = request.display_command
        out["cwd"] = request.cwd
    else:
        out["stdin"] = request.stdin
    if result is not None:
        out["exit_code"] = result.exit_code
        out["output"] = (result.formatted_output or (result.stdout + result.stderr))[:20000]
    return out


def prompt(trace: Any, inference_id: str) -> dict[str, Any]:
    """The prompt inspector: the request in sections, the response beside it."""
    call = _get(trace.inference_calls, inference_id, "inference call")
    request = call.raw_request_payload.load()
    if not isinstance(request, dict):
        request = {}
    previous = None
    for other in call.thread.inference_calls:
        if other.inference_call_id == call.inference_call_id:
            break
        previous = other
    seen: set[str] = set()
    if previous is not None:
        seen.update(previous.request_item_ids)
        seen.update(previous.response_item_ids)
    developer, context, earlier, new = [], [], [], []
    for item in call.request_items:
        entry = item_dict(item, trace=trace)
        if item.role in ("developer", "system"):
            developer.append(entry)
        elif item.role == "user" and item.kind == "message" and is_context_text(entry["text"]):
            context.append(entry)
        elif item.item_id in seen:
            earlier.append(entry)
        else:
            new.append(entry)
    instructions = request.get("instructions")
    tools = []
    for tool in request.get("tools") or []:
        if isinstance(tool, dict):
            tools.append({"name": tool.get("name") or tool.get("type"), "type": tool.get("type"),
                          "description": tool.get("description"),
                          "schema": json.dumps(tool.get("parameters") or tool.get("format"), indent=2)
                          if (tool.get("parameters") or tool.get("format")) is not None else None})
    settings = {key: request[key] for key in ("model", "reasoning", "tool_choice", "parallel_tool_calls",
                                              "previous_response_id", "prompt_cache_key", "store", "text")
                if key in request}
    return {
        "id": call.inference_call_id, "model": call.model, "window": window(call.execution),
        "usage": usage_dict(call.usage), "previous_inference_id": previous.inference_call_id if previous else None,
        "sections": {
            "instructions": instructions if isinstance(instructions, str) else None,
            "developer": developer, "context": context, "earlier": earlier, "new": new, "tools": tools,
        },
        "settings": json.dumps(settings, indent=2, sort_keys=True),
        "response": [item_dict(item, trace=trace) for item in call.response_items],
        "tool_call_ids": list(call.tool_call_ids_started_by_response),
        "payloads": [p for p in (payload_ref(call.raw_request_payload), payload_ref(call.raw_response_payload))
                     if p is not None],
    }


def search_index(entry: Loaded) -> list[tuple[str, str, str | None, str, str]]:
    """(kind, id, thread id, label, haystack) for every searchable object, made once per trace; haystacks
    are lowercased, except for items (lowercased when searched, so snippets keep their case)."""
    with entry.lock:
        if "search" in entry.cache:
            return entry.cache["search"]
        trace = entry.trace
        rows: list[tuple[str, str, str | None, str, str]] = []
        for thread in trace.threads.values():
            label = f"{thread.agent_path} {thread.nickname or ''}".strip()
            rows.append(("thread", thread.thread_id, thread.thread_id, label, f"{thread.thread_id} {label}".lower()))
        for turn in trace.codex_turns.values():
            rows.append(("turn", turn.codex_turn_id, turn.thread_id, "turn", turn.codex_turn_id.lower()))
        for call in trace.inference_calls.values():
            hay = f"{call.inference_call_id} {call.response_id or ''} {call.model} {call.raw_request_payload_id}"
            rows.append(("inference", call.inference_call_id, call.thread_id, f"inference {call.model}", hay.lower()))
        for call in trace.tool_calls.values():
            label = tool_call_label(call)
            hay = f"{call.tool_call_id} {call.model_visible_call_id or ''} {label} {call.summary.to_dict()}"
            rows.append(("tool", call.tool_call_id, call.thread_id, label, hay.lower()))
        for cell in trace.code_cells.values():
            rows.append(("cell", cell.code_cell_id, cell.thread_id, "code cell",
                         f"{cell.code_cell_id} {cell.source_js}".lower()))
        for edge in trace.interaction_edges.values():
            rows.append(("edge", edge.edge_id, None, edge.kind, f"{edge.edge_id} {edge.kind}".lower()))
        for item in trace.conversation_items.values():
            text = body_text(item)
            label = f"{item.role} {item.kind}: {' '.join(text[:100].split())}"
            rows.append(("item", item.item_id, item.thread_id, label, f"{item.item_id} {item.call_id or ''} {text}"))
        for payload_id in trace.raw_payloads:
            rows.append(("payload", payload_id, None, "raw payload", payload_id.lower()))
        entry.cache["search"] = rows
        return rows


def search(entry: Loaded, query: str) -> dict[str, Any]:
    needle = query.strip().lower()[:500]
    results: list[dict[str, Any]] = []
    total = 0
    if needle:
        for kind, object_id, thread_id, label, hay in search_index(entry):
            at = hay.lower().find(needle) if kind == "item" else hay.find(needle)
            if at < 0:
                continue
            total += 1
            if len(results) < SEARCH_LIMIT:
                snippet = hay[max(0, at - 60): at + len(needle) + 60] if kind == "item" else None
                results.append({"kind": kind, "id": object_id, "thread_id": thread_id, "label": label[:200],
                                "snippet": " ".join(snippet.split()) if snippet else None})
    return {"query": query, "total": total, "results": results}


def payload_file(entry: Loaded, payload_id: str) -> tuple[Any, Path]:
    """The payload's ref and its file, refused unless the file is inside the bundle."""
    ref = _get(entry.trace.raw_payloads, payload_id, "raw payload")
    bundle = entry.path.resolve()
    try:
        resolved = Path(ref.absolute_path).resolve(strict=True)
    except (OSError, RuntimeError) as error:
        raise NotFound(f"raw payload {payload_id!r} has no file") from error
    if not resolved.is_relative_to(bundle) or not resolved.is_file():
        raise NotFound(f"raw payload {payload_id!r} is not a file inside its bundle")
    return ref, resolved


# ---------------------------------------------------------------- HTTP

class Guard:
    """Host-header check (DNS rebinding), GET/HEAD only, security headers on every response."""

    def __init__(self, app: ASGIApp, allowed_hosts: set[str]) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1").lower()
        origin = headers.get(b"origin")
        if host not in self.allowed_hosts:
            await self._refuse(send, 421, "this viewer only answers to " + " or ".join(sorted(self.allowed_hosts)))
            return
        if origin is not None and origin.decode("latin-1").lower() not in {f"http://{h}" for h in self.allowed_hosts}:
            await self._refuse(send, 403, "cross-origin request refused")
            return
        if scope["method"] not in ("GET", "HEAD"):
            await self._refuse(send, 405, "read-only viewer: only GET")
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers") or []) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _refuse(self, send: Send, status: int, text: str) -> None:
        body = text.encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]})
        await send({"type": "http.response.body", "body": body})


def allowed_hosts(host: str, port: int) -> set[str]:
    names = {host.lower()}
    if host in ("127.0.0.1", "::1", "localhost"):
        names |= {"localhost", host}
    shown = {f"[{name}]" if ":" in name else name for name in names}
    hosts = {f"{name}:{port}" for name in shown}
    if port == 80:
        hosts |= shown
    return hosts


def _json(value: Any, status: int = 200) -> Response:
    return JSONResponse(value, status_code=status, headers={"cache-control": "no-store"})


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def create_app(viewer: Viewer, *, host: str = "127.0.0.1", port: int = 8765) -> ASGIApp:
    static_dir = resources.files("rollout_trace.serve") / "static"
    static_bytes: dict[str, bytes] = {}

    def static_file(name: str) -> Response:
        if name not in STATIC:
            return PlainTextResponse("not found", status_code=404)
        if name not in static_bytes:
            static_bytes[name] = (static_dir / name).read_bytes()
        return Response(static_bytes[name], media_type=STATIC[name], headers={"cache-control": "no-cache"})

    async def index(request: Request) -> Response:
        return static_file("index.html")

    async def static(request: Request) -> Response:
        return static_file(request.path_params["name"])

    def api(handler):  # type: ignore[no-untyped-def]
        """Runs ``handler(request)`` on a worker thread (replays release the GIL); maps errors to JSON."""
        async def endpoint(request: Request) -> Response:
            try:
                return await asyncio.to_thread(handler, request)
            except NotFound as error:
                return _error(404, str(error))
            except (ValueError, KeyError) as error:
                return _error(400, f"bad request: {error}")
            except TraceError as error:
                return _error(422, str(error))
        return endpoint

    def param(request: Request, name: str) -> str:
        value = request.query_params.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def bundles(request: Request) -> Response:
        viewer.index.kick()
        return _json(viewer.index.snapshot())

    def bundle(request: Request) -> Response:
        bundle_id = param(request, "b")
        entry = viewer.loaded(bundle_id)
        if entry.trace is None:
            return _json({"id": bundle_id, "path": str(entry.path), "error": entry.error, "threads": [], "edges": []})
        return _json(overview(entry, bundle_id))

    def thread_timeline(request: Request) -> Response:
        _entry, trace = viewer.trace(param(request, "b"))
        return _json(timeline(trace, _get(trace.threads, param(request, "t"), "thread")))

    def thread_transcript(request: Request) -> Response:
        _entry, trace = viewer.trace(param(request, "b"))
        thread = _get(trace.threads, param(request, "t"), "thread")
        offset = max(0, int(request.query_params.get("offset", "0")))
        limit = min(max(1, int(request.query_params.get("limit", "200"))), 2000)
        return _json(transcript(trace, thread, offset, limit))

    def object_detail(request: Request) -> Response:
        _entry, trace = viewer.trace(param(request, "b"))
        return _json(detail(trace, param(request, "kind"), param(request, "id")))

    def prompt_inspector(request: Request) -> Response:
        _entry, trace = viewer.trace(param(request, "b"))
        return _json(prompt(trace, param(request, "id")))

    def search_endpoint(request: Request) -> Response:
        entry, _trace = viewer.trace(param(request, "b"))
        return _json(search(entry, param(request, "q")))

    def payload(request: Request) -> Response:
        entry, _trace = viewer.trace(param(request, "b"))
        ref, path = payload_file(entry, param(request, "id"))
        size = path.stat().st_size
        headers = {"cache-control": "no-store", "x-payload-bytes": str(size)}
        if request.query_params.get("download"):
            headers["content-disposition"] = "attachment"
        try:
            value = ref.load()
        except TraceError as error:
            # Not JSON we can parse: show the bytes as text.
            return Response(path.read_bytes(), media_type="text/plain; charset=utf-8",
                            headers={**headers, "x-payload-error": str(error)[:200].encode("ascii", "replace").decode()})
        if size <= PAYLOAD_STREAM_BYTES:
            return Response(json.dumps(value, indent=2, ensure_ascii=False), media_type="application/json",
                            headers=headers)

        def chunks() -> Iterator[bytes]:
            buffer: list[str] = []
            length = 0
            for piece in json.JSONEncoder(indent=2, ensure_ascii=False).iterencode(value):
                buffer.append(piece)
                length += len(piece)
                if length >= 1 << 16:
                    yield "".join(buffer).encode()
                    buffer, length = [], 0
            if buffer:
                yield "".join(buffer).encode()

        return StreamingResponse(chunks(), media_type="application/json", headers=headers)

    async def events(request: Request) -> Response:
        """Server-sent events: ``bundles`` (the list changed) or ``changed`` (this bundle changed)."""
        bundle_id = request.query_params.get("b")
        if bundle_id is not None:
            try:
                path = await asyncio.to_thread(viewer.bundle_path, bundle_id)
            except NotFound as error:
                return _error(404, str(error))
            stream = _bundle_events(request, path)
        else:
            stream = _list_events(request)
        # "connection: close": a browser that leaves the page drops the socket instead of keeping it
        # to drain an endless body (which would use up its six connections per host).
        return StreamingResponse(_limited(stream), media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no", "connection": "close"})

    async def _limited(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Ends a stream after a while; EventSource reconnects by itself (``retry``)."""
        deadline = time.monotonic() + SSE_LIFETIME
        try:
            async for chunk in stream:
                yield chunk
                if time.monotonic() > deadline:
                    return
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    async def _bundle_events(request: Request, path: Path) -> AsyncIterator[bytes]:
        yield b"retry: 1000\n\n"
        queue: asyncio.Queue[str] = asyncio.Queue()

        async def follow() -> None:
            async for signature in watch_bundle(path, viewer.poll):
                await queue.put(signature_token(signature))

        follower = asyncio.create_task(follow())
        try:
            while not await request.is_disconnected():
                try:
                    token = await asyncio.wait_for(queue.get(), timeout=15)
                except asyncio.TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                yield f"event: changed\ndata: {json.dumps(token)}\n\n".encode()
        finally:
            follower.cancel()

    async def _list_events(request: Request) -> AsyncIterator[bytes]:
        yield b"retry: 1000\n\n"
        last = None
        ticks = 0
        while not await request.is_disconnected():
            version = viewer.index.version
            if version != last:
                last = version
                yield f"event: bundles\ndata: {json.dumps({'version': version, 'pending': viewer.index.pending})}\n\n".encode()
            ticks += 1
            if ticks % max(1, int(1.0 / viewer.poll)) == 0:
                viewer.index.kick()  # look for new or changed bundles about once a second
            if ticks % 30 == 0:
                yield b": keep-alive\n\n"
            await asyncio.sleep(min(viewer.poll, 0.5))

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/api/bundles", api(bundles)),
        Route("/api/bundle", api(bundle)),
        Route("/api/timeline", api(thread_timeline)),
        Route("/api/transcript", api(thread_transcript)),
        Route("/api/object", api(object_detail)),
        Route("/api/prompt", api(prompt_inspector)),
        Route("/api/search", api(search_endpoint)),
        Route("/api/payload", api(payload)),
        Route("/api/events", events),
    ]
    app = Starlette(routes=routes)
    return Guard(app, allowed_hosts(host, port))
