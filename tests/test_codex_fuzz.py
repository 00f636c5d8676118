"""Differential fuzzing against the released reducers, fixed budget (seeded).

Seeds: small bundles of the committed corpus (tests/data/codex). Every
line-prefix of two of them and 150 seeded structural mutations, each reduced
by every pinned release available in the cache (or downloadable) and by ours
with compat="codex-<release>". Longer runs: scripts/codex_differential_fuzz.py.
Skips where no release binary can be had, or with ROLLOUT_TRACE_CODEX=0.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.codex import fuzz, releases  # noqa: E402

pytest.importorskip("rollout_trace")
DATA = ROOT / "tests" / "data" / "codex"
ENABLED = os.environ.get("ROLLOUT_TRACE_CODEX", "1") not in ("0", "", "no", "false")
MUTATIONS = int(os.environ.get("ROLLOUT_TRACE_FUZZ_MUTATIONS", "150"))
PREFIX_SEEDS = ["0.163.0/chat", "0.125.0/interrupted"]
MUTATION_SEEDS = ["0.163.0/chat", "0.163.0/exec_fail", "0.163.0/unknown_tool", "0.163.0/killed",
                  "0.147.0/retry_drop", "0.125.0/chat", "0.163.0/code_mode", "0.144.4/exec_ok"]


@pytest.mark.skipif(not ENABLED, reason="ROLLOUT_TRACE_CODEX=0")
def test_differential_fuzz(tmp_path):
    got, missing = releases.available_releases(releases.PINNED)
    if not got:
        pytest.skip("no Codex release available (PyPI unreachable and cache empty): " + "; ".join(missing))
    pre = [DATA / s / "bundle" for s in PREFIX_SEEDS if (DATA / s / "bundle").is_dir()]
    mut = [DATA / s / "bundle" for s in MUTATION_SEEDS if (DATA / s / "bundle").is_dir()]
    assert pre and mut, f"seed bundles missing under {DATA}"
    keep = tmp_path / "disagreements"
    t0 = time.monotonic()
    ran1, found1 = fuzz.fuzz(pre, got, mutations=0, with_prefixes=True, keep=keep)
    ran2, found2 = fuzz.fuzz(mut, got, mutations=MUTATIONS, seed=20261204, with_prefixes=False, keep=keep)
    found = found1 + found2
    print(f"\n[codex-fuzz] {ran1 + ran2} cases x {len(got)} releases in {time.monotonic() - t0:.0f}s")
    msg = "\n".join(f"{d.case.what} (seed {d.case.seed_bundle.parent.parent.name}/{d.case.seed_bundle.parent.name})"
                    f" vs {d.reducer}: {d.verdict}: {d.detail[:300]} [kept: {d.kept}]" for d in found[:30])
    assert not found, f"{len(found)} disagreements:\n{msg}"
