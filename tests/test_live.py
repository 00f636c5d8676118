"""Following growing bundles from Python and the command line."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import rollout_trace
from rollout_trace import EventError, LiveChange

ROOT = Path(__file__).resolve().parent.parent
REALISTIC = ROOT / "examples" / "realistic-bundle"
LINES = (REALISTIC / "trace.jsonl").read_bytes().splitlines(keepends=True)


@pytest.fixture()
def growing(tmp_path: Path) -> Path:
    """The realistic bundle with its payloads but an empty log."""
    bundle = shutil.copytree(REALISTIC, tmp_path / "growing")
    (bundle / "trace.jsonl").write_bytes(b"")
    return bundle


def append(bundle: Path, data: bytes) -> None:
    with open(bundle / "trace.jsonl", "ab") as log:
        log.write(data)


def writer(bundle: Path, pause: float = 0.002) -> threading.Thread:
    """Appends the realistic log in halves of lines, as a session would."""

    def run() -> None:
        for index, line in enumerate(LINES):
            append(bundle, line[: len(line) // 2])
            append(bundle, line[len(line) // 2 :])
            if index % 10 == 0:
                time.sleep(pause)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def run_while_written(bundle: Path, *args: str) -> str:
    """Runs ``rollout-trace ARGS`` while a writer appends the session to
    ``bundle``; its standard output, once it exited 0."""
    command = [sys.executable, "-m", "rollout_trace.cli", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        writer(bundle, pause=0.01).join()
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    return stdout


def test_every_prefix_equals_the_replay_of_that_prefix(growing: Path, tmp_path: Path) -> None:
    live = rollout_trace.follow(growing)
    prefix = shutil.copytree(REALISTIC, tmp_path / "prefix")
    for count, line in enumerate(LINES, start=1):
        append(growing, line[:-5])
        assert not live.update(), "a line still being written is left for later"
        append(growing, line[-5:])
        change = live.update()
        assert isinstance(change, LiveChange) and (change.lines, change.events) == (1, 1)
        (prefix / "trace.jsonl").write_bytes(b"".join(LINES[:count]))
        if count % 7 == 0 or count == len(LINES):
            assert live.trace.to_json() == rollout_trace.replay_bundle(prefix).to_json(), count
    assert live.ended and live.lines == len(LINES)
    assert live.trace == rollout_trace.replay_bundle(REALISTIC)


def test_changes_name_what_was_added(growing: Path) -> None:
    live = rollout_trace.follow(growing)
    append(growing, b"".join(LINES))
    change = live.update()
    trace = live.trace
    assert sorted(change.added["tool_calls"]) == sorted(trace.tool_calls)
    assert sorted(change.added["conversation_items"]) == sorted(trace.conversation_items)
    assert live.trace is trace, "one snapshot per change"


def test_wait_wakes_on_append_and_times_out(growing: Path) -> None:
    live = rollout_trace.follow(growing)
    start = time.monotonic()
    assert live.wait(timeout=0.2) is None
    assert time.monotonic() - start >= 0.19
    thread = writer(growing)
    changes = list(live.changes(timeout=10))
    thread.join()
    assert live.ended and sum(change.events for change in changes) == len(LINES)
    assert live.trace == rollout_trace.replay_bundle(REALISTIC)


def test_async_changes(growing: Path) -> None:
    live = rollout_trace.follow(growing)

    async def collect() -> int:
        thread = writer(growing)
        events = 0
        async for change in live.achanges(timeout=10):
            events += change.events
        thread.join()
        return events

    assert asyncio.run(collect()) == len(LINES)
    assert live.ended


def test_a_truncated_log_raises_or_restarts(growing: Path) -> None:
    append(growing, b"".join(LINES[:20]))
    live = rollout_trace.follow(growing)
    (growing / "trace.jsonl").write_bytes(b"".join(LINES[:3]))
    with pytest.raises(EventError, match="was truncated while it was followed"):
        live.update()
    append(growing, b"".join(LINES[3:20]))
    restarting = rollout_trace.follow(growing, restart=True)
    (growing / "trace.jsonl").write_bytes(b"".join(LINES[:5]))
    change = restarting.update()
    assert change.reset and restarting.lines == 5


def test_lenient_follower_skips_a_bad_line(growing: Path) -> None:
    live = rollout_trace.follow(growing, lenient=True)
    append(growing, LINES[0] + b"not an event\n" + b"".join(LINES[1:]))
    live.update()
    assert live.ended and [d.line for d in live.diagnostics] == [2]


def test_reduce_follow_keeps_state_json_current(growing: Path, tmp_path: Path) -> None:
    out = tmp_path / "state.json"
    stdout = run_while_written(growing, "reduce", "--follow", str(growing), "-o", str(out))
    assert stdout.strip() == str(out)
    assert out.read_text(encoding="utf-8") == rollout_trace.replay_bundle(REALISTIC).to_json()


def test_watch_shows_a_session_until_it_ends(growing: Path) -> None:
    stdout = run_while_written(growing, "watch", str(growing), "--timeout", "60")
    headers = [line for line in stdout.splitlines() if line.startswith("019b8db3-fcc1-70a5-bdca-2d3e42485e3a  [")]
    assert len(headers) >= 2, "the view is shown again as the session goes on"
    assert "[completed]" in headers[-1] and "(ended)" in headers[-1]
    assert stdout.rstrip().rsplit("latest tool calls:", 1)[-1].count("completed") == 8


def test_watch_lists_the_bundles_of_a_root(tmp_path: Path) -> None:
    for name in ("a", "b"):
        shutil.copytree(REALISTIC, tmp_path / "root" / name)
    result = subprocess.run(
        [sys.executable, "-m", "rollout_trace.cli", "watch", str(tmp_path / "root"), "--once"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "2 bundles" in result.stdout and result.stdout.count("completed") == 2
