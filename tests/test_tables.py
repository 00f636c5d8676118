"""Tables: row counts against the graph, join keys, conversions (where the
optional libraries are installed), tables_many over many bundles, and
`rollout-trace export --parquet`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

import rollout_trace
from rollout_trace import RolloutTrace, Table, Tables, TraceError, tables_many
from rollout_trace.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from rollout_trace.tables import SCHEMAS

ROOT = Path(__file__).resolve().parents[1]
REALISTIC_BUNDLE = ROOT / "examples" / "realistic-bundle"


def shared_dir() -> Path | None:
    configured = os.environ.get("ROLLOUT_TRACE_SHARED")
    path = Path(configured) if configured else ROOT.parent / "shared"
    return path if (path / "conformance").is_dir() else None


SHARED = shared_dir()
CONFORMANCE_BUNDLES = (
    sorted(p / "bundle" for p in (SHARED / "conformance").iterdir() if (p / "expected.json").is_file())
    if SHARED
    else []
)
BUNDLES = [REALISTIC_BUNDLE] + CONFORMANCE_BUNDLES

# Each table, the map its rows come from and its own id column.
SOURCES = {
    "threads": ("threads", "thread_id"),
    "turns": ("codex_turns", "codex_turn_id"),
    "conversation_items": ("conversation_items", "item_id"),
    "inference_calls": ("inference_calls", "inference_call_id"),
    "tool_calls": ("tool_calls", "tool_call_id"),
    "terminal_operations": ("terminal_operations", "operation_id"),
    "code_cells": ("code_cells", "code_cell_id"),
    "interaction_edges": ("interaction_edges", "edge_id"),
}

# (table, column) -> (table, key column) each non-null value must be found in.
JOINS = {
    ("turns", "thread_id"): ("threads", "thread_id"),
    ("conversation_items", "thread_id"): ("threads", "thread_id"),
    ("conversation_items", "inference_call_id"): ("inference_calls", "inference_call_id"),
    ("conversation_items", "tool_call_id"): ("tool_calls", "tool_call_id"),
    ("conversation_items", "code_cell_id"): ("code_cells", "code_cell_id"),
    ("conversation_items", "terminal_operation_id"): ("terminal_operations", "operation_id"),
    ("conversation_items", "edge_id"): ("interaction_edges", "edge_id"),
    ("inference_calls", "thread_id"): ("threads", "thread_id"),
    ("inference_calls", "codex_turn_id"): ("turns", "codex_turn_id"),
    ("tool_calls", "thread_id"): ("threads", "thread_id"),
    ("tool_calls", "inference_call_id"): ("inference_calls", "inference_call_id"),
    ("tool_calls", "terminal_operation_id"): ("terminal_operations", "operation_id"),
    ("terminal_operations", "tool_call_id"): ("tool_calls", "tool_call_id"),
    ("code_cells", "inference_call_id"): ("inference_calls", "inference_call_id"),
    ("interaction_edges", "tool_call_id"): ("tool_calls", "tool_call_id"),
    ("interaction_edges", "source_thread_id"): ("threads", "thread_id"),
    ("interaction_edges", "target_thread_id"): ("threads", "thread_id"),
}


@pytest.fixture(scope="module")
def trace() -> RolloutTrace:
    return rollout_trace.replay_bundle(REALISTIC_BUNDLE)


@pytest.fixture(scope="module")
def tables(trace: RolloutTrace) -> Tables:
    return trace.tables()


def keys(table: Table, *columns: str) -> set[tuple[Any, ...]]:
    return set(zip(*(table.columns[column] for column in columns)))


def check_tables(trace: RolloutTrace, tables: Tables) -> None:
    assert list(tables) == list(SCHEMAS)
    for name, table in tables.items():
        assert table.name == name
        assert table.column_names == [column for column, _ in SCHEMAS[name]]
        assert set(table.columns["trace_id"]) <= {trace.trace_id}
        source, id_column = SOURCES[name]
        ids = table.columns[id_column]
        assert len(ids) == len(set(ids)), f"{name}: duplicate {id_column}"
        assert set(ids) == set(getattr(trace, source)), name
    for (name, column), (target, key) in JOINS.items():
        found = keys(tables[target], "trace_id", key)
        for row in tables[name].rows:
            if row[column] is not None:
                assert (row["trace_id"], row[column]) in found, f"{name}.{column} = {row[column]!r} joins nothing"


def test_realistic_tables_row_counts(tables: Tables) -> None:
    assert {name: len(table) for name, table in tables.items()} == {
        "threads": 3,
        "turns": 7,
        "conversation_items": 85,
        "inference_calls": 20,
        "tool_calls": 18,
        "terminal_operations": 9,
        "code_cells": 1,
        "interaction_edges": 8,
    }
    assert repr(tables.tool_calls) == "<Table tool_calls: 18 rows x 16 columns>"


def test_realistic_tables_join(trace: RolloutTrace, tables: Tables) -> None:
    check_tables(trace, tables)


@pytest.mark.parametrize("bundle", [pytest.param(b, id=b.parent.name) for b in CONFORMANCE_BUNDLES])
def test_conformance_tables(bundle: Path) -> None:
    trace = rollout_trace.replay_bundle(bundle, compat="crate")
    check_tables(trace, trace.tables())


def test_rows_carry_provenance(tables: Tables) -> None:
    calls = {row["tool_call_id"]: row for row in tables.tool_calls.rows}
    failed = calls["call_6NgISIwGnzQ6itzm5JTGuE52"]
    assert failed["status"] == "failed" and failed["kind"] == "exec_command" and failed["requester"] == "model"
    assert failed["inference_call_id"] == "552f233a-8c25-466a-9ff3-9849b4e1357d"
    assert failed["terminal_operation_id"] == "terminal_operation:1"
    assert failed["duration_ms"] == failed["ended_at_unix_ms"] - failed["started_at_unix_ms"]
    nested = calls["call_JjsAdvFVvCiRIPw9eWnSrWl8"]
    assert nested["requester"] == "code_cell" and nested["code_cell_id"] == "code_cell:call_hQHm6cqLAera5k3g6TpWY1qQ"
    assert calls["call_MHmpM3TRsLGe27ZoFBR6czyH"]["name"] == "wait"

    operations = {row["operation_id"]: row for row in tables.terminal_operations.rows}
    assert operations["terminal_operation:1"]["exit_code"] == 101
    assert operations["terminal_operation:1"]["command"] == "/bin/bash -lc cargo test -p ledger-core parse_amount"
    assert operations["terminal_operation:3"]["kind"] == "write_stdin"
    assert operations["terminal_operation:3"]["created_terminal"] is False
    assert operations["terminal_operation:2"]["created_terminal"] is True

    items = {row["item_id"]: row for row in tables.conversation_items.rows}
    assert items["conversation_item:18"]["origin"] == "code_cell"
    assert items["conversation_item:66"]["origin"] == "agent_message"
    root_items = [row for row in tables.conversation_items.rows if row["thread_id"] == "019b8db3-fcc1-70a5-bdca-2d3e42485e3a"]
    assert [row["position"] for row in root_items] == list(range(1, 61))

    inferences = tables.inference_calls
    assert sum(inferences.columns["input_tokens"]) == 24680
    assert sum(inferences.columns["output_tokens"]) == 11146

    threads = {row["agent_path"]: row for row in tables.threads.rows}
    assert threads["/root/ci_log_scanner"]["parent_thread_id"] == threads["/root"]["thread_id"]
    assert threads["/root"]["tool_call_count"] == 15

    edges = tables.interaction_edges.rows
    assert [row["kind"] for row in edges].count("agent_result") == 3
    spawn = next(row for row in edges if row["kind"] == "spawn_agent")
    assert spawn["tool_call_id"] == spawn["source_id"] and spawn["source_type"] == "tool_call"


def test_table_rows_and_equality() -> None:
    table = Table("example", {"a": [1, 2], "b": ["x", None]})
    assert table.rows == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]
    assert table.num_rows == len(table) == 2
    assert table == Table("example", {"a": [1, 2], "b": ["x", None]})
    with pytest.raises(ValueError, match="columns differ in length"):
        Table("bad", {"a": [1], "b": []})


def test_missing_libraries_are_named(
    tables: Tables, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_optional(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in ("pandas", "polars", "pyarrow"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_optional)
    with pytest.raises(ImportError, match=r"Table.to_pandas\(\) needs pandas, which is not installed: pip install pandas"):
        tables.threads.to_pandas()
    with pytest.raises(ImportError, match=r"to_polars\(\) needs polars"):
        tables.threads.to_polars()
    with pytest.raises(ImportError, match=r"to_arrow\(\) needs pyarrow"):
        tables.threads.to_arrow()
    with pytest.raises(ImportError, match=r"write_parquet\(\) needs pyarrow"):
        tables.write_parquet("unused")
    with pytest.raises(SystemExit) as exit:
        main(["export", "--parquet", "unused", str(REALISTIC_BUNDLE)])
    assert exit.value.code == EXIT_USAGE
    assert "export --parquet needs pyarrow: pip install 'rollout-trace[parquet]'" in capsys.readouterr().err


def test_to_arrow_keeps_declared_types(tables: Tables) -> None:
    pa = pytest.importorskip("pyarrow")
    arrow = tables.tool_calls.to_arrow()
    assert arrow.num_rows == 18
    assert arrow.schema.field("duration_ms").type == pa.int64()
    assert arrow.schema.field("code_cell_id").type == pa.string()
    # A column no row fills keeps its declared type.
    empty = Tables.concat([]).code_cells.to_arrow()
    assert empty.num_rows == 0 and empty.schema.field("duration_ms").type == pa.int64()
    assert tables.terminal_operations.to_arrow().schema.field("created_terminal").type == pa.bool_()


def test_to_pandas(tables: Tables) -> None:
    pytest.importorskip("pandas")
    frame = tables.inference_calls.to_pandas()
    assert list(frame.columns) == tables.inference_calls.column_names
    assert len(frame) == 20 and int(frame["output_tokens"].sum()) == 11146


def test_to_polars(tables: Tables) -> None:
    pytest.importorskip("polars")
    frame = tables.tool_calls.to_polars()
    assert frame.height == 18 and frame.columns == tables.tool_calls.column_names


# ------------------------------------------------ many bundles


def test_tables_many_concatenates_in_input_order(trace: RolloutTrace) -> None:
    bundles = BUNDLES[:6]
    many = tables_many(bundles, workers=2)
    traces = [rollout_trace.replay_bundle(bundle) for bundle in bundles]
    for name in SCHEMAS:
        source = SOURCES[name][0]
        assert len(many[name]) == sum(len(getattr(one, source)) for one in traces), name
    # Rows stay grouped by bundle, in the order the bundles were given.
    order = [one.trace_id for one in traces]
    seen = list(dict.fromkeys(many.threads.columns["trace_id"]))
    assert seen == list(dict.fromkeys(order))
    assert many.tool_calls.rows[: len(trace.tool_calls)] == trace.tables().tool_calls.rows


def test_tables_many_failures(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(REALISTIC_BUNDLE, broken)
    (broken / "trace.jsonl").write_text("not json\n", encoding="utf-8")
    with pytest.raises(TraceError):
        tables_many([REALISTIC_BUNDLE, broken])
    skipped = tables_many([broken, REALISTIC_BUNDLE], on_error="skip")
    assert len(skipped.tool_calls) == 18
    with pytest.raises(ValueError, match="on_error"):
        tables_many([REALISTIC_BUNDLE], on_error="ignore")  # type: ignore[arg-type]


def test_export_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "out"
    bundles = [str(b) for b in BUNDLES[:4]]
    assert main(["export", "--parquet", str(out), "-q", *bundles]) == EXIT_OK
    written = capsys.readouterr()
    assert written.out.splitlines() == [str(out / f"{name}.parquet") for name in SCHEMAS]
    assert f"{len(bundles)} of {len(bundles)} bundles exported, 0 failed" in written.err
    expected = tables_many(bundles)
    for name in SCHEMAS:
        table = pq.read_table(out / f"{name}.parquet")
        assert table.column_names == expected[name].column_names
        assert table.to_pydict() == expected[name].columns


def test_export_reports_failed_bundles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    broken = tmp_path / "broken"
    shutil.copytree(REALISTIC_BUNDLE, broken)
    (broken / "trace.jsonl").write_text("not json\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["export", "--parquet", str(out), "-q", str(broken), str(REALISTIC_BUNDLE)]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "error: " in err and "1 of 2 bundles exported, 1 failed" in err
    assert pq.read_table(out / "tool_calls.parquet").num_rows == 18


def test_export_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as no_bundle:
        main(["export", "--parquet", str(tmp_path)])
    assert no_bundle.value.code == EXIT_USAGE
    with pytest.raises(SystemExit) as no_out:
        main(["export", str(REALISTIC_BUNDLE)])
    assert no_out.value.code == EXIT_USAGE
