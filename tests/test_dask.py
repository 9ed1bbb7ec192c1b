"""The nightly flow on a Dask LocalCluster (two worker processes) stores the same rows as on threads."""
from __future__ import annotations

import duckdb

from test_run_safety import short_clips

# Differ by run by design: ids and clocks of the run, not results.
RUN_COLUMNS = {"run_id", "processed_at", "stage_seconds"}


def _rows(db, table: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        cols = [c[0] for c in conn.execute(f"DESCRIBE {table}").fetchall() if c[0] not in RUN_COLUMNS]
        order = ", ".join(f'"{c}"' for c in cols[:2])
        return conn.execute(f"SELECT {', '.join(chr(34) + c + chr(34) for c in cols)} FROM {table} ORDER BY {order}").fetchall()


def test_nightly_on_a_dask_local_cluster_matches_the_thread_runner(prefect_harness, tmp_path):
    from flows.nightly import run_nightly

    folder = tmp_path / "in"
    folder.mkdir()
    short_clips(folder, 2, seconds=5)
    on_threads = run_nightly(input_dir=str(folder), db_path=str(tmp_path / "threads.duckdb"))
    on_dask = run_nightly(dask_workers=2, input_dir=str(folder), db_path=str(tmp_path / "dask.duckdb"))
    assert on_threads["n_processed"] == on_dask["n_processed"] == 2
    for table in ("calls", "words", "turns", "escalation", "summaries", "dynamics"):
        assert _rows(tmp_path / "dask.duckdb", table) == _rows(tmp_path / "threads.duckdb", table), table
