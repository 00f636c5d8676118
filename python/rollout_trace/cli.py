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
the commands that run in Python (``export``, ``reduce --follow``, and
``watch``, ``index`` and ``serve``, defined in their own modules) go through
argparse, imported then. Every option of reduce, summary, validate and export
is defined once, in ``src/cli/spec.rs``; the argparse parser is built from
that table (``_native.cli_spec()``), and what it parses for a native command
runs natively again (``_native.cli_run``).
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

    from rollout_trace._native import Limits, TraceError

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


def _outputs(bundles: list[Path], out: str | None) -> list[Path]:
    """Where each bundle's state.json goes (the native reduce decides the
    same way; this is for ``reduce --follow``)."""
    import os
    from pathlib import Path

    if len(bundles) == 1:
        return [Path(out) if out else bundles[0] / "state.json"]
    if out is None:
        return [bundle / "state.json" for bundle in bundles]
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"-o {out} must be a directory when reducing several bundles")
    resolved = [bundle.resolve() for bundle in bundles]
    if len(set(resolved)) != len(resolved):
        raise UsageError("the same bundle is named twice")
    common = Path(os.path.commonpath(resolved))
    outputs = [out_dir / bundle.relative_to(common) / "state.json" for bundle in resolved]
    for output in outputs:
        output.parent.mkdir(parents=True, exist_ok=True)
    return outputs


def _run_native(args: argparse.Namespace) -> int:
    """Runs a native command with what argparse parsed."""
    values = {name: value for name, value in vars(args).items() if name not in ("command", "run")}
    outcome = _native.cli_run(args.command, values)
    if isinstance(outcome, str):
        raise UsageError(outcome)
    return outcome


def cmd_reduce(args: argparse.Namespace) -> int:
    """``reduce`` as argparse parsed it: natively, but ``--follow`` here."""
    if not args.follow:
        return _run_native(args)
    bundles = _collect_bundles(args)
    outputs = _outputs(bundles, args.output)
    if len(bundles) != 1 or args.partial:
        raise UsageError("--follow takes one bundle (and no --partial; --lenient skips what fails)")
    from rollout_trace._live_cli import reduce_follow

    return reduce_follow(args, bundles[0], outputs[0])


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
    """One skipped event as ``--diagnostics FILE`` lists it (the native
    reduce and summary write the same records, ``src/cli/commands.rs``)."""
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
        import json
        from pathlib import Path

        records = [diagnostic_record(bundle, error) for bundle, (_events, diagnostics) in skipped for error in diagnostics]
        _write_atomic(Path(target), json.dumps(records, indent=2) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    """Writes ``text`` to a temporary file beside ``path``, then renames it."""
    import contextlib
    import os
    import tempfile
    from pathlib import Path

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


#: The commands that run in Python, by name (their options are in the table too).
PYTHON_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"export": cmd_export}
#: Native commands that run some command lines in Python.
_RUNNERS: dict[str, Callable[[argparse.Namespace], int]] = {"reduce": cmd_reduce}

def _compat_name(name: str) -> str:
    """``--compat``'s type: the profile a name stands for (the native parser
    resolves it the same way)."""
    import argparse

    try:
        return _native.resolve_compat(name)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


_KINDS: dict[str, dict[str, Any]] = {
    "flag": {"action": "store_true"},
    "int": {"type": int},
    "float": {"type": float},
    "text": {},
    "compat": {"type": _compat_name},
    "append": {"action": "append"},
    "repair": {"action": "append"},
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
            if arg.get("choices") is not None:
                options["choices"] = arg["choices"]
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
        if command["native"]:
            run = _RUNNERS.get(command["name"], _run_native)
        else:
            run = PYTHON_COMMANDS[command["name"]]
        sub.set_defaults(run=run)
    from rollout_trace._live_cli import add_watch_command

    add_watch_command(commands, _replay_options_of(spec))
    # Listed for --help only; main() hands `serve` to rollout_trace.serve before parsing.
    commands.add_parser("serve", help="browse a trace root in a local web viewer (needs the [serve] extra)")

    from rollout_trace import _catalog_cli  # argparse only; the catalog loads when `index` runs

    _catalog_cli.register(commands)
    return parser


def _replay_options_of(spec: dict[str, Any]) -> Callable[..., None]:
    """``add_replay_options(parser, lenient=True)`` for the commands defined
    in Python (``watch``): the options every reading command of the table
    takes (``--compat``, ``--lenient``, ``--diagnostics``, ``--repair``) and
    the admission limits, as ``reduce`` has them."""
    [reduce] = [command for command in spec["commands"] if command["name"] == "reduce"]
    shared = reduce["groups"][1:]

    def add_replay_options(parser: argparse.ArgumentParser, lenient: bool = True) -> None:
        groups = shared if lenient else [
            (title, [arg for arg in args if title is not None or arg["dest"] == "compat"]) for title, args in shared
        ]
        _add_arguments(parser, groups)

    return add_replay_options


#: Whether the last `main` ran natively through and through.
_ran_natively = False


def main(argv: Sequence[str] | None = None) -> int:
    global _ran_natively
    args = sys.argv[1:] if argv is None else list(argv)
    _ran_natively = False
    if args[:1] == ["serve"]:  # self-contained, imported only when used
        from rollout_trace.serve import main as serve_main

        return serve_main(args[1:])
    try:
        # The usual command lines run natively, before argparse is imported.
        outcome = _native.cli_main(args)
        _ran_natively = outcome is not None
        if outcome is None:
            parser = build_parser()
            parsed = parser.parse_args(args)
            if getattr(parsed, "partial", False) and getattr(parsed, "lenient", False):
                parser.error("--partial and --lenient exclude each other")
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
