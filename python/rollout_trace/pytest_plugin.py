"""The pytest plugin of rollout-trace (registered through the ``pytest11``
entry point, so installing the package enables it).

Fixture ``rollout_bundle``: a ``rollout_trace.testing.BundleBuilder``
writing into the test's temporary directory, for tests of code that
reads or analyses bundles::

    def test_counts_failed_commands(rollout_bundle):
        with rollout_bundle.turn():
            rollout_bundle.inference([user("run it")], [function_call("exec_command", {"cmd": "make"}, "c1")])
            rollout_bundle.tool_call("c1", "exec_command", status="failed")
        trace = rollout_bundle.replay()
        assert count_failures(trace) == 1
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout_trace.testing import BundleBuilder


@pytest.fixture
def rollout_bundle(tmp_path: Path) -> Iterator[BundleBuilder]:
    """A ``BundleBuilder`` for ``tmp_path / "bundle"``; its writer is
    closed after the test if the test did not finish the bundle."""
    builder = BundleBuilder(tmp_path / "bundle")
    yield builder
    if not builder.writer.closed:
        builder.writer.close()
