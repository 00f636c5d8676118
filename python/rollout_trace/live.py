"""Following a session while it runs.

``follow(bundle)`` returns a ``LiveTrace``: each ``update()`` reads only
the complete lines appended to ``trace.jsonl`` since the last one (a line
still being written is left for later) and applies them to the replay kept
in Rust. ``live.trace`` is then exactly what a strict replay of the lines
consumed so far gives, ``to_json()`` byte for byte::

    live = rollout_trace.follow("path/to/bundle")
    for change in live.changes():          # until the rollout ends
        print(change.added.get("tool_calls", ()))
    print(live.trace.summary_text())

Waiting uses file-system notifications (inotify) where there are any and
polls otherwise, with the GIL released; ``achanges()`` is the same for
``async for``. In Jupyter, ``live.display()`` shows the trace and refreshes
it as the session goes on.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from rollout_trace._native import Follower, Limits, RolloutTrace, TraceError

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class LiveChange:
    """What one update consumed and changed. ``added`` and ``updated`` map a
    map name of ``state.json`` (``"tool_calls"``, ``"conversation_items"``,
    ...) to ids; ``reset`` means the trace was rebuilt (a lenient follower
    skipped a failing event, or a replaced log was followed anew): read it
    all again."""

    lines: int
    events: int
    reset: bool = False
    added: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    updated: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.lines > 0 or self.reset

    @classmethod
    def _from(cls, update: dict[str, Any]) -> LiveChange:
        return cls(update["lines"], update["events"], update["reset"], update["added"], update["updated"])


class LiveTrace:
    """A bundle followed as it grows; see ``follow``."""

    def __init__(self, follower: Follower) -> None:
        self._follower = follower

    @property
    def trace(self) -> RolloutTrace:
        """The trace of the lines consumed so far (made once per change)."""
        return self._follower.snapshot()

    @property
    def ended(self) -> bool:
        """Whether the rollout has ended (its last event consumed)."""
        return self._follower.ended

    @property
    def lines(self) -> int:
        """Lines of ``trace.jsonl`` consumed so far."""
        return self._follower.lines

    @property
    def diagnostics(self) -> tuple[TraceError, ...]:
        """What a lenient follower left out so far."""
        return self._follower.diagnostics

    def update(self) -> LiveChange:
        """Reads what was appended since the last call; an empty change
        (false) when nothing was."""
        return LiveChange._from(self._follower.update())

    def wait(self, timeout: float | None = None) -> LiveChange | None:
        """Blocks until the log grows and returns that change, or ``None``
        once ``timeout`` seconds pass without one."""
        update = self._follower.wait(timeout)
        return None if update is None else LiveChange._from(update)

    def changes(self, timeout: float | None = None) -> Iterator[LiveChange]:
        """Yields each change until the rollout ends, or until ``timeout``
        seconds pass without a change."""
        while not self.ended:
            change = self.wait(timeout)
            if change is None:
                return
            yield change

    async def achanges(self, timeout: float | None = None, poll: float = 0.25) -> AsyncIterator[LiveChange]:
        """``changes`` for ``async for``: the waiting runs in a worker thread,
        ``poll`` seconds at a time, so the event loop stays free."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.ended:
            step = poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic()))
            change = await asyncio.to_thread(self.wait, step)
            if change:
                if deadline is not None:
                    deadline = time.monotonic() + timeout  # type: ignore[operator]
                yield change
            elif deadline is not None and time.monotonic() >= deadline:
                return

    def _repr_html_(self) -> str:
        state = "ended" if self.ended else "running"
        header = f"<p><b>live</b>: {self.lines} lines consumed, {state}</p>"
        return header + self.trace._repr_html_()

    def display(self, timeout: float | None = None) -> None:  # pragma: no cover - needs a notebook
        """In Jupyter: shows the trace and refreshes it on every change until
        the rollout ends (or ``timeout`` seconds pass without a change)."""
        from IPython.display import HTML, display  # type: ignore[import-not-found, unused-ignore]

        handle = display(HTML(self._repr_html_()), display_id=True)
        for _change in self.changes(timeout):
            handle.update(HTML(self._repr_html_()))

    def __repr__(self) -> str:
        return f"<LiveTrace {self._follower.path} lines={self.lines} ended={self.ended}>"


def follow(
    bundle: PathLike,
    *,
    compat: str | None = None,
    lenient: bool = False,
    repair: str | Sequence[str] | None = None,
    limits: Limits | None = None,
    restart: bool = False,
) -> LiveTrace:
    """Follows ``bundle`` from its first line; everything already written is
    consumed before this returns. ``restart=True`` starts over when the log
    is truncated or replaced (the change says ``reset``) instead of raising
    ``EventError``."""
    live = LiveTrace(
        Follower(os.fspath(bundle), compat=compat, lenient=lenient, repair=repair, limits=limits, restart=restart)
    )
    live.update()
    return live
