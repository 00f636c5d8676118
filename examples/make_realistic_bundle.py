"""Regenerates ``examples/realistic-bundle/``, the example of a real Codex
session shipped with the repository, from :mod:`rollout_trace.synth`.

    python examples/make_realistic_bundle.py

The parameters are fixed: the tests compare the committed bundle with a
fresh generation, so a change to the generator must come with a
regenerated example.
"""

import shutil
from pathlib import Path

from rollout_trace.synth import generate

BUNDLE = Path(__file__).resolve().parent / "realistic-bundle"
PARAMETERS = {"seed": 0, "children": 2}


def main() -> None:
    if BUNDLE.exists():
        shutil.rmtree(BUNDLE)
    generate(BUNDLE, **PARAMETERS)
    size = sum(file.stat().st_size for file in BUNDLE.rglob("*") if file.is_file())
    print(f"wrote {BUNDLE} ({size} bytes)")


if __name__ == "__main__":
    main()
