"""Ours against committed oracle outputs of real Codex releases (no binary needed).

tests/data/codex/<writer>/<scenario>/bundle/ was recorded by ``codex exec``
<writer> (scripts/record_codex.py --out tests/data/codex --offline-subset);
reduced/<reducer>.json is what ``codex debug trace-reduce`` <reducer> wrote,
reduced/<reducer>.err its stderr where it failed. Ours, with
``compat="codex-<reducer>"``, must give the same bytes, or raise a TraceError
whose message contains the oracle's (the text after ``Error: ``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.codex.compare import oracle_files, ours, verdict  # noqa: E402

rollout_trace = pytest.importorskip("rollout_trace")

DATA = ROOT / "tests" / "data" / "codex"


def _cases():
    if not DATA.is_dir():
        return []
    out = []
    for w in sorted(p for p in DATA.iterdir() if p.is_dir()):
        for s in sorted(p for p in w.iterdir() if (p / "bundle").is_dir()):
            for reducer in sorted(oracle_files(s)):
                out.append(pytest.param(s, reducer, id=f"{w.name}-{s.name}-{reducer}"))
    return out


CASES = _cases()


def test_corpus_present():
    assert CASES, f"no committed corpus under {DATA}"


@pytest.mark.parametrize("case,reducer", CASES)
def test_committed_oracle(case: Path, reducer: str):
    oracle_ok, oracle_text = oracle_files(case)[reducer]
    ok, text = ours(case / "bundle", compat=f"codex-{reducer}")
    v, detail = verdict(oracle_ok, oracle_text, ok, text)
    assert v in ("identical", "error-match"), f"{case.parent.name}/{case.name} compat=codex-{reducer}: {v}: {detail}"
