"""Differential fuzzing of ours against the released reducers.

Cases are derived from recorded bundles:

* prefixes: the first k lines of ``trace.jsonl`` for every k (and a cut in
  the middle of a line), as a crashed or live session leaves them;
* structural mutations (the ideas of scripts/differential_fuzz.py): event
  lines dropped, repeated, swapped; a string of an event replaced by another
  string of the bundle (ids); payload array items dropped or repeated.

Each case is reduced by every given release (``codex debug trace-reduce``)
and by ours with ``compat="codex-<release>"``; a disagreement (verdict not
identical / error-match) is kept as a directory with the bundle, both
outputs and what was done.
"""
from __future__ import annotations

import json
import random
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .compare import ours, verdict
from .recorder import oracle_reduce
from .releases import Release, cache_root


@dataclass
class Case:
    seed_bundle: Path
    what: str
    lines: list[str]
    #: payload file name -> new text (None: unchanged)
    payload_edits: dict[str, str]

    def write(self, dest: Path) -> Path:
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(self.seed_bundle, dest)
        text = "".join(self.lines)
        (dest / "trace.jsonl").write_text(text)
        for name, body in self.payload_edits.items():
            (dest / "payloads" / name).write_text(body)
        return dest


def _lines(bundle: Path) -> list[str]:
    return (bundle / "trace.jsonl").read_text().splitlines(keepends=True)


def prefixes(bundle: Path) -> list[Case]:
    lines = _lines(bundle)
    out = [Case(bundle, f"prefix {k}/{len(lines)} lines", lines[:k], {}) for k in range(len(lines) + 1)]
    if len(lines) > 2:
        k = len(lines) // 2
        half = lines[k][: max(1, len(lines[k]) // 2)]
        out.append(Case(bundle, f"prefix {k} lines + half of line {k + 1}", lines[:k] + [half], {}))
    return out


def json_strings(value, path=()):
    """Every string in a JSON value, with its path of keys and indexes."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from json_strings(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from json_strings(v, path + (i,))
    elif isinstance(value, str):
        yield path, value


def json_lists(value, path=()):
    """Every array in a JSON value, with its path, outer ones first."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from json_lists(v, path + (k,))
    elif isinstance(value, list):
        yield path, value
        for i, v in enumerate(value):
            yield from json_lists(v, path + (i,))


def set_at(value, path, new):
    """Replaces what `path` leads to in a JSON value."""
    for key in path[:-1]:
        value = value[key]
    value[path[-1]] = new


def mutate(bundle: Path, rng: random.Random) -> Case:
    lines = _lines(bundle)
    n = len(lines)
    payloads = sorted((bundle / "payloads").glob("*.json"))
    choice = rng.randrange(6)
    if choice == 0 and n > 1:
        i = rng.randrange(n)
        return Case(bundle, f"drop line {i + 1}", lines[:i] + lines[i + 1:], {})
    if choice == 1:
        i = rng.randrange(n)
        return Case(bundle, f"repeat line {i + 1}", lines[:i + 1] + lines[i:], {})
    if choice == 2 and n > 1:
        i = rng.randrange(n - 1)
        new = list(lines)
        new[i], new[i + 1] = new[i + 1], new[i]
        return Case(bundle, f"swap lines {i + 1} and {i + 2}", new, {})
    if choice == 3:
        # a string of an event replaced by another string of the same key elsewhere
        i = rng.randrange(n)
        event = json.loads(lines[i])
        found = [(p, v) for p, v in json_strings(event) if p and p[0] == "payload"]
        pool: dict = {}
        for line in lines:
            for p, v in json_strings(json.loads(line)):
                pool.setdefault(p[-1], set()).add(v)
        if found:
            path, old = rng.choice(found)
            others = sorted(pool.get(path[-1], set()) - {old})
            if others:
                new_v = rng.choice(others)
                set_at(event, path, new_v)
                new = list(lines)
                new[i] = json.dumps(event, separators=(",", ":")) + "\n"
                return Case(bundle, f"line {i + 1}: {'/'.join(map(str, path))} {old!r} -> {new_v!r}", new, {})
    if payloads:
        p = rng.choice(payloads)
        try:
            body = json.loads(p.read_text())
        except ValueError:
            body = None
        arrays = [(path, a) for path, a in json_lists(body) if a] if body is not None else []
        if arrays:
            path, arr = rng.choice(arrays)
            j = rng.randrange(len(arr))
            if rng.random() < 0.5:
                del arr[j]
                what = f"payloads/{p.name}: drop item {j} of {'/'.join(map(str, path)) or '<root>'}"
            else:
                arr.insert(j, json.loads(json.dumps(arr[j])))
                what = f"payloads/{p.name}: repeat item {j} of {'/'.join(map(str, path)) or '<root>'}"
            return Case(bundle, what, lines, {p.name: json.dumps(body, indent=2, ensure_ascii=False)})
    i = rng.randrange(n)
    return Case(bundle, f"drop line {i + 1}", lines[:i] + lines[i + 1:], {})


@dataclass
class Disagreement:
    case: Case
    reducer: str
    verdict: str
    detail: str
    kept: Path | None = None


def run_case(case: Case, reducers: list[Release], work: Path, keep: Path | None = None,
             label: str = "") -> list[Disagreement]:
    bundle = case.write(work / "bundle")
    found = []
    ours_cache: dict = {}
    for rel in reducers:
        out = work / f"oracle-{rel.version}.json"
        ook, otext = oracle_reduce(rel, bundle, out, timeout=60)
        if ook:
            otext = out.read_text()
        compat = f"codex-{rel.version}"
        if compat not in ours_cache:
            ours_cache[compat] = ours(bundle, compat)
        ok, text = ours_cache[compat]
        v, detail = verdict(ook, otext, ok, text)
        if v not in ("identical", "error-match"):
            d = Disagreement(case, rel.version, v, detail)
            if keep is not None:
                dest = keep / f"{label}-{rel.version}"
                case.write(dest / "bundle")
                (dest / ("oracle.json" if ook else "oracle.err")).write_text(otext)
                (dest / ("ours.json" if ok else "ours.err")).write_text(text)
                (dest / "CASE").write_text(
                    f"seed {case.seed_bundle}\nmutation {case.what}\nreducer {rel.version}\n"
                    f"verdict {v}\ndetail {detail}\n")
                d.kept = dest
            found.append(d)
    return found


def fuzz(seeds: list[Path], reducers: list[Release], *, mutations: int, seed: int = 1,
         with_prefixes: bool = True, keep: Path | None = None, deadline: float | None = None,
         jobs: int = 2, log=None) -> tuple[int, list[Disagreement]]:
    """Run prefixes of every seed and ``mutations`` random mutations; (cases run, disagreements)."""
    import time

    rng = random.Random(seed)
    cases: list[tuple[str, Case]] = []
    if with_prefixes:
        for si, s in enumerate(seeds):
            for ci, c in enumerate(prefixes(s)):
                cases.append((f"s{si}-prefix{ci}", c))
    for m in range(mutations):
        s = seeds[rng.randrange(len(seeds))]
        cases.append((f"mut{m}-s{seeds.index(s)}", mutate(s, rng)))
    base = cache_root() / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    found: list[Disagreement] = []
    ran = 0

    def one(item):
        label, case = item
        if deadline is not None and time.monotonic() > deadline:
            return None
        with tempfile.TemporaryDirectory(dir=base, prefix="fuzz-") as td:
            return run_case(case, reducers, Path(td), keep, label)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for (label, case), res in zip(cases, pool.map(one, cases)):
            if res is None:
                continue
            ran += 1
            found.extend(res)
            if log and res:
                for d in res:
                    log(f"{label} {case.what} [{d.reducer}]: {d.verdict}: {d.detail[:200]}")
    return ran, found
