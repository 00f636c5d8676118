"""``rollout-trace reduce --follow`` and ``rollout-trace watch``: the command
line over ``rollout_trace.follow``. Presentation only; the following is the
live replay of the Rust core."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TextIO

from rollout_trace._native import TraceError, find_bundles
from rollout_trace.live import LiveTrace, follow

#: A burst of appends is written out once: after this long without a change,
#: or after ``MAX_DELAY`` whatever happens.
DEBOUNCE = 0.2
MAX_DELAY = 1.0


def _follow(args: argparse.Namespace, bundle: Path) -> LiveTrace:
    return follow(bundle, compat=args.compat, lenient=args.lenient, repair=args.repair)


def reduce_follow(args: argparse.Namespace, bundle: Path, output: Path) -> int:
    """Keeps ``output`` equal to the reduction of what the session wrote so
    far (an atomic rewrite after each settled change) until it ends."""
    live = _follow(args, bundle)
    live.trace.save(output)
    print(output, flush=True)
    while not live.ended:
        if live.wait(args.idle_timeout) is None:
            print(f"warning: {bundle}: no change for {args.idle_timeout} s; stopped following", file=sys.stderr)
            break
        settle_until = time.monotonic() + MAX_DELAY
        while not live.ended and time.monotonic() < settle_until and live.wait(DEBOUNCE) is not None:
            pass
        live.trace.save(output)
    if live.diagnostics:
        print(f"warning: {bundle}: lenient replay skipped {len(live.diagnostics)} events", file=sys.stderr)
    return 0


def _status(live: LiveTrace) -> str:
    return "ended" if live.ended else "running"


def render_bundle(live: LiveTrace, width: int) -> str:
    """One screen about one session: its summary and its latest tool calls."""
    trace = live.trace
    lines = [f"{trace.rollout_id}  [{trace.status}]  {live.lines} lines  ({_status(live)})", ""]
    lines.append(trace.summary_text(width=width).rstrip("\n"))
    calls = sorted(trace.tool_calls.values(), key=lambda call: call.execution.started_seq)[-8:]
    if calls:
        lines += ["", "latest tool calls:"]
        for call in calls:
            operation = call.terminal_operation
            what = operation.request.display_command if operation is not None and hasattr(operation.request, "display_command") else call.kind.type
            text = f"  {call.execution.status:<9} {call.thread.agent_path:<20} {what}"
            lines.append(text[:width])
    return "\n".join(lines) + "\n"


def render_root(lives: dict[Path, LiveTrace | TraceError], root: Path, width: int) -> str:
    """One line per bundle under a root, newest last."""
    lines = [f"{root}: {len(lives)} bundles", ""]
    for path, live in lives.items():
        name = os.path.relpath(path, root)
        if isinstance(live, TraceError):
            lines.append(f"  {'error':<8} {name}  {live.message}"[:width])
            continue
        trace = live.trace
        tokens = sum(
            call.usage.output_tokens for call in trace.inference_calls.values() if call.usage is not None
        )
        running = sum(call.execution.status == "running" for call in trace.tool_calls.values())
        lines.append(
            f"  {trace.status:<8} {name}  threads={len(trace.threads)} tool_calls={len(trace.tool_calls)}"
            f" running={running} output_tokens={tokens}"[:width]
        )
    return "\n".join(lines) + "\n"


def _show(out: TextIO, screen: str, tty: bool) -> None:
    if tty:
        out.write("\x1b[H\x1b[2J" + screen)  # home, clear
    else:
        out.write(screen + "\n")
    out.flush()


def watch(args: argparse.Namespace) -> int:
    """A live view of a running session (BUNDLE) or of every session under a
    trace root (new bundles show up), refreshed on each change."""
    target = Path(args.target or os.environ.get("CODEX_ROLLOUT_TRACE_ROOT", ""))
    if not str(target) or not target.is_dir():
        print("rollout-trace watch: name a bundle or a root (or set CODEX_ROLLOUT_TRACE_ROOT)", file=sys.stderr)
        return 2
    tty = sys.stdout.isatty()
    width = min(shutil.get_terminal_size((100, 30)).columns, 160)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    if (target / "manifest.json").is_file():
        live = _follow(args, target)
        _show(sys.stdout, render_bundle(live, width), tty)
        while not live.ended and (deadline is None or time.monotonic() < deadline):
            if live.wait(0.5) is not None:
                _show(sys.stdout, render_bundle(live, width), tty)
        return 0
    lives: dict[Path, LiveTrace | TraceError] = {}
    shown = ""
    while deadline is None or time.monotonic() < deadline:
        for bundle in find_bundles(target):
            if bundle not in lives:
                try:
                    lives[bundle] = _follow(args, bundle)
                except TraceError as error:
                    lives[bundle] = error
        for live in lives.values():
            if isinstance(live, LiveTrace) and not live.ended:
                try:
                    live.update()
                except TraceError:
                    pass  # shown by its status; the others go on
        screen = render_root(lives, target, width)
        if screen != shown:
            _show(sys.stdout, screen, tty)
            shown = screen
        if args.once:
            return 0
        time.sleep(0.5)
    return 0


def add_watch_command(commands: argparse._SubParsersAction, add_replay_options) -> None:  # type: ignore[type-arg, no-untyped-def]
    parser = commands.add_parser(
        "watch",
        help="a live view of a running session or a trace root",
        description="Follow a bundle as its session writes it (threads and agents, turns, the latest tool calls "
        "and terminal commands with their status, token totals), or every bundle under a trace root, new ones "
        "included. Refreshes on each change; a bundle's view ends with its rollout.",
    )
    parser.add_argument("target", nargs="?", metavar="BUNDLE|ROOT", help="default: $CODEX_ROLLOUT_TRACE_ROOT")
    parser.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--once", action="store_true", help="print the root's view once and exit")
    add_replay_options(parser)
    parser.set_defaults(run=watch, partial=False)
