"""Column-oriented tables of reduced traces, for pandas, polars, Arrow,
DuckDB or Spark.

``trace.tables()`` gives one ``Table`` per kind of object; every row has
the ``trace_id`` of its trace and the object's own id, and references
other objects by their ids, so tables of many traces concatenate and join::

    tables = trace.tables()
    calls = tables.tool_calls.to_pandas()        # needs pandas
    calls.merge(tables.inference_calls.to_pandas(), on=["trace_id", "inference_call_id"])

    tables = rollout_trace.tables_many(paths)    # many bundles, reduced in parallel
    tables.write_parquet("out/")                 # needs pyarrow

The libraries are optional: each ``to_*`` imports its own when called and
says which package to install when it is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Union

from rollout_trace._native import Limits, RolloutTrace, TraceError
from rollout_trace.batch import start

__all__ = ["SCHEMAS", "Table", "Tables", "tables_many", "trace_tables"]

PathLike = Union[str, "os.PathLike[str]"]

# pandas, polars and pyarrow are optional, so the to_* methods are typed
# `Any` rather than with those libraries' classes.

# Column names and types of every table, in order. Types are "str", "int",
# "float" or "bool"; any value may be None. Arrow and Parquet use them, so
# a column has the same type whether or not a trace fills it.
SCHEMAS: dict[str, tuple[tuple[str, str], ...]] = {
    "threads": (
        ("trace_id", "str"),
        ("thread_id", "str"),
        ("agent_path", "str"),
        ("nickname", "str"),
        ("origin", "str"),
        ("parent_thread_id", "str"),
        ("spawn_edge_id", "str"),
        ("task_name", "str"),
        ("agent_role", "str"),
        ("default_model", "str"),
        ("status", "str"),
        ("started_at_unix_ms", "int"),
        ("ended_at_unix_ms", "int"),
        ("duration_ms", "int"),
        ("turn_count", "int"),
        ("conversation_item_count", "int"),
        ("inference_call_count", "int"),
        ("tool_call_count", "int"),
    ),
    "turns": (
        ("trace_id", "str"),
        ("codex_turn_id", "str"),
        ("thread_id", "str"),
        ("status", "str"),
        ("started_at_unix_ms", "int"),
        ("ended_at_unix_ms", "int"),
        ("duration_ms", "int"),
        ("inference_call_count", "int"),
        ("tool_call_count", "int"),
    ),
    "conversation_items": (
        ("trace_id", "str"),
        ("item_id", "str"),
        ("thread_id", "str"),
        ("codex_turn_id", "str"),
        ("position", "int"),
        ("first_seen_at_unix_ms", "int"),
        ("role", "str"),
        ("channel", "str"),
        ("kind", "str"),
        ("call_id", "str"),
        ("text", "str"),
        ("origin", "str"),
        ("inference_call_id", "str"),
        ("tool_call_id", "str"),
        ("code_cell_id", "str"),
        ("terminal_operation_id", "str"),
        ("edge_id", "str"),
        ("compaction_id", "str"),
    ),
    "inference_calls": (
        ("trace_id", "str"),
        ("inference_call_id", "str"),
        ("thread_id", "str"),
        ("codex_turn_id", "str"),
        ("model", "str"),
        ("provider_name", "str"),
        ("status", "str"),
        ("started_at_unix_ms", "int"),
        ("ended_at_unix_ms", "int"),
        ("duration_ms", "int"),
        ("response_id", "str"),
        ("request_item_count", "int"),
        ("response_item_count", "int"),
        ("tool_call_count", "int"),
        ("input_tokens", "int"),
        ("cached_input_tokens", "int"),
        ("cache_write_input_tokens", "int"),
        ("output_tokens", "int"),
        ("reasoning_output_tokens", "int"),
    ),
    "tool_calls": (
        ("trace_id", "str"),
        ("tool_call_id", "str"),
        ("thread_id", "str"),
        ("codex_turn_id", "str"),
        ("kind", "str"),
        ("name", "str"),
        ("status", "str"),
        ("started_at_unix_ms", "int"),
        ("ended_at_unix_ms", "int"),
        ("duration_ms", "int"),
        ("requester", "str"),
        ("code_cell_id", "str"),
        ("inference_call_id", "str"),
        ("terminal_operation_id", "str"),
        ("model_visible_call_id", "str"),
        ("mcp_call_id", "str"),
    ),
    "terminal_operations": (
        ("trace_id", "str"),
        ("operation_id", "str"),
        ("terminal_id", "str"),
        ("tool_call_id", "str"),
        ("thread_id", "str"),
        ("kind", "str"),
        ("command", "str"),
        ("cwd", "str"),
        ("stdin", "str"),
        ("status", "str"),
        ("exit_code", "int"),
        ("started_at_unix_ms", "int"),
        ("ended_at_unix_ms", "int"),
        ("duration_ms", "int"),
        ("created_terminal", "bool"),
    ),
    "code_cells": (
        ("trace_id", "str"),
        ("code_cell_id", "str"),
        ("thread_id", "str"),
        ("codex_turn_id", "str"),
        ("inference_call_id", "str"),
        ("runtime_cell_id", "str"),
        ("runtime_status", "str"),
        ("status", "str"),
        ("started_at_unix_ms", "int"),
        ("ended_at_unix_ms", "int"),
        ("duration_ms", "int"),
        ("nested_tool_call_count", "int"),
        ("wait_tool_call_count", "int"),
        ("output_item_count", "int"),
        ("source_js", "str"),
    ),
    "interaction_edges": (
        ("trace_id", "str"),
        ("edge_id", "str"),
        ("kind", "str"),
        ("source_type", "str"),
        ("source_id", "str"),
        ("source_thread_id", "str"),
        ("target_type", "str"),
        ("target_id", "str"),
        ("target_thread_id", "str"),
        ("tool_call_id", "str"),
        ("started_at_unix_ms", "int"),
        ("ended_at_unix_ms", "int"),
        ("carried_item_count", "int"),
    ),
}


def _need(package: str, method: str) -> ImportError:
    return ImportError(f"Table.{method}() needs {package}, which is not installed: pip install {package}")


class Table:
    """One table: a name and equally long columns (``columns[name]`` is a
    list of values). ``rows`` gives the same data as one dict per row."""

    def __init__(self, name: str, columns: Mapping[str, Sequence[Any]]) -> None:
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"table {name}: columns differ in length ({sorted(lengths)})")
        self.name = name
        self.columns: dict[str, list[Any]] = {column: list(values) for column, values in columns.items()}

    @property
    def column_names(self) -> list[str]:
        return list(self.columns)

    @property
    def num_rows(self) -> int:
        return len(next(iter(self.columns.values()), []))

    def __len__(self) -> int:
        return self.num_rows

    @property
    def rows(self) -> list[dict[str, Any]]:
        """One dict per row, keys in column order."""
        names = self.column_names
        return [dict(zip(names, values)) for values in zip(*self.columns.values())]

    def __repr__(self) -> str:
        return f"<Table {self.name}: {self.num_rows} rows x {len(self.columns)} columns>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Table) and (self.name, self.columns) == (other.name, other.columns)

    __hash__ = None  # type: ignore[assignment]

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table`` with the column types of ``SCHEMAS``."""
        try:
            import pyarrow as pa  # type: ignore[import-untyped, import-not-found, unused-ignore]
        except ImportError:
            raise _need("pyarrow", "to_arrow") from None
        types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
        declared = dict(SCHEMAS.get(self.name, ()))
        fields = [pa.field(column, types[declared.get(column, "str")]) for column in self.columns]
        return pa.Table.from_pydict(self.columns, schema=pa.schema(fields))

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` (integer columns with gaps become floats,
        as pandas does by default)."""
        try:
            import pandas as pd  # type: ignore[import-untyped, import-not-found, unused-ignore]
        except ImportError:
            raise _need("pandas", "to_pandas") from None
        return pd.DataFrame(self.columns, columns=self.column_names)

    def to_polars(self) -> Any:
        """A ``polars.DataFrame``."""
        try:
            import polars as pl  # type: ignore[import-untyped, import-not-found, unused-ignore]
        except ImportError:
            raise _need("polars", "to_polars") from None
        types = {"str": pl.Utf8, "int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean}
        declared = dict(SCHEMAS.get(self.name, ()))
        schema = {column: types[declared.get(column, "str")] for column in self.columns}
        return pl.DataFrame(self.columns, schema=schema)

    @staticmethod
    def concat(name: str, tables: Iterable[Table]) -> Table:
        """The rows of ``tables`` one after another (they must share columns)."""
        tables = list(tables)
        names = [column for column, _ in SCHEMAS[name]] if name in SCHEMAS else (tables[0].column_names if tables else [])
        columns: dict[str, list[Any]] = {column: [] for column in names}
        for table in tables:
            if table.column_names != names:
                raise ValueError(f"table {name}: cannot concatenate tables with columns {table.column_names}")
            for column in names:
                columns[column].extend(table.columns[column])
        return Table(name, columns)


class Tables(Mapping[str, Table]):
    """The tables of one or many traces, by name (``tables["tool_calls"]``
    or ``tables.tool_calls``): threads, turns, conversation_items,
    inference_calls, tool_calls, terminal_operations, code_cells,
    interaction_edges."""

    def __init__(self, tables: Mapping[str, Table]) -> None:
        self._tables = dict(tables)

    def __getitem__(self, name: str) -> Table:
        return self._tables[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(table)}" for name, table in self._tables.items())
        return f"<Tables {sizes}>"

    @property
    def threads(self) -> Table:
        return self._tables["threads"]

    @property
    def turns(self) -> Table:
        return self._tables["turns"]

    @property
    def conversation_items(self) -> Table:
        return self._tables["conversation_items"]

    @property
    def inference_calls(self) -> Table:
        return self._tables["inference_calls"]

    @property
    def tool_calls(self) -> Table:
        return self._tables["tool_calls"]

    @property
    def terminal_operations(self) -> Table:
        return self._tables["terminal_operations"]

    @property
    def code_cells(self) -> Table:
        return self._tables["code_cells"]

    @property
    def interaction_edges(self) -> Table:
        return self._tables["interaction_edges"]

    @staticmethod
    def concat(many: Iterable[Tables]) -> Tables:
        """The tables of several traces, rows in the order given."""
        many = list(many)
        return Tables({name: Table.concat(name, (tables[name] for tables in many)) for name in SCHEMAS})

    def write_parquet(self, out_dir: PathLike) -> list[Path]:
        """Writes ``OUT_DIR/<table>.parquet`` for every table (needs
        pyarrow); returns the paths written."""
        try:
            import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found, unused-ignore]
        except ImportError:
            raise ImportError("write_parquet() needs pyarrow, which is not installed: pip install pyarrow") from None
        directory = Path(out_dir)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name, table in self._tables.items():
            path = directory / f"{name}.parquet"
            pq.write_table(table.to_arrow(), path)
            written.append(path)
        return written


# --------------------------------------------------------------- building


def _window(execution: dict[str, Any]) -> tuple[str, int, int | None, int | None]:
    started = execution["started_at_unix_ms"]
    ended = execution["ended_at_unix_ms"]
    return execution["status"], started, ended, None if ended is None else ended - started


def _by_start(objects: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(objects.values(), key=lambda value: value["execution"]["started_seq"])


class _Builder:
    """Accumulates the rows of one table in its schema's column order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.names = [column for column, _ in SCHEMAS[name]]
        self.columns: dict[str, list[Any]] = {column: [] for column in self.names}

    def add(self, **row: Any) -> None:
        if row.keys() != set(self.names):
            raise AssertionError(f"{self.name}: row columns {sorted(row)} are not the schema's")
        for column in self.names:
            self.columns[column].append(row[column])

    def table(self) -> Table:
        return Table(self.name, self.columns)


def _part_text(part: dict[str, Any]) -> str | None:
    if part["type"] in ("text", "summary"):
        return str(part["text"])
    if part["type"] == "code":
        return str(part["source"])
    if part["type"] == "json":
        return str(part["summary"])
    return None


def trace_tables(trace: RolloutTrace) -> Tables:
    """The tables of one trace (what ``trace.tables()`` returns).

    Rows come in start order (conversation items in thread order, then
    their position in the thread; edges by start time).
    """
    state = trace.to_dict()
    trace_id = state["trace_id"]
    turns_of: dict[str, int] = {}
    inferences_of: dict[str, int] = {}
    tools_of: dict[str, int] = {}
    for turn in state["codex_turns"].values():
        turns_of[turn["thread_id"]] = turns_of.get(turn["thread_id"], 0) + 1
    for call in state["inference_calls"].values():
        for key in (call["thread_id"], call["codex_turn_id"]):
            inferences_of[key] = inferences_of.get(key, 0) + 1
    for call in state["tool_calls"].values():
        keys = [call["thread_id"]] + ([call["started_by_codex_turn_id"]] if call["started_by_codex_turn_id"] else [])
        for key in keys:
            tools_of[key] = tools_of.get(key, 0) + 1

    threads = _Builder("threads")
    ordered_threads = _by_start(state["threads"])
    for thread in ordered_threads:
        status, started, ended, duration = _window(thread["execution"])
        origin = thread["origin"]
        threads.add(
            trace_id=trace_id,
            thread_id=thread["thread_id"],
            agent_path=thread["agent_path"],
            nickname=thread["nickname"],
            origin=origin["type"],
            parent_thread_id=origin.get("parent_thread_id"),
            spawn_edge_id=origin.get("spawn_edge_id"),
            task_name=origin.get("task_name"),
            agent_role=origin.get("agent_role"),
            default_model=thread["default_model"],
            status=status,
            started_at_unix_ms=started,
            ended_at_unix_ms=ended,
            duration_ms=duration,
            turn_count=turns_of.get(thread["thread_id"], 0),
            conversation_item_count=len(thread["conversation_item_ids"]),
            inference_call_count=inferences_of.get(thread["thread_id"], 0),
            tool_call_count=tools_of.get(thread["thread_id"], 0),
        )

    turns = _Builder("turns")
    for turn in _by_start(state["codex_turns"]):
        status, started, ended, duration = _window(turn["execution"])
        turns.add(
            trace_id=trace_id,
            codex_turn_id=turn["codex_turn_id"],
            thread_id=turn["thread_id"],
            status=status,
            started_at_unix_ms=started,
            ended_at_unix_ms=ended,
            duration_ms=duration,
            inference_call_count=inferences_of.get(turn["codex_turn_id"], 0),
            tool_call_count=tools_of.get(turn["codex_turn_id"], 0),
        )

    items = _Builder("conversation_items")
    native_items = trace.conversation_items
    for thread in ordered_threads:
        for position, item_id in enumerate(thread["conversation_item_ids"], start=1):
            item = state["conversation_items"].get(item_id)
            if item is None:
                continue  # only in a corrupted state; the views raise on it
            texts = [text for text in map(_part_text, item["body"]["parts"]) if text is not None]
            origin = native_items[item_id].origin.to_dict()
            items.add(
                trace_id=trace_id,
                item_id=item_id,
                thread_id=item["thread_id"],
                codex_turn_id=item["codex_turn_id"],
                position=position,
                first_seen_at_unix_ms=item["first_seen_at_unix_ms"],
                role=item["role"],
                channel=item["channel"],
                kind=item["kind"],
                call_id=item["call_id"],
                text="\n".join(texts),
                origin=origin["type"],
                inference_call_id=origin["inference_call_id"],
                tool_call_id=origin["tool_call_id"],
                code_cell_id=origin["code_cell_id"],
                terminal_operation_id=origin["terminal_operation_id"],
                edge_id=origin["edge_id"],
                compaction_id=origin["compaction_id"],
            )

    inferences = _Builder("inference_calls")
    usage_fields = (
        "input_tokens",
        "cached_input_tokens",
        "cache_write_input_tokens",
        "output_tokens",
        "reasoning_output_tokens",
    )
    for call in _by_start(state["inference_calls"]):
        status, started, ended, duration = _window(call["execution"])
        usage = call["usage"] or {}
        inferences.add(
            trace_id=trace_id,
            inference_call_id=call["inference_call_id"],
            thread_id=call["thread_id"],
            codex_turn_id=call["codex_turn_id"],
            model=call["model"],
            provider_name=call["provider_name"],
            status=status,
            started_at_unix_ms=started,
            ended_at_unix_ms=ended,
            duration_ms=duration,
            response_id=call.get("response_id"),
            request_item_count=len(call["request_item_ids"]),
            response_item_count=len(call["response_item_ids"]),
            tool_call_count=len(call["tool_call_ids_started_by_response"]),
            **{name: usage.get(name) for name in usage_fields},
        )

    tools = _Builder("tool_calls")
    native_tools = trace.tool_calls
    for call in _by_start(state["tool_calls"]):
        status, started, ended, duration = _window(call["execution"])
        kind = call["kind"]
        name = {"mcp": f"{kind.get('server')}/{kind.get('tool')}", "other": kind.get("name")}.get(kind["type"], kind["type"])
        issuer = native_tools[call["tool_call_id"]].inference_call
        tools.add(
            trace_id=trace_id,
            tool_call_id=call["tool_call_id"],
            thread_id=call["thread_id"],
            codex_turn_id=call["started_by_codex_turn_id"],
            kind=kind["type"],
            name=name,
            status=status,
            started_at_unix_ms=started,
            ended_at_unix_ms=ended,
            duration_ms=duration,
            requester=call["requester"]["type"],
            code_cell_id=call["requester"].get("code_cell_id"),
            inference_call_id=None if issuer is None else issuer.inference_call_id,
            terminal_operation_id=call["terminal_operation_id"],
            model_visible_call_id=call["model_visible_call_id"],
            mcp_call_id=call.get("mcp_call_id"),
        )

    operations = _Builder("terminal_operations")
    creators = {session["created_by_operation_id"] for session in state["terminal_sessions"].values()}
    for operation in _by_start(state["terminal_operations"]):
        status, started, ended, duration = _window(operation["execution"])
        request = operation["request"]
        result = operation["result"] or {}
        tool = state["tool_calls"].get(operation["tool_call_id"])
        operations.add(
            trace_id=trace_id,
            operation_id=operation["operation_id"],
            terminal_id=operation["terminal_id"],
            tool_call_id=operation["tool_call_id"],
            thread_id=None if tool is None else tool["thread_id"],
            kind=operation["kind"],
            command=request.get("display_command"),
            cwd=request.get("cwd"),
            stdin=request.get("stdin"),
            status=status,
            exit_code=result.get("exit_code"),
            started_at_unix_ms=started,
            ended_at_unix_ms=ended,
            duration_ms=duration,
            created_terminal=operation["operation_id"] in creators,
        )

    cells = _Builder("code_cells")
    native_cells = trace.code_cells
    for cell in _by_start(state["code_cells"]):
        status, started, ended, duration = _window(cell["execution"])
        issuer = native_cells[cell["code_cell_id"]].inference_call
        cells.add(
            trace_id=trace_id,
            code_cell_id=cell["code_cell_id"],
            thread_id=cell["thread_id"],
            codex_turn_id=cell["codex_turn_id"],
            inference_call_id=None if issuer is None else issuer.inference_call_id,
            runtime_cell_id=cell["runtime_cell_id"],
            runtime_status=cell["runtime_status"],
            status=status,
            started_at_unix_ms=started,
            ended_at_unix_ms=ended,
            duration_ms=duration,
            nested_tool_call_count=len(cell["nested_tool_call_ids"]),
            wait_tool_call_count=len(cell["wait_tool_call_ids"]),
            output_item_count=len(cell["output_item_ids"]),
            source_js=cell["source_js"],
        )

    edges = _Builder("interaction_edges")
    native_edges = trace.interaction_edges
    ordered_edges = sorted(state["interaction_edges"].values(), key=lambda e: (e["started_at_unix_ms"], e["edge_id"]))
    for edge in ordered_edges:
        view = native_edges[edge["edge_id"]]
        source_thread, target_thread, tool = view.source_thread, view.target_thread, view.tool_call
        edges.add(
            trace_id=trace_id,
            edge_id=edge["edge_id"],
            kind=edge["kind"],
            source_type=edge["source"]["type"],
            source_id=_anchor_id(edge["source"]),
            source_thread_id=None if source_thread is None else source_thread.thread_id,
            target_type=edge["target"]["type"],
            target_id=_anchor_id(edge["target"]),
            target_thread_id=None if target_thread is None else target_thread.thread_id,
            tool_call_id=None if tool is None else tool.tool_call_id,
            started_at_unix_ms=edge["started_at_unix_ms"],
            ended_at_unix_ms=edge["ended_at_unix_ms"],
            carried_item_count=len(edge["carried_item_ids"]),
        )

    built = (threads, turns, items, inferences, tools, operations, cells, edges)
    return Tables({builder.name: builder.table() for builder in built})


def _anchor_id(anchor: dict[str, Any]) -> str:
    return str(anchor.get("item_id") or anchor.get("tool_call_id") or anchor.get("thread_id"))


def tables_many(
    paths: Iterable[PathLike],
    workers: int | None = None,
    *,
    partial: bool = False,
    limits: Limits | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    compat: str | None = None,
    lenient: bool = False,
    repair: str | Sequence[str] | None = None,
) -> Tables:
    """Reduces every bundle (in parallel, ``workers`` threads, default one
    per core) and concatenates their tables in the order of ``paths``.

    A bundle that fails raises its ``TraceError`` (``on_error="raise"``)
    or is left out (``on_error="skip"``).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    built: dict[int, Tables] = {}
    batch = start([Path(path) for path in paths], workers, partial, limits, compat, lenient, repair)
    for index, result, _partial in batch:
        if isinstance(result, TraceError):
            if on_error == "raise":
                raise result
            continue
        if result is not None:
            built[index] = trace_tables(result)
    return Tables.concat(built[index] for index in sorted(built))
