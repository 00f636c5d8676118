#!/usr/bin/env python3
"""Differential fuzzing of ours (compat=codex-<release>) against the pinned
releases' own ``codex debug trace-reduce``.

    scripts/codex_differential_fuzz.py --budget-seconds 600 --keep /work/corpus/fuzz
    scripts/codex_differential_fuzz.py --seed 7 --mutations 500 --bundle DIR --bundle DIR

Seeds: the bundles of the committed corpus (tests/data/codex) smaller than
--max-lines event lines, or the --bundle directories. Every line-prefix of
each seed, then seeded random structural mutations until the budget or the
mutation count runs out. Disagreements are kept under --keep
(<case>-<reducer>/{bundle/, oracle.json|.err, ours.json|.err, CASE}).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.codex import fuzz, releases  # noqa: E402


def small_seeds(corpus: Path, max_lines: int, exclude=()) -> list[Path]:
    out = []
    for b in sorted(corpus.glob("*/*/bundle")):
        if b.parent.name in exclude:
            continue
        n = sum(1 for _ in (b / "trace.jsonl").open())
        if n <= max_lines:
            out.append(b)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget-seconds", type=float, default=None)
    ap.add_argument("--mutations", type=int, default=None, help="default: 150, or unlimited with a budget")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bundle", action="append", type=Path)
    ap.add_argument("--corpus", type=Path, default=ROOT / "tests" / "data" / "codex")
    ap.add_argument("--max-lines", type=int, default=40)
    ap.add_argument("--no-prefixes", action="store_true")
    ap.add_argument("--exclude-scenario", action="append", default=[],
                    help="leave out seeds of this scenario (e.g. one with a known disagreement)")
    ap.add_argument("--release", action="append", help="reducer release (repeatable); default: the pinned six")
    ap.add_argument("--keep", type=Path, default=Path("codex-fuzz-disagreements"))
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    got, missing = releases.available_releases(a.release or releases.PINNED)
    for m in missing:
        print("unavailable:", m, file=sys.stderr)
    if not got:
        return 2
    seeds = a.bundle or small_seeds(a.corpus, a.max_lines, a.exclude_scenario)
    if not seeds:
        print("no seed bundles", file=sys.stderr)
        return 2
    mutations = a.mutations if a.mutations is not None else (10 ** 6 if a.budget_seconds else 150)
    deadline = time.monotonic() + a.budget_seconds if a.budget_seconds else None
    a.keep.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    if deadline is not None and mutations >= 10 ** 6:
        # generate lazily in rounds so a budget run does not build a million cases
        ran, found, round_ = 0, [], 0
        while time.monotonic() < deadline:
            r, f = fuzz.fuzz(seeds, got, mutations=200, seed=a.seed * 100003 + round_,
                             with_prefixes=(round_ == 0 and not a.no_prefixes), keep=a.keep,
                             deadline=deadline, jobs=a.jobs, log=print)
            ran, found, round_ = ran + r, found + f, round_ + 1
    else:
        ran, found = fuzz.fuzz(seeds, got, mutations=mutations, seed=a.seed, with_prefixes=not a.no_prefixes,
                               keep=a.keep, deadline=deadline, jobs=a.jobs, log=print)
    print(f"{ran} cases x {len(got)} reducers from {len(seeds)} seeds in {time.monotonic() - t0:.0f}s: "
          f"{len(found)} disagreements" + (f", kept under {a.keep}" if found else ""))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
