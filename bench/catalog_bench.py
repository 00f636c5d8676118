"""Catalog benchmark: indexing a root of many small generated bundles, and
re-indexing it with nothing, 0.1% and 1% changed; Ray ``read_traces`` on a
local cluster against ``reduce_many`` on the same bundles.

The root (``--bundles`` seeded synth bundles, 0 to 2 helpers each, laid out
as ``day-NN/rollout-NNNNN``) is generated once and cached (default
``bench/out/catalog-root``; it is about 560 KB per bundle). A "changed"
bundle has its ``trace.jsonl`` mtime moved, so it is re-reduced in full;
changed bundles are picked at random (so they fall in random shards) and,
separately, as the newest 1% by path (a root where recent sessions are
still being written).

Usage: python bench/catalog_bench.py [--bundles 10000] [--workers 2]
       [--ray-bundles 2000] [--no-ray] [--root DIR] [--catalog DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import rollout_trace
from rollout_trace import catalog as cat
from rollout_trace import synth

OUT = Path(__file__).resolve().parent / "out"


def _make(args: tuple[str, int]) -> None:
    root, i = args
    path = Path(root) / f"day-{i // 1000:02d}" / f"rollout-{i:05d}"
    if not (path / "manifest.json").exists():
        if path.exists():
            shutil.rmtree(path)
        synth.generate(path, seed=i, children=i % 3)


def make_root(root: Path, count: int, workers: int) -> None:
    with Pool(workers) as pool:
        pool.map(_make, [(str(root), i) for i in range(count)], chunksize=64)


def touch(paths: list[str]) -> None:
    for path in paths:
        trace = os.path.join(path, "trace.jsonl")
        st = os.stat(trace)
        os.utime(trace, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def run_index(root: Path, out: Path, workers: int) -> dict[str, Any]:
    report = cat.index(root, out, workers=workers)
    line = {
        "seconds": round(report.seconds, 3),
        "reduced": report.reduced,
        "shards_written": report.shards_written,
        "timings": {k: round(v, 3) for k, v in report.timings.items()},
    }
    print(f"  {report}", flush=True)
    print(f"    phases: {line['timings']}", flush=True)
    return line


def time_reduce_many(paths: list[str], workers: int) -> tuple[float, float]:
    start = time.perf_counter()
    traces = rollout_trace.reduce_many(paths, workers=workers)
    reduced = time.perf_counter() - start
    for trace in traces:
        if not isinstance(trace, Exception):
            trace.tables()
    return reduced, time.perf_counter() - start


def bench_ray(paths: list[str], workers: int) -> dict[str, Any]:
    import ray

    import rollout_trace.ray as rray

    results: dict[str, Any] = {"bundles": len(paths)}
    before = time_reduce_many(paths, workers)
    start = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
    except AttributeError:
        pass
    results["ray_init"] = time.perf_counter() - start
    try:
        start = time.perf_counter()
        rray.read_traces(paths[:200], table="bundles").materialize()  # start and warm the workers
        results["ray_warm_up_200_bundles"] = time.perf_counter() - start
        for table in ("bundles", "tool_calls", "conversation_items"):
            start = time.perf_counter()
            dataset = rray.read_traces(paths, table=table).materialize()
            rows = dataset.count()
            results[f"ray_{table}"] = time.perf_counter() - start
            results[f"ray_{table}_rows"] = rows
        start = time.perf_counter()
        target = OUT / "catalog-ray-parquet"
        shutil.rmtree(target, ignore_errors=True)
        rray.read_traces(paths, table="tool_calls").write_parquet(str(target))
        results["ray_write_parquet_tool_calls"] = time.perf_counter() - start
    finally:
        ray.shutdown()
    after = time_reduce_many(paths, workers)
    results["reduce_many"] = min(before[0], after[0])
    results["reduce_many_plus_tables"] = min(before[1], after[1])
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundles", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ray-bundles", type=int, default=2000)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--root", type=Path, default=None, help="default bench/out/catalog-root-N")
    parser.add_argument("--catalog", type=Path, default=OUT / "catalog")
    args = parser.parse_args()

    start = time.perf_counter()
    args.root = args.root or OUT / f"catalog-root-{args.bundles}"
    make_root(args.root, args.bundles, args.workers)
    found = cat.find_root_bundles(args.root)
    keys = sorted(found)
    if len(keys) != args.bundles:
        sys.exit(f"{args.root} holds {len(keys)} bundles, not {args.bundles}: use another --root")
    size = sum(f.stat().st_size for k in keys[:200] for f in Path(found[k]).rglob("*") if f.is_file()) / 200
    print(f"{len(keys)} bundles (about {size / 1e3:.0f} KB each), {os.cpu_count()} cores, "
          f"root ready in {time.perf_counter() - start:.1f}s", flush=True)
    results: dict[str, Any] = {"bundles": len(keys), "workers": args.workers, "cores": os.cpu_count()}

    shutil.rmtree(args.catalog, ignore_errors=True)
    print("full index:", flush=True)
    results["full"] = run_index(args.root, args.catalog, args.workers)
    results["full"]["bundles_per_s"] = round(len(keys) / results["full"]["seconds"], 1)
    print("nothing changed:", flush=True)
    results["unchanged"] = [run_index(args.root, args.catalog, args.workers) for _ in range(3)]
    rng = random.Random(0)
    for label, picked in (
        ("0.1% random", rng.sample(keys, len(keys) // 1000)),
        ("1% random", rng.sample(keys, len(keys) // 100)),
        ("1% newest", keys[-len(keys) // 100 :]),
    ):
        print(f"{label} changed:", flush=True)
        touch([found[k] for k in picked])
        results[label] = run_index(args.root, args.catalog, args.workers)
    catalog_bytes = sum(f.stat().st_size for f in (args.catalog / "current").rglob("*") if f.is_file())
    results["catalog_mb"] = round(catalog_bytes / 1e6, 1)
    results["catalog_files"] = sum(1 for _ in (args.catalog / "current").rglob("*.parquet"))

    if not args.no_ray:
        paths = [found[k] for k in keys[: args.ray_bundles]]
        print(f"ray on {len(paths)} bundles:", flush=True)
        results["ray"] = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in bench_ray(paths, args.workers).items()}
        print(f"  {results['ray']}", flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
