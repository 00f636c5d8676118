"""The stubs cannot drift from the module: mypy stubtest compares them with
the built extension, and `mypy --strict` checks the example script that uses
the API through them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")


def run(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_stubs_match_the_native_module() -> None:
    run("mypy.stubtest", "rollout_trace._native", "--allowlist", "scripts/stubtest_allowlist.txt")


def test_example_type_checks_strictly() -> None:
    run("mypy", "--strict", "--no-incremental", "examples/api_tour.py")
