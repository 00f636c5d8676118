"""Record scenarios into a corpus directory and reduce with every release.

Layout::

    OUT/<writer-version>/<scenario>/bundle/                the trace bundle
    OUT/<writer-version>/<scenario>/reduced/<reducer>.json  oracle stdout file
    OUT/<writer-version>/<scenario>/reduced/<reducer>.err   oracle stderr (exit 1)
    OUT/<writer-version>/<scenario>/NOTE                    how the recording went
    OUT/INDEX.tsv   writer, scenario, reducer, ok|error, first line of the error
    OUT/UNSUPPORTED.tsv   writer, scenario, why there is no bundle
"""
from __future__ import annotations

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .recorder import error_message, oracle_reduce
from .releases import Release
from .scenarios import SCENARIOS

_index_lock = threading.Lock()


def record_one(out: Path, rel: Release, name: str, keep_tmp: bool = False) -> dict:
    dest = out / rel.version / name
    t0 = time.monotonic()
    try:
        rec = SCENARIOS[name](rel)
    except Exception as e:  # a harness bug must not stop the corpus
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        (dest / "NOTE").write_text(f"writer {rel.version}\nscenario {name}\nok False\nunsupported False\n"
                                   f"note harness error: {type(e).__name__}: {e}\n")
        return {"writer": rel.version, "scenario": name, "ok": False,
                "note": f"harness error: {type(e).__name__}: {e}", "seconds": time.monotonic() - t0}
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    lines = [f"writer {rel.version}", f"scenario {name}", f"ok {rec.ok}",
             f"unsupported {rec.unsupported}", f"note {rec.note}", f"seconds {rec.seconds:.1f}", *rec.log]
    if rec.ok and rec.bundle is not None:
        shutil.copytree(rec.bundle, dest / "bundle")
        for i, b in enumerate(rec.extra_bundles, 2):
            shutil.copytree(b, dest / f"bundle-{i}")
    sess = getattr(rec, "session", None)
    if sess is not None:
        (dest / "codex-output.txt").write_text("\n".join(
            f"--- run {n}\n{sess.output(n)}" for n in range(1, sess.runs + 1)))
        if not keep_tmp:
            sess.cleanup()
    (dest / "NOTE").write_text("\n".join(lines) + "\n")
    return {"writer": rel.version, "scenario": name, "ok": rec.ok, "note": rec.note,
            "seconds": rec.seconds, "unsupported": rec.unsupported}


def reduce_one(out: Path, writer: str, name: str, reducer: Release) -> dict:
    dest = out / writer / name
    bundle = dest / "bundle"
    red = dest / "reduced"
    red.mkdir(exist_ok=True)
    json_out, err_out = red / f"{reducer.version}.json", red / f"{reducer.version}.err"
    for p in (json_out, err_out):
        if p.exists():
            p.unlink()
    ok, stderr = oracle_reduce(reducer, bundle, json_out)
    if not ok:
        err_out.write_text(stderr)
    return {"writer": writer, "scenario": name, "reducer": reducer.version,
            "ok": ok, "error": "" if ok else error_message(stderr)}


def write_index(out: Path) -> None:
    """INDEX.tsv from what is on disk."""
    rows = ["writer\tscenario\treducer\tresult\terror"]
    for wdir in sorted(p for p in out.iterdir() if p.is_dir()):
        for sdir in sorted(p for p in wdir.iterdir() if p.is_dir()):
            red = sdir / "reduced"
            if not red.is_dir():
                continue
            for f in sorted(red.iterdir(), key=lambda p: p.name):
                if f.suffix == ".json":
                    rows.append(f"{wdir.name}\t{sdir.name}\t{f.stem}\tok\t")
                elif f.suffix == ".err":
                    msg = error_message(f.read_text()).replace("\t", " ")
                    rows.append(f"{wdir.name}\t{sdir.name}\t{f.stem}\terror\t{msg}")
    unsupported = ["writer\tscenario\tnote"]
    for wdir in sorted(p for p in out.iterdir() if p.is_dir()):
        for sdir in sorted(p for p in wdir.iterdir() if p.is_dir()):
            note = sdir / "NOTE"
            if note.exists() and not (sdir / "bundle").is_dir():
                text = note.read_text().splitlines()
                n = next((l[5:] for l in text if l.startswith("note ")), "")
                unsupported.append(f"{wdir.name}\t{sdir.name}\t{n[:300]}")
    with _index_lock:
        (out / "INDEX.tsv").write_text("\n".join(rows) + "\n")
        (out / "UNSUPPORTED.tsv").write_text("\n".join(unsupported) + "\n")


def build(out: Path, writers: list[Release], scenarios: list[str], reducers: list[Release],
          jobs: int = 2, log=print) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    results = []

    def task(rel: Release, name: str):
        r = record_one(out, rel, name)
        log(f"recorded {rel.version} {name}: ok={r['ok']} {r['seconds']:.1f}s {r['note'][:200]}")
        reds = []
        if r["ok"]:
            for red in reducers:
                reds.append(reduce_one(out, rel.version, name, red))
        r["reduced"] = reds
        write_index(out)
        return r

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futs = [pool.submit(task, rel, name) for name in scenarios for rel in writers]
        for f in futs:
            results.append(f.result())
    write_index(out)
    return results
