"""The nightly flow on a Dask LocalCluster (two worker processes) stores what the thread runner stores.

Not to the bit: CTranslate2's int8 decoding of one model serving two calls at once (threads) and
of one model per process (Dask) differs in the last digits, which can change a word, and its
temperature-fallback sampler is per thread. So: the same calls, statuses and metadata, every
table filled alike, and transcripts within a small character error of each other (a word on a
one-sentence call; a few characters over all of them).
"""
from __future__ import annotations

import shutil

import duckdb

from conftest import SHARED_AUDIO

CALL_COLUMNS = ("call_id", "sha256", "status", "duration", "channels", "language", "model_id", "settings_hash",
                "n_speakers", "customer_id")


def _query(db, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_nightly_on_a_dask_local_cluster_matches_the_thread_runner(prefect_harness, tmp_path):
    from flows.nightly import run_nightly
    from pipeline.metrics import cer

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("200001.wav", "200002.wav", "200003.wav"):
        shutil.copy2(SHARED_AUDIO / "zh_customer_service_finance" / name, folder / name)
    threads_db, dask_db = tmp_path / "threads.duckdb", tmp_path / "dask.duckdb"
    on_threads = run_nightly(input_dir=str(folder), db_path=str(threads_db))
    on_dask = run_nightly(dask_workers=2, input_dir=str(folder), db_path=str(dask_db))
    assert on_threads["n_processed"] == on_dask["n_processed"] == 3

    calls = f"SELECT {', '.join(CALL_COLUMNS)} FROM calls ORDER BY call_id"
    assert _query(dask_db, calls) == _query(threads_db, calls)
    for table in ("escalation", "summaries", "dynamics"):
        assert _query(dask_db, f"SELECT call_id FROM {table} ORDER BY 1") == \
            _query(threads_db, f"SELECT call_id FROM {table} ORDER BY 1") != []
    text = "SELECT call_id, string_agg(text, '' ORDER BY seq) FROM turns GROUP BY 1 ORDER BY 1"
    pairs = list(zip(_query(dask_db, text), _query(threads_db, text), strict=True))
    for (call, a), (_, b) in pairs:
        assert cer(b, a) <= 0.10, (call, a, b)  # one word on a one-sentence call is already ~5%
    # Over all the calls, the two runners' transcripts differ by a few characters at most.
    assert cer("".join(b for (_, _), (_, b) in pairs), "".join(a for (_, a), _ in pairs)) <= 0.03
