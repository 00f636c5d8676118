"""The ``rollout-trace`` command line.

Exit codes (all commands):

* 0 -- every bundle succeeded (reduced, summarized, valid, or exported);
* 1 -- at least one bundle failed; the others were still processed;
* 2 -- the command line itself was wrong (unknown option, conflicting
  outputs, no bundles found, ``export`` without pyarrow installed).

Start-up is what a script calling the reducer once per bundle waits for, so
this module imports nothing at first: ``reduce``, ``summary``, ``validate``
and ``--version`` run natively (``_native.cli_main``) when the native parser
takes the command line as given. Help, mistakes, abbreviated options and
the commands that run in Python (``export``) go through argparse, imported
then. Every command and option is defined once, in ``src/cli/spec.rs``; the
argparse parser is built from that table (``_native.cli_spec()``), and what
it parses runs natively again (``_native.cli_run``).
"""

from __future__ import annotations

import sys

from rollout_trace import _native

# Not `typing.TYPE_CHECKING`: importing typing would cost start-up time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from pathlib import Path
    from typing import Any

    from rollout_trace._native import Limits

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
    return _native.Limits(**given)


def _collect_bundles(args: argparse.Namespace) -> list[Path]:
    from pathlib import Path

    bundles = [Path(p) for p in args.bundles]
    for root in args.recursive or []:
        found = _native.find_bundles(root)
        if not found:
            raise UsageError(f"no bundle (a directory with manifest.json) below {root}")
        bundles.extend(Path(p) for p in found)
    if not bundles:
        raise UsageError("no bundle given (name bundle directories or use --recursive DIR)")
    return bundles


def _run_native(args: argparse.Namespace) -> int:
    """Runs a native command with what argparse parsed."""
    values = {name: value for name, value in vars(args).items() if name not in ("command", "run")}
    outcome = _native.cli_run(args.command, values)
    if isinstance(outcome, str):
        raise UsageError(outcome)
    return outcome


def cmd_export(args: argparse.Namespace) -> int:
    from rollout_trace._native import TraceError
    from rollout_trace._progress import Progress

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
    run = _native.reduce_batch(jobs, workers=args.jobs, partial=args.partial, limits=_limits(args), keep_traces=True)
    for index, result, _was_partial in run:
        progress.advance(isinstance(result, TraceError))
        if isinstance(result, TraceError):
            failures.append((bundles[index], result))
        elif result is not None:
            built[index] = trace_tables(result)
    progress.close()
    tables = Tables.concat(built[index] for index in sorted(built))
    for path in tables.write_parquet(args.parquet):
        print(path)
    for _bundle, error in failures:
        print(f"error: {error}", file=sys.stderr)
    print(f"{len(built)} of {len(jobs)} bundles exported, {len(failures)} failed", file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


#: The commands that run in Python, by name (their options are in the table too).
PYTHON_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"export": cmd_export}

_KINDS: dict[str, dict[str, Any]] = {
    "flag": {"action": "store_true"},
    "int": {"type": int},
    "text": {},
    "append": {"action": "append"},
    "many": {"nargs": "*"},
    "one": {},
}


def _add_arguments(parser: argparse.ArgumentParser, groups: list[tuple[str | None, list[dict[str, Any]]]]) -> None:
    """Adds one command's arguments from the table, group by group."""
    for title, args in groups:
        if not args:
            continue
        target: Any = parser if title is None else parser.add_argument_group(title)
        for arg in args:
            options: dict[str, Any] = dict(_KINDS[arg["kind"]])
            if arg["help"] is not None:
                options["help"] = arg["help"]
            if arg["metavar"] is not None:
                options["metavar"] = arg["metavar"]
            if arg["required"]:
                options["required"] = True
            if arg["flags"]:
                target.add_argument(*arg["flags"], dest=arg["dest"], **options)
            else:
                target.add_argument(arg["dest"], **options)


def build_parser() -> argparse.ArgumentParser:
    import argparse

    spec = _native.cli_spec()
    parser = argparse.ArgumentParser(prog=spec["prog"], description=spec["description"], epilog=spec["epilog"])
    parser.add_argument("--version", action="version", version=f"%(prog)s {spec['version']}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in spec["commands"]:
        sub = commands.add_parser(command["name"], help=command["help"], description=command["description"])
        _add_arguments(sub, command["groups"])
        sub.set_defaults(run=_run_native if command["native"] else PYTHON_COMMANDS[command["name"]])
    return parser


#: Whether the last `main` ran natively through and through.
_ran_natively = False


def main(argv: Sequence[str] | None = None) -> int:
    global _ran_natively
    args = sys.argv[1:] if argv is None else list(argv)
    _ran_natively = False
    try:
        # The usual command lines run natively, before argparse is imported.
        outcome = _native.cli_main(args)
        _ran_natively = outcome is not None
        if outcome is None:
            parsed = build_parser().parse_args(args)
            outcome = parsed.run(parsed)
        if isinstance(outcome, str):
            raise UsageError(outcome)
        return int(outcome)
    except UsageError as error:
        build_parser().error(str(error))  # exits with EXIT_USAGE
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
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_USAGE


def script() -> None:
    """The ``rollout-trace`` command: `main`, then, when it ran natively
    (nothing in Python that could need a clean shutdown), exit without
    tearing the interpreter down."""
    code = main()
    if _ran_natively:
        import os

        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    sys.exit(main())
