"""Nightly flow: transcribe every new recording in a folder into DuckDB.

Reads like a table of contents; the work is in `pipeline.batch`. Transcription runs in task
threads that share one loaded model; results come back to this flow, the single DuckDB writer.
"""
from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from pipeline.asr import EngineSpec, load_engine
from pipeline.batch import (engine_for_workers, new_run_id, plan_batch, process_recording, refresh_briefings,
                            result_rows, summarise_run)
from pipeline.store import DEFAULT_DB, Store, utcnow
from pipeline.types import CallResult, Recording

DEFAULT_INPUT = Path(__file__).resolve().parent.parent / "data" / "samples"
WORKERS = 2  # measured by `make bench`: 2 concurrent calls x 1 thread beat 1 call x 2 threads here


# Bad input does not raise (it comes back as a failed result), so a retry only ever repeats
# work that hit something transient. Idempotency lives in DuckDB (sha256 + version + model),
# so no Prefect result cache: its keys could not hash a loaded model anyway.
@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE, task_run_name="process-{recording.call_id}")
def process_call(recording: Recording, spec: EngineSpec) -> CallResult:
    return process_recording(recording, spec)


@flow(name="nightly", task_runner=ThreadPoolTaskRunner(max_workers=WORKERS), log_prints=True)
def nightly(input_dir: str = str(DEFAULT_INPUT), db_path: str = str(DEFAULT_DB), model: str = "base",
            reprocess: bool = False) -> dict:
    logger = get_run_logger()
    started_at, clock, run_id = utcnow(), time.perf_counter(), new_run_id()
    spec = engine_for_workers(model, WORKERS)
    with Store(db_path) as store:
        plan = plan_batch(Path(input_dir), store, spec, reprocess)
        logger.info("%d recordings found, %d new, %d already processed, %d missing",
                    plan.n_found, len(plan.todo), len(plan.skipped), len(plan.missing))
        if plan.todo:
            load_engine(spec)  # a missing model fails the run here, not once per call
        futures = [process_call.submit(rec, spec) for rec in plan.todo]
        results = []
        for future in futures:
            result = future.result()
            store.write_call(result, run_id)
            results.append(result)
        run = summarise_run(run_id, "nightly", plan, results, spec, started_at, time.perf_counter() - clock)
        store.record_run(run)
        # Handlers open tomorrow's callbacks with fresh briefings for everyone who called.
        refreshed = refresh_briefings(store, results)
    logger.info("briefings refreshed for %d customer(s)", len(refreshed))
    create_table_artifact(key="nightly-calls", table=result_rows(results) or [{"call_id": "", "status": "nothing new"}],
                          description=f"Run {run_id}: {run.n_processed} processed, {run.n_failed} failed, "
                                      f"{run.n_skipped} skipped, {run.n_missing} missing")
    return run.__dict__ | {"started_at": str(run.started_at), "finished_at": str(run.finished_at)}


if __name__ == "__main__":
    nightly()
