"""The README's runnable Python examples run, as written, on the example
bundle (the notebook tour's output is checked by test_analysis_tour.py)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE = ROOT / "examples" / "realistic-bundle"


def block_under(heading: str) -> str:
    """The first ```python block of the README section ``heading``."""
    section = README.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"no python example under {heading!r}"
    return match.group(1)


def run(code: str, cwd: Path) -> str:
    out = io.StringIO()
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    finally:
        os.chdir(previous)
    return out.getvalue()


@pytest.mark.parametrize("heading", ["Python tour", "Live sessions"])
def test_readme_example_runs(heading: str, tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE, tmp_path / "examples" / "realistic-bundle")
    shutil.copytree(EXAMPLE, tmp_path / "path" / "to" / "bundle")
    code = block_under(heading)
    if "import rollout_trace" not in code:
        code = "import rollout_trace\n" + code
    output = run(code, tmp_path)
    assert "status completed" in output or "RolloutTrace" in output
