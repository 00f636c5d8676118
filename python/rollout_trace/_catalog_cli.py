"""``rollout-trace index``: the catalog's subcommand, registered by
``cli.py`` with one call. Only argparse here; the catalog (and pyarrow) is
imported when the command runs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

LIMITS = ("max_record_bytes", "max_bundle_bytes", "max_events", "max_payloads", "max_json_depth")


def _limits(args: argparse.Namespace) -> Any:
    from rollout_trace._native import Limits

    return Limits(**{name: getattr(args, name) for name in LIMITS if getattr(args, name) is not None})


def register(commands: Any) -> None:
    """Adds ``index`` to the ``rollout-trace`` subcommands."""
    parser = commands.add_parser(
        "index",
        help="build or refresh a Parquet catalog of a root of bundles",
        description="Reduce every bundle below ROOT into a Parquet catalog: the tables of trace.tables() "
        "(threads, turns, conversation_items, inference_calls, tool_calls, terminal_operations, code_cells, "
        "interaction_edges), each row keyed by bundle, and a bundles table (one row per bundle, failures "
        "included). A second run re-reduces only the bundles whose files changed and rewrites only the shards "
        "they touch; live bundles are indexed as their current prefix. Read CATALOG/current/<table>/*.parquet, "
        "or rollout_trace.open_catalog(CATALOG). Needs pyarrow.",
    )
    parser.add_argument("root", metavar="ROOT", help="directory holding bundles (at any depth)")
    parser.add_argument("-o", "--output", required=True, metavar="CATALOG", help="catalog directory (created if needed)")
    parser.add_argument("--compat", metavar="PROFILE", help="compatibility profile of the reducer (e.g. crate, codex-0.147)")
    parser.add_argument("--lenient", action="store_true", default=None,
                        help="skip the events that cannot be reduced instead of keeping the prefix before the first")
    parser.add_argument("-j", "--jobs", type=int, default=None, metavar="N", help="worker threads (default: one per core)")
    parser.add_argument("--shard-size", type=int, default=None, metavar="N",
                        help="bundles per shard file (default 32; a change re-indexes everything)")
    parser.add_argument("--full", action="store_true", help="re-reduce every bundle, changed or not")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    group = parser.add_argument_group("admission limits (defaults suit real long sessions)")
    for name, what in zip(LIMITS, ("largest event line or payload file", "largest total read from one bundle",
                                   "most events in one trace.jsonl", "most payloads one bundle references",
                                   "deepest JSON nesting")):
        group.add_argument("--" + name.replace("_", "-"), type=int, metavar="N", help=what)

    def run(args: argparse.Namespace) -> int:
        try:
            import pyarrow  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: F401
        except ImportError:
            print("rollout-trace index needs pyarrow: pip install 'rollout-trace[catalog]'", file=sys.stderr)
            return 2
        from rollout_trace.catalog import index

        try:
            report = index(
                args.root,
                args.output,
                compat=args.compat,
                lenient=args.lenient,
                workers=args.jobs,
                shard_size=args.shard_size,
                limits=_limits(args),
                full=args.full,
                progress=not args.quiet,
            )
        except (RuntimeError, ValueError) as refused:  # another run holds the catalog; an unknown profile
            print(f"rollout-trace: {refused}", file=sys.stderr)
            return 2
        for bundle, error in report.failures:
            print(f"error: {bundle}: {error}", file=sys.stderr)
        print(report, file=sys.stderr)
        print(report.catalog / "current")
        return 1 if report.failures else 0

    parser.set_defaults(run=run)
