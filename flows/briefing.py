"""On-demand briefing flow: process the customer's unprocessed recordings, then write the briefing.

A handler asks for it right before calling back; the work is in `pipeline.batch` and
`pipeline.briefing`, this only orders it and publishes the result as a markdown artifact.
"""
from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.nightly import DEFAULT_INPUT, WORKERS, process_call
from pipeline.batch import engine_for_workers, new_run_id, plan_batch, summarise_run
from pipeline.briefing import write_briefing
from pipeline.settings import load_settings
from pipeline.store import DEFAULT_DB, Store, utcnow


def artifact_key(customer_id: str) -> str:
    """Artifact keys allow only lowercase letters, digits and dashes."""
    return "briefing-" + "".join(ch if ch.isalnum() else "-" for ch in customer_id.lower())


@flow(name="briefing", task_runner=ThreadPoolTaskRunner(max_workers=WORKERS))
def briefing(customer_id: str, input_dir: str = str(DEFAULT_INPUT), db_path: str = str(DEFAULT_DB),
             model: str = "base") -> dict:
    logger = get_run_logger()
    started_at, clock, run_id = utcnow(), time.perf_counter(), new_run_id()
    spec = engine_for_workers(model, WORKERS)
    settings = load_settings()  # the centre's time zone and callback target
    with Store(db_path) as store:
        plan = plan_batch(Path(input_dir), store, spec, customer_id=customer_id)
        futures = [process_call.submit(rec, spec) for rec in plan.todo]
        results = [f.result() for f in futures]
        for result in results:
            store.write_call(result, run_id)
        store.record_run(summarise_run(run_id, "briefing", plan, results, spec, started_at, time.perf_counter() - clock))
        processing_s = time.perf_counter() - clock
        brief, markdown = write_briefing(store, customer_id, settings=settings)
    logger.info("%s: %d new call(s) processed in %.1f s; briefing over %d calls", customer_id, len(results),
                processing_s, brief.n_calls)
    create_markdown_artifact(key=artifact_key(customer_id), markdown=markdown,
                             description=f"Pre-callback briefing for {customer_id}")
    return {"customer_id": customer_id, "processed": len(results), "processing_seconds": round(processing_s, 2),
            "total_seconds": round(time.perf_counter() - clock, 2), "n_calls": brief.n_calls, "markdown": markdown}
