"""Nightly flow: process every new recording in a folder into DuckDB.

Reads like a table of contents; the loop is `pipeline.run.execute.execute`, shared with the CLI and
the briefing flow. Calls run as Prefect tasks: in threads that share one loaded model by default,
or on a Dask cluster (`run_nightly(dask_address=...)`, or a local cluster of `dask_workers`
processes), where each worker process loads the model once. Every call's results come back as a
compact versioned record (`pipeline.run.serial`) to this flow, the single DuckDB writer.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from pipeline.config.paths import DEFAULT_INPUT  # noqa: E402
from pipeline.config.policy import Policy
from pipeline.config.settings import load_settings
from pipeline.engines import EngineConfig, Engines
from pipeline.outputs.alerts import raise_and_deliver
from pipeline.records import CallResult, Recording
from pipeline.run.execute import Processor, collect, engine_for_workers, execute, result_rows
from pipeline.run.retention import nightly_purge
from pipeline.run.serial import from_record, to_record
from pipeline.run.stages import STAGE_NAMES, CallCancelled, CallProgress, process_recording
from pipeline.speakers.voiceprints import stored_voiceprints
from pipeline.speech.asr import EngineSpec, TranscribeOptions, preset_options
from pipeline.store import DEFAULT_DB, Store

WORKERS = 2  # measured by `make bench`: 2 concurrent calls x 1 thread beat 1 call x 2 threads here


# process_recording never raises (a failure comes back as a failed result), so a retry only
# ever repeats work that hit something transient in Prefect itself. Idempotency lives in DuckDB
# (sha256 + version + model), so no Prefect result cache: its keys could not hash a model anyway.
# The task's description names the stage graph it walks, and each stage is logged as it
# finishes (a call's stages run in one process: its audio never travels between tasks).
@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE, task_run_name="process-{recording.call_id}",
      description=" -> ".join(STAGE_NAMES))
def process_call(recording: Recording, spec: EngineSpec, voiceprint=None,
                 config: EngineConfig = EngineConfig(), policy: Policy | None = None, stop_key: str = "",
                 options: TranscribeOptions | None = None) -> dict | None:
    """One call's record; None when its run was asked to stop (the call is left for the next run)."""
    try:
        return to_record(process_recording(recording, worker_spec(spec), options, voiceprint=voiceprint,
                                           engines=process_engines(config), on_progress=logged_progress(),
                                           policy=policy, on_stage=logged_stage, stop=run_stop(stop_key)))
    except CallCancelled:
        return None


# A run's stop signal, found by its tasks in this process (the thread runner's); a Dask worker's
# tasks run their call to the end.
_STOPS: dict[str, threading.Event] = {}


def run_stop(key: str) -> threading.Event | None:
    # A function, not the dict in the task's body: a task pickled by value for Dask would carry
    # the dict, and its events' locks do not pickle.
    return _STOPS.get(key)


def logged_stage(rec: Recording, stage: str, seconds: float) -> None:
    get_run_logger().info("%s: %s done in %.2f s", rec.call_id, stage, seconds)


# The loaded models of this process, one set per config. A registry at module level, and only
# here at the flow layer: a Prefect task cannot be handed loaded models (they would be pickled
# to every task on a Dask worker), so each process (the flow's own for the thread runner, each
# Dask worker process) builds its set on its first call and its later tasks reuse it.
_PROCESS_ENGINES: dict[EngineConfig, Engines] = {}
_registry_lock = threading.Lock()


def process_engines(config: EngineConfig) -> Engines:
    with _registry_lock:
        return _PROCESS_ENGINES.setdefault(config, Engines(config))


PROGRESS_EVERY_SECONDS = 15.0  # wall-clock between two progress lines of one call


def logged_progress() -> CallProgress:
    """A long call's transcription advancing, in the task's log (throttled: one line per 15 s)."""
    last = time.monotonic()

    def report(rec: Recording, seconds: float) -> None:
        nonlocal last
        if time.monotonic() - last >= PROGRESS_EVERY_SECONDS:
            last = time.monotonic()
            get_run_logger().info("%s: %.0f of %.0f s transcribed", rec.call_id, seconds, rec.duration or 0)
    return report


def worker_spec(spec: EngineSpec) -> EngineSpec:
    """Inside a Dask worker, the engine fits that worker: as many model replicas as it runs task
    threads, and CPU threads per transcription from its own machine: its cores shared among the
    task threads of the worker processes on it (LOCAL_WORKERS_ENV, set for a local cluster; one
    worker process per host otherwise, dask-worker's default). Elsewhere the spec as given."""
    try:
        from distributed import get_worker  # optional: only on a Dask cluster

        worker = get_worker()
    except (ImportError, ValueError):
        return spec
    processes = int(os.environ.get(LOCAL_WORKERS_ENV, "1"))
    threads = max(1, worker.state.nthreads)
    return replace(spec, num_workers=threads, cpu_threads=max(1, (os.cpu_count() or 1) // (threads * processes)))


LOCAL_WORKERS_ENV = "CALLBRIEF_DASK_LOCAL_WORKERS"


def prefect_processor(spec: EngineSpec, store: Store, config: EngineConfig = EngineConfig(),
                      policy: Policy | None = None, options: TranscribeOptions | None = None) -> Processor:
    """Each recording as a Prefect task, with its agent's voiceprint (to find the agent by voice
    on a mono call) and the config its process loads models from; results in submission order."""
    prints = stored_voiceprints(store)

    def run(recordings: list[Recording], stop: threading.Event) -> Iterator[CallResult]:
        key = uuid.uuid4().hex
        _STOPS[key] = stop
        futures = [(process_call.submit(rec, spec, prints.get(rec.metadata.agent_id or ""), config, policy, key,
                                               options), rec)
                   for rec in recordings]
        try:
            for future, rec in futures:
                result = collect(lambda: _record(future.result()), rec)
                if result is not None:
                    yield result
        finally:
            stop.set()  # queued tasks are cancelled, running ones stop at their next segment
            for future, _ in futures:
                wrapped = getattr(future, "wrapped_future", None)
                if wrapped is not None:
                    wrapped.cancel()
            for future, _ in futures:
                try:
                    future.wait(timeout=60)
                except Exception:  # noqa: BLE001 - a cancelled or failed task: nothing to wait for
                    pass
            _STOPS.pop(key, None)
    return run


def _record(record: dict | None) -> CallResult:
    if record is None:
        raise CallCancelled()
    return from_record(record)


@flow(name="nightly", task_runner=ThreadPoolTaskRunner(max_workers=WORKERS), log_prints=True)
def nightly(input_dir: str = str(DEFAULT_INPUT), db_path: str = str(DEFAULT_DB), model: str = "base",
            reprocess: bool = False, workers: int = WORKERS, threads_per_call: int = 0,
            settings_path: str | None = None, preset: str = "accurate") -> dict:
    """`workers`: calls one loaded model transcribes at once (the thread runner runs that many);
    `threads_per_call`: CPU threads per transcription, 0 for the cores split among the workers
    (on Dask, always the worker machine's own cores); `settings_path`: the settings TOML
    (default: $CALLBRIEF_SETTINGS, else ./callbrief.toml); `preset`: "accurate" (the default) or
    "fast" (pipeline.speech.asr.PRESETS; its accuracy is printed by `make bench`)."""
    logger = get_run_logger()
    options = preset_options(preset)
    settings = load_settings(settings_path)
    config = EngineConfig.from_settings(settings)
    spec = engine_for_workers(model, workers)
    spec = replace(spec, cpu_threads=threads_per_call) if threads_per_call > 0 else spec
    store = Store(db_path)
    done = execute(Path(input_dir), store, spec, prefect_processor(spec, store, config, settings.policy, options),
                   flow="nightly", reprocess=reprocess, settings=settings, engines=process_engines(config),
                   options=options,
                   on_plan=lambda plan: logger.info("%d recordings found, %d new, %d already processed, %d missing, "
                                                    "%d refused", plan.n_found, len(plan.todo), len(plan.skipped),
                                                    len(plan.missing), len(plan.rejected)))
    # Handlers open tomorrow's callbacks with fresh briefings for everyone who called; threats and
    # deadlines found by this run (and any delivery still pending) go out as alerts.
    logger.info("briefings refreshed for %d customer(s)", len(done.refreshed))
    delivered = raise_and_deliver(store, [r.call_id for r in done.results if r.status == "ok"], settings)
    logger.info("alerts: %s", delivered)
    for line in nightly_purge(store, settings):  # last: raw data past its retention period goes
        logger.info(line)
    for line in done.run.message.splitlines():
        logger.warning(line)
    rows = result_rows(done.results) + [{"call_id": m.metadata.call_id, "status": "missing", "error": m.file}
                                        for m in done.plan.missing] \
        + [{"call_id": "", "status": "refused", "error": str(r)} for r in done.plan.rejected]
    create_table_artifact(key="nightly-calls", table=rows or [{"call_id": "", "status": "nothing new"}],
                          description=f"Run {done.run.run_id}, {done.run.status.replace('_', ' ')}: "
                                      f"{done.run.n_processed} processed, {done.run.n_failed} failed, "
                                      f"{done.run.n_skipped} skipped, {done.run.n_missing} missing, "
                                      f"{done.run.n_rejected} refused")
    summary = done.run.__dict__ | {"started_at": str(done.run.started_at), "finished_at": str(done.run.finished_at)}
    return summary


def run_nightly(dask_address: str | None = None, dask_workers: int = 0, **parameters) -> dict:
    """The nightly flow on the thread runner (default), an existing Dask cluster (`dask_address`,
    e.g. tcp://scheduler:8786) or a local Dask cluster of `dask_workers` processes (1 thread each)."""
    if not dask_address and dask_workers <= 1:
        workers = parameters.get("workers", WORKERS)
        return nightly.with_options(task_runner=ThreadPoolTaskRunner(max_workers=workers))(**parameters)
    from prefect_dask import DaskTaskRunner  # optional: only on a Dask cluster

    if dask_address:
        runner = DaskTaskRunner(address=dask_address)
    else:
        os.environ[LOCAL_WORKERS_ENV] = str(dask_workers)  # inherited by the worker processes
        runner = DaskTaskRunner(cluster_kwargs={"n_workers": dask_workers, "threads_per_worker": 1,
                                                "processes": True, "dashboard_address": None})
    return nightly.with_options(task_runner=runner)(**parameters)


if __name__ == "__main__":
    nightly()
