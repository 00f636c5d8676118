"""Trace bundles as a Ray dataset: ``read_traces`` reduces bundles on the
Ray workers and yields the catalog's tables as Arrow blocks::

    import ray, rollout_trace.ray

    ray.init()                                   # or ray.init("ray://head:10001")
    calls = rollout_trace.ray.read_traces("/shared/traces", table="tool_calls")
    calls.write_parquet("/shared/catalog/tool_calls")

Each read task reduces its bundles with the Rust core (one thread per task,
the GIL released) and builds the rows exactly as ``rollout-trace index``
does: the same columns, ``bundle`` first. A bundle that cannot be reduced
is a row of the ``bundles`` table with its ``error`` (and has no rows in
the other tables), never a failed task.

Needs ``ray[data]`` and pyarrow (``pip install 'rollout-trace[ray]'``),
and rollout-trace installed on every worker (e.g. through
``runtime_env={"pip": ["rollout-trace"]}``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Union

from rollout_trace._native import Limits
from rollout_trace.catalog import (
    CATALOG_SCHEMAS,
    TABLES,
    arrow_schema,
    bundle_identity,
    bundle_rows,
    empty_columns,
    extend_columns,
    find_root_bundles,
    iter_results,
    resolve_profile,
)

__all__ = ["TraceDatasource", "read_traces"]

PathLike = Union[str, "os.PathLike[str]"]

BUNDLES_PER_BLOCK = 64
# Without override_num_blocks, a read task gets at least this many bundles:
# a Ray task costs milliseconds, a small bundle's reduction about one.
MIN_BUNDLES_PER_TASK = 32


def _ray_data() -> Any:
    try:
        import ray.data  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        raise ImportError("rollout_trace.ray needs ray[data], which is not installed: pip install 'rollout-trace[ray]'") from None
    return ray.data


def _bundles(paths_or_root: PathLike | Iterable[PathLike]) -> list[tuple[str, str]]:
    """``(bundle key, path)``: below a root, keys are paths relative to it
    (as in the catalog); given bundle paths, the paths as given."""
    if isinstance(paths_or_root, (str, os.PathLike)):
        root = os.fspath(paths_or_root)
        if not os.path.isdir(root):
            raise FileNotFoundError(f"no such directory: {root}")
        found = find_root_bundles(root)
        if not found:
            raise FileNotFoundError(f"no bundle (a directory with manifest.json) below {root}")
        return list(found.items())
    return [(os.fspath(path), os.fspath(path)) for path in paths_or_root]


def read_bundles(
    bundles: Sequence[tuple[str, str]],
    table: str,
    *,
    compat: str | None = None,
    lenient: bool | None = None,
    limits: Limits | None = None,
    workers: int | None = 1,
    bundles_per_block: int = BUNDLES_PER_BLOCK,
) -> Iterator[Any]:
    """Reduces ``bundles`` here and yields ``pyarrow.Table`` blocks of
    ``table``, in the order of ``bundles`` (what one read task runs)."""
    import pyarrow as pa  # type: ignore[import-untyped, import-not-found, unused-ignore]

    schema = arrow_schema(table)
    profile = resolve_profile(compat)  # what the catalog records in `compat`
    for start in range(0, len(bundles), bundles_per_block):
        group = bundles[start : start + bundles_per_block]
        paths = [path for _, path in group]
        identities = [bundle_identity(path) for path in paths]  # before reading, as the catalog does
        results: dict[int, Any] = dict(iter_results(paths, workers=workers, limits=limits, compat=compat, lenient=lenient))
        columns: dict[str, dict[str, list[Any]]] = {table: empty_columns(table)}
        for i, (key, path) in enumerate(group):
            rows = bundle_rows(key, path, identities[i], results[i], compat=profile, limits=limits)
            extend_columns(columns, {table: rows[table]})
        yield pa.Table.from_pydict(columns[table], schema=schema)


def _block_metadata(num_rows: int | None, input_files: tuple[str, ...], schema: Any) -> Any:
    from ray.data.block import BlockMetadata  # type: ignore[import-not-found, import-untyped, unused-ignore]

    try:
        return BlockMetadata(num_rows=num_rows, size_bytes=None, input_files=input_files, exec_stats=None)
    except TypeError:  # Ray before 2.44 also wants the schema here
        return BlockMetadata(num_rows=num_rows, size_bytes=None, schema=schema, input_files=input_files, exec_stats=None)  # type: ignore[call-arg, unused-ignore]


def _datasource_base() -> Any:
    return _ray_data().Datasource


class _Options:
    def __init__(self, table: str, compat: str | None, lenient: bool | None, limits: Limits | None) -> None:
        self.table, self.compat, self.lenient, self.limits = table, compat, lenient, limits


def _make_datasource_class() -> type:
    Datasource = _datasource_base()
    from ray.data.datasource import ReadTask  # type: ignore[import-not-found, import-untyped, unused-ignore]

    class TraceDatasource(Datasource):  # type: ignore[misc, valid-type]
        """A Ray ``Datasource`` of trace bundles: read tasks of contiguous
        bundle groups that reduce on the workers (see ``read_traces``)."""

        def __init__(
            self,
            bundles: Sequence[tuple[str, str]],
            table: str = "bundles",
            *,
            compat: str | None = None,
            lenient: bool | None = None,
            limits: Limits | None = None,
            tasks: int | None = None,
        ) -> None:
            if table not in CATALOG_SCHEMAS:
                raise ValueError(f"no table {table!r}; tables: {', '.join(TABLES)}")
            self._bundles = list(bundles)
            self._options = _Options(table, compat, lenient, limits)
            self._tasks = tasks

        def get_name(self) -> str:
            return f"Traces({self._options.table})"

        def estimate_inmemory_data_size(self) -> int | None:
            return None

        def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None) -> list[Any]:
            bundles, options = self._bundles, self._options
            if not bundles:
                return []
            if self._tasks is not None:
                tasks = self._tasks
            else:
                tasks = min(parallelism, -(-len(bundles) // MIN_BUNDLES_PER_TASK))
            tasks = max(1, min(tasks, len(bundles)))
            size, extra = divmod(len(bundles), tasks)
            schema = arrow_schema(options.table)
            read_tasks = []
            start = 0
            for t in range(tasks):
                group = bundles[start : start + size + (1 if t < extra else 0)]
                start += len(group)

                def read(group: list[tuple[str, str]] = group) -> Iterator[Any]:
                    return read_bundles(group, options.table, compat=options.compat, lenient=options.lenient, limits=options.limits)

                metadata = _block_metadata(len(group) if options.table == "bundles" else None, tuple(p for _, p in group), schema)
                extra_args = {} if per_task_row_limit is None else {"per_task_row_limit": per_task_row_limit}
                try:
                    read_tasks.append(ReadTask(read, metadata, schema=schema, **extra_args))
                except TypeError:  # older Ray: no schema/row limit here
                    read_tasks.append(ReadTask(read, metadata))
            return read_tasks

    return TraceDatasource


_CLASS: type | None = None


def __getattr__(name: str) -> Any:
    if name == "TraceDatasource":  # made on first use, so importing this module does not import ray
        global _CLASS
        if _CLASS is None:
            _CLASS = _make_datasource_class()
        return _CLASS
    raise AttributeError(f"module 'rollout_trace.ray' has no attribute {name!r}")


def read_traces(
    paths_or_root: PathLike | Iterable[PathLike],
    table: str = "bundles",
    *,
    compat: str | None = None,
    lenient: bool | None = None,
    limits: Limits | None = None,
    override_num_blocks: int | None = None,
    **read_args: Any,
) -> Any:
    """A ``ray.data.Dataset`` of one catalog ``table`` (``bundles``,
    ``threads``, ``turns``, ``conversation_items``, ``inference_calls``,
    ``tool_calls``, ``terminal_operations``, ``code_cells``,
    ``interaction_edges``) of the bundles below a root (``bundle`` is the
    path relative to it, as in the catalog) or of the bundle paths given.

    The bundles are found on the driver and reduced in the read tasks on
    the workers; ``override_num_blocks`` sets the number of read tasks
    (default: Ray's parallelism, but at least 32 bundles a task), other keyword arguments go to
    ``ray.data.read_datasource`` (``concurrency``, ``ray_remote_args``...).
    ``compat`` and ``lenient`` are passed to the core when given.
    """
    data = _ray_data()
    resolve_profile(compat)  # an unknown profile fails here, not in the tasks
    bundles = _bundles(paths_or_root)
    source = __getattr__("TraceDatasource")(bundles, table, compat=compat, lenient=lenient, limits=limits, tasks=override_num_blocks)
    if override_num_blocks is not None:
        read_args["override_num_blocks"] = override_num_blocks
    return data.read_datasource(source, **read_args)
