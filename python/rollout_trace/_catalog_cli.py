"""``rollout-trace index``: the catalog's subcommand, registered by
``cli.py`` with one call. Only argparse here; the catalog (and pyarrow) is
imported when the command runs."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable


def register(commands: Any, add_limit_options: Callable[[argparse.ArgumentParser], None], limits: Callable[[argparse.Namespace], Any]) -> None:
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
    parser.add_argument("--lenient", action="store_true", default=None, help="reduce leniently (passed to the core)")
    parser.add_argument("-j", "--jobs", type=int, default=None, metavar="N", help="worker threads (default: one per core)")
    parser.add_argument("--shard-size", type=int, default=None, metavar="N",
                        help="bundles per shard file (default 32; a change re-indexes everything)")
    parser.add_argument("--full", action="store_true", help="re-reduce every bundle, changed or not")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_limit_options(parser)

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
                limits=limits(args),
                full=args.full,
                progress=not args.quiet,
            )
        except RuntimeError as error:  # another run holds the catalog
            print(f"rollout-trace: {error}", file=sys.stderr)
            return 2
        for bundle, error in report.failures:
            print(f"error: {bundle}: {error}", file=sys.stderr)
        print(report, file=sys.stderr)
        print(report.catalog / "current")
        return 1 if report.failures else 0

    parser.set_defaults(run=run)
