"""Regenerates tests/data/release-oracle: what each pinned Codex release's own
``codex debug trace-reduce`` gives for every conformance bundle.

For each release, ``<release>/<case>.json`` is its state.json, or
``<case>.error.txt`` its error: the ``Error:`` line and each ``Caused by``
line joined with ": " (the way our errors chain their causes), without the
backtrace. tests/conformance.rs matches every file under the release's
profile. The binaries come from the cache the real-Codex harness fills
(tests/codex: ``~/.cache/rollout-trace/codex/<release>/``).

Usage: python scripts/release_oracle.py [--shared ../shared] [RELEASE ...]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "release-oracle"
CACHE = Path(os.environ.get("ROLLOUT_TRACE_CACHE", Path.home() / ".cache" / "rollout-trace"))


def binary(release: str) -> Path:
    found = [p for p in sorted((CACHE / "codex" / release).rglob("codex")) if p.is_file()]
    if not found:
        raise SystemExit(f"no codex {release} in {CACHE / 'codex'} (run the real-Codex tests once to download it)")
    found[0].chmod(0o755)
    return found[0]


def error_text(stderr: str) -> str:
    """``Error: A`` + ``Caused by:`` lines ``B``, ``C`` as ``A: B: C``."""
    text = stderr.split("\nStack backtrace:")[0].strip()
    lines = text.splitlines()
    if not lines or not lines[0].startswith("Error: "):
        raise SystemExit(f"unexpected error output: {stderr[:200]!r}")
    parts = [lines[0][len("Error: "):]]
    if "Caused by:" in text:
        causes = text.split("Caused by:", 1)[1].strip().splitlines()
        parts += [re.sub(r"^\s*(\d+: )?", "", cause) for cause in causes if cause.strip()]
    return ": ".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("releases", nargs="*", help="default: the releases already in the oracle")
    args = parser.parse_args()
    cases = sorted(p for p in (args.shared / "conformance").iterdir() if (p / "bundle").is_dir())
    releases = args.releases or sorted(p.name for p in OUT.iterdir() if p.is_dir())
    for release in releases:
        codex = binary(release)
        target = OUT / release
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for case in cases:
            with tempfile.TemporaryDirectory() as scratch:
                bundle = Path(scratch) / "bundle"
                shutil.copytree(case / "bundle", bundle)  # the reducer may write beside it
                out = target / f"{case.name}.json"
                done = subprocess.run([str(codex), "debug", "trace-reduce", str(bundle), "-o", str(out)],
                                      capture_output=True, text=True, timeout=120,
                                      env={k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"})
                if done.returncode != 0:
                    out.unlink(missing_ok=True)
                    (target / f"{case.name}.error.txt").write_text(error_text(done.stderr), encoding="utf-8")
        print(f"{release}: {len(cases)} cases -> {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
