"""Reducing many bundles at once, for eval pipelines.

The work runs on Rust threads with the GIL released; a failed bundle never
stops the others and comes back as the ``TraceError`` it raised.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Union

from rollout_trace._native import Limits, RolloutTrace, TraceError, reduce_batch
from rollout_trace._progress import Progress

Result = Union[RolloutTrace, TraceError]
PathLike = Union[str, "os.PathLike[str]"]


def start(  # type: ignore[no-untyped-def]
    paths: list[Path],
    workers: int | None,
    partial: bool,
    limits: Limits | None,
    compat: str | None,
    lenient: bool,
    repair: str | Sequence[str] | None,
):
    """The batch run of ``paths`` (keeping traces) that the helpers here and
    ``tables_many`` iterate: ``(index, result, skipped)`` as bundles finish."""
    jobs: list[tuple[str, str | None]] = [(str(path), None) for path in paths]
    return reduce_batch(
        jobs,
        workers=workers,
        partial=partial,
        limits=limits,
        keep_traces=True,
        compat=compat,
        lenient=lenient,
        repair=repair,
    )


def iter_reduce(
    paths: Iterable[PathLike],
    workers: int | None = None,
    *,
    partial: bool = False,
    limits: Limits | None = None,
    compat: str | None = None,
    lenient: bool = False,
    repair: str | Sequence[str] | None = None,
) -> Iterator[tuple[Path, Result]]:
    """Yields ``(path, result)`` as each bundle finishes (completion order).

    ``result`` is the ``RolloutTrace`` or the ``TraceError`` raised for that
    bundle. ``workers`` defaults to one per core; ``compat`` names the
    reducer to match and ``lenient`` skips what cannot be reduced (see
    ``replay_bundle``).
    """
    bundles = [Path(p) for p in paths]
    for index, result, _partial in start(bundles, workers, partial, limits, compat, lenient, repair):
        assert result is not None
        yield bundles[index], result


def reduce_many(
    paths: Iterable[PathLike],
    workers: int | None = None,
    progress: bool = False,
    *,
    partial: bool = False,
    limits: Limits | None = None,
    compat: str | None = None,
    lenient: bool = False,
    repair: str | Sequence[str] | None = None,
) -> list[Result]:
    """Reduces every bundle in parallel; results come back in input order,
    each a ``RolloutTrace`` or the ``TraceError`` it raised.

    ``progress=True`` draws a progress bar on stderr when it is a terminal.
    """
    bundles = [Path(p) for p in paths]
    results: list[Result | None] = [None] * len(bundles)
    bar = Progress(len(bundles), sys.stderr, enabled=progress and sys.stderr.isatty())
    for index, result, _partial in start(bundles, workers, partial, limits, compat, lenient, repair):
        assert result is not None
        results[index] = result
        bar.advance(isinstance(result, TraceError))
    bar.close()
    return [result for result in results if result is not None]
