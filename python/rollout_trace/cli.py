"""The ``rollout-trace`` command line.

Exit codes (all commands):

* 0 -- every bundle succeeded (reduced, summarized, valid, or exported);
* 1 -- at least one bundle failed; the others were still processed;
* 2 -- the command line itself was wrong (unknown option, conflicting
  outputs, no bundles found, ``export`` without pyarrow installed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rollout_trace import _native
from rollout_trace._native import Limits, TraceError
from rollout_trace._progress import Progress

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """The command line cannot be carried out as given."""


def _limits(args: argparse.Namespace) -> Limits:
    given = {
        name: getattr(args, name)
        for name in ("max_record_bytes", "max_bundle_bytes", "max_events", "max_payloads", "max_json_depth")
        if getattr(args, name) is not None
    }
    return Limits(**given)


def _compat_name(name: str) -> str:
    try:
        return _native.resolve_compat(name)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_replay_options(parser: argparse.ArgumentParser, lenient: bool = True) -> None:
    parser.add_argument("--compat", type=_compat_name, default=None, metavar="NAME",
                        help="match the reducer of this Codex release or family (codex-0.158.0, codex-0.147, "
                        "crate; default: the newest release's)")
    if lenient:
        parser.add_argument("--lenient", action="store_true",
                            help="skip events that cannot be read or reduced (and those that depend on them) and "
                            "reduce the rest: the result is the strict replay without the skipped events")
        parser.add_argument("--diagnostics", metavar="FILE",
                            help="write the skipped events as a JSON array to FILE (with --lenient or --partial)")
        parser.add_argument("--repair", action="append", metavar="NAME", choices=[*_native.repair_names(), "all"],
                            help="opt-in fix of a known reference defect (repeatable): "
                            + "; ".join(f"{name}: {why}" for name, why in _native.repairs_explained())
                            + "; all: every one. Without it the output is exactly the reference's")
    group = parser.add_argument_group("admission limits (defaults suit real long sessions)")
    group.add_argument("--max-record-bytes", type=int, metavar="N", help="largest event line or payload file")
    group.add_argument("--max-bundle-bytes", type=int, metavar="N", help="largest total read from one bundle")
    group.add_argument("--max-events", type=int, metavar="N", help="most events in one trace.jsonl")
    group.add_argument("--max-payloads", type=int, metavar="N", help="most payloads one bundle references")
    group.add_argument("--max-json-depth", type=int, metavar="N", help="deepest JSON nesting")


def _collect_bundles(args: argparse.Namespace) -> list[Path]:
    bundles = [Path(p) for p in args.bundles]
    for root in args.recursive or []:
        found = _native.find_bundles(root)
        if not found:
            raise UsageError(f"no bundle (a directory with manifest.json) below {root}")
        bundles.extend(Path(p) for p in found)
    if not bundles:
        raise UsageError("no bundle given (name bundle directories or use --recursive DIR)")
    return bundles


def _outputs(bundles: list[Path], out: str | None) -> list[Path]:
    """Where each bundle's state.json goes."""
    if len(bundles) == 1:
        return [Path(out) if out else bundles[0] / "state.json"]
    if out is None:
        return [bundle / "state.json" for bundle in bundles]
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"-o {out} must be a directory when reducing several bundles")
    # Mirror the bundles' layout below their common parent, so outputs never
    # collide (many bundles are simply named "bundle").
    resolved = [bundle.resolve() for bundle in bundles]
    if len(set(resolved)) != len(resolved):
        raise UsageError("the same bundle is named twice")
    common = Path(os.path.commonpath(resolved))
    outputs = [out_dir / bundle.relative_to(common) / "state.json" for bundle in resolved]
    for output in outputs:
        output.parent.mkdir(parents=True, exist_ok=True)
    return outputs


def cmd_reduce(args: argparse.Namespace) -> int:
    bundles = _collect_bundles(args)
    outputs = _outputs(bundles, args.output)
    if args.follow:
        if len(bundles) != 1 or args.partial:
            raise UsageError("--follow takes one bundle (and no --partial; --lenient skips what fails)")
        from rollout_trace._live_cli import reduce_follow

        return reduce_follow(args, bundles[0], outputs[0])
    jobs = [(str(bundle), str(output)) for bundle, output in zip(bundles, outputs)]
    progress = Progress(len(jobs), sys.stderr, enabled=sys.stderr.isatty() and not args.quiet)
    failures: list[tuple[Path, TraceError]] = []
    partial: list[Path] = []
    run = _native.reduce_batch(jobs, workers=args.jobs, partial=args.partial, limits=_limits(args), keep_traces=False,
                               compat=args.compat, lenient=args.lenient, repair=args.repair)
    skipped: list[tuple[Path, tuple[int, tuple[TraceError, ...]]]] = []
    for index, result, report in run:
        progress.advance(isinstance(result, TraceError))
        if isinstance(result, TraceError):
            failures.append((bundles[index], result))
            continue
        if report:
            skipped.append((bundles[index], report))
        if len(jobs) == 1 or not progress.enabled:
            print(outputs[index])
    progress.close()
    _report_skipped(args, sorted(skipped, key=lambda entry: bundles.index(entry[0])))
    for bundle, error in failures:
        print(f"error: {error}", file=sys.stderr)
    if len(jobs) > 1:
        print(f"{len(jobs) - len(failures)} of {len(jobs)} bundles reduced, {len(failures)} failed", file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


def cmd_summary(args: argparse.Namespace) -> int:
    try:
        trace = _native.replay_bundle(args.bundle, partial=args.partial, limits=_limits(args), compat=args.compat,
                                      lenient=args.lenient, repair=args.repair)
    except TraceError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(trace.summary(), indent=2))
    else:
        width = args.width or shutil.get_terminal_size((80, 20)).columns
        sys.stdout.write(trace.summary_text(width=min(width, 120)))
    if trace.diagnostics:
        _report_skipped(args, [(Path(args.bundle), (trace.events_read or 0, trace.diagnostics))])
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    bundles = _collect_bundles(args)
    all_valid = True
    reports = []
    for bundle in bundles:
        report = _native.validate(str(bundle), limits=_limits(args), compat=args.compat)
        valid = report.is_valid(strict=args.strict)
        all_valid &= valid
        if args.json:
            reports.append({**report.to_dict(), "valid": valid})
            continue
        verdict = "valid" if valid else "INVALID"
        print(f"{bundle}: {verdict} ({report.events} events, {report.payloads} payloads, "
              f"{len(report.errors)} errors, {len(report.warnings)} warnings)")
        for problem in report.problems:
            print(f"  {problem.severity}: {problem}")
    if args.json:
        print(json.dumps(reports, indent=2))
    return EXIT_OK if all_valid else EXIT_FAILED


def cmd_export(args: argparse.Namespace) -> int:
    # Checked first: without pyarrow nothing can be written, whatever the bundles.
    try:
        import pyarrow  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        raise UsageError("export --parquet needs pyarrow: pip install 'rollout-trace[parquet]'") from None
    from rollout_trace.tables import Tables, trace_tables

    bundles = _collect_bundles(args)
    jobs: list[tuple[str, str | None]] = [(str(bundle), None) for bundle in bundles]
    progress = Progress(len(jobs), sys.stderr, enabled=sys.stderr.isatty() and not args.quiet)
    built: dict[int, Tables] = {}
    failures: list[tuple[Path, TraceError]] = []
    run = _native.reduce_batch(jobs, workers=args.jobs, partial=args.partial, limits=_limits(args), keep_traces=True,
                               compat=args.compat, lenient=args.lenient, repair=args.repair)
    skipped: list[tuple[Path, tuple[int, tuple[TraceError, ...]]]] = []
    for index, result, report in run:
        if report:
            skipped.append((bundles[index], report))
        progress.advance(isinstance(result, TraceError))
        if isinstance(result, TraceError):
            failures.append((bundles[index], result))
        elif result is not None:
            built[index] = trace_tables(result)
    progress.close()
    tables = Tables.concat(built[index] for index in sorted(built))
    for path in tables.write_parquet(args.parquet):
        print(path)
    _report_skipped(args, sorted(skipped, key=lambda entry: bundles.index(entry[0])))
    for _bundle, error in failures:
        print(f"error: {error}", file=sys.stderr)
    print(f"{len(built)} of {len(jobs)} bundles exported, {len(failures)} failed", file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


def diagnostic_record(bundle: Path, error: TraceError) -> dict[str, object]:
    """One skipped event as ``--diagnostics FILE`` lists it."""
    return {
        "bundle": str(bundle),
        "line": error.line,
        "seq": error.seq,
        "event_type": getattr(error, "event_type", None),
        "kind": error.kind,
        "message": error.message,
        "depends_on": getattr(error, "depends_on", None),
        "file": error.file,
        "raw_payload_id": error.raw_payload_id,
    }


def _report_skipped(args: argparse.Namespace, skipped: list[tuple[Path, tuple[int, tuple[TraceError, ...]]]]) -> None:
    """What partial and lenient replays left out: one line per bundle on
    stderr, and every skipped event in ``--diagnostics FILE``."""
    target = getattr(args, "diagnostics", None)
    for bundle, (events, diagnostics) in skipped:
        where = f"see {target}" if target else "see --diagnostics FILE"
        mode = "partial replay" if args.partial else "lenient replay"
        print(f"warning: {bundle}: {mode}: kept {events - len(diagnostics)} of {events} events; "
              f"skipped {len(diagnostics)}, {where}", file=sys.stderr)
    if target:
        records = [diagnostic_record(bundle, error) for bundle, (_events, diagnostics) in skipped for error in diagnostics]
        _write_atomic(Path(target), json.dumps(records, indent=2) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    """Writes ``text`` to a temporary file beside ``path``, then renames it."""
    fd, temporary = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rollout-trace",
        description="Replay, summarize and check Codex rollout trace bundles.",
        epilog="Exit codes: 0 success, 1 a bundle failed (others still processed), 2 bad command line.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_native.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    reduce = commands.add_parser(
        "reduce",
        help="replay bundles into state.json",
        description="Replay each bundle into its reduced state.json, byte for byte what "
        "`codex debug trace-reduce` writes. Several bundles reduce in parallel; a failure "
        "never stops the others. Outputs are replaced atomically; a failed bundle leaves "
        "any previous output untouched.",
    )
    reduce.add_argument("bundles", nargs="*", metavar="BUNDLE", help="bundle directories")
    reduce.add_argument("-o", "--output", metavar="OUT",
                        help="output file (one bundle; default BUNDLE/state.json) or directory (several bundles: OUT/<path below their common parent>/state.json)")
    reduce.add_argument("-j", "--jobs", type=int, default=None, metavar="N", help="worker threads (default: one per core)")
    reduce.add_argument("-r", "--recursive", action="append", metavar="DIR", help="reduce every bundle below DIR")
    reduce.add_argument("--partial", action="store_true",
                        help="keep what a crashed or live session's bundle allows instead of failing")
    reduce.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    reduce.add_argument("--follow", action="store_true",
                        help="keep state.json current while the session runs (rewritten atomically after each "
                        "settled change) until the rollout ends")
    reduce.add_argument("--idle-timeout", type=float, default=None, metavar="S",
                        help="with --follow: stop after S seconds without a change (default: wait for the end)")
    _add_replay_options(reduce)
    reduce.set_defaults(run=cmd_reduce)

    summary = commands.add_parser("summary", help="what happened in one rollout",
                                  description="Status, threads, turns, models and tokens, tools, terminal commands, "
                                  "compactions and agent edges of one bundle.")
    summary.add_argument("bundle", metavar="BUNDLE")
    summary.add_argument("--json", action="store_true", help="machine-readable output")
    summary.add_argument("--width", type=int, help="line width (default: the terminal's, at most 120)")
    summary.add_argument("--partial", action="store_true", help="summarize what a broken bundle allows")
    _add_replay_options(summary)
    summary.set_defaults(run=cmd_summary)

    validate = commands.add_parser("validate", help="check bundles without writing anything",
                                   description="Report every problem of each bundle: manifest, event schema, seq "
                                   "order, rollout identity, payload references and files, limits, and whether "
                                   "it replays. Warnings are what the reference tolerates; --strict fails on them.")
    validate.add_argument("bundles", nargs="*", metavar="BUNDLE")
    validate.add_argument("-r", "--recursive", action="append", metavar="DIR", help="validate every bundle below DIR")
    validate.add_argument("--strict", action="store_true", help="warnings make a bundle invalid too")
    validate.add_argument("--json", action="store_true", help="machine-readable output")
    _add_replay_options(validate, lenient=False)
    validate.set_defaults(run=cmd_validate)

    export = commands.add_parser(
        "export",
        help="write the tables of bundles as Parquet",
        description="Reduce bundles (in parallel) and write their tables (threads, turns, conversation_items, "
        "inference_calls, tool_calls, terminal_operations, code_cells, interaction_edges) to OUT_DIR/<table>.parquet, "
        "every row keyed by trace_id, for DuckDB or Spark. Failed bundles are left out and reported. Needs pyarrow.",
    )
    export.add_argument("bundles", nargs="*", metavar="BUNDLE", help="bundle directories")
    export.add_argument("--parquet", required=True, metavar="OUT_DIR", help="directory for the .parquet files")
    export.add_argument("-r", "--recursive", action="append", metavar="DIR", help="export every bundle below DIR")
    export.add_argument("-j", "--jobs", type=int, default=None, metavar="N", help="worker threads (default: one per core)")
    export.add_argument("--partial", action="store_true", help="keep what broken bundles allow instead of failing them")
    export.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_replay_options(export)
    export.set_defaults(run=cmd_export)
    from rollout_trace._live_cli import add_watch_command

    add_watch_command(commands, _add_replay_options)
    # Listed for --help only; main() hands `serve` to rollout_trace.serve before parsing.
    commands.add_parser("serve", help="browse a trace root in a local web viewer (needs the [serve] extra)")

    from rollout_trace import _catalog_cli  # argparse only; the catalog loads when `index` runs

    _catalog_cli.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["serve"]:  # self-contained, imported only when used
        from rollout_trace.serve import main as serve_main

        return serve_main(arguments[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "partial", False) and getattr(args, "lenient", False):
        parser.error("--partial and --lenient exclude each other")
    try:
        return int(args.run(args))
    except UsageError as error:
        parser.error(str(error))  # exits with EXIT_USAGE
    except (ValueError, OSError) as error:
        print(f"rollout-trace: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    finally:
        # A closed pipe (`| head`) is not an error worth a traceback.
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
