"""Differential fuzz between two builds of the reducer.

Structural mutations of bundles (event lines dropped, repeated, swapped;
ids and strings replaced by others from the same bundle; payload array
items dropped or repeated) are reduced by two builds of
``examples/reduce`` (say, before and after a change), and by the second
one without reading ahead too. Any difference in exit status, error line
or state.json is printed, and the bundle kept under /tmp/diff-N.

Usage: python scripts/differential_fuzz.py OLD_REDUCE NEW_REDUCE [PER_CASE]
  with SEED=n for another run, EXTRA=dir:dir to fuzz those bundles instead
  of the conformance cases (../shared/conformance or ROLLOUT_TRACE_SHARED).
Build an old one with: git worktree add ../old REV && (cd ../old &&
  cargo build --release --example reduce).
"""
import json, os, random, shutil, subprocess, sys, tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.codex.fuzz import json_lists as lists, json_strings as strings, set_at  # noqa: E402

OLD, NEW = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 20
SHARED = Path(os.environ.get("ROLLOUT_TRACE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
CASES = sorted(p / "bundle" for p in (SHARED / "conformance").iterdir() if (p / "bundle").is_dir())
if os.environ.get("EXTRA"):
    CASES = [Path(p) for p in os.environ["EXTRA"].split(":")]
rng = random.Random(int(os.environ.get("SEED", "1")))

def run(binary, bundle, out, extra=()):
    if out.exists():
        out.unlink()
    r = subprocess.run([binary, *extra, str(bundle), str(out)], capture_output=True, text=True)
    err = [l for l in r.stderr.splitlines() if l.startswith("error")]
    return r.returncode, err, out.read_bytes() if out.exists() else None

def mutate(root: Path):
    log = root / "trace.jsonl"
    lines = log.read_text().splitlines()
    payloads = sorted((root / "payloads").glob("*.json")) if (root / "payloads").is_dir() else []
    choice = rng.randrange(7)
    if choice == 0 and len(lines) > 1:
        del lines[rng.randrange(len(lines))]
    elif choice == 1:
        i = rng.randrange(len(lines)); lines.insert(i, lines[i])
    elif choice == 2 and len(lines) > 1:
        i = rng.randrange(len(lines) - 1); lines[i], lines[i + 1] = lines[i + 1], lines[i]
    elif choice == 3:
        # an id-like string of an event replaced by another string of the same key elsewhere
        i = rng.randrange(len(lines)); event = json.loads(lines[i])
        found = list(strings(event))
        pool = [v for l in lines for _, v in strings(json.loads(l))]
        if found and pool:
            path, _ = rng.choice(found); set_at(event, path, rng.choice(pool))
            lines[i] = json.dumps(event, separators=(",", ":"))
    elif payloads:
        p = rng.choice(payloads)
        try:
            body = json.loads(p.read_text())
        except Exception:
            return
        arrays = [(path, l) for path, l in lists(body) if l]
        strs = list(strings(body))
        pool = [v for _, v in strs]
        if choice == 4 and arrays:
            path, l = rng.choice(arrays); del l[rng.randrange(len(l))]
        elif choice == 5 and arrays:
            path, l = rng.choice(arrays); i = rng.randrange(len(l)); l.insert(i, json.loads(json.dumps(l[i])))
        elif strs:
            path, _ = rng.choice(strs); set_at(body, path, rng.choice(pool))
        p.write_text(json.dumps(body, separators=(",", ":")))
    log.write_text("".join(l + "\n" for l in lines))

diffs = runs = 0
outcomes = {}
with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    for case in CASES:
        for k in range(N):
            work = tmp / "b"
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(case, work)
            for _ in range(rng.randint(1, 3)):
                mutate(work)
            old = run(OLD, work, tmp / "old.json")
            new = run(NEW, work, tmp / "new.json")
            one = run(NEW, work, tmp / "one.json", ["--no-read-ahead"])
            runs += 1
            outcomes["ok" if old[0] == 0 else "error"] = outcomes.get("ok" if old[0] == 0 else "error", 0) + 1
            if old != new or new != one:
                diffs += 1
                if diffs <= 10:
                    print(f"DIFF {case.parent.name} #{k}: old={old[0]} {old[1][:1]} new={new[0]} {new[1][:1]} one={one[0]} {one[1][:1]} same_out={old[2] == new[2]}")
                    keep = Path(f"/tmp/diff-{diffs}"); shutil.rmtree(keep, ignore_errors=True); shutil.copytree(work, keep)
print(f"{runs} mutated bundles, {diffs} differences; outcomes of old: {outcomes}")
