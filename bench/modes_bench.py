"""Replay modes on big bundles: compatibility profiles, lenient replay and
live following, each against the parse floor measured in the same run.

* profiles: for each profile, ``replay_bundle(b, compat=...)`` in this
  process (best of --repeat), and the matching pinned release's own
  ``codex debug trace-reduce`` (a process writing state.json, one run)
  where its binary is in the cache (tests/codex downloads it);
* lenient: strict against lenient replay of the clean bundle, and lenient
  replay of the bundle with a torn last line (one event skipped);
* live: following the bundle as it is written line by line, an
  ``update()`` after each line, against one full replay; and the latency
  of appending one event to the whole session and calling ``update()``
  (median and 95th percentile over the last --tail lines); peak RSS of
  each, measured in child processes.

Bundles: the 200 MB synthetic one (bench/out/synth-200mb, made by
rollout_trace.synth) and any recorded long real session given with
--bundle (scripts/record_codex.py --scenario long records one).

Usage: python bench/modes_bench.py [--bundle DIR ...] [--sections profiles lenient live] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from reduce_bench import bundle as synth_bundle  # noqa: E402
from reduce_bench import ensure_extension, mb, parse_floor_binary, run  # noqa: E402

CACHE = Path(os.environ.get("ROLLOUT_TRACE_CACHE", Path.home() / ".cache" / "rollout-trace"))
#: The release whose binary stands for each profile in this bench.
PINNED = {
    "codex-0.125": "0.125.0",
    "codex-0.133": "0.139.0",
    "codex-0.142": "0.144.4",
    "codex-0.147": "0.161.0",
    "codex-0.162": "0.163.0",
}

LIVE_CHILD = r"""
import json, os, statistics, sys, time
import rollout_trace
bundle, work, tail = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(os.path.join(bundle, "trace.jsonl"), "rb").read().splitlines(keepends=True)
log = os.path.join(work, "trace.jsonl")
open(log, "wb").close()
live = rollout_trace.follow(work, compat="crate" if sys.argv[4] == "crate" else None)
latencies = []
start = time.perf_counter()
with open(log, "ab", buffering=0) as out:
    for index, line in enumerate(lines):
        out.write(line)
        t0 = time.perf_counter()
        live.update()
        if index >= len(lines) - tail:
            latencies.append(time.perf_counter() - t0)
total = time.perf_counter() - start
t0 = time.perf_counter()
snapshot = live.trace
snap = time.perf_counter() - t0
print(json.dumps({"total": total, "latencies": latencies, "snapshot": snap, "lines": len(lines)}))
"""


def codex_binary(release: str) -> Path | None:
    root = CACHE / "codex" / release
    found = sorted(root.rglob("codex")) if root.is_dir() else []
    found = [path for path in found if path.is_file() and os.access(path, os.X_OK)]
    return found[0] if found else None


def best(seconds: list[float]) -> float:
    return min(seconds)


def timed(function, repeat: int) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        runs.append(time.perf_counter() - start)
    return best(runs)


def floor(floor_binary: Path, bundle: Path, repeat: int) -> float:
    runs = [float(run([str(floor_binary), str(bundle)]).out.split()[1]) for _ in range(repeat)]
    return best(runs)


def profiles(bundle: Path, floor_s: float, repeat: int) -> list[str]:
    import rollout_trace

    rows = ["| profile | ours (in process) | x floor | release | its `trace-reduce` (process) | release ÷ ours |",
            "|---|---|---|---|---|---|"]
    for name, _releases in rollout_trace.compat_profiles():
        try:
            ours = timed(lambda: rollout_trace.replay_bundle(bundle, compat=name), repeat)
        except rollout_trace.TraceError as error:
            rows.append(f"| {name} | fails: {error.message[:60]} | | | | |")
            continue
        release = PINNED.get(name)
        binary = codex_binary(release) if release else None
        theirs = "n/a"
        ratio = ""
        if binary is not None:
            with tempfile.TemporaryDirectory() as scratch:
                copy = Path(scratch) / "bundle"
                shutil.copytree(bundle, copy)
                out = Path(scratch) / "state.json"
                times = []
                # One run: the releases take seconds to minutes on big bundles.
                for _ in range(1):
                    start = time.perf_counter()
                    done = subprocess.run([str(binary), "debug", "trace-reduce", str(copy), "-o", str(out)],
                                          capture_output=True, text=True)
                    times.append(time.perf_counter() - start)
                if done.returncode == 0:
                    theirs = f"{best(times):.3f} s"
                    ratio = f"{best(times) / ours:.0f}x"
                else:
                    theirs = f"fails ({best(times):.3f} s)"
        rows.append(f"| {name} | {ours:.3f} s | {ours / floor_s:.2f} | {release or ''} | {theirs} | {ratio} |")
    return rows


def lenient(bundle: Path, floor_s: float, repeat: int) -> list[str]:
    import rollout_trace

    strict = timed(lambda: rollout_trace.replay_bundle(bundle), repeat)
    clean = timed(lambda: rollout_trace.replay_bundle(bundle, lenient=True), repeat)
    with tempfile.TemporaryDirectory() as scratch:
        torn = Path(scratch) / "torn"
        shutil.copytree(bundle, torn)
        log = (torn / "trace.jsonl").read_bytes()
        (torn / "trace.jsonl").write_bytes(log[: len(log) - 50])
        faulty = timed(lambda: rollout_trace.replay_bundle(torn, lenient=True), repeat)
        skipped = len(rollout_trace.replay_bundle(torn, lenient=True).diagnostics)
    return [
        "| replay | time | x strict | x floor |",
        "|---|---|---|---|",
        f"| strict | {strict:.3f} s | 1.00 | {strict / floor_s:.2f} |",
        f"| lenient, clean bundle | {clean:.3f} s | {clean / strict:.2f} | {clean / floor_s:.2f} |",
        f"| lenient, torn last line ({skipped} skipped) | {faulty:.3f} s | {faulty / strict:.2f} | {faulty / floor_s:.2f} |",
    ]


def live(bundle: Path, floor_s: float, repeat: int, tail: int, compat: str) -> list[str]:
    replay = run([sys.executable, "-c", "import rollout_trace, sys; rollout_trace.replay_bundle(sys.argv[1])",
                  str(bundle)])
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / "live"
        shutil.copytree(bundle, work)
        child = run([sys.executable, "-c", LIVE_CHILD, str(bundle), str(work), str(tail), compat])
    result = json.loads(child.out)
    latencies = sorted(result["latencies"])
    one_replay = timed(lambda: __import__("rollout_trace").replay_bundle(bundle), repeat)
    median = statistics.median(latencies) * 1e3
    p95 = latencies[int(len(latencies) * 0.95) - 1] * 1e3
    return [
        "| measure | value |",
        "|---|---|",
        f"| lines in trace.jsonl | {result['lines']} |",
        f"| one full replay (in process) | {one_replay:.3f} s ({one_replay / floor_s:.2f} x floor) |",
        f"| written line by line, `update()` after each | {result['total']:.3f} s = **{result['total'] / one_replay:.2f} x** one replay |",
        f"| one appended event + `update()`, last {len(latencies)} lines | median **{median:.3f} ms**, p95 {p95:.3f} ms |",
        f"| snapshot of the whole session (`live.trace`) | {result['snapshot'] * 1e3:.1f} ms |",
        f"| peak RSS: following / one replay (processes) | {child.rss:.1f} MB / {replay.rss:.1f} MB |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundle", type=Path, action="append", default=[], help="a recorded long session")
    parser.add_argument("--sections", nargs="+", default=["profiles", "lenient", "live"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tail", type=int, default=200, help="live: lines whose update latency is reported")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--no-synth", action="store_true", help="only the --bundle sessions")
    args = parser.parse_args()
    ensure_extension(not args.no_build)
    floor_binary = parse_floor_binary()
    bundles = ([] if args.no_synth else [synth_bundle(200)]) + args.bundle
    for path in bundles:
        floor_s = floor(floor_binary, path, args.repeat)
        print(f"\n### {path.name}: {mb(path):.0f} MB, parse floor {floor_s:.3f} s\n")
        if "profiles" in args.sections:
            print("\n".join(profiles(path, floor_s, args.repeat)), "\n", flush=True)
        if "lenient" in args.sections:
            print("\n".join(lenient(path, floor_s, args.repeat)), "\n", flush=True)
        if "live" in args.sections:
            print("\n".join(live(path, floor_s, args.repeat, args.tail, "newest")), "\n", flush=True)


if __name__ == "__main__":
    main()
