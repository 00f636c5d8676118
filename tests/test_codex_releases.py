"""Real Codex releases against ours.

Every pinned release (tests/codex/releases.py) records every scenario
(tests/codex/scenarios.py) with ``codex exec`` against a scripted mock of
the Responses API; each bundle is reduced by every pinned release's ``codex
debug trace-reduce`` (the oracle) and by ours with ``compat="codex-<reducer>"``:
byte-identical output, or, where the oracle fails, a ``TraceError`` whose
message contains the oracle's.

Releases come from PyPI into $ROLLOUT_TRACE_CACHE (default
~/.cache/rollout-trace); where that cannot be reached and the cache is
empty, these tests skip. Recordings are cached by a hash of the harness
source, so reruns only reduce. ROLLOUT_TRACE_CODEX=0 skips them all;
ROLLOUT_TRACE_CODEX_RELEASES=0.147.0,0.163.0 narrows the releases.
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

from tests.codex import cached, releases  # noqa: E402
from tests.codex.compare import ours, ours_cli, verdict  # noqa: E402
from tests.codex.scenarios import ON_DEMAND, SCENARIOS  # noqa: E402

rollout_trace = pytest.importorskip("rollout_trace")

PINNED = [v for v in os.environ.get("ROLLOUT_TRACE_CODEX_RELEASES", ",".join(releases.PINNED)).split(",") if v]
SCENARIO_NAMES = [s for s in SCENARIOS if s not in ON_DEMAND]
#: scenarios also reduced through the CLI (with the writer's own release as reducer)
CLI_SUBSET = ["chat", "exec_fail", "multi_agent", "code_mode", "compaction"]
ENABLED = os.environ.get("ROLLOUT_TRACE_CODEX", "1") not in ("0", "", "no", "false")
JOBS = int(os.environ.get("ROLLOUT_TRACE_CODEX_JOBS", "3"))

pytestmark = pytest.mark.skipif(not ENABLED, reason="ROLLOUT_TRACE_CODEX=0")


@pytest.fixture(scope="session")
def codex_releases():
    t0 = time.monotonic()
    got, missing = releases.available_releases(PINNED, download=True)
    if not got:
        pytest.skip("no Codex release available (PyPI unreachable and cache empty): " + "; ".join(missing))
    by_v = {r.version: r for r in got}
    print(f"\n[codex] releases ready in {time.monotonic() - t0:.1f}s: {sorted(by_v)}; missing: {missing}")
    return by_v, missing


@pytest.fixture(scope="session")
def codex_cases(codex_releases):
    by_v, _ = codex_releases
    t0 = time.monotonic()
    cases = cached.prepare(list(by_v.values()), SCENARIO_NAMES, jobs=JOBS)
    print(f"[codex] recorded and reduced {len(cases)} cases in {time.monotonic() - t0:.1f}s")
    return cases


def _case(codex_releases, codex_cases, writer, scenario):
    by_v, missing = codex_releases
    if writer not in by_v:
        pytest.skip(f"codex {writer} unavailable: {missing}")
    case = codex_cases[(writer, scenario)]
    if not (case / "bundle").is_dir():
        note = (case / "NOTE").read_text() if (case / "NOTE").exists() else ""
        line = next((l[5:] for l in note.splitlines() if l.startswith("note ")), "no bundle")
        if "unsupported True" in note.splitlines():
            pytest.skip(f"{scenario} not recorded with codex {writer}: {line}")
        pytest.fail(f"{scenario} failed to record with codex {writer}: {line}\n(see {case})")
    return case


def _check(oracle_ok: bool, oracle_text: str, ok: bool, text: str, what: str) -> None:
    v, detail = verdict(oracle_ok, oracle_text, ok, text)
    assert v in ("identical", "error-match"), f"{what}: {v}: {detail}"


@pytest.mark.parametrize("reducer", PINNED)
@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
@pytest.mark.parametrize("writer", PINNED)
def test_release_bundle(codex_releases, codex_cases, writer, scenario, reducer):
    by_v, missing = codex_releases
    case = _case(codex_releases, codex_cases, writer, scenario)
    if reducer not in by_v:
        pytest.skip(f"codex {reducer} unavailable: {missing}")
    oracle_ok, oracle_text = cached.oracle(case, by_v[reducer])
    ok, text = ours(case / "bundle", compat=f"codex-{reducer}")
    _check(oracle_ok, oracle_text, ok, text, f"writer {writer} {scenario}, compat=codex-{reducer}")


@pytest.mark.parametrize("scenario", CLI_SUBSET)
@pytest.mark.parametrize("writer", PINNED)
def test_release_bundle_cli(codex_releases, codex_cases, writer, scenario, tmp_path):
    by_v, _ = codex_releases
    case = _case(codex_releases, codex_cases, writer, scenario)
    oracle_ok, oracle_text = cached.oracle(case, by_v[writer])
    ok, text = ours_cli(case / "bundle", tmp_path / "state.json", compat=f"codex-{writer}")
    _check(oracle_ok, oracle_text, ok, text, f"CLI: writer {writer} {scenario}, --compat codex-{writer}")


def test_release_families(codex_releases, codex_cases):
    """Releases of one family (spec 05 §5.3) agree with each other on every bundle."""
    by_v, _ = codex_releases
    fams: dict[str, list[str]] = {}
    for v in by_v:
        fams.setdefault(releases.FAMILY.get(v, v), []).append(v)
    bad = []
    for (writer, scen), case in codex_cases.items():
        if not (case / "bundle").is_dir():
            continue
        for fam, vs in fams.items():
            outs = {v: cached.oracle(case, by_v[v]) for v in vs}
            first = next(iter(outs.values()))
            for v, o in outs.items():
                same = o == first if o[0] else (not first[0] and o[1].splitlines()[:1] == first[1].splitlines()[:1])
                if not same:
                    bad.append(f"{writer}/{scen}: family {fam}: {v} differs from {vs[0]}")
    assert not bad, "\n".join(bad)
