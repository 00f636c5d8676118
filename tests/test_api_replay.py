"""Replaying conformance bundles from Python: `replay_bundle` and
`TraceBundle.reduce` must give exactly `expected.json`, or fail with the
expected message. These need the reducer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import rollout_trace
from rollout_trace import RolloutTrace, TraceBundle, TraceError


def shared_dir() -> Path | None:
    configured = os.environ.get("ROLLOUT_TRACE_SHARED")
    path = Path(configured) if configured else Path(__file__).resolve().parents[1].parent / "shared"
    return path if (path / "conformance").is_dir() else None


SHARED = shared_dir()
CASES = sorted(p for p in (SHARED / "conformance").iterdir() if (p / "bundle").is_dir()) if SHARED else []


def params(expected_file: str) -> list[Any]:
    chosen = [case for case in CASES if (case / expected_file).is_file()]
    if not chosen:
        reason = "conformance cases not found (set ROLLOUT_TRACE_SHARED)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-conformance-cases")]
    return [pytest.param(case, id=case.name) for case in chosen]


@pytest.mark.parametrize("case", params("expected.json"))
def test_replay_gives_expected_state(case: Path) -> None:
    expected = (case / "expected.json").read_text(encoding="utf-8")
    # The cases are the seed crate's: its profile is the one they hold.
    trace = rollout_trace.replay_bundle(case / "bundle", compat="crate")
    assert trace.to_json() == expected
    assert rollout_trace.replay_bundle(case / "bundle", read_ahead=False, compat="crate").to_json() == expected
    assert trace.bundle == TraceBundle.open(case / "bundle")
    assert TraceBundle.open(case / "bundle").reduce(compat="crate") == trace
    assert trace == RolloutTrace.from_json(expected)
    for ref in trace.raw_payloads.values():
        if ref.exists():
            assert ref.read_bytes() == (case / "bundle" / ref.path).read_bytes()


@pytest.mark.parametrize("case", params("expected_error.txt"))
def test_replay_failure_names_the_rule_and_bundle(case: Path) -> None:
    message = (case / "expected_error.txt").read_text(encoding="utf-8").strip()
    with pytest.raises(TraceError) as raised:
        rollout_trace.replay_bundle(str(case / "bundle"))
    assert message in str(raised.value)
    assert raised.value.bundle == str(case / "bundle")
    with pytest.raises(type(raised.value)) as on_one_thread:
        rollout_trace.replay_bundle(str(case / "bundle"), read_ahead=False)
    assert str(on_one_thread.value) == str(raised.value)
    with pytest.raises(type(raised.value)):
        TraceBundle.open(case / "bundle").reduce()
