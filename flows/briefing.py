"""On-demand briefing flow: process the customer's unprocessed recordings, then write the briefing.

A handler asks for it right before calling back; the work is in `pipeline.run.execute.execute` and
`pipeline.outputs.briefing`, this only orders it and publishes the result as a markdown artifact.
"""
from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.nightly import DEFAULT_INPUT, WORKERS, prefect_processor, process_engines
from pipeline.config.settings import load_settings
from pipeline.engines import EngineConfig
from pipeline.outputs.briefing import write_briefing
from pipeline.run.execute import engine_for_workers, execute
from pipeline.store import DEFAULT_DB, Store


def artifact_key(customer_id: str) -> str:
    """Artifact keys allow only lowercase letters, digits and dashes."""
    return "briefing-" + "".join(ch if ch.isalnum() else "-" for ch in customer_id.lower())


@flow(name="briefing", task_runner=ThreadPoolTaskRunner(max_workers=WORKERS))
def briefing(customer_id: str, input_dir: str = str(DEFAULT_INPUT), db_path: str = str(DEFAULT_DB),
             model: str = "base") -> dict:
    logger = get_run_logger()
    clock = time.perf_counter()
    spec = engine_for_workers(model, WORKERS)
    settings = load_settings()  # the centre's time zone, callback target and policy
    config = EngineConfig.from_settings(settings)
    store = Store(db_path)
    done = execute(Path(input_dir), store, spec, prefect_processor(spec, store, config, settings.policy),
                   flow="briefing", customer_id=customer_id, refresh=False, settings=settings,
                   engines=process_engines(config))
    processing_s = time.perf_counter() - clock
    with store.session():  # the calls a running batch has claimed are said, not processed twice
        brief, markdown = write_briefing(store, customer_id, settings=settings, pending=len(done.plan.claimed))
    logger.info("%s: %d new call(s) processed in %.1f s; briefing over %d calls", customer_id, len(done.results),
                processing_s, brief.n_calls)
    create_markdown_artifact(key=artifact_key(customer_id), markdown=markdown,
                             description=f"Pre-callback briefing for {customer_id}")
    return {"customer_id": customer_id, "processed": len(done.results), "processing_seconds": round(processing_s, 2),
            "total_seconds": round(time.perf_counter() - clock, 2), "n_calls": brief.n_calls, "markdown": markdown}
