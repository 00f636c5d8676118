"""The command line and batch reduction: outputs, exit codes, progress."""

from __future__ import annotations

import json
import os
import pickle
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rollout_trace
from rollout_trace import RolloutTrace, TraceError

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ROLLOUT_TRACE_SHARED", REPO.parent / "shared"))
CASES = SHARED / "conformance"
needs_shared = pytest.mark.skipif(not CASES.is_dir(), reason="../shared/conformance is absent")


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rollout_trace.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def ok_cases() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if (p / "expected.json").exists())


def error_cases() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if (p / "expected_error.txt").exists())


@pytest.fixture()
def good_bundle(tmp_path: Path) -> Path:
    case = ok_cases()[0]
    target = tmp_path / "good"
    shutil.copytree(case / "bundle", target)
    return target


@needs_shared
def test_reduce_writes_the_reference_bytes_for_every_ok_case(tmp_path: Path) -> None:
    for case in ok_cases():
        out = tmp_path / f"{case.name}.json"
        result = cli("reduce", str(case / "bundle"), "-o", str(out), "--compat", "crate")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == str(out)
        assert out.read_bytes() == (case / "expected.json").read_bytes(), case.name


@needs_shared
def test_reduce_fails_with_the_reference_message_and_keeps_old_output(tmp_path: Path) -> None:
    for case in error_cases():
        out = tmp_path / "state.json"
        out.write_text("previous")
        result = cli("reduce", str(case / "bundle"), "-o", str(out))
        assert result.returncode == 1
        assert (case / "expected_error.txt").read_text().strip() in result.stderr
        assert out.read_text() == "previous", "a failed reduce must leave the old output untouched"
        assert list(tmp_path.iterdir()) == [out], "no temporary file is left behind"


@needs_shared
def test_default_output_is_bundle_state_json(good_bundle: Path) -> None:
    result = cli("reduce", str(good_bundle))
    assert result.returncode == 0, result.stderr
    assert (good_bundle / "state.json").exists()


@needs_shared
def test_a_failed_bundle_never_stops_the_batch(tmp_path: Path) -> None:
    bundles = [case / "bundle" for case in ok_cases()[:5] + error_cases()[:2] + ok_cases()[5:8]]
    out = tmp_path / "out"
    result = cli("reduce", *map(str, bundles), "-o", str(out), "-j", "2", "--compat", "crate")
    assert result.returncode == 1
    assert "8 of 10 bundles reduced, 2 failed" in result.stderr
    for bundle in bundles:
        state = out / bundle.parent.name / "bundle" / "state.json"
        expected = bundle.parent / "expected.json"
        if expected.exists():
            assert state.read_bytes() == expected.read_bytes()
        else:
            assert not state.exists()
    # No progress bar when stderr is not a terminal.
    assert "\r" not in result.stderr


@needs_shared
def test_recursive_finds_every_bundle(tmp_path: Path) -> None:
    result = cli("reduce", "--recursive", str(CASES), "-o", str(tmp_path), "-q", "--compat", "crate")
    assert result.returncode == 1  # the error cases fail
    assert f"{len(ok_cases())} of {len(ok_cases()) + len(error_cases())} bundles reduced" in result.stderr
    assert len(list(tmp_path.rglob("state.json"))) == len(ok_cases())


@needs_shared
def test_progress_bar_draws_on_a_terminal(tmp_path: Path) -> None:
    bundles = [str(case / "bundle") for case in ok_cases()[:4]]
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "rollout_trace.cli", "reduce", *bundles, "-o", str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=secondary,
            timeout=120,
        )
        os.close(secondary)
        secondary = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        if secondary != -1:
            os.close(secondary)
        os.close(primary)
    assert proc.returncode == 0
    assert b"\r[" in drawn and b"4/4 reduced, 0 failed" in drawn


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert cli("reduce").returncode == 2
    assert cli("frobnicate").returncode == 2
    assert cli("reduce", "--recursive", str(tmp_path)).returncode == 2  # no bundle below
    for command in ("reduce", "summary", "validate"):
        help_text = cli(command, "--help")
        assert help_text.returncode == 0 and "usage:" in help_text.stdout


def test_missing_bundle_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    result = cli("reduce", str(tmp_path / "nope"))
    assert result.returncode == 1
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


@needs_shared
def test_summary_text_and_json(good_bundle: Path) -> None:
    text = cli("summary", str(good_bundle), "--width", "80")
    assert text.returncode == 0, text.stderr
    assert all(len(line) <= 80 for line in text.stdout.splitlines())
    assert text.stdout.startswith("rollout ")
    data = json.loads(cli("summary", str(good_bundle), "--json").stdout)
    trace = rollout_trace.replay_bundle(good_bundle)
    assert data["trace_id"] == trace.trace_id
    assert len(data["threads"]) == len(trace.threads)
    assert data["inference_calls"]["total"] == len(trace.inference_calls)
    assert data == trace.summary()


@needs_shared
def test_validate_reports_and_exit_codes(good_bundle: Path, tmp_path: Path) -> None:
    assert cli("validate", str(good_bundle)).returncode == 0
    broken = tmp_path / "broken"
    shutil.copytree(good_bundle, broken)
    lines = (broken / "trace.jsonl").read_text().splitlines(keepends=True)
    (broken / "trace.jsonl").write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    result = cli("validate", str(broken), "--json")
    assert result.returncode == 1
    [report] = json.loads(result.stdout)
    assert not report["valid"]
    assert any(p["line"] == len(lines) and p["severity"] == "error" for p in report["problems"])
    assert list(broken.iterdir()) == list(broken.iterdir())  # nothing written
    assert not (broken / "state.json").exists()


@needs_shared
def test_reduce_many_keeps_input_order_and_returns_errors() -> None:
    paths = [case / "bundle" for case in ok_cases()[:3] + error_cases()[:1] + ok_cases()[3:5]]
    results = rollout_trace.reduce_many(paths, workers=2)
    assert len(results) == len(paths)
    for path, result in zip(paths, results):
        if (path.parent / "expected.json").exists():
            assert isinstance(result, RolloutTrace)
            assert result.to_json().encode() == (path.parent / "expected.json").read_bytes()
        else:
            assert isinstance(result, TraceError)
            assert result.bundle == str(path)
    streamed = dict(rollout_trace.iter_reduce(paths, workers=2))
    assert set(streamed) == set(paths)
    assert all(streamed[p] == r or isinstance(r, TraceError) for p, r in zip(paths, results))


@needs_shared
def test_partial_cli_keeps_the_prefix(good_bundle: Path, tmp_path: Path) -> None:
    text = (good_bundle / "trace.jsonl").read_text()
    (good_bundle / "trace.jsonl").write_text(text + '{"schema_version":1,"seq":99')
    assert cli("reduce", str(good_bundle), "-o", str(tmp_path / "s.json")).returncode == 1
    partial = cli("reduce", str(good_bundle), "-o", str(tmp_path / "s.json"), "--partial")
    assert partial.returncode == 0, partial.stderr
    assert "partial replay" in partial.stderr
    trace = rollout_trace.replay_bundle(good_bundle, partial=True)
    assert trace.is_partial and trace.diagnostics[0].line == len(text.splitlines()) + 1
    assert (tmp_path / "s.json").read_text() == trace.to_json()
    # A partial trace keeps its diagnostics through pickling.
    restored = pickle.loads(pickle.dumps(trace))
    assert restored == trace and restored.is_partial
    [before], [after] = trace.diagnostics, restored.diagnostics
    assert type(after) is type(before) and str(after) == str(before)
    assert (after.bundle, after.file, after.line, after.seq) == (before.bundle, before.file, before.line, before.seq)


def test_realistic_example_reduces_to_its_golden_state(tmp_path: Path) -> None:
    out = tmp_path / "state.json"
    result = cli("reduce", str(REPO / "examples" / "realistic-bundle"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == (REPO / "tests" / "data" / "realistic" / "expected.json").read_bytes()


def test_summary_of_the_realistic_example() -> None:
    data = json.loads(cli("summary", str(REPO / "examples" / "realistic-bundle"), "--json").stdout)
    assert data["status"] == "completed"
    paths = [thread["agent_path"] for thread in data["threads"]]
    assert paths[0] == "/root" and len(paths) == 3
    assert all(t["parent_thread_id"] == data["root_thread_id"] for t in data["threads"][1:])
    assert data["tool_calls"]["exec_command"]["calls"] >= 2
    assert data["tool_calls"]["exec_command"]["failed"] >= 1
    assert any(c["kind"] == "write_stdin" for c in data["terminal_commands"])
    assert any(c["exit_code"] not in (0, None) for c in data["terminal_commands"])
    assert data["usage"]["input_tokens"] > 0 and data["compactions"] == 1
    assert data["interaction_edges"]["by_status"]["spawn_agent"] == 2
    text = cli("summary", str(REPO / "examples" / "realistic-bundle"), "--width", "80").stdout
    assert "threads (3)" in text and "spawn_agent: 2" in text


# The native command line: same parse as argparse, nothing heavy imported.

PARSE_CASES = [
    "reduce a",
    "reduce a b c -o out -j 2 -q --partial --no-sync",
    "reduce -o out a b",
    "reduce -oout -j2 a",
    "reduce --output=out --jobs=3 a",
    "reduce -r x --recursive y --recursive=z",
    "reduce a --max-record-bytes 10 --max-bundle-bytes 20 --max-events 30 --max-payloads 40 --max-json-depth 50",
    "reduce --max-events=7 a",
    "reduce",
    "summary a",
    "summary a --json --width 80 --partial",
    "summary --width=0 a",
    "validate a b --strict --json",
    "validate -r x",
    "validate --max-json-depth 3 a",
    "reduce a --compat codex-0.158.0 --lenient --diagnostics d.json --repair image-mime --repair=all",
    "reduce a b --compat=crate --partial --diagnostics=d.json -j 1",
    "summary a --compat 0.139.0 --lenient --diagnostics d.json --repair all",
    "validate a --compat codex-0.147",
]


@pytest.mark.parametrize("line", PARSE_CASES)
def test_native_parser_agrees_with_argparse(line: str) -> None:
    from rollout_trace import _native
    from rollout_trace.cli import build_parser

    argv = line.split()
    native = _native.cli_parse(argv)
    assert native is not None, "the native parser should take this command line"
    parsed = vars(build_parser().parse_args(argv))
    command = parsed.pop("command")
    parsed.pop("run")
    assert native == _native.cli_convert(command, parsed)


@pytest.mark.parametrize(
    "line",
    ["reduce a -q b", "reduce --part a", "reduce -qj2 a", "reduce -j -1 a", "reduce -o=x a", "reduce -- a",
     "summary", "summary a b", "--version reduce", "reduce --help", "export --parquet x a",
     "reduce a --compat nope", "reduce a --repair nope", "reduce a --follow", "reduce a --idle-timeout 2",
     "validate a --lenient", "watch a", "index r -o c", "serve"],
)
def test_native_parser_leaves_the_unusual_to_argparse(line: str) -> None:
    from rollout_trace import _native

    assert _native.cli_parse(line.split()) is None


def test_abbreviated_options_still_work(tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    result = cli("reduce", str(REPO / "examples" / "realistic-bundle"), "--out", str(out), "--qui")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == (REPO / "tests" / "data" / "realistic" / "expected.json").read_bytes()


def test_help_shows_every_option_of_the_table() -> None:
    from rollout_trace import _native

    for command in _native.cli_spec()["commands"]:
        text = cli(command["name"], "--help").stdout
        for _title, args in command["groups"]:
            for arg in args:
                for flag in arg["flags"]:
                    assert flag in text, (command["name"], flag)


def test_no_sync_writes_the_same_bytes(tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    result = cli("reduce", str(REPO / "examples" / "realistic-bundle"), "-o", str(out), "--no-sync")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == (REPO / "tests" / "data" / "realistic" / "expected.json").read_bytes()
    trace = rollout_trace.replay_bundle(REPO / "examples" / "realistic-bundle")
    trace.save(tmp_path / "t.json", sync=False)
    assert (tmp_path / "t.json").read_bytes() == out.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json", "t.json"]


def test_native_commands_import_nothing_heavy(tmp_path: Path) -> None:
    bundle = str(REPO / "examples" / "realistic-bundle")
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "from rollout_trace.cli import main\n"
        f"for argv in (['--version'], ['reduce', {bundle!r}, '-o', {str(tmp_path / 's.json')!r}], "
        f"['summary', {bundle!r}], ['validate', {bundle!r}]):\n"
        "    assert main(argv) == 0\n"
        "heavy = {'argparse', 'json', 'pathlib', 'typing', 're', 'shutil', 'rollout_trace.batch', 'rollout_trace.tables'}\n"
        "print(sorted(heavy & (set(sys.modules) - before)), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "[]"


def test_usage_error_after_parsing_prints_the_usage(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    bundle = str(REPO / "examples" / "realistic-bundle")
    result = cli("reduce", bundle, bundle, "-o", str(tmp_path / "file"))
    assert result.returncode == 2
    assert result.stderr.startswith("usage: rollout-trace")
    assert "must be a directory when reducing several bundles" in result.stderr
    assert "Traceback" not in cli("reduce", "-r", str(tmp_path / "nope")).stderr


@pytest.mark.parametrize("columns", [30, 40, 52, 60, 72, 80, 91, 100, 120, 150, 200])
def test_native_help_is_argparse_help(columns: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from rollout_trace import _native
    from rollout_trace.cli import build_parser

    monkeypatch.setenv("COLUMNS", str(columns))
    parser = build_parser()
    [subparsers] = [a for a in parser._actions if a.dest == "command"]
    for command in _native.cli_spec()["commands"]:
        if command["native"]:
            expected = subparsers.choices[command["name"]].format_help()  # type: ignore[attr-defined]
            assert _native.cli_help(command["name"], columns) == expected, (command["name"], columns)


def test_help_runs_natively() -> None:
    for command in ("reduce", "summary", "validate"):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "rollout_trace.cli", command, "--help"],
            capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "100"},
        )
        assert result.returncode == 0 and result.stdout.startswith(f"usage: rollout-trace {command}")
        assert "argparse" not in result.stderr


@pytest.fixture()
def torn_bundle(tmp_path: Path) -> Path:
    """The realistic bundle killed mid-write: its last line cut in half."""
    bundle = shutil.copytree(REPO / "examples" / "realistic-bundle", tmp_path / "torn")
    log = (bundle / "trace.jsonl").read_text(encoding="utf-8")
    (bundle / "trace.jsonl").write_text(log[: len(log) - 40], encoding="utf-8")
    return bundle


def python_report(mode: str, bundle: Path, diagnostics: Path | None) -> tuple[str, str | None]:
    """What the Python path (``_report_skipped``) says about a lenient or
    partial replay of ``bundle``: its stderr line and ``--diagnostics`` file."""
    import argparse
    import contextlib
    import io

    from rollout_trace.cli import _report_skipped

    trace = rollout_trace.replay_bundle(bundle, **{mode: True})
    args = argparse.Namespace(partial=mode == "partial", lenient=mode == "lenient",
                              diagnostics=str(diagnostics) if diagnostics else None)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        _report_skipped(args, [(bundle, (trace.events_read or 0, trace.diagnostics))])
    written = diagnostics.read_text(encoding="utf-8") if diagnostics else None
    return stderr.getvalue(), written


@pytest.mark.parametrize("mode", ["lenient", "partial"])
@pytest.mark.parametrize("command", ["reduce", "summary"])
def test_native_skipped_report_is_the_python_one(torn_bundle: Path, tmp_path: Path, mode: str, command: str) -> None:
    from rollout_trace import _native

    assert _native.cli_parse([command, str(torn_bundle), f"--{mode}", "--diagnostics", "d.json"]) is not None
    expected_text, expected_json = python_report(mode, torn_bundle, tmp_path / "expected.json")
    target = tmp_path / "native.json"
    result = cli(command, str(torn_bundle), f"--{mode}", "--diagnostics", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stderr == expected_text.replace(str(tmp_path / "expected.json"), str(target))
    assert target.read_text(encoding="utf-8") == expected_json
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    # Without --diagnostics: the same line, pointing at the option.
    result = cli(command, str(torn_bundle), f"--{mode}")
    assert result.stderr == python_report(mode, torn_bundle, None)[0]
    assert "see --diagnostics FILE" in result.stderr


def test_native_reduce_writes_an_empty_diagnostics_file_when_nothing_was_skipped(tmp_path: Path) -> None:
    bundle = REPO / "examples" / "realistic-bundle"
    target = tmp_path / "d.json"
    result = cli("reduce", str(bundle), "-o", str(tmp_path / "s.json"), "--lenient", "--diagnostics", str(target))
    assert result.returncode == 0 and result.stderr == ""
    assert target.read_text(encoding="utf-8") == "[]\n"


def test_native_compat_matches_argparse(tmp_path: Path) -> None:
    bundle = str(REPO / "examples" / "realistic-bundle")
    for argv in (["reduce", bundle, "--compat", "nope"], ["validate", bundle, "--compat", "codex-9.9"],
                 ["summary", bundle, "--repair", "nope"]):
        result = cli(*argv)
        assert result.returncode == 2
        assert result.stderr.startswith(f"usage: rollout-trace {argv[0]}")
        assert "Traceback" not in result.stderr
    result = cli("reduce", bundle, "--compat", "nope")
    with pytest.raises(ValueError) as error:
        rollout_trace.resolve_compat("nope")
    assert result.stderr.endswith(f"rollout-trace reduce: error: argument --compat: {error.value}\n")
    out = tmp_path / "s.json"
    assert cli("reduce", bundle, "-o", str(out), "--compat", "crate").returncode == 0
    assert out.read_text(encoding="utf-8") == rollout_trace.replay_bundle(bundle, compat="crate").to_json()
    assert cli("validate", bundle, "--compat", "codex-0.158.0").returncode == 0
    result = cli("summary", bundle, "--partial", "--lenient")
    assert result.returncode == 2 and "--partial and --lenient exclude each other" in result.stderr
