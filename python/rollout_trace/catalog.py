"""An incremental Parquet catalog of a root of trace bundles.

``index(root, out)`` reduces every bundle below ``root`` and writes the
tables of ``trace.tables()`` (each row keyed by ``bundle``, the bundle's
path relative to the root) plus a ``bundles`` table with one row per
bundle, failed ones included. A second run stats the bundles, re-reduces
only those whose files changed, and rewrites only the shard files they
fall in::

    report = rollout_trace.index("traces/", "catalog/")
    catalog = rollout_trace.open_catalog("catalog/")     # needs duckdb
    catalog.sql("select model, sum(output_tokens) from inference_calls group by 1").show()

Layout (``out/``)::

    current -> versions/000007                  symlink, switched atomically
    versions/000007/_state.json                 settings and each bundle's identity
    versions/000007/<table>/shard-00042.parquet one file per table and shard

Identity of a bundle's content: ``(size, mtime_ns)`` of ``manifest.json``
and ``trace.jsonl`` and the ``mtime_ns`` of the ``payloads/`` directory
(which changes whenever a payload file is added, removed or renamed in).
The writer appends to ``trace.jsonl`` and writes each payload before the
event that references it, so these stats change whenever the reduced
result can. A payload rewritten in place under the same name with the
same directory is not seen; ``full=True`` (``--full``) re-reduces
everything. The identity is taken *before* a bundle is read, so a bundle
written to while it is reduced is re-reduced by the next run.

A bundle's rows live in one shard, chosen when it first enters the
catalog: new bundles, in path order, fill the last shard up to
``shard_size`` (32) bundles, then open the next one, so neighbours by path
and by arrival share shards and a bundle never moves. A run builds a
new version directory: unchanged shard files are hard links to the
previous version's (a copy where links are not possible), touched ones
are rewritten from the previous file's rows (minus the changed bundles)
plus the changed bundles' new rows. Only then is ``current`` switched, so
a reader (``current/<table>/*.parquet``) never sees a half-written
catalog; the previous version is kept for readers that still hold it.

Bundles are reduced with ``partial=True``: a live or crashed bundle is
indexed as the prefix that replays (``partial`` true, the first problem in
``error``) and refreshed when its files change; a bundle that cannot be
read at all has only its ``bundles`` row, with ``error`` and
``error_type``. A change of the settings (compat profile, lenient,
limits, shard size) re-indexes everything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from rollout_trace._native import Limits, RolloutTrace, TraceBundle, TraceError
from rollout_trace.tables import SCHEMAS, trace_tables

if TYPE_CHECKING:  # pragma: no cover
    import duckdb  # type: ignore[import-not-found, unused-ignore]  # noqa: F401

__all__ = [
    "BUNDLES_SCHEMA",
    "CATALOG_SCHEMAS",
    "Catalog",
    "IndexReport",
    "TABLES",
    "bundle_identity",
    "find_root_bundles",
    "index",
    "open_catalog",
]

PathLike = Union[str, "os.PathLike[str]"]

FORMAT = 1
DEFAULT_SHARD_SIZE = 32
STATE_FILE = "_state.json"

BUNDLES_SCHEMA: tuple[tuple[str, str], ...] = (
    ("bundle", "str"),
    ("trace_id", "str"),
    ("rollout_id", "str"),
    ("root_thread_id", "str"),
    ("status", "str"),
    ("started_at_unix_ms", "int"),
    ("ended_at_unix_ms", "int"),
    ("duration_ms", "int"),
    ("models", "list_str"),
    ("input_tokens", "int"),
    ("cached_input_tokens", "int"),
    ("cache_write_input_tokens", "int"),
    ("output_tokens", "int"),
    ("reasoning_output_tokens", "int"),
    ("thread_count", "int"),
    ("turn_count", "int"),
    ("conversation_item_count", "int"),
    ("inference_call_count", "int"),
    ("tool_call_count", "int"),
    ("terminal_operation_count", "int"),
    ("code_cell_count", "int"),
    ("interaction_edge_count", "int"),
    ("failed_inference_call_count", "int"),
    ("failed_tool_call_count", "int"),
    ("failed_terminal_operation_count", "int"),
    ("partial", "bool"),
    ("diagnostic_count", "int"),
    ("error", "str"),
    ("error_type", "str"),
    ("manifest_bytes", "int"),
    ("manifest_mtime_ns", "int"),
    ("trace_bytes", "int"),
    ("trace_mtime_ns", "int"),
    ("payloads_mtime_ns", "int"),
    ("content_id", "str"),
    ("compat", "str"),
)

# Every catalog table: `bundle` first, then the columns of trace.tables().
CATALOG_SCHEMAS: dict[str, tuple[tuple[str, str], ...]] = {
    "bundles": BUNDLES_SCHEMA,
    **{name: (("bundle", "str"),) + columns for name, columns in SCHEMAS.items()},
}
TABLES: tuple[str, ...] = tuple(CATALOG_SCHEMAS)

USAGE_FIELDS = ("input_tokens", "cached_input_tokens", "cache_write_input_tokens", "output_tokens", "reasoning_output_tokens")
COUNTED = (
    ("thread_count", "threads"),
    ("turn_count", "turns"),
    ("conversation_item_count", "conversation_items"),
    ("inference_call_count", "inference_calls"),
    ("tool_call_count", "tool_calls"),
    ("terminal_operation_count", "terminal_operations"),
    ("code_cell_count", "code_cells"),
    ("interaction_edge_count", "interaction_edges"),
)


def _need(package: str, what: str, extra: str = "catalog") -> ImportError:
    return ImportError(f"{what} needs {package}, which is not installed: pip install 'rollout-trace[{extra}]'")


def _pyarrow() -> Any:
    try:
        import pyarrow  # type: ignore[import-untyped, import-not-found, unused-ignore]
        import pyarrow.parquet  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        raise _need("pyarrow", "the catalog") from None
    return pyarrow


def arrow_schema(table: str) -> Any:
    """The ``pyarrow.Schema`` of a catalog table."""
    pa = _pyarrow()
    types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "list_str": pa.list_(pa.string())}
    return pa.schema([pa.field(column, types[kind]) for column, kind in CATALOG_SCHEMAS[table]])


# ------------------------------------------------------------ finding bundles

Identity = tuple[int, int, int, int, int]  # manifest size, mtime; trace size, mtime; payloads mtime


def bundle_identity(path: PathLike) -> Identity:
    """What identifies a bundle's content: ``(manifest size, manifest
    mtime_ns, trace.jsonl size, trace.jsonl mtime_ns, payloads/ mtime_ns)``,
    -1 for a missing file. Stats only; reads nothing."""
    values: list[int] = []
    for name in ("manifest.json", "trace.jsonl"):
        try:
            st = os.stat(os.path.join(path, name))
            values += [st.st_size, st.st_mtime_ns]
        except OSError:
            values += [-1, -1]
    try:
        values.append(os.stat(os.path.join(path, "payloads")).st_mtime_ns)
    except OSError:
        values.append(-1)
    return (values[0], values[1], values[2], values[3], values[4])


def content_id(identity: Sequence[int]) -> str:
    return hashlib.blake2b(json.dumps(list(identity)).encode(), digest_size=10).hexdigest()


def find_root_bundles(root: PathLike) -> dict[str, str]:
    """Every bundle (a directory holding ``manifest.json``) at or below
    ``root``: ``{path relative to root (posix, "." for root itself): path}``.
    Does not descend into bundles (their ``payloads/`` are never listed)."""
    root_path = os.fspath(root)
    found: dict[str, str] = {}
    stack = [root_path]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        if any(entry.name == "manifest.json" for entry in entries):
            rel = os.path.relpath(directory, root_path)
            found[Path(rel).as_posix()] = directory
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                    stack.append(entry.path)
            except OSError:
                continue
    return dict(sorted(found.items()))


def place(new: Sequence[str], kept: dict[str, int], shard_size: int) -> dict[str, int]:
    """Shards for bundles new to the catalog, in path order: they fill the
    last shard up to ``shard_size`` bundles, then open new ones. So
    neighbours by path (a day's sessions) and by arrival (the sessions
    still being written) share few shards, and refreshing them rewrites
    few files."""
    counts: dict[int, int] = {}
    for shard in kept.values():
        counts[shard] = counts.get(shard, 0) + 1
    last = max(counts, default=-1)
    placed: dict[str, int] = {}
    for bundle in sorted(new):
        if last < 0 or counts.get(last, 0) >= shard_size:
            last += 1
        counts[last] = counts.get(last, 0) + 1
        placed[bundle] = last
    return placed


# ------------------------------------------------------------ reducing


def resolve_profile(compat: str | None) -> str | None:
    """The profile the core will use for ``compat`` (its canonical name;
    for None, the default one), where the core can tell; else ``compat``.
    Recorded in the catalog, so a new default profile re-indexes too.
    Raises ``ValueError`` for a name the core does not know."""
    try:
        from rollout_trace._native import resolve_compat  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        return compat
    resolved: str = resolve_compat(compat)
    return resolved


def reduce_options(compat: str | None, lenient: bool | None) -> dict[str, Any]:
    """Only the options given, so this works with and without the
    ``compat=``/``lenient=`` parameters of the core."""
    options: dict[str, Any] = {}
    if compat is not None:
        options["compat"] = compat
    if lenient is not None:
        options["lenient"] = lenient
    return options


def iter_results(
    paths: Sequence[str],
    *,
    workers: int | None,
    limits: Limits | None,
    compat: str | None = None,
    lenient: bool | None = None,
) -> Iterator[tuple[int, RolloutTrace | TraceError]]:
    """``(index, trace or error)`` for every path, as each finishes, from
    the Rust thread pool (GIL released): with ``partial=True`` (a live or
    broken bundle gives the prefix that replays), or, with ``lenient``,
    the core's lenient replay (every event that can be reduced; the two
    exclude each other)."""
    from rollout_trace.batch import iter_reduce, reduce_many

    options = reduce_options(compat, lenient)
    partial = not lenient
    position = {path: i for i, path in enumerate(paths)}
    if len(position) == len(paths):
        try:
            results = iter_reduce(paths, workers, partial=partial, limits=limits, **options)
        except TypeError as error:  # raised at the call, before any result
            if not options or "unexpected keyword" not in str(error):
                raise
        else:
            for path, result in results:
                yield position[str(path)], result
            return
    # iter_reduce without compat/lenient (or repeated paths): reduce_many
    # takes the options; results come in input order.
    try:
        results_in_order = reduce_many(paths, workers, partial=partial, limits=limits, **options)
    except TypeError as error:
        if not options or "unexpected keyword" not in str(error):
            raise
        given = ", ".join(f"{name}=" for name in options)
        raise ValueError(f"this build of rollout_trace cannot reduce with {given} (its reducer does not take it yet)") from error
    for i, result in enumerate(results_in_order):
        yield i, result


def _error_row(bundle: str, path: str, error: BaseException, limits: Limits | None) -> dict[str, Any]:
    row: dict[str, Any] = {name: None for name, _ in BUNDLES_SCHEMA}
    row.update(bundle=bundle, status="error", error=str(error), error_type=type(error).__name__, partial=False, models=[], diagnostic_count=0)
    try:  # ids from the manifest, when it can be read
        opened = TraceBundle.open(path, limits=limits) if limits is not None else TraceBundle.open(path)
        row.update(
            trace_id=opened.trace_id,
            rollout_id=opened.rollout_id,
            root_thread_id=opened.root_thread_id,
            started_at_unix_ms=opened.started_at_unix_ms,
        )
    except Exception:
        pass
    return row


def bundle_rows(
    bundle: str,
    path: str,
    identity: Sequence[int],
    result: RolloutTrace | BaseException,
    *,
    compat: str | None = None,
    limits: Limits | None = None,
) -> dict[str, dict[str, list[Any]]]:
    """The catalog rows of one reduced bundle: ``{table: {column: values}}``,
    every table of ``CATALOG_SCHEMAS`` present (a failed bundle has only its
    ``bundles`` row)."""
    out: dict[str, dict[str, list[Any]]] = {}
    tables = None
    if not isinstance(result, BaseException):
        try:
            tables = trace_tables(result)
        except Exception as error:  # a state the tables cannot read: an error row, not a stop
            result = error
    if isinstance(result, BaseException) or tables is None:
        assert isinstance(result, BaseException)
        row = _error_row(bundle, path, result, limits)
        for name in SCHEMAS:
            out[name] = {column: [] for column, _ in CATALOG_SCHEMAS[name]}
    else:
        for name in SCHEMAS:
            columns = tables[name].columns
            n = len(columns["trace_id"])
            out[name] = {"bundle": [bundle] * n, **columns}
        inference = tables["inference_calls"].columns
        row = {
            "bundle": bundle,
            "trace_id": result.trace_id,
            "rollout_id": result.rollout_id,
            "root_thread_id": result.root_thread_id,
            "status": result.status,
            "started_at_unix_ms": result.started_at_unix_ms,
            "ended_at_unix_ms": result.ended_at_unix_ms,
            "duration_ms": None if result.ended_at_unix_ms is None else result.ended_at_unix_ms - result.started_at_unix_ms,
            "models": sorted({model for model in inference["model"] if model is not None}),
            **{name: sum(value or 0 for value in inference[name]) for name in USAGE_FIELDS},
            **{count: len(tables[name]) for count, name in COUNTED},
            "failed_inference_call_count": inference["status"].count("failed"),
            "failed_tool_call_count": tables["tool_calls"].columns["status"].count("failed"),
            "failed_terminal_operation_count": tables["terminal_operations"].columns["status"].count("failed"),
            "partial": result.is_partial,
            "diagnostic_count": len(result.diagnostics),
            "error": str(result.diagnostics[0]) if result.diagnostics else None,
            "error_type": type(result.diagnostics[0]).__name__ if result.diagnostics else None,
        }
    row.update(
        manifest_bytes=identity[0],
        manifest_mtime_ns=identity[1],
        trace_bytes=identity[2],
        trace_mtime_ns=identity[3],
        payloads_mtime_ns=identity[4],
        content_id=content_id(identity),
        compat=compat,
    )
    out["bundles"] = {column: [row[column]] for column, _ in BUNDLES_SCHEMA}
    return out


def empty_columns(table: str) -> dict[str, list[Any]]:
    return {column: [] for column, _ in CATALOG_SCHEMAS[table]}


def extend_columns(into: dict[str, dict[str, list[Any]]], rows: dict[str, dict[str, list[Any]]]) -> None:
    for name, columns in rows.items():
        target = into.setdefault(name, empty_columns(name))
        for column, values in columns.items():
            target[column].extend(values)


# ------------------------------------------------------------ the catalog on disk


@dataclass
class IndexReport:
    """What one ``index`` run did."""

    catalog: Path
    version: int
    bundles: int = 0
    reduced: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    partial: int = 0
    shards_written: int = 0
    full: bool = False
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: bundles of the catalog (this run's and earlier ones) whose row is an error
    errors: int = 0

    @property
    def changed(self) -> bool:
        return self.reduced > 0 or self.removed > 0

    def __str__(self) -> str:
        what = "full index" if self.full else "incremental"
        return (
            f"{self.catalog} v{self.version}: {self.bundles} bundles, {self.reduced} reduced, "
            f"{self.unchanged} unchanged, {self.removed} removed, {self.failed} failed, "
            f"{self.partial} partial; {self.shards_written} shards written ({what}, {self.seconds:.2f}s); "
            f"{self.errors} error rows in the catalog"
        )


def _limits_dict(limits: Limits | None) -> dict[str, int]:
    if limits is None:
        limits = Limits()
    names = ("max_record_bytes", "max_bundle_bytes", "max_events", "max_payloads", "max_json_depth")
    return {name: getattr(limits, name) for name in names}


def _current(out: Path) -> Path | None:
    link = out / "current"
    if not link.exists():
        return None
    return out / "versions" / os.readlink(link).split("/")[-1]


def read_state(out: PathLike) -> dict[str, Any] | None:
    """The state of the catalog's current version, or None if there is none."""
    version = _current(Path(out))
    if version is None:
        return None
    with open(version / STATE_FILE, encoding="utf-8") as file:
        state: dict[str, Any] = json.load(file)
    return state


def _write_json_atomic(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as file:
        json.dump(value, file, separators=(",", ":"))
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _shard_file(version_dir: Path, table: str, shard: int) -> Path:
    return version_dir / table / f"shard-{shard:05d}.parquet"


def index(
    root: PathLike,
    out: PathLike,
    *,
    compat: str | None = None,
    lenient: bool | None = None,
    workers: int | None = None,
    shard_size: int | None = None,
    limits: Limits | None = None,
    full: bool = False,
    progress: bool = False,
) -> IndexReport:
    """Indexes every bundle below ``root`` into the Parquet catalog ``out``
    (created if needed) and returns what it did.

    Only bundles whose files changed since the last run are reduced (on
    ``workers`` Rust threads, default one per core), and only the shard
    files they fall in are rewritten; removed bundles leave the catalog.
    ``compat`` and ``lenient`` are passed to the core when given; a change
    of them (or of ``limits`` or ``shard_size``, bundles per shard file)
    re-indexes everything, as does
    ``full=True``. Needs pyarrow.
    """
    _pyarrow()
    out_path = Path(out)
    root_path = Path(root)
    if not root_path.is_dir():
        raise FileNotFoundError(f"no such directory: {root}")
    out_path.mkdir(parents=True, exist_ok=True)
    with _locked(out_path):
        return _index(root_path, out_path, compat, lenient, workers, shard_size, limits, full, progress)


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """One index run at a time per catalog (readers need no lock)."""
    with open(out / ".lock", "a+b") as lock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            yield
            return
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another `rollout-trace index` is writing {out}") from None
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _index(
    root_path: Path,
    out_path: Path,
    compat: str | None,
    lenient: bool | None,
    workers: int | None,
    shard_size: int | None,
    limits: Limits | None,
    full: bool,
    progress: bool,
) -> IndexReport:
    pa = _pyarrow()
    import pyarrow.compute as pc  # type: ignore[import-untyped, import-not-found, unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found, unused-ignore]

    started = time.perf_counter()
    timings: dict[str, float] = {}
    previous = read_state(out_path)
    previous_dir = _current(out_path)
    if shard_size is None:
        shard_size = previous["settings"].get("shard_size", DEFAULT_SHARD_SIZE) if previous else DEFAULT_SHARD_SIZE
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    profile = resolve_profile(compat)
    settings = {
        "format": FORMAT,
        "compat": profile,
        "lenient": bool(lenient),
        "partial": not lenient,
        "limits": _limits_dict(limits),
        "shard_size": shard_size,
    }
    if previous is None or previous.get("settings") != settings:
        full = True
    old: dict[str, list[Any]] = {} if full or previous is None else previous["bundles"]

    found = find_root_bundles(root_path)
    identities = {bundle: bundle_identity(path) for bundle, path in found.items()}
    timings["scan"] = time.perf_counter() - started
    changed = [bundle for bundle, identity in identities.items() if full or old.get(bundle, [None])[0] != list(identity)]
    removed = [] if full else [bundle for bundle in old if bundle not in found]
    version = (previous["version"] + 1) if previous else 1
    report = IndexReport(out_path, version - 1 if previous else 0, bundles=len(found), full=full)
    report.unchanged = len(found) - len(changed)
    report.removed = len(removed)
    if previous is not None and not changed and not removed:
        report.version = previous["version"]
        report.errors = sum(1 for entry in old.values() if not entry[2])
        report.seconds = time.perf_counter() - started
        report.timings = timings
        return report

    kept_shard = {bundle: entry[1] for bundle, entry in old.items() if bundle in found}
    shard_for = {bundle: kept_shard[bundle] for bundle in changed if bundle in kept_shard}
    shard_for.update(place([bundle for bundle in changed if bundle not in kept_shard], kept_shard, shard_size))
    touched_of: dict[int, list[str]] = {}
    for bundle in changed:
        touched_of.setdefault(shard_for[bundle], []).append(bundle)
    for bundle in removed:
        touched_of.setdefault(old[bundle][1], [])
    dropped = set(changed) | set(removed)

    versions = out_path / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    tmp_dir = versions / f".tmp-{version:06d}-{os.getpid()}"
    if tmp_dir.exists():
        shutil.rmtree(tmp_dir)
    try:
        for table in TABLES:
            (tmp_dir / table).mkdir(parents=True)

        # Shards nobody touched: links to the previous version's files.
        state_bundles: dict[str, list[Any]] = {}
        if not full and previous_dir is not None:
            for bundle, entry in old.items():
                if bundle not in dropped:
                    state_bundles[bundle] = entry
            kept_shards = {entry[1] for entry in state_bundles.values()} - set(touched_of)
            for shard in kept_shards:
                for table in TABLES:
                    _link_or_copy(_shard_file(previous_dir, table, shard), _shard_file(tmp_dir, table, shard))
        timings["link"] = time.perf_counter() - started - timings["scan"]

        schemas = {table: arrow_schema(table) for table in TABLES}
        drop_array = pa.array(sorted(dropped), pa.string())

        def write_shard(shard: int, rows: dict[str, dict[str, list[Any]]]) -> bool:
            if not _shard_has_bundles(shard):
                return False  # every bundle of the shard was removed: no files
            for table in TABLES:
                new = pa.Table.from_pydict(rows.get(table) or empty_columns(table), schema=schemas[table])
                parts = [new]
                if not full and previous_dir is not None:
                    old_file = _shard_file(previous_dir, table, shard)
                    if old_file.exists():
                        kept = pq.read_table(old_file, schema=schemas[table])
                        kept = kept.filter(pc.invert(pc.is_in(kept["bundle"], value_set=drop_array)))
                        parts.insert(0, kept)
                merged = pa.concat_tables(parts) if len(parts) > 1 else new
                # Stable: a bundle's rows keep their order; bundles by path.
                merged = merged.sort_by([("bundle", "ascending")])
                target = _shard_file(tmp_dir, table, shard)
                pq.write_table(merged, target)
            return True

        shard_count: dict[int, int] = {}
        for bundle in state_bundles:
            shard_count[state_bundles[bundle][1]] = shard_count.get(state_bundles[bundle][1], 0) + 1

        def _shard_has_bundles(shard: int) -> bool:
            return shard_count.get(shard, 0) + len(touched_of.get(shard, [])) > 0

        # Reduce the changed bundles in shard order, so each shard completes
        # early and is written (and its rows freed) while the pool goes on.
        from rollout_trace._progress import Progress

        order = [bundle for shard in sorted(touched_of) for bundle in sorted(touched_of[shard])]
        paths = [found[bundle] for bundle in order]
        pending = {shard: len(bundles) for shard, bundles in touched_of.items()}
        rows_of: dict[int, dict[str, dict[str, list[Any]]]] = {}
        bar = Progress(len(order), sys.stderr, enabled=progress and sys.stderr.isatty())
        # Shards are written on two threads (pyarrow releases the GIL) while
        # the main thread builds rows of the next bundles.
        from concurrent.futures import ThreadPoolExecutor

        writers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="catalog-write")
        written = []
        for shard in sorted(shard for shard, n in pending.items() if n == 0):
            written.append(writers.submit(write_shard, shard, {}))
        reduce_started = time.perf_counter()
        for i, result in iter_results(paths, workers=workers, limits=limits, compat=compat, lenient=lenient):
            bundle = order[i]
            shard = shard_for[bundle]
            rows = bundle_rows(bundle, paths[i], identities[bundle], result, compat=profile, limits=limits)
            extend_columns(rows_of.setdefault(shard, {}), rows)
            failed = rows["bundles"]["status"][0] == "error"
            if failed:
                report.failed += 1
                report.failures.append((bundle, str(rows["bundles"]["error"][0])))
            elif rows["bundles"]["partial"][0]:
                report.partial += 1
            state_bundles[bundle] = [list(identities[bundle]), shard, not failed]
            report.reduced += 1
            bar.advance(failed)
            pending[shard] -= 1
            if pending[shard] == 0:
                written.append(writers.submit(write_shard, shard, rows_of.pop(shard)))
                while sum(not future.done() for future in written[-16:]) > 8:  # bounded memory
                    next(future for future in written if not future.done()).result()
        bar.close()
        writers.shutdown(wait=True)
        report.shards_written = sum(future.result() for future in written)
        timings["reduce_and_write"] = time.perf_counter() - reduce_started

        if not state_bundles:  # an empty root: one empty file per table, so readers find a schema
            for table in TABLES:
                pq.write_table(pa.Table.from_pydict(empty_columns(table), schema=schemas[table]), _shard_file(tmp_dir, table, 0))

        state = {
            "format": FORMAT,
            "version": version,
            "root": str(root_path.resolve()),
            "settings": settings,
            "written_at_unix_ms": int(time.time() * 1000),
            "bundles": dict(sorted(state_bundles.items())),
        }
        _write_json_atomic(tmp_dir / STATE_FILE, state)
        timings["state"] = time.perf_counter() - started - sum(timings.values())
        final_dir = versions / f"{version:06d}"
        if final_dir.exists():
            shutil.rmtree(final_dir)
        os.replace(tmp_dir, final_dir)
    except BaseException:  # nothing half-written stays behind; `current` is untouched
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    link_tmp = out_path / f".current.{os.getpid()}.tmp"
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    os.symlink(f"versions/{version:06d}", link_tmp)
    os.replace(link_tmp, out_path / "current")
    # Keep the previous version for readers that still hold it.
    for old_version in versions.iterdir():
        if old_version.name.isdigit() and int(old_version.name) < version - 1:
            shutil.rmtree(old_version, ignore_errors=True)
    timings["switch"] = time.perf_counter() - started - sum(timings.values())
    report.version = version
    report.errors = sum(1 for entry in state_bundles.values() if not entry[2])
    report.seconds = time.perf_counter() - started
    timings["total"] = report.seconds
    report.timings = timings
    return report


# ------------------------------------------------------------ reading


class Catalog:
    """A catalog's current version, opened for reading.

    ``catalog.files(table)`` lists its Parquet files; ``catalog.arrow(table)``
    reads a table with pyarrow; with duckdb installed every table is a view
    of ``catalog.con``, ``catalog.<table>`` (or ``catalog[table]``) a DuckDB
    relation and ``catalog.sql(query)`` runs a query over them.
    """

    def __init__(self, path: PathLike, con: Any = None) -> None:
        self.path = Path(path)
        version_dir = _current(self.path)
        if version_dir is None:
            raise FileNotFoundError(f"no catalog at {path} (run `rollout-trace index ROOT -o {path}`)")
        self.version_dir = version_dir
        with open(version_dir / STATE_FILE, encoding="utf-8") as file:
            self.state: dict[str, Any] = json.load(file)
        self.version: int = self.state["version"]
        self._con = con
        self._views = False

    def __repr__(self) -> str:
        return f"<Catalog {self.path} v{self.version}: {len(self.state['bundles'])} bundles>"

    @property
    def tables(self) -> tuple[str, ...]:
        return TABLES

    def files(self, table: str) -> list[Path]:
        if table not in CATALOG_SCHEMAS:
            raise KeyError(f"no table {table!r}; tables: {', '.join(TABLES)}")
        return sorted((self.version_dir / table).glob("*.parquet"))

    def arrow(self, table: str) -> Any:
        """The whole table as a ``pyarrow.Table`` (rows by shard, then bundle)."""
        pa = _pyarrow()
        import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found, unused-ignore]

        schema = arrow_schema(table)
        parts = [pq.read_table(path, schema=schema) for path in self.files(table)]
        return pa.concat_tables(parts) if parts else schema.empty_table()

    @property
    def con(self) -> Any:
        """A DuckDB connection with one view per table."""
        if self._con is None:
            try:
                import duckdb  # type: ignore[import-not-found, unused-ignore]
            except ImportError:
                raise _need("duckdb", "open_catalog(...).con") from None
            self._con = duckdb.connect()
        if not self._views:
            for table in TABLES:
                files = ", ".join("'" + str(path).replace("'", "''") + "'" for path in self.files(table))
                self._con.execute(f"create or replace view {table} as select * from read_parquet([{files}])")
            self._views = True
        return self._con

    def sql(self, query: str) -> Any:
        """A DuckDB relation for ``query``, which may name every table."""
        return self.con.sql(query)

    def __getitem__(self, table: str) -> Any:
        if table not in CATALOG_SCHEMAS:
            raise KeyError(table)
        return self.con.table(table)

    def __getattr__(self, name: str) -> Any:
        if name in CATALOG_SCHEMAS:
            return self[name]
        raise AttributeError(name)


def open_catalog(path: PathLike, con: Any = None) -> Catalog:
    """Opens the current version of the catalog at ``path`` (see ``Catalog``);
    ``con`` is a DuckDB connection to register the views in (default a new
    in-memory one)."""
    return Catalog(path, con)

