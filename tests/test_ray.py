"""rollout_trace.ray.read_traces on a local Ray cluster: its rows equal the
catalog's, for every table, and a broken bundle is a row, not a failed
task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("pyarrow", reason="rollout_trace.ray needs pyarrow (pip install 'rollout-trace[ray]')")
ray = pytest.importorskip("ray", reason="rollout_trace.ray needs ray[data] (pip install 'rollout-trace[ray]')")
pytest.importorskip("ray.data", reason="rollout_trace.ray needs ray[data] (pip install 'rollout-trace[ray]')")

import rollout_trace  # noqa: E402
import rollout_trace.ray  # noqa: E402
from rollout_trace import catalog as cat  # noqa: E402

from test_catalog import BAD, GOOD, LIVE, make_root  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
    except AttributeError:
        pass
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, cat.Catalog]:
    base = tmp_path_factory.mktemp("ray")
    root = make_root(base / "root")
    rollout_trace.index(root, base / "cat")
    return root, rollout_trace.open_catalog(base / "cat")


def rows(dataset: Any) -> list[dict[str, Any]]:
    import pyarrow as pa

    tables = ray.get(dataset.to_arrow_refs())
    return pa.concat_tables(tables).to_pylist() if tables else []


def canonical(rows_: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True) for row in rows_)


def test_dataset_rows_equal_the_catalog(cluster: None, indexed: tuple[Path, cat.Catalog]) -> None:
    root, catalog = indexed
    for table in cat.TABLES:
        dataset = rollout_trace.ray.read_traces(root, table=table, override_num_blocks=3)
        got = rows(dataset)
        assert canonical(got) == canonical(catalog.arrow(table).to_pylist()), table
        assert dataset.schema().names == [name for name, _ in cat.CATALOG_SCHEMAS[table]]


def test_a_broken_bundle_is_a_row_not_a_failed_task(cluster: None, indexed: tuple[Path, cat.Catalog]) -> None:
    root, _ = indexed
    got = {row["bundle"]: row for row in rows(rollout_trace.ray.read_traces(root))}
    assert sorted(got) == sorted(GOOD + [BAD, LIVE])
    assert (got[BAD]["status"], got[BAD]["error_type"]) == ("error", "BundleError")
    assert got[LIVE]["partial"] is True


def test_bundle_paths_and_write_parquet(cluster: None, indexed: tuple[Path, cat.Catalog], tmp_path: Path) -> None:
    root, catalog = indexed
    paths = [root / bundle for bundle in GOOD]
    dataset = rollout_trace.ray.read_traces(paths, table="tool_calls")
    got = rows(dataset)
    assert {row["bundle"] for row in got} == {str(path) for path in paths}  # keyed by the paths given
    want = [row for row in catalog.arrow("tool_calls").to_pylist() if row["bundle"] in GOOD]
    assert len(got) == len(want)
    dataset.write_parquet(str(tmp_path / "out"))
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "out").num_rows == len(want)


def test_an_unknown_table_is_refused() -> None:
    with pytest.raises(ValueError, match="no table 'tools'"):
        rollout_trace.ray.read_traces([], table="tools")
