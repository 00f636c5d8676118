"""examples/notebook_tour.py runs, type-checks strictly, and prints what the
README's "Analysis" section shows.

    python tests/test_analysis_tour.py --update    # rewrite that README block
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOUR = ROOT / "examples" / "notebook_tour.py"
README = ROOT / "README.md"
BLOCK = re.compile(
    r"(<!-- notebook_tour output: begin -->\n)(.*?)(<!-- notebook_tour output: end -->)",
    re.DOTALL,
)


def tour_output() -> str:
    done = subprocess.run([sys.executable, str(TOUR)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def readme_block(output: str) -> str:
    return "```text\n" + output.strip("\n") + "\n```\n"


def test_tour_output_is_in_the_readme() -> None:
    found = BLOCK.search(README.read_text(encoding="utf-8"))
    assert found is not None, "README.md lacks the notebook_tour output markers"
    assert found.group(2) == readme_block(tour_output()), (
        "README.md shows an outdated notebook_tour output; run `python tests/test_analysis_tour.py --update`"
    )


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_tour_type_checks_strictly() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(TOUR)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(__doc__)
    text = README.read_text(encoding="utf-8")
    block = readme_block(tour_output())
    updated, count = BLOCK.subn(lambda match: match.group(1) + block + match.group(3), text)
    if count != 1:
        sys.exit("README.md: expected one notebook_tour output block")
    README.write_text(updated, encoding="utf-8")
