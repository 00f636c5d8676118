"""The incremental catalog (`rollout-trace index`, rollout_trace.index /
open_catalog): its rows against trace.tables() of each bundle reduced
alone, error rows, incremental runs that touch only what changed, live
bundles, atomic versions, the CLI and DuckDB."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

pa = pytest.importorskip("pyarrow", reason="the catalog needs pyarrow (pip install 'rollout-trace[catalog]')")

import rollout_trace  # noqa: E402
from rollout_trace import catalog as cat  # noqa: E402
from rollout_trace.cli import main  # noqa: E402
from rollout_trace.synth import generate  # noqa: E402
from rollout_trace.tables import SCHEMAS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REALISTIC_BUNDLE = ROOT / "examples" / "realistic-bundle"

GOOD = ["a/s1", "a/s2", "b/nested/s3", "real"]
BAD = "broken"  # manifest.json is not JSON
LIVE = "live"  # trace.jsonl ends mid-line, as while Codex is writing it


def make_root(root: Path) -> Path:
    for seed, bundle in enumerate(GOOD[:3], start=1):
        generate(root / bundle, seed=seed, children=seed - 1)
    shutil.copytree(REALISTIC_BUNDLE, root / "real", ignore=shutil.ignore_patterns("state.json"))
    (root / BAD).mkdir()
    (root / BAD / "manifest.json").write_text("{\"schema_version\": 1,", encoding="utf-8")
    generate(root / LIVE, seed=9, children=1)
    truncate_mid_line(root / LIVE / "trace.jsonl")
    (root / "not-a-bundle").mkdir()  # no manifest: ignored
    return root


def truncate_mid_line(path: Path) -> bytes:
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    keep = b"".join(lines[: len(lines) // 2]) + lines[len(lines) // 2][:25]
    path.write_bytes(keep)
    return data


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_root(tmp_path_factory.mktemp("template") / "root")


@pytest.fixture()
def root(template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "root"))  # each test may change its own copy


def rows_of(catalog: cat.Catalog, table: str, bundle: str | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = catalog.arrow(table).to_pylist()
    return [row for row in rows if bundle is None or row["bundle"] == bundle]


def expected_rows(path: Path, bundle: str, table: str) -> list[dict[str, Any]]:
    trace = rollout_trace.replay_bundle(path, partial=True)
    return [{"bundle": bundle, **row} for row in trace.tables()[table].rows]


def file_ids(version_dir: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(version_dir)): (path.stat().st_ino, path.stat().st_mtime_ns)
        for path in version_dir.rglob("*.parquet")
    }


def test_rows_equal_tables_of_each_bundle_alone(root: Path, tmp_path: Path) -> None:
    report = rollout_trace.index(root, tmp_path / "cat")
    assert (report.bundles, report.reduced, report.failed, report.partial, report.errors) == (6, 6, 1, 1, 1)
    catalog = rollout_trace.open_catalog(tmp_path / "cat")
    assert sorted(catalog.state["bundles"]) == sorted(GOOD + [BAD, LIVE])
    for bundle in GOOD + [LIVE]:
        for table in SCHEMAS:
            assert rows_of(catalog, table, bundle) == expected_rows(root / bundle, bundle, table), (bundle, table)
    # the catalog has nothing else
    for table in SCHEMAS:
        assert {row["bundle"] for row in rows_of(catalog, table)} <= set(GOOD + [LIVE])
        assert catalog.arrow(table).schema == cat.arrow_schema(table)


def test_bundles_table(root: Path, tmp_path: Path) -> None:
    rollout_trace.index(root, tmp_path / "cat")
    rows = {row["bundle"]: row for row in rows_of(rollout_trace.open_catalog(tmp_path / "cat"), "bundles")}
    assert sorted(rows) == sorted(GOOD + [BAD, LIVE])
    for bundle in GOOD:
        trace = rollout_trace.replay_bundle(root / bundle)
        summary = trace.summary()
        row = rows[bundle]
        assert (row["trace_id"], row["rollout_id"], row["status"]) == (trace.trace_id, trace.rollout_id, trace.status)
        assert (row["started_at_unix_ms"], row["ended_at_unix_ms"], row["duration_ms"]) == (
            summary["started_at_unix_ms"],
            summary["ended_at_unix_ms"],
            summary["duration_ms"],
        )
        assert row["models"] == sorted(summary["models"])
        for name, value in summary["usage"].items():
            assert row[name] == value, name
        assert row["tool_call_count"] == len(trace.tool_calls)
        assert row["conversation_item_count"] == len(trace.conversation_items)
        assert row["failed_tool_call_count"] == sum(calls["failed"] for calls in summary["tool_calls"].values())
        assert (row["partial"], row["error"]) == (False, None)
        assert row["content_id"] == cat.content_id(cat.bundle_identity(root / bundle))
        assert row["trace_bytes"] == (root / bundle / "trace.jsonl").stat().st_size


def test_a_corrupted_bundle_is_an_error_row(root: Path, tmp_path: Path) -> None:
    report = rollout_trace.index(root, tmp_path / "cat")
    assert [bundle for bundle, _ in report.failures] == [BAD]
    catalog = rollout_trace.open_catalog(tmp_path / "cat")
    (row,) = rows_of(catalog, "bundles", BAD)
    assert row["status"] == "error"
    assert row["error_type"] == "BundleError"
    assert "manifest.json" in row["error"]
    assert row["trace_id"] is None and row["models"] == []
    for table in SCHEMAS:
        assert rows_of(catalog, table, BAD) == []


def test_a_live_bundle_is_its_prefix_then_refreshed(root: Path, tmp_path: Path) -> None:
    rollout_trace.index(root, tmp_path / "cat")
    (row,) = rows_of(rollout_trace.open_catalog(tmp_path / "cat"), "bundles", LIVE)
    assert row["partial"] is True and row["error"] and row["status"] != "error"
    prefix_items = row["conversation_item_count"]
    assert prefix_items > 0
    # the session goes on: the log is complete now
    shutil.rmtree(root / LIVE)
    generate(root / LIVE, seed=9, children=1)
    report = rollout_trace.index(root, tmp_path / "cat")
    assert report.reduced == 1
    catalog = rollout_trace.open_catalog(tmp_path / "cat")
    (row,) = rows_of(catalog, "bundles", LIVE)
    assert (row["partial"], row["error"], row["status"]) == (False, None, "completed")
    assert row["conversation_item_count"] > prefix_items
    for table in SCHEMAS:
        assert rows_of(catalog, table, LIVE) == expected_rows(root / LIVE, LIVE, table)


def test_nothing_changed_writes_nothing(root: Path, tmp_path: Path) -> None:
    first = rollout_trace.index(root, tmp_path / "cat")
    before = file_ids(tmp_path / "cat" / "current")
    again = rollout_trace.index(root, tmp_path / "cat")
    assert (again.reduced, again.unchanged, again.shards_written, again.version) == (0, 6, 0, first.version)
    assert file_ids(tmp_path / "cat" / "current") == before


def test_changing_one_bundle_changes_only_its_rows(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cat"
    rollout_trace.index(root, out)
    old = rollout_trace.open_catalog(out)
    old_rows = {table: rows_of(old, table) for table in cat.TABLES}
    old_files = file_ids(old.version_dir)

    changed = "a/s2"
    shutil.rmtree(root / changed)
    generate(root / changed, seed=42, children=2)  # another session in its place
    report = rollout_trace.index(root, out)
    assert (report.reduced, report.unchanged, report.shards_written, report.full) == (1, 5, 1, False)
    new = rollout_trace.open_catalog(out)
    assert new.version == old.version + 1
    shard = f"shard-{new.state['bundles'][changed][1]:05d}.parquet"
    assert new.state["bundles"][changed][1] == old.state["bundles"][changed][1]  # a bundle keeps its shard
    new_files = file_ids(new.version_dir)
    for name, ident in new_files.items():
        if name.endswith(shard):
            assert ident != old_files[name]
        else:
            assert ident == old_files[name], f"{name} was rewritten"  # the same file, hard-linked
    for table in cat.TABLES:
        rows = rows_of(new, table)
        assert [r for r in rows if r["bundle"] != changed] == [r for r in old_rows[table] if r["bundle"] != changed]
        if table in SCHEMAS:
            assert [r for r in rows if r["bundle"] == changed] == expected_rows(root / changed, changed, table)
    # the previous version is still readable (a reader may hold it)
    assert rows_of(old, "tool_calls") == old_rows["tool_calls"]


def test_incremental_equals_a_fresh_index(root: Path, tmp_path: Path) -> None:
    rollout_trace.index(root, tmp_path / "inc")
    shutil.rmtree(root / "a/s1")  # removed
    generate(root / "c/s4", seed=4)  # added
    os.utime(root / "real" / "trace.jsonl", ns=(1, 1))  # touched: re-reduced, same rows
    report = rollout_trace.index(root, tmp_path / "inc")
    assert (report.removed, report.reduced) == (1, 2)
    rollout_trace.index(root, tmp_path / "fresh")
    inc, fresh = rollout_trace.open_catalog(tmp_path / "inc"), rollout_trace.open_catalog(tmp_path / "fresh")
    for table in cat.TABLES:
        assert rows_of(inc, table) == rows_of(fresh, table), table
    assert not any(row["bundle"] == "a/s1" for row in rows_of(inc, "threads"))


def test_changed_settings_reindex_everything(root: Path, tmp_path: Path) -> None:
    rollout_trace.index(root, tmp_path / "cat")
    report = rollout_trace.index(root, tmp_path / "cat", shard_size=4)
    assert (report.full, report.reduced) == (True, 6)
    assert sorted(path.name for path in (tmp_path / "cat" / "current" / "bundles").iterdir()) == [
        "shard-00000.parquet",
        "shard-00001.parquet",
    ]
    assert rollout_trace.index(root, tmp_path / "cat").reduced == 0  # the shard size is kept
    limited = rollout_trace.index(root, tmp_path / "cat", limits=rollout_trace.Limits(max_events=3))
    assert limited.full
    assert rollout_trace.index(root, tmp_path / "cat", full=True).reduced == 6


def test_versions_are_switched_atomically(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cat"
    for n in range(3):
        os.utime(root / "real" / "trace.jsonl", ns=(n, n))
        rollout_trace.index(root, out)
    assert os.readlink(out / "current") == "versions/000003"
    # the previous version is kept for readers, older ones removed, no temporaries left
    assert sorted(p.name for p in (out / "versions").iterdir()) == ["000002", "000003"]
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    state = json.loads((out / "current" / "_state.json").read_text())
    assert state["version"] == 3 and len(state["bundles"]) == 6


def test_an_empty_root(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    report = rollout_trace.index(tmp_path / "empty", tmp_path / "cat")
    assert report.bundles == 0
    catalog = rollout_trace.open_catalog(tmp_path / "cat")
    for table in cat.TABLES:
        assert catalog.arrow(table).num_rows == 0


def test_cli_index(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cat"
    assert main(["index", str(root), "-o", str(out), "-q"]) == 1  # the broken bundle failed
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out / "current")
    assert "error: broken:" in captured.err and "6 bundles, 6 reduced" in captured.err
    assert main(["index", str(root), "-o", str(out), "-q"]) == 0  # nothing new failed
    err = capsys.readouterr().err
    assert "0 reduced, 6 unchanged" in err and "1 error rows in the catalog" in err


def test_duckdb_queries(root: Path, tmp_path: Path) -> None:
    pytest.importorskip("duckdb", reason="open_catalog's relations need duckdb (pip install 'rollout-trace[catalog]')")
    rollout_trace.index(root, tmp_path / "cat")
    catalog = rollout_trace.open_catalog(tmp_path / "cat")
    for table in cat.TABLES:
        assert catalog.sql(f"select count(*) from {table}").fetchall() == [(catalog.arrow(table).num_rows,)]
        assert catalog[table].columns == [name for name, _ in cat.CATALOG_SCHEMAS[table]]
    failing = catalog.sql(
        "select name, count(*) from tool_calls where status = 'failed' group by name order by name"
    ).fetchall()
    assert failing == [("exec_command", sum(r["failed_tool_call_count"] or 0 for r in rows_of(catalog, "bundles")))]
    joined = catalog.sql(
        "select b.bundle, count(*) from bundles b join threads t using (bundle) group by 1 order by 1"
    ).fetchall()
    assert [bundle for bundle, _ in joined] == sorted(GOOD + [LIVE])


def test_new_bundles_fill_the_last_shard_then_open_new_ones() -> None:
    placed = cat.place(["c", "a", "b", "d", "e"], {}, 2)
    assert placed == {"a": 0, "b": 0, "c": 1, "d": 1, "e": 2}
    assert cat.place(["f", "g", "h"], placed, 2) == {"f": 2, "g": 3, "h": 3}


def test_new_and_live_bundles_touch_few_shards(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cat"
    rollout_trace.index(root, out, shard_size=2)
    for seed in range(3):  # three new sessions arrive: they share the last shards
        generate(root / "z" / f"new-{seed}", seed=100 + seed)
    report = rollout_trace.index(root, out)
    assert (report.reduced, report.shards_written) == (3, 2)
    state = rollout_trace.open_catalog(out).state["bundles"]
    assert sorted({state[f"z/new-{seed}"][1] for seed in range(3)}) == [3, 4]


def test_a_failed_run_leaves_the_catalog_as_it_was(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "cat"
    rollout_trace.index(root, out)
    before = rows_of(rollout_trace.open_catalog(out), "tool_calls")
    os.utime(root / "real" / "trace.jsonl", ns=(5, 5))
    calls = []

    def failing_write(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        if len(calls) > 3:
            raise OSError("disk full")
        real_write(*args, **kwargs)

    real_write = pq.write_table
    monkeypatch.setattr(pq, "write_table", failing_write)
    with pytest.raises(OSError, match="disk full"):
        rollout_trace.index(root, out)
    monkeypatch.undo()
    assert os.readlink(out / "current") == "versions/000001"
    assert not [p for p in (out / "versions").iterdir() if p.name.startswith(".")]
    assert rows_of(rollout_trace.open_catalog(out), "tool_calls") == before
    assert rollout_trace.index(root, out).reduced == 1  # the next run does the work


def test_one_index_run_at_a_time(root: Path, tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "cat"
    out.mkdir()
    with open(out / ".lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        with pytest.raises(RuntimeError, match="another `rollout-trace index`"):
            rollout_trace.index(root, out)
    assert rollout_trace.index(root, out).reduced == 6


def test_without_duckdb_the_files_and_arrow_still_work(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    rollout_trace.index(root, tmp_path / "cat")
    monkeypatch.setitem(sys.modules, "duckdb", None)  # as if not installed
    catalog = rollout_trace.open_catalog(tmp_path / "cat")
    assert catalog.arrow("bundles").num_rows == 6
    assert all(path.suffix == ".parquet" for path in catalog.files("tool_calls"))
    with pytest.raises(ImportError, match=r"pip install 'rollout-trace\[catalog\]'"):
        catalog.sql("select 1")
    with pytest.raises(ImportError, match="duckdb"):
        catalog.tool_calls


def test_importing_the_package_imports_no_optional_library() -> None:
    import subprocess
    import sys

    code = "import sys, rollout_trace, rollout_trace.cli; rollout_trace.cli.build_parser(); " \
        "print(sorted(m for m in ('pyarrow', 'duckdb', 'ray', 'rollout_trace.catalog') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_indexing_while_bundles_are_written(tmp_path: Path) -> None:
    import threading

    root, out = tmp_path / "root", tmp_path / "cat"
    root.mkdir()
    generate(root / "done", seed=1)
    writer = threading.Thread(target=lambda: [generate(root / f"live-{n}", seed=10 + n, target_mb=2) for n in range(2)])
    writer.start()
    runs = []
    while writer.is_alive():  # every run completes and gives a catalog, whatever it catches mid-write
        runs.append(rollout_trace.index(root, out))
    writer.join()
    final = rollout_trace.index(root, out)
    assert len(runs) >= 2 and final.reduced >= 1
    catalog = rollout_trace.open_catalog(out)
    assert sorted(row["bundle"] for row in rows_of(catalog, "bundles")) == ["done", "live-0", "live-1"]
    for bundle in ["done", "live-0", "live-1"]:
        (row,) = rows_of(catalog, "bundles", bundle)
        assert (row["status"], row["partial"], row["error"]) == ("completed", False, None), bundle
        assert rows_of(catalog, "conversation_items", bundle) == expected_rows(root / bundle, bundle, "conversation_items")
    assert rollout_trace.index(root, out).reduced == 0


def test_compat_and_lenient_are_passed_only_when_given(root: Path, tmp_path: Path) -> None:
    import inspect

    supported = "compat" in inspect.signature(rollout_trace.reduce_many).parameters
    out = tmp_path / "cat"
    rollout_trace.index(root, out)  # without them: works with any core
    if not supported:
        with pytest.raises(ValueError, match="cannot reduce with compat="):
            rollout_trace.index(root, out, compat="crate")
        assert rollout_trace.open_catalog(out).state["settings"]["compat"] is None  # the catalog is untouched
        return
    report = rollout_trace.index(root, out, compat="crate")
    assert report.full  # a changed profile re-indexes everything
    catalog = rollout_trace.open_catalog(out)
    assert catalog.state["settings"]["compat"] == "crate"
    assert {row["compat"] for row in rows_of(catalog, "bundles")} == {"crate"}


def test_lenient_replaces_the_prefix_replay(root: Path, tmp_path: Path) -> None:
    import inspect

    out = tmp_path / "cat"
    if "lenient" not in inspect.signature(rollout_trace.reduce_many).parameters:
        with pytest.raises(ValueError, match="cannot reduce with lenient="):
            rollout_trace.index(root, out, lenient=True)
        return
    report = rollout_trace.index(root, out, lenient=True)
    assert report.failed == 1  # an unreadable manifest is still an error row
    catalog = rollout_trace.open_catalog(out)
    assert (catalog.state["settings"]["lenient"], catalog.state["settings"]["partial"]) == (True, False)
    (row,) = rows_of(catalog, "bundles", LIVE)
    assert row["diagnostic_count"] >= 1 and row["error"]  # the torn last line, passed over
    lenient = rollout_trace.replay_bundle(root / LIVE, lenient=True)
    assert rows_of(catalog, "tool_calls", LIVE) == [{"bundle": LIVE, **r} for r in lenient.tables()["tool_calls"].rows]
    assert rollout_trace.index(root, out).full  # back to the prefix replay: everything again
