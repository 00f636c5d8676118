"""Compare our reducer with an oracle output (``.json`` bytes or ``.err``).

Verdicts:
  identical        both succeed, byte-identical output
  differs          both succeed, different bytes
  error-match      both fail; ours raises TraceError containing the oracle message
  error-mismatch   both fail; our message lacks the oracle's
  ours-fails       oracle succeeds, ours raises
  ours-succeeds    oracle fails, ours succeeds
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .recorder import error_message

OK_VERDICTS = ("identical", "error-match")


def ours(bundle: Path, compat: str | None = None) -> tuple[bool, str]:
    import rollout_trace

    try:
        if compat is None:
            trace = rollout_trace.replay_bundle(str(bundle))
        else:
            trace = rollout_trace.replay_bundle(str(bundle), compat=compat)
        return True, trace.to_json()
    except rollout_trace.TraceError as e:
        return False, str(e)


def ours_cli(bundle: Path, out: Path, compat: str | None = None, timeout: float = 120) -> tuple[bool, str]:
    cmd = [sys.executable, "-m", "rollout_trace.cli", "reduce", str(bundle), "-o", str(out), "-q"]
    if compat is not None:
        cmd += ["--compat", compat]
    if out.exists():
        out.unlink()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if r.returncode == 0 and out.exists():
        return True, out.read_text()
    return False, r.stderr


def verdict(oracle_ok: bool, oracle_text: str, ok: bool, text: str) -> tuple[str, str]:
    """(verdict, detail). ``oracle_text``: the JSON, or the oracle's stderr."""
    if oracle_ok and ok:
        if text == oracle_text:
            return "identical", ""
        return "differs", first_difference(oracle_text, text)
    if oracle_ok:
        return "ours-fails", text.splitlines()[0][:300] if text else ""
    msg = error_message(oracle_text)
    if not ok:
        if msg and msg in text:
            return "error-match", msg
        return "error-mismatch", f"oracle: {msg[:200]!r}; ours: {text.splitlines()[0][:200] if text else ''!r}"
    return "ours-succeeds", f"oracle: {msg[:300]}"


def first_difference(a: str, b: str) -> str:
    """A short description of where two state.json texts first differ."""
    try:
        ja, jb = json.loads(a), json.loads(b)
    except ValueError:
        ja = jb = None
    if ja is not None:
        path = _json_diff(ja, jb, ())
        if path is not None:
            p, va, vb = path
            return f"at {'/'.join(map(str, p)) or '<root>'}: oracle {_short(va)} vs ours {_short(vb)}"
        # same value, different text: key order or formatting
        la, lb = a.splitlines(), b.splitlines()
        for i, (x, y) in enumerate(zip(la, lb)):
            if x != y:
                return f"same JSON value, text differs at line {i + 1}: oracle {x.strip()[:120]!r} vs ours {y.strip()[:120]!r}"
        return f"same JSON value, text differs (lengths {len(a)} vs {len(b)}; trailing newline?)"
    return "not JSON"


def _short(v) -> str:
    s = json.dumps(v) if not isinstance(v, _Missing) else "<absent>"
    return s if len(s) <= 120 else s[:117] + "..."


class _Missing:
    pass


def _json_diff(a, b, path):
    if type(a) is not type(b):
        return path, a, b
    if isinstance(a, dict):
        ka, kb = list(a), list(b)
        for k in ka:
            if k not in b:
                return path + (k,), a[k], _Missing()
        for k in kb:
            if k not in a:
                return path + (k,), _Missing(), b[k]
        for k in ka:
            d = _json_diff(a[k], b[k], path + (k,))
            if d is not None:
                return d
        if ka != kb:
            return path + ("<key order>",), ka[:8], kb[:8]
        return None
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b)):
            d = _json_diff(x, y, path + (i,))
            if d is not None:
                return d
        if len(a) != len(b):
            return path + ("<len>",), len(a), len(b)
        return None
    return None if a == b else (path, a, b)


def oracle_files(case: Path) -> dict[str, tuple[bool, str]]:
    """reducer version -> (ok, text) from ``case/reduced/``."""
    out = {}
    red = case / "reduced"
    if red.is_dir():
        for f in sorted(red.iterdir()):
            if f.suffix == ".json":
                out[f.stem] = (True, f.read_text())
            elif f.suffix == ".err":
                out[f.stem] = (False, f.read_text())
    return out


def cases(corpus: Path):
    """(writer, scenario, case dir) for every recorded case."""
    for w in sorted(p for p in corpus.iterdir() if p.is_dir()):
        for s in sorted(p for p in w.iterdir() if (p / "bundle").is_dir()):
            yield w.name, s.name, s


def compare_corpus(corpus: Path, compat_for=lambda reducer: None) -> list[dict]:
    rows = []
    for writer, scen, case in cases(corpus):
        oracles = oracle_files(case)
        cache: dict = {}
        for reducer, (ook, otext) in oracles.items():
            compat = compat_for(reducer)
            if compat not in cache:
                cache[compat] = ours(case / "bundle", compat)
            ok, text = cache[compat]
            v, detail = verdict(ook, otext, ok, text)
            rows.append({"writer": writer, "scenario": scen, "reducer": reducer, "verdict": v,
                         "detail": detail})
    return rows


def markdown_table(rows: list[dict]) -> str:
    from collections import defaultdict
    from .releases import version_tuple

    tab: dict = defaultdict(dict)
    for r in rows:
        tab[(r["writer"], r["scenario"])][r["reducer"]] = r["verdict"]
    reds = sorted({r["reducer"] for r in rows}, key=version_tuple)
    out = ["| writer | scenario | " + " | ".join(reds) + " |", "|" + "---|" * (2 + len(reds))]
    for (w, s), d in sorted(tab.items(), key=lambda kv: (version_tuple(kv[0][0]), kv[0][1])):
        out.append(f"| {w} | {s} | " + " | ".join(d.get(x, "") for x in reds) + " |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="compare ours with a corpus's oracle outputs")
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--compat", choices=["none", "release"], default="none",
                    help="none: today's default reducer; release: compat=codex-<reducer>")
    ap.add_argument("--tsv", type=Path)
    ap.add_argument("--markdown", type=Path, help="also write a writer x reducer verdict table")
    a = ap.parse_args(argv)
    fn = (lambda r: None) if a.compat == "none" else (lambda r: f"codex-{r}")
    rows = compare_corpus(a.corpus, fn)
    lines = ["writer\tscenario\treducer\tverdict\tdetail"] + [
        f"{r['writer']}\t{r['scenario']}\t{r['reducer']}\t{r['verdict']}\t{r['detail']}" for r in rows]
    text = "\n".join(lines) + "\n"
    if a.tsv:
        a.tsv.write_text(text)
    else:
        sys.stdout.write(text)
    if a.markdown:
        a.markdown.write_text(markdown_table(rows))
    from collections import Counter

    print(Counter(r["verdict"] for r in rows), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
