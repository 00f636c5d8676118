"""Batch reduction benchmark: speed-up of 2 workers over 1, and the overhead
of Python's ``reduce_many`` over the ``rollout-trace reduce`` CLI.

Generates 200 small realistic bundles (seeded, cached under bench/out/batch),
then times, in one run:

* ``reduce_many(paths, workers=1)`` and ``workers=2``, and one thread
  doing all the work (``replay_bundle(path, read_ahead=False)`` in turn);
* ``rollout-trace reduce -r DIR -o OUT -j 2`` (a child process, writing files);
* ``reduce_many(paths, workers=2)`` followed by ``trace.save`` for each, the
  same work as the CLI, to compare like with like.

Usage: python bench/batch_bench.py [--bundles N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import rollout_trace
from rollout_trace import synth

OUT = Path(__file__).resolve().parent / "out" / "batch"


def bundles(count: int) -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(count):
        path = OUT / f"bundle-{seed:04d}"
        if not (path / "manifest.json").exists():
            synth.generate(path, seed=seed)
        paths.append(path)
    return paths


def best_of(repeat: int, run) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundles", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    paths = bundles(args.bundles)
    total_mb = sum(f.stat().st_size for p in paths for f in p.rglob("*") if f.is_file()) / 1e6
    print(f"{len(paths)} bundles, {total_mb:.1f} MB, {os.cpu_count()} cores")

    def many(workers: int) -> None:
        results = rollout_trace.reduce_many(paths, workers=workers)
        assert all(isinstance(r, rollout_trace.RolloutTrace) for r in results)

    def one_thread() -> None:
        for path in paths:
            rollout_trace.replay_bundle(path, read_ahead=False)

    one = best_of(args.repeat, lambda: many(1))
    two = best_of(args.repeat, lambda: many(2))
    alone = best_of(args.repeat, one_thread)
    print(f"reduce_many workers=1: {one:.3f} s ({total_mb / one:.0f} MB/s)")
    print(f"reduce_many workers=2: {two:.3f} s ({total_mb / two:.0f} MB/s)")
    print(f"speed-up 2 workers over 1: {one / two:.2f}x")
    # One worker reads ahead on the second core, so the speed-up above is
    # not that of cores; against one thread doing all the work it is.
    print(f"one thread (replay_bundle(read_ahead=False) each): {alone:.3f} s ({total_mb / alone:.0f} MB/s)")
    print(f"speed-up 2 workers over one thread: {alone / two:.2f}x")

    out = Path(tempfile.mkdtemp(prefix="rollout-trace-batch-"))
    cli = shutil.which("rollout-trace") or sys.exit("rollout-trace is not installed (pip install .)")

    def run_cli() -> None:
        subprocess.run([cli, "reduce", "-r", str(OUT), "-o", str(out / "cli"), "-j", "2", "-q"],
                       check=True, stdout=subprocess.DEVNULL)

    def run_python() -> None:
        for path, trace in zip(paths, rollout_trace.reduce_many(paths, workers=2)):
            assert isinstance(trace, rollout_trace.RolloutTrace)
            target = out / "py" / path.name
            target.mkdir(parents=True, exist_ok=True)
            trace.save(target / "state.json")

    cli_time = best_of(args.repeat, run_cli)
    py_time = best_of(args.repeat, run_python)
    print(f"CLI reduce -j 2 (with writes, incl. interpreter start): {cli_time:.3f} s")
    print(f"reduce_many(workers=2) + save: {py_time:.3f} s")
    print(f"overhead of reduce_many over the CLI: {(py_time / cli_time - 1) * 100:+.1f}%")
    shutil.rmtree(out)


if __name__ == "__main__":
    main()
