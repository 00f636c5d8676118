"""Reduction benchmark on large realistic bundles (~50, 100 and 200 MB).

Reports, in one run, for each bundle:

* the parse floor: reading every file of the bundle once and parsing it as
  JSON without building anything (``examples/parse_floor.rs``, timed inside
  the process);
* ``rollout-trace reduce`` (the CLI, a child process writing state.json):
  wall time, bundle MB/s, peak RSS; the same minus the CLI's start-up
  (interpreter and imports, timed separately), and that as a multiple of
  the parse floor; its CPU time (user + system, both threads) likewise,
  since the reduce reads ahead on a second thread while the floor is one;
* Python ``replay_bundle(bundle).save(out)`` in a child process (the same
  work as the CLI): wall time and its overhead over the CLI, and the time
  inside the process; also with ``read_ahead=False`` (one thread);
* peak RSS against 3 x (largest payload + state.json);
* scaling: how reduce time grows from one bundle to the next (about twice
  the size).

Bundles come from ``rollout_trace.synth`` (seeded) and are cached under
bench/out/. The extension is rebuilt in release mode (``pip install .``) when
a Rust source is newer than the installed one, unless ``--no-build``.

Usage: python bench/reduce_bench.py [--sizes 50 100 200] [--repeat 3] [--no-build]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"

PYTHON_REDUCE = r"""
import sys, time
import rollout_trace
start = time.perf_counter()
rollout_trace.replay_bundle(sys.argv[1], read_ahead=sys.argv[3] == "1").save(sys.argv[2])
print(time.perf_counter() - start)
"""


class Run(tuple):
    """A child's wall time (s), peak RSS (MB), standard output, CPU time (s)."""

    wall = property(lambda self: self[0])
    rss = property(lambda self: self[1])
    out = property(lambda self: self[2])
    cpu = property(lambda self: self[3])


def run(command: list[str]) -> Run:
    """Runs a child process; returns its wall time, its own peak RSS (from
    wait4), its standard output and its CPU time (user + system)."""
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(command)} failed:\n{err.read()}")
        out.seek(0)
        return Run((wall, usage.ru_maxrss / 1024, out.read(), usage.ru_utime + usage.ru_stime))


def ensure_extension(build: bool) -> None:
    """Installs the package in release mode if a Rust source is newer."""
    try:
        import rollout_trace._native as native

        built = Path(native.__file__).stat().st_mtime
    except ImportError:
        built = 0.0
    sources = [ROOT / "Cargo.toml", *ROOT.joinpath("src").rglob("*.rs")]
    if max(path.stat().st_mtime for path in sources) > built:
        if not build:
            print("note: the installed extension is older than the sources (--no-build given)")
            return
        print("building the extension in release mode (pip install .) ...", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", str(ROOT)], check=True)


def parse_floor_binary() -> Path:
    """Builds examples/parse_floor.rs in release mode; returns the binary."""
    out = subprocess.run(
        ["cargo", "build", "--release", "--example", "parse_floor", "--message-format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    for line in out.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message["target"]["name"] == "parse_floor":
            return Path(message["executable"])
    raise SystemExit("cargo did not report the parse_floor binary")


def bundle(size_mb: int) -> Path:
    from rollout_trace import synth

    path = OUT / f"synth-{size_mb}mb"
    if not (path / "manifest.json").exists():
        print(f"generating {path.name} ...", flush=True)
        synth.generate(path, seed=1, target_mb=size_mb)
    return path


def mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200], help="bundle sizes in MB")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest counts")
    parser.add_argument("--no-build", action="store_true", help="do not rebuild the extension")
    args = parser.parse_args()

    ensure_extension(not args.no_build)
    cli = shutil.which("rollout-trace")
    if cli is None:
        raise SystemExit("rollout-trace is not on PATH (pip install . in this environment)")
    floor_binary = parse_floor_binary()
    bundles = [bundle(size) for size in args.sizes]

    # The CLI's fixed cost: interpreter start-up and imports.
    startup_runs = [run([sys.executable, "-c", "import rollout_trace.cli"]) for _ in range(args.repeat)]
    startup = min(r.wall for r in startup_runs)
    startup_cpu = min(r.cpu for r in startup_runs)
    print(f"CLI start-up (python -c 'import rollout_trace.cli'): {startup:.3f} s, CPU {startup_cpu:.3f} s\n")

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        state = Path(scratch) / "state.json"
        for path in bundles:
            size = mb(path)
            largest = max(f.stat().st_size for f in (path / "payloads").iterdir()) / 1e6
            floor = min([float(run([str(floor_binary), str(path)])[2].split()[1]) for _ in range(args.repeat)])
            cli_runs = [run([cli, "reduce", "-q", "-o", str(state), str(path)]) for _ in range(args.repeat)]
            cli_wall = min(r.wall for r in cli_runs)
            cli_cpu = min(r.cpu for r in cli_runs)
            cli_rss = max(r.rss for r in cli_runs)
            state_mb = state.stat().st_size / 1e6

            def python(read_ahead: bool) -> list[Run]:
                command = [sys.executable, "-c", PYTHON_REDUCE, str(path), str(state), str(int(read_ahead))]
                return [run(command) for _ in range(args.repeat)]

            py_runs, py_one_thread = python(True), python(False)
            rows.append({
                "bundle": path.name, "mb": size, "largest_payload_mb": largest, "state_mb": state_mb,
                "floor_s": floor, "cli_s": cli_wall, "reduce_s": cli_wall - startup,
                "reduce_cpu_s": cli_cpu - startup_cpu, "cli_rss_mb": cli_rss,
                "python_s": min(r.wall for r in py_runs),
                "python_inside_s": min(float(r.out) for r in py_runs),
                "python_one_thread_inside_s": min(float(r.out) for r in py_one_thread),
                "python_rss_mb": max(r.rss for r in py_runs),
            })

    print(f"{'bundle':<14}{'MB':>7}{'floor s':>9}{'floor MB/s':>11}{'CLI s':>8}{'reduce s':>10}{'MB/s':>7}"
          f"{'x floor':>9}{'CPU s':>7}{'CPU x':>7}{'Python s':>10}{'vs CLI':>8}{'RSS MB':>8}{'RSS cap':>9}")
    for row in rows:
        cap = 3 * (row["largest_payload_mb"] + row["state_mb"])
        print(f"{row['bundle']:<14}{row['mb']:>7.1f}{row['floor_s']:>9.3f}{row['mb'] / row['floor_s']:>11.0f}"
              f"{row['cli_s']:>8.3f}{row['reduce_s']:>10.3f}{row['mb'] / row['reduce_s']:>7.0f}"
              f"{row['reduce_s'] / row['floor_s']:>9.2f}{row['reduce_cpu_s']:>7.3f}"
              f"{row['reduce_cpu_s'] / row['floor_s']:>7.2f}{row['python_s']:>10.3f}"
              f"{(row['python_s'] / row['cli_s'] - 1) * 100:>+7.1f}%{row['cli_rss_mb']:>8.1f}{cap:>9.1f}")
    print()
    print("reduce s = CLI wall time minus CLI start-up; x floor = reduce s / floor s;")
    print("CPU s = the CLI's CPU time (user + system, all threads) minus start-up's; CPU x = CPU s / floor s;")
    print("Python s = child running replay_bundle(b).save(out), wall; vs CLI = its overhead over CLI s;")
    print("RSS MB = peak RSS of the CLI process; RSS cap = 3 x (largest payload + state.json).")
    for row in rows:
        print(f"  {row['bundle']}: largest payload {row['largest_payload_mb']:.2f} MB, state.json "
              f"{row['state_mb']:.1f} MB, Python in-process {row['python_inside_s']:.3f} s "
              f"({row['python_one_thread_inside_s']:.3f} s with read_ahead=False, "
              f"x{row['python_one_thread_inside_s'] / row['floor_s']:.2f} floor), "
              f"Python peak RSS {row['python_rss_mb']:.1f} MB")
    if len(rows) > 1:
        print("\nscaling (reduce s):")
        for small, large in zip(rows, rows[1:]):
            print(f"  {small['bundle']} -> {large['bundle']}: size x{large['mb'] / small['mb']:.2f}, "
                  f"time x{large['reduce_s'] / small['reduce_s']:.2f}, "
                  f"CLI wall x{large['cli_s'] / small['cli_s']:.2f}")


if __name__ == "__main__":
    main()
