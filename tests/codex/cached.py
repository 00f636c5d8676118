"""Recordings and oracle outputs cached on disk, for the tests.

``CACHE/recordings/<version>-<key>/<scenario>/`` holds a case in the corpus
layout (bundle/, reduced/, NOTE); ``key`` hashes the harness source
(tests/codex/*.py), so a change to a scenario or the mock records anew and
reruns of an unchanged harness only reduce. A case without a bundle (the
release cannot do the scenario) is cached too, as a NOTE.
"""
from __future__ import annotations

import hashlib
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import corpus
from .releases import Release, cache_root

HERE = Path(__file__).resolve().parent
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


_KEY: str | None = None


def harness_key() -> str:
    """Hash of the recording code, computed once per process."""
    global _KEY
    if _KEY is not None:
        return _KEY
    h = hashlib.sha256()
    for p in sorted(HERE.glob("*.py")):
        if p.name in ("cached.py", "compare.py", "summary.py", "fuzz.py", "subset.py", "releases.py"):
            continue  # do not change what is recorded
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    _KEY = h.hexdigest()[:12]
    return _KEY


def recordings_dir(version: str) -> Path:
    return cache_root() / "recordings" / f"{version}-{harness_key()}"


def prune_old(days: float = 7.0) -> None:
    """Remove recordings of other harness versions not used for ``days``."""
    import time

    root = cache_root() / "recordings"
    if not root.is_dir():
        return
    key = harness_key()
    for d in root.iterdir():
        if d.is_dir() and not d.name.endswith("-" + key) and time.time() - d.stat().st_mtime > days * 86400:
            shutil.rmtree(d, ignore_errors=True)


def _lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def case_dir(rel: Release, scenario: str) -> Path:
    """Record (or reuse) one case; its directory (``bundle/`` may be absent)."""
    out = recordings_dir(rel.version)
    dest = out / scenario
    with _lock(str(dest)):
        if (dest / "DONE").exists():
            return dest
        tmp_out = out / ".partial"
        tmp_out.mkdir(parents=True, exist_ok=True)
        corpus.record_one(tmp_out, rel, scenario)
        src = tmp_out / rel.version / scenario
        if dest.exists():
            shutil.rmtree(dest)
        shutil.move(str(src), str(dest))
        (dest / "DONE").write_text("")
        return dest


def oracle(case: Path, reducer: Release) -> tuple[bool, str]:
    """The reducer's output for the case: (True, json) or (False, stderr); cached."""
    red = case / "reduced"
    j, e = red / f"{reducer.version}.json", red / f"{reducer.version}.err"
    with _lock(str(j)):
        if not j.exists() and not e.exists():
            red.mkdir(exist_ok=True)
            from .recorder import oracle_reduce

            tmp = red / f".{reducer.version}.json.partial"
            ok, stderr = oracle_reduce(reducer, case / "bundle", tmp)
            if ok:
                tmp.rename(j)
            else:
                if tmp.exists():
                    tmp.unlink()
                e.write_text(stderr)
    if j.exists():
        return True, j.read_text()
    return False, e.read_text()


def prepare(releases: list[Release], scenarios: list[str], jobs: int = 2, log=None) -> dict:
    """Record every (release, scenario) and reduce each bundle with every release.

    Returns {(version, scenario): case dir}.
    """
    cases: dict = {}
    prune_old()

    def rec(rel, name):
        d = case_dir(rel, name)
        if log:
            log(f"{rel.version} {name}: {'bundle' if (d / 'bundle').is_dir() else 'no bundle'}")
        return (rel.version, name), d

    # long-running scenarios first, so the pool ends together
    order = sorted(((r, s) for s in scenarios for r in releases),
                   key=lambda rs: rs[1] not in ("multi_agent_interrupt", "multi_agent", "interrupted", "killed"))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for key, d in pool.map(lambda rs: rec(*rs), order):
            cases[key] = d
    work = [(d, red) for d in cases.values() if (d / "bundle").is_dir() for red in releases]
    with ThreadPoolExecutor(max_workers=max(2, jobs)) as pool:
        list(pool.map(lambda dr: oracle(*dr), work))
    return cases
