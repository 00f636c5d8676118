"""`TraceBundle` from Python: the manifest, raw events and their payload
references, and the errors for unusable bundles."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from rollout_trace import (
    BundleError,
    EventError,
    RawEvent,
    RawPayloadRef,
    ToolCallKind,
    ToolCallSummary,
    TraceBundle,
    TraceError,
)


def shared_dir() -> Path | None:
    configured = os.environ.get("ROLLOUT_TRACE_SHARED")
    path = Path(configured) if configured else Path(__file__).resolve().parents[1].parent / "shared"
    return path if (path / "conformance").is_dir() else None


SHARED = shared_dir()
BUNDLES = sorted(p / "bundle" for p in (SHARED / "conformance").iterdir() if (p / "bundle").is_dir()) if SHARED else []
needs_shared = pytest.mark.skipif(SHARED is None, reason="conformance cases not found (set ROLLOUT_TRACE_SHARED)")


def bundle_params() -> list[Any]:
    if not BUNDLES:
        return [pytest.param(None, marks=needs_shared, id="no-conformance-cases")]
    return [pytest.param(bundle, id=bundle.parent.name) for bundle in BUNDLES]


def lenient_equal(ours: Any, theirs: Any) -> bool:
    """Equal as the reader sees a line: unknown keys in the file are ignored,
    and an optional key missing from the file reads as None."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return all(
            lenient_equal(value, theirs[key]) if key in theirs else value is None for key, value in ours.items()
        )
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(lenient_equal(a, b) for a, b in zip(ours, theirs))
    return bool(ours == theirs)


def event_lines(bundle: Path) -> list[tuple[int, dict[str, Any]]]:
    lines = (bundle / "trace.jsonl").read_text(encoding="utf-8").split("\n")
    return [(number, json.loads(text)) for number, text in enumerate(lines, start=1) if text.strip()]


@pytest.mark.parametrize("bundle", bundle_params())
def test_open_reads_the_manifest(bundle: Path) -> None:
    opened = TraceBundle.open(bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert opened.path == bundle
    for field in ("schema_version", "trace_id", "rollout_id", "root_thread_id", "started_at_unix_ms"):
        assert getattr(opened, field) == manifest[field]
    assert (opened.raw_event_log, opened.payloads_dir) == (manifest["raw_event_log"], manifest["payloads_dir"])
    assert opened.manifest_dict() == manifest
    assert TraceBundle.open(str(bundle)) == opened and hash(TraceBundle.open(bundle)) == hash(opened)
    assert pickle.loads(pickle.dumps(opened)) == opened
    assert repr(opened).startswith(f"<TraceBundle {bundle} trace_id={manifest['trace_id']}")


@pytest.mark.parametrize("bundle", bundle_params())
def test_events_mirror_trace_jsonl(bundle: Path) -> None:
    opened = TraceBundle.open(bundle)
    events = list(opened.events())
    lines = event_lines(bundle)
    assert len(events) == len(lines)
    for event, (number, line) in zip(events, lines):
        assert isinstance(event, RawEvent)
        assert event.line == number
        assert lenient_equal(event.to_dict(), line)
        for field in ("schema_version", "seq", "wall_time_unix_ms", "rollout_id"):
            assert getattr(event, field) == line[field]
        assert event.thread_id == line.get("thread_id") and event.codex_turn_id == line.get("codex_turn_id")
        assert event.type == line["payload"]["type"]
        payload = event.payload
        assert "type" not in payload
        assert set(payload) <= set(line["payload"]) | {key for key, value in payload.items() if value is None}
        refs = []
        for field, value in payload.items():
            assert event[field] == value
            if field not in ("thread_id", "codex_turn_id"):  # envelope attributes win
                assert getattr(event, field) == value
            if isinstance(value, RawPayloadRef):
                assert value.to_dict() == line["payload"][field]
                refs.append(value)
            elif isinstance(value, ToolCallKind | ToolCallSummary):
                assert value.to_dict() == line["payload"][field]
            elif isinstance(value, tuple):
                refs.extend(value)
            else:
                assert lenient_equal(value, line["payload"].get(field))
        assert list(event.payload_refs) == refs
        with pytest.raises(AttributeError, match="no attribute 'not_a_field'"):
            event.not_a_field
        with pytest.raises(KeyError):
            event["not_a_field"]
        assert event == event and hash(event) == hash(event)
        assert repr(event).startswith(f"<RawEvent seq={event.seq} {event.type}")
    assert [event.to_dict() for event in opened.events()] == [event.to_dict() for event in events]


@pytest.mark.parametrize("bundle", bundle_params())
def test_event_payload_refs_load_their_files(bundle: Path) -> None:
    for event in TraceBundle.open(bundle).events():
        for ref in event.payload_refs:
            file = bundle / ref.path
            assert ref.bundle == TraceBundle.open(bundle)
            assert ref.exists() == file.is_file()
            if file.is_file():
                assert ref.absolute_path == file.absolute()
                assert ref.read_bytes() == file.read_bytes()
                assert ref.load() == json.loads(file.read_text(encoding="utf-8"))
                assert ref.load() is ref.load()


def write_bundle(root: Path, lines: list[str], manifest: dict[str, Any] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    manifest = manifest or {
        "schema_version": 1,
        "trace_id": "trace",
        "rollout_id": "rollout",
        "root_thread_id": "thread",
        "started_at_unix_ms": 1,
        "raw_event_log": "trace.jsonl",
        "payloads_dir": "payloads",
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (root / "trace.jsonl").write_text("".join(lines))
    return root


def event_line(seq: int, payload: dict[str, Any]) -> str:
    envelope = {
        "schema_version": 1,
        "seq": seq,
        "wall_time_unix_ms": 100 + seq,
        "rollout_id": "rollout",
        "thread_id": "thread",
        "codex_turn_id": None,
        "payload": payload,
    }
    return json.dumps(envelope) + "\n"


def test_other_and_protocol_events_expose_refs_and_metadata(tmp_path: Path) -> None:
    ref = {"raw_payload_id": "raw_payload:1", "kind": {"type": "protocol_event"}, "path": "payloads/1.json"}
    other = {
        "type": "other",
        "kind": "custom",
        "summary": "s",
        "payloads": [ref, dict(ref, raw_payload_id="raw_payload:2", path="payloads/2.json")],
        "metadata": {"big": 123456789012345678901234567890, "f": 0.5, "list": [1, {"k": None}]},
    }
    protocol = {"type": "protocol_event_observed", "event_type": "turn_diff", "event_payload": ref}
    bundle = write_bundle(tmp_path / "b", [event_line(1, other), "\r\n", event_line(2, protocol)])
    (bundle / "payloads").mkdir()
    (bundle / "payloads" / "1.json").write_text('{"diff": "+x"}')
    first, second = TraceBundle.open(bundle).events()
    assert first.type == "other" and first.line == 1
    assert first.metadata == {"big": 123456789012345678901234567890, "f": 0.5, "list": [1, {"k": None}]}
    assert first.to_dict()["payload"]["metadata"] == other["metadata"]
    refs = first.payloads
    assert isinstance(refs, tuple) and [r.raw_payload_id for r in refs] == ["raw_payload:1", "raw_payload:2"]
    assert first.payload_refs == refs and first["kind"] == "custom"
    assert second.line == 3 and second.event_type == "turn_diff"
    assert second.event_payload.load() == {"diff": "+x"}
    assert not refs[1].exists()


def test_tool_call_started_kind_and_summary_are_objects(tmp_path: Path) -> None:
    started = {
        "type": "tool_call_started",
        "tool_call_id": "tool",
        "model_visible_call_id": None,
        "code_mode_runtime_tool_id": None,
        "requester": {"type": "code_cell", "runtime_cell_id": "1"},
        "kind": {"type": "mcp", "server": "s", "tool": "t"},
        "summary": {"type": "wait_agent", "target_agent_path": None, "timeout_ms": 5},
        "invocation_payload": None,
    }
    bundle = write_bundle(tmp_path / "b", [event_line(1, started)])
    (event,) = TraceBundle.open(bundle).events()
    assert isinstance(event.kind, ToolCallKind) and (event.kind.server, event.kind.tool) == ("s", "t")
    assert isinstance(event.summary, ToolCallSummary) and event.summary.timeout_ms == 5
    assert event.requester == {"type": "code_cell", "runtime_cell_id": "1"}
    assert event.invocation_payload is None and event.payload_refs == ()


def test_unusable_bundles_raise_bundle_error(tmp_path: Path) -> None:
    def check(path: Path, message: str, file: str | None = None) -> None:
        with pytest.raises(BundleError, match=message) as raised:
            TraceBundle.open(path)
        error = raised.value
        assert isinstance(error, TraceError)
        assert str(path) in str(error) and error.bundle == str(path) and error.file == file

    check(tmp_path / "absent", "does not exist")
    (tmp_path / "file").write_text("")
    check(tmp_path / "file", "not a directory")
    (tmp_path / "empty").mkdir()
    check(tmp_path / "empty", "No such file", "manifest.json")
    malformed = write_bundle(tmp_path / "malformed", [])
    (malformed / "manifest.json").write_text('{"schema_version": 1, "trace_id": 5}')
    check(malformed, "invalid type", "manifest.json")
    future = write_bundle(tmp_path / "future", [])
    manifest = json.loads((future / "manifest.json").read_text())
    (future / "manifest.json").write_text(json.dumps(dict(manifest, schema_version=2)))
    check(future, "unsupported manifest schema_version 2", "manifest.json")


def test_bad_event_lines_raise_event_error_where_reached(tmp_path: Path) -> None:
    good = event_line(1, {"type": "rollout_ended", "status": "completed"})
    bundle = write_bundle(tmp_path / "b", [good, "\n", '{"seq": 2}\n', good])
    events = TraceBundle.open(bundle).events()
    assert next(events).seq == 1  # nothing after the first line was parsed yet
    with pytest.raises(EventError) as raised:
        next(events)
    error = raised.value
    assert (error.file, error.line, error.bundle) == ("trace.jsonl", 3, str(bundle))
    assert "line 3" in str(error) and str(bundle) in str(error)
    assert list(events) == []  # reading stops at the bad line
    (bundle / "trace.jsonl").unlink()
    with pytest.raises(BundleError, match="trace event log"):
        TraceBundle.open(bundle).events()


def test_one_event_iterator_can_be_shared_by_threads(tmp_path: Path) -> None:
    lines = [event_line(seq, {"type": "rollout_ended", "status": "completed"}) for seq in range(1, 2001)]
    events = TraceBundle.open(write_bundle(tmp_path / "b", lines)).events()
    seen: list[list[int]] = [[] for _ in range(4)]

    def drain(index: int) -> None:
        for event in events:
            seen[index].append(event.seq)

    workers = [threading.Thread(target=drain, args=(index,)) for index in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(seq for one in seen for seq in one) == list(range(1, 2001))


@needs_shared
def test_bundle_payloads_dir_may_be_removed_until_payloads_are_read(tmp_path: Path) -> None:
    assert BUNDLES
    bundle = shutil.copytree(BUNDLES[0], tmp_path / "bundle")
    shutil.rmtree(bundle / "payloads", ignore_errors=True)
    events = list(TraceBundle.open(bundle).events())
    assert events and all(not ref.is_loaded for event in events for ref in event.payload_refs)
