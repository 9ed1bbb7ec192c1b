"""The nightly flow on a Dask LocalCluster (two worker processes) stores exactly what the thread
runner stores.

Dask starts its worker processes with one thread in each native math library (its
`distributed.nanny.pre-spawn-environ`: OMP, MKL and OpenBLAS threads = 1), so the thread runner
is run the same way: in a fresh process with that environment. With the same threads, every
stored row is identical; only the clock (when a row was written, by which run) differs.
(Measured: with the libraries' default threads in the thread runner's process instead, the
same calls differ in language probabilities, word probabilities and timings, and in words: 您的 vs
你的. The numerics follow the thread count, not the runner.)
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

from pipeline.store.connect import Database
from tests.conftest import SAMPLES, SHARED_AUDIO

ROOT = Path(__file__).resolve().parents[2]
# Written by the clock or the run, not by the analysis.
VOLATILE = {"processed_at", "run_id", "stage_seconds", "raised_at", "created_at", "added_at", "drawn_at",
            "next_attempt_at", "claimed_at", "delivered_at", "attempts", "delivery_id"}
TABLES = ("calls", "words", "turns", "escalation", "dynamics", "summaries", "corrections", "voiceprints",
          "alerts", "alert_deliveries")


def _rows(db: Path, table: str) -> list[tuple]:
    with Database(db, read_only=True).reading() as conn:
        columns = [c for (c,) in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [table]).fetchall() if c not in VOLATILE]
        listed = ", ".join(f'"{c}"' for c in columns)
        return conn.execute(f"SELECT {listed} FROM {table} ORDER BY ALL").fetchall()


def _settings_with_own_policy(folder: Path) -> Path:
    """A bank's settings naming its own policy (urgent level 65): the hash stored with each
    call shows the runs read it."""
    policy = resources.files("pipeline").joinpath("data", "policy.toml").read_text(encoding="utf-8")
    policy, n = re.subn(r"^urgent = .*$", "urgent = 65", policy, count=1, flags=re.M)
    assert n == 1
    (folder / "policy.toml").write_text(policy, encoding="utf-8")
    settings = folder / "callbrief.toml"
    settings.write_text(f'policy_file = "{folder / "policy.toml"}"\n', encoding="utf-8")
    return settings


def test_nightly_on_a_dask_local_cluster_stores_the_thread_runners_rows(prefect_harness, tmp_path):
    import dask
    import distributed  # noqa: F401 - registers the distributed.* config read below
    from prefect.settings import PREFECT_API_URL

    from flows.nightly import run_nightly
    from pipeline.config.settings import load_settings
    from pipeline.run.plan import call_fingerprint
    from pipeline.speech.asr import EngineSpec

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("200001.wav", "200002.wav", "200003.wav"):
        shutil.copy2(SHARED_AUDIO / "zh_customer_service_finance" / name, folder / name)
    shutil.copy2(SAMPLES / "en-2002.ogg", folder / "en-2002.ogg")  # mono, two speakers: the speaker encoder runs
    settings = _settings_with_own_policy(tmp_path)

    # The thread runner, in a process with the threads a Dask worker process gets. Side by side
    # with the Dask run's database, so both write their escalation plots to the same folder.
    threads_db, dask_db = tmp_path / "threads.duckdb", tmp_path / "dask.duckdb"
    worker_env = {k: str(v) for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items()}
    assert worker_env.get("OMP_NUM_THREADS") == "1"  # what this test stands on
    env = os.environ | worker_env | {"PREFECT_API_URL": PREFECT_API_URL.value()}
    code = ("import sys; from flows.nightly import run_nightly; "
            "run = run_nightly(input_dir=sys.argv[1], db_path=sys.argv[2], settings_path=sys.argv[3]); "
            "assert run['n_processed'] == 4, run")
    done = subprocess.run([sys.executable, "-c", code, str(folder), str(threads_db), str(settings)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    plots = {p.name: p.read_bytes() for p in (tmp_path / "plots").iterdir()}

    on_dask = run_nightly(dask_workers=2, input_dir=str(folder), db_path=str(dask_db), settings_path=str(settings))
    assert on_dask["n_processed"] == 4

    # Both read the bank's settings file: its policy is in the hash stored with every call.
    own = call_fingerprint(EngineSpec(), load_settings(settings, environ={}))
    assert own != call_fingerprint(EngineSpec())
    assert len(_rows(dask_db, "calls")) == 4
    with Database(dask_db, read_only=True).reading() as conn:
        assert {h for (h,) in conn.execute("SELECT settings_hash FROM calls").fetchall()} == {own}
    for table in TABLES:
        assert _rows(dask_db, table) == _rows(threads_db, table), table
    assert _rows(dask_db, "turns") != [] and _rows(dask_db, "escalation") != []
    assert {p.name: p.read_bytes() for p in (tmp_path / "plots").iterdir()} == plots != {}
