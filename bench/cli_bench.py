"""The command line as a caller sees it: whole processes, start-up included.

* **start-up**: ``rollout-trace --version`` (and ``python -c pass``, the
  interpreter alone), median and fastest of many runs;
* **many small bundles**: one ``rollout-trace reduce BUNDLE -o OUT``
  process per bundle over N small bundles (``rollout_trace.synth``, seeds
  0..N-1), against ``codex debug trace-reduce BUNDLE -o OUT`` doing the
  same, with and without ``--no-sync``; the outputs are compared byte for
  byte with codex's;
* **large bundles**: the whole ``rollout-trace reduce -q -o OUT BUNDLE``
  process against the parse floor (``examples/parse_floor.rs``: read and
  parse every file once, timed inside the process), on the 200 MB
  synthetic bundle and on any bundle given with ``--bundle`` (a long
  recorded real session), with and without ``--no-sync``; the three take
  turns run after run.

Wall times are of child processes started with ``posix_spawn`` and reaped
with ``wait4`` (which also gives their CPU time), over ``--repeat`` runs:
start-up as median [fastest], large bundles as fastest [median] (the floor
is the fastest of its runs too, as in ``reduce_bench.py``), with the ratio
of the fastest runs and of the medians.

Usage: python bench/cli_bench.py [--cli PATH] [--codex PATH] [--small 1000]
       [--bundle DIR ...] [--repeat 11] [--skip-small] [--skip-large]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
CODEX = Path.home() / ".cache/rollout-trace/codex/0.163.0/x/codex_cli_bin/bin/codex"

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reduce_bench import bundle as synth_bundle  # noqa: E402
from reduce_bench import parse_floor_binary  # noqa: E402


def spawn(command: list[str], quiet: bool = True) -> tuple[float, float, int]:
    """Runs one child; returns its wall time, CPU time (user + system), exit code."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)] if quiet else []
        start = time.perf_counter()
        pid = os.posix_spawn(command[0], command, os.environ, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - start
    finally:
        os.close(devnull)
    return wall, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status)


def timed(command: list[str], repeat: int, warmup: int = 2) -> tuple[float, float, float]:
    """Median wall, fastest wall and median CPU of `repeat` runs."""
    for _ in range(warmup):
        spawn(command)
    runs = []
    for _ in range(repeat):
        wall, cpu, code = spawn(command)
        if code != 0:
            raise SystemExit(f"{' '.join(command)} exited with {code}")
        runs.append((wall, cpu))
    walls = [w for w, _ in runs]
    return statistics.median(walls), min(walls), statistics.median(c for _, c in runs)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def start_up(cli: str, repeat: int) -> None:
    python = str(Path(sys.executable))
    print("## start-up (ms: median [fastest], CPU median)")
    print("| command | wall | CPU |")
    print("|---|---:|---:|")
    for label, command in [
        ("python -c pass", [python, "-c", "pass"]),
        ("python -S -E -c pass", [python, "-S", "-E", "-c", "pass"]),
        ("rollout-trace --version", [cli, "--version"]),
    ]:
        median, fastest, cpu = timed(command, repeat)
        print(f"| `{label}` | {ms(median)} [{ms(fastest)}] | {ms(cpu)} |")
    print()


def small_bundles(count: int) -> list[Path]:
    """`count` small synthetic bundles (seeds 0..count-1), made once."""
    root = OUT / f"small-{count}"
    done = root / ".complete"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        import contextlib
        import io

        from rollout_trace import synth

        for seed in range(count):
            with contextlib.redirect_stdout(io.StringIO()):
                synth.main([str(root / f"b{seed:04d}"), "--seed", str(seed), "--children", "0"])
        done.write_text("")
    return sorted(p for p in root.iterdir() if p.is_dir())


def many(cli: str, codex: str | None, count: int) -> None:
    bundles = small_bundles(count)
    size = sum(f.stat().st_size for b in bundles for f in b.rglob("*") if f.is_file()) / len(bundles) / 1024
    print(f"## one process per bundle, {len(bundles)} bundles (mean {size:.0f} KB each)")
    print("| reducer | total s | ms per bundle | CPU ms per bundle |")
    print("|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {}
        variants = [("rollout-trace reduce", [cli, "reduce"], []), ("rollout-trace reduce --no-sync", [cli, "reduce"], ["--no-sync"])]
        if codex:
            variants.append(("codex debug trace-reduce", [codex, "debug", "trace-reduce"], []))
        for label, command, extra in variants:
            out_dir = Path(tmp) / label.replace(" ", "_")
            out_dir.mkdir()
            start = time.perf_counter()
            cpu = 0.0
            for index, bundle in enumerate(bundles):
                _, used, code = spawn([*command, str(bundle), "-o", str(out_dir / f"{index}.json"), *extra])
                if code != 0:
                    raise SystemExit(f"{label} failed on {bundle} ({code})")
                cpu += used
            total = time.perf_counter() - start
            outputs[label] = out_dir
            print(f"| `{label}` | {total:.2f} | {ms(total / len(bundles))} | {ms(cpu / len(bundles))} |")
        if codex:
            reference = outputs["codex debug trace-reduce"]
            for label, out_dir in outputs.items():
                differ = [p.name for p in reference.iterdir() if p.read_bytes() != (out_dir / p.name).read_bytes()]
                if differ:
                    print(f"\n**{label}: {len(differ)} outputs differ from codex's** (first: {differ[0]})")
            print("\nEvery output is byte-identical to codex's." if all(
                p.read_bytes() == (o / p.name).read_bytes() for o in outputs.values() for p in reference.iterdir()
            ) else "")
    print()


def floor_run(binary: Path, bundle: Path) -> float:
    """One parse-floor run: its time, measured inside the process."""
    out = subprocess.run([str(binary), str(bundle)], capture_output=True, text=True, check=True).stdout
    return float(out.split()[1])


def label(bundle: Path) -> str:
    """A bundle's name, with the directories above it when it is only
    `bundle` (recordings are `<release>/<scenario>/bundle`)."""
    return "/".join(bundle.parts[-3:-1]) if bundle.name == "bundle" else bundle.name


def large(cli: str, bundles: list[Path], repeat: int) -> None:
    """The floor and the CLI (synced, then not) take turns, run after run,
    so that a change in the machine's load falls on all three alike."""
    floor_binary = parse_floor_binary()
    print("## whole CLI against the parse floor (s: fastest of the runs, median in brackets; runs interleaved)")
    print("| bundle | MB | floor s | CLI s | x floor | x floor, medians | CLI CPU s | --no-sync s | x floor |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "state.json")
        for bundle in bundles:
            size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file() and f.name != "state.json") / 1e6
            synced_command = [cli, "reduce", "-q", "-o", out, str(bundle)]
            unsynced_command = [cli, "reduce", "-q", "--no-sync", "-o", out, str(bundle)]
            for _ in range(2):  # warm-up: page cache, allocator, CPU frequency
                floor_run(floor_binary, bundle)
                spawn(synced_command)
                spawn(unsynced_command)
            floors, synced, unsynced = [], [], []
            for _ in range(repeat):
                floors.append(floor_run(floor_binary, bundle))
                for runs, command in ((synced, synced_command), (unsynced, unsynced_command)):
                    wall, cpu, code = spawn(command)
                    if code != 0:
                        raise SystemExit(f"{' '.join(command)} exited with {code}")
                    runs.append((wall, cpu))
            floor, floor_median = min(floors), statistics.median(floors)
            fastest, median = min(w for w, _ in synced), statistics.median(w for w, _ in synced)
            cpu = statistics.median(c for _, c in synced)
            unsynced_fastest = min(w for w, _ in unsynced)
            unsynced_median = statistics.median(w for w, _ in unsynced)
            print(
                f"| {label(bundle)} | {size:.1f} | {floor:.3f} [{floor_median:.3f}] | {fastest:.3f} [{median:.3f}] | "
                f"**{fastest / floor:.2f}** | {median / floor_median:.2f} | {cpu:.3f} | "
                f"{unsynced_fastest:.3f} [{unsynced_median:.3f}] | {unsynced_fastest / floor:.2f} |"
            )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cli", default=shutil.which("rollout-trace"), help="the rollout-trace command to time")
    parser.add_argument("--codex", default=str(CODEX) if CODEX.exists() else None, help="codex binary")
    parser.add_argument("--small", type=int, default=1000, help="number of small bundles")
    parser.add_argument("--bundle", action="append", type=Path, default=[], help="another large bundle")
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--skip-small", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    if not args.cli:
        raise SystemExit("no rollout-trace on PATH; give --cli")
    cli = str(Path(args.cli).resolve()) if os.sep in args.cli else args.cli
    print(f"cli: {cli}; load average {os.getloadavg()[0]:.1f}\n")
    start_up(cli, max(args.repeat, 31))
    if not args.skip_small:
        many(cli, args.codex, args.small)
    if not args.skip_large:
        large(cli, [synth_bundle(200), *args.bundle], args.repeat)


if __name__ == "__main__":
    main()
