"""Compatibility profiles and lenient replay from Python and the CLI."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rollout_trace
from rollout_trace import EventError, PayloadError, TraceError

ROOT = Path(__file__).resolve().parent.parent
REALISTIC = ROOT / "examples" / "realistic-bundle"
ORACLE = ROOT / "tests" / "data" / "release-oracle"
SHARED = Path(os.environ.get("ROLLOUT_TRACE_SHARED", ROOT.parent / "shared"))
CASES = SHARED / "conformance"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rollout_trace.cli", *args], capture_output=True, text=True, timeout=120
    )


# ---------------------------------------------------------------- profiles


def test_profiles_cover_every_release_and_resolve_by_release_or_family() -> None:
    profiles = dict(rollout_trace.compat_profiles())
    assert list(profiles) == ["codex-0.125", "codex-0.133", "codex-0.142", "codex-0.147", "codex-0.162", "crate"]
    assert sum(len(releases) for releases in profiles.values()) == 29
    assert rollout_trace.resolve_compat() == "codex-0.162"
    assert rollout_trace.resolve_compat("codex-0.158.0") == "codex-0.147"
    assert rollout_trace.resolve_compat("0.139.0") == "codex-0.133"
    assert rollout_trace.resolve_compat("codex-0.142") == "codex-0.142"


def test_an_unknown_profile_is_a_clear_error_listing_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown compatibility profile \"codex-9\.9\".*codex-0\.147 \(Codex 0\.147\.0 to 0\.161\.0\)"):
        rollout_trace.replay_bundle(REALISTIC, compat="codex-9.9")
    with pytest.raises(ValueError, match="choose one of"):
        rollout_trace.reduce_many([REALISTIC], compat="nope")
    result = cli("reduce", str(REALISTIC), "--compat", "nope")
    assert result.returncode == 2
    assert "unknown compatibility profile" in result.stderr and "crate" in result.stderr


@pytest.mark.skipif(not CASES.is_dir(), reason=f"no conformance cases at {CASES}")
@pytest.mark.parametrize("release", sorted(p.name for p in ORACLE.iterdir()) if ORACLE.is_dir() else [])
def test_each_release_profile_matches_that_release_on_the_conformance_bundles(release: str) -> None:
    for expected in sorted((ORACLE / release).iterdir()):
        case = expected.name.split(".")[0]
        bundle = CASES / case / "bundle"
        if expected.suffix == ".json":
            trace = rollout_trace.replay_bundle(bundle, compat=f"codex-{release}")
            assert trace.to_json() == expected.read_text(encoding="utf-8"), f"{release} {case}"
        else:
            with pytest.raises(TraceError) as raised:
                rollout_trace.replay_bundle(bundle, compat=f"codex-{release}")
            assert expected.read_text(encoding="utf-8").strip() in str(raised.value), f"{release} {case}"


def test_older_profiles_leave_out_the_fields_their_releases_do_not_write() -> None:
    newest = json.loads(rollout_trace.replay_bundle(REALISTIC).to_json())
    call = next(iter(newest["inference_calls"].values()))
    assert "response_id" in call and "cache_write_input_tokens" in call["usage"]
    before_0_147 = rollout_trace.replay_bundle(REALISTIC, compat="codex-0.144.4")
    usage = next(iter(before_0_147.inference_calls.values())).usage
    assert usage is not None and usage.cache_write_input_tokens is None
    assert "cache_write_input_tokens" not in before_0_147.to_json()


@pytest.mark.skipif(not CASES.is_dir(), reason=f"no conformance cases at {CASES}")
def test_the_first_traced_release_has_no_response_or_mcp_ids() -> None:
    bundle = CASES / "reducer__tool__terminal__tests__exec_tool_reduces_to_terminal_operation_and_session" / "bundle"
    trace = rollout_trace.replay_bundle(bundle, compat="codex-0.125")
    state = json.loads(trace.to_json())
    assert all("response_id" not in call for call in state["inference_calls"].values())
    assert all("mcp_call_id" not in tool for tool in state["tool_calls"].values())
    # 0.125 writes the response id where later releases write the HTTP request id.
    assert [c.upstream_request_id for c in trace.inference_calls.values()][0] == "resp-1"
    assert all(call.response_id is None for call in trace.inference_calls.values())
    assert trace.tables().inference_calls.rows[0]["response_id"] is None  # tables of older shapes too


# ---------------------------------------------------------------- lenient


@pytest.fixture()
def torn(tmp_path: Path) -> Path:
    """The realistic bundle killed mid-write: its last line cut in half."""
    bundle = shutil.copytree(REALISTIC, tmp_path / "torn")
    log = (bundle / "trace.jsonl").read_text(encoding="utf-8")
    (bundle / "trace.jsonl").write_text(log[: len(log) - 40], encoding="utf-8")
    return bundle


def test_lenient_replay_skips_the_torn_line_and_keeps_the_rest(torn: Path) -> None:
    with pytest.raises(EventError):
        rollout_trace.replay_bundle(torn)
    trace = rollout_trace.replay_bundle(torn, lenient=True)
    lines = (torn / "trace.jsonl").read_text(encoding="utf-8").count("\n") + 1
    assert trace.is_partial and trace.events_read == lines
    (diagnostic,) = trace.diagnostics
    assert isinstance(diagnostic, EventError)
    assert (diagnostic.line, diagnostic.event_type, diagnostic.depends_on) == (lines, None, None)
    assert diagnostic.file == "trace.jsonl" and diagnostic.kind == "event"
    # Everything before the torn line, and the end-of-replay step, happened.
    full = rollout_trace.replay_bundle(REALISTIC)
    assert len(trace.tool_calls) == len(full.tool_calls)
    restored = pickle.loads(pickle.dumps(trace))
    assert restored == trace and restored.events_read == lines
    assert [(d.line, d.event_type, d.depends_on) for d in restored.diagnostics] == [(lines, None, None)]


def test_a_missing_payload_costs_its_event_and_those_that_depend_on_it(tmp_path: Path) -> None:
    bundle = shutil.copytree(REALISTIC, tmp_path / "missing")
    events = [json.loads(line) for line in (bundle / "trace.jsonl").read_text(encoding="utf-8").splitlines()]
    started = next(i for i, e in enumerate(events) if e["payload"]["type"] == "inference_started")
    (bundle / events[started]["payload"]["request_payload"]["path"]).unlink()
    trace = rollout_trace.replay_bundle(bundle, lenient=True)
    first, *later = trace.diagnostics
    assert isinstance(first, PayloadError)
    assert (first.line, first.event_type, first.depends_on) == (started + 1, "inference_started", None)
    assert later and all(d.depends_on is not None for d in later)
    assert later[0].event_type == "inference_completed" and later[0].depends_on == started + 1


def test_partial_and_lenient_exclude_each_other(torn: Path) -> None:
    with pytest.raises(ValueError, match="exclude each other"):
        rollout_trace.replay_bundle(torn, partial=True, lenient=True)
    assert cli("reduce", str(torn), "--partial", "--lenient").returncode == 2


def test_lenient_batches_and_tables(torn: Path) -> None:
    results = rollout_trace.reduce_many([torn, REALISTIC], workers=2, lenient=True)
    assert [r.is_partial for r in results if isinstance(r, rollout_trace.RolloutTrace)] == [True, False]
    strict = rollout_trace.reduce_many([torn], workers=1)
    assert isinstance(strict[0], EventError)
    tables = rollout_trace.tables_many([torn], lenient=True)
    assert len(tables.tool_calls) == len(rollout_trace.replay_bundle(REALISTIC).tables().tool_calls)


def test_cli_reports_what_lenient_replay_skipped(torn: Path, tmp_path: Path) -> None:
    out, diagnostics = tmp_path / "state.json", tmp_path / "skipped.json"
    assert cli("reduce", str(torn), "-o", str(out)).returncode == 1
    result = cli("reduce", str(torn), "-o", str(out), "--lenient", "--diagnostics", str(diagnostics))
    assert result.returncode == 0, result.stderr
    lines = (torn / "trace.jsonl").read_text(encoding="utf-8").count("\n") + 1
    assert f"kept {lines - 1} of {lines} events; skipped 1, see {diagnostics}" in result.stderr
    assert out.read_text(encoding="utf-8") == rollout_trace.replay_bundle(torn, lenient=True).to_json()
    (record,) = json.loads(diagnostics.read_text(encoding="utf-8"))
    assert record["line"] == lines and record["seq"] is None and record["event_type"] is None
    assert record["kind"] == "event" and record["depends_on"] is None
    assert record["message"].startswith(f"parse trace event line {lines}")
    summary = cli("summary", str(torn), "--lenient")
    assert summary.returncode == 0 and "skipped 1" in summary.stderr
    validate = cli("validate", str(torn))
    assert validate.returncode == 1 and f"line {lines}" in validate.stdout
