"""The nightly flow on a Dask LocalCluster (two worker processes) stores the same rows as on threads."""
from __future__ import annotations

import duckdb

import math
import shutil

from conftest import SHARED_AUDIO

# Differ by run by design: ids and clocks of the run, not results.
RUN_COLUMNS = {"run_id", "processed_at", "stage_seconds"}


def _rows(db, table: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        cols = [c[0] for c in conn.execute(f"DESCRIBE {table}").fetchall() if c[0] not in RUN_COLUMNS]
        order = ", ".join(f'"{c}"' for c in cols[:2])
        return conn.execute(f"SELECT {', '.join(chr(34) + c + chr(34) for c in cols)} FROM {table} ORDER BY {order}").fetchall()


def test_nightly_on_a_dask_local_cluster_matches_the_thread_runner(prefect_harness, tmp_path):
    from flows.nightly import run_nightly

    # Whole real utterances: Whisper's temperature fallback samples from a generator CTranslate2
    # keeps per thread and seeds once, so a segment that falls back (audio cut mid-word does)
    # is not reproducible across runners; one decoded at temperature 0 is.
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("200001.wav", "200002.wav", "200003.wav"):
        shutil.copy2(SHARED_AUDIO / "zh_customer_service_finance" / name, folder / name)
    on_threads = run_nightly(input_dir=str(folder), db_path=str(tmp_path / "threads.duckdb"))
    on_dask = run_nightly(dask_workers=2, input_dir=str(folder), db_path=str(tmp_path / "dask.duckdb"))
    assert on_threads["n_processed"] == on_dask["n_processed"] == 3
    for table in ("calls", "words", "turns", "escalation", "summaries", "dynamics"):
        dask, threads = _rows(tmp_path / "dask.duckdb", table), _rows(tmp_path / "threads.duckdb", table)
        assert len(dask) == len(threads) > 0, table
        for a, b in zip(dask, threads):
            assert all(_same(x, y) for x, y in zip(a, b)), (table, [(x, y) for x, y in zip(a, b) if not _same(x, y)])


def _same(x, y) -> bool:
    """Equal; floats to 1e-3 relative (int8 kernels may differ in the last digits between a
    process that runs one transcription and one that runs two at once)."""
    if isinstance(x, float) and isinstance(y, float):
        return math.isclose(x, y, rel_tol=1e-3, abs_tol=1e-6)
    return x == y
