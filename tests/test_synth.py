"""The realistic bundle generator: deterministic, sized on request, and the
source of the committed example bundle."""

import importlib.util
import json
import pathlib
import subprocess
import sys
import uuid

import pytest

import rollout_trace
from rollout_trace.synth import generate

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def files(bundle):
    """Every file of a bundle by relative path, with its bytes."""
    return {
        path.relative_to(bundle).as_posix(): path.read_bytes() for path in sorted(bundle.rglob("*")) if path.is_file()
    }


def size(bundle):
    return sum(len(data) for data in files(bundle).values())


def events(bundle):
    return [json.loads(line) for line in (bundle / "trace.jsonl").read_text(encoding="utf-8").splitlines()]


def test_same_seed_gives_byte_identical_bundles(tmp_path):
    first = generate(tmp_path / "first", seed=11, children=3)
    second = generate(tmp_path / "second", seed=11, children=3)
    assert first == tmp_path / "first"
    first_files = files(first)
    assert "manifest.json" in first_files and "trace.jsonl" in first_files
    assert len(first_files) > 100
    assert first_files == files(second)


def test_another_seed_gives_another_bundle(tmp_path):
    first = files(generate(tmp_path / "first", seed=1))
    second = files(generate(tmp_path / "second", seed=2))
    assert first["manifest.json"] != second["manifest.json"]
    assert first["trace.jsonl"] != second["trace.jsonl"]


def test_the_bundle_looks_like_a_codex_session(tmp_path):
    bundle = generate(tmp_path / "bundle", seed=3)
    log = events(bundle)
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    assert [event["seq"] for event in log] == list(range(1, len(log) + 1))
    assert log[0]["payload"] == {
        "type": "rollout_started",
        "trace_id": manifest["trace_id"],
        "root_thread_id": manifest["root_thread_id"],
    }
    assert manifest["rollout_id"] == manifest["root_thread_id"]
    assert [event["payload"]["type"] for event in log[-3:]] == [
        "protocol_event_observed",
        "thread_ended",
        "rollout_ended",
    ]
    times = [event["wall_time_unix_ms"] for event in log]
    assert times == sorted(times)
    # Lifecycle and protocol events carry no envelope context; the rest
    # carry their thread and turn (04-producers §3).
    contextless = {"rollout_started", "rollout_ended", "thread_started", "thread_ended", "protocol_event_observed"}
    for event in log:
        if event["payload"]["type"] in contextless:
            assert (event["thread_id"], event["codex_turn_id"]) == (None, None), event
        else:
            assert event["thread_id"] is not None and event["codex_turn_id"] is not None, event
    # Each event refers to the payloads written just before it, so payload
    # ordinals follow the log.
    refs = [
        ref for event in log for ref in event["payload"].values() if isinstance(ref, dict) and "raw_payload_id" in ref
    ]
    assert [ref["path"] for ref in refs] == [f"payloads/{n}.json" for n in range(1, len(refs) + 1)]
    kinds = {ref["kind"]["type"] for ref in refs}
    assert kinds == {
        "session_metadata",
        "protocol_event",
        "inference_request",
        "inference_response",
        "tool_invocation",
        "tool_runtime_event",
        "tool_result",
        "compaction_request",
        "compaction_response",
        "compaction_checkpoint",
        "agent_result",
    }
    # Helpers are spawned threads of the same bundle, with canonical UUID
    # thread ids as protocol payloads require.
    starts = [event["payload"] for event in log if event["payload"]["type"] == "thread_started"]
    assert [start["agent_path"] for start in starts[:1]] == ["/root"]
    for start in starts[1:]:
        metadata = json.loads((bundle / start["metadata_payload"]["path"]).read_text(encoding="utf-8"))
        spawn = metadata["session_source"]["subagent"]["thread_spawn"]
        assert spawn["parent_thread_id"] == manifest["root_thread_id"]
        assert start["agent_path"] == spawn["agent_path"] == metadata["agent_path"]
        assert str(uuid.UUID(start["thread_id"])) == start["thread_id"]


@pytest.fixture(scope="module")
def two_megabytes(tmp_path_factory):
    """A bundle grown to about 2 MB through the command line."""
    bundle = tmp_path_factory.mktemp("synth") / "bundle"
    command = [sys.executable, "-m", "rollout_trace.synth", str(bundle), "--seed", "5", "--target-mb", "2"]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    assert done.stdout.startswith(str(bundle))
    return bundle


def test_target_mb_sets_the_bundle_size(two_megabytes):
    assert 1_500_000 <= size(two_megabytes) <= 2_500_000
    turns = [event for event in events(two_megabytes) if event["payload"]["type"] == "codex_turn_started"]
    assert len(turns) > 10


def test_a_target_sized_bundle_reduces(two_megabytes):
    if not hasattr(rollout_trace, "replay_bundle"):
        pytest.skip("rollout_trace.replay_bundle is not in this build yet (the Python API lands separately)")
    state = json.loads(rollout_trace.replay_bundle(two_megabytes).to_json())
    assert state["status"] == "completed"
    assert len(state["threads"]) == 3
    assert len(state["compactions"]) >= 1
    assert all(call["usage"] is not None for call in state["inference_calls"].values())


def test_the_command_line_rejects_bad_arguments(tmp_path):
    for flag, value in (("--children", "-1"), ("--target-mb", "0")):
        command = [sys.executable, "-m", "rollout_trace.synth", str(tmp_path / "bundle"), flag, value]
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 2
        assert flag in done.stderr
    assert not (tmp_path / "bundle").exists()


def test_the_committed_example_is_a_fresh_generation(tmp_path):
    spec = importlib.util.spec_from_file_location("make_realistic_bundle", EXAMPLES / "make_realistic_bundle.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    committed = files(EXAMPLES / "realistic-bundle")
    assert committed == files(
        generate(tmp_path / "fresh", **script.PARAMETERS)
    ), "examples/realistic-bundle is stale: run python examples/make_realistic_bundle.py"
    assert sum(len(data) for data in committed.values()) < 300_000
