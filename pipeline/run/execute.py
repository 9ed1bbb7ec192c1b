"""The one loop behind every entry point: plan, process, write each call through one writer,
record the run, refresh briefings.

Plain functions used by the Prefect flows and the CLI alike; each caller only says how recordings
are processed concurrently (a thread pool here, Prefect tasks in the flows). A call's stages are
`pipeline.run.stages`; what to process is `pipeline.run.plan`.
"""
from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.config.policy import Policy, default_policy
from pipeline.config.settings import Settings
from pipeline.engines import Engines, or_default
from pipeline.outputs.briefing import write_briefing
from pipeline.outputs.plots import write_call_plot
from pipeline.records import CallResult, Recording, RunRecord
from pipeline.run.plan import BatchPlan, plan_batch
from pipeline.run.stages import STAGE_NAMES, CallProgress, StageClock, failed_result, process_recording
from pipeline.speakers.voiceprints import stored_voiceprints
from pipeline.speech.asr import EngineSpec, TranscribeOptions
from pipeline.speech.transcribe import SPLIT_SPEAKERS, load_engine
from pipeline.store import Store, utcnow


def engine_for_workers(model: str, workers: int, engine: str = "faster-whisper") -> EngineSpec:
    """Split the cores between concurrent transcriptions: one model serves `workers` at once."""
    cores = os.cpu_count() or 2
    return EngineSpec(engine=engine, model=model, num_workers=workers, cpu_threads=max(1, cores // workers))


def new_run_id() -> str:
    return f"{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def summarise_run(run_id: str, flow: str, plan: BatchPlan, results: list[CallResult], spec: EngineSpec,
                  started_at, wall_seconds: float, status: str | None = None, message: str = "") -> RunRecord:
    n_failed = sum(r.status == "failed" for r in results)
    if status is None:
        status = "completed_with_failures" if n_failed or plan.missing or plan.rejected else "completed"
    return RunRecord(
        run_id=run_id, flow=flow, input_dir=str(plan.input_dir), engine=spec.engine, model_id=spec.model_id,
        started_at=started_at, finished_at=utcnow() if status != "running" else None, n_found=plan.n_found,
        n_processed=sum(r.status == "ok" for r in results), n_skipped=len(plan.skipped),
        n_failed=n_failed, n_missing=len(plan.missing), n_rejected=len(plan.rejected),
        audio_seconds=sum(r.recording.duration or 0 for r in results), wall_seconds=wall_seconds,
        status=status, message=message or run_message(plan, results),
    )


def run_message(plan: BatchPlan, results: list[CallResult]) -> str:
    """What a person needs to know about a run that did not go cleanly, in one line each."""
    lines = [f"{r.call_id}: {r.error}" for r in results if r.status == "failed"]
    lines += [f"manifest names missing file {m.file} ({m.metadata.call_id})" for m in plan.missing]
    lines += [str(r) for r in plan.rejected]
    return "\n".join(lines)


def refresh_briefings(store: Store, results: list[CallResult], also: Iterable[str] = (), settings=None) -> list[str]:
    """Rewrite the briefing of every customer with a newly processed call (and of `also`);
    `settings`: the centre's time zone and callback target (defaults when None)."""
    customers = sorted({r.recording.metadata.customer_id for r in results
                        if r.status == "ok" and r.recording.metadata.customer_id} | set(also))
    for customer in customers:
        with store.session():  # one connection for the briefing's reads and its write
            write_briefing(store, customer, settings=settings)
    return customers


def result_rows(results: Iterable[CallResult]) -> list[dict]:
    """One line per call for tables (the Prefect run's artifact): status, and seconds per stage of the graph."""
    rows = []
    for r in results:
        seconds = {t.stage: t.seconds for t in r.timings}
        rows.append({"call_id": r.call_id, "status": r.status, "language": r.transcript.language if r.transcript else "",
                     "duration_s": round(r.recording.duration or 0, 1), "turns": len(r.turns),
                     **{f"{name}_s": round(seconds[name], 2) for name in STAGE_NAMES if name in seconds},
                     "error": r.error or ""})
    return rows


# How a caller processes the planned recordings concurrently: recordings in, results out as
# they finish. A thread pool here; Prefect task futures in the flows.
Processor = Callable[[list[Recording]], Iterable[CallResult]]


def thread_processor(spec: EngineSpec, workers: int, options: TranscribeOptions | None = None,
                     voiceprints: dict | None = None, engines: Engines | None = None,
                     on_progress: CallProgress | None = None, policy: Policy | None = None) -> Processor:
    """`voiceprints`: agent_id -> Voiceprint, to find the agent by voice on mono calls. The
    threads share `engines` (one loaded model each)."""
    prints = voiceprints or {}
    engines = or_default(engines)

    def run(recordings: list[Recording]) -> Iterator[CallResult]:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {pool.submit(process_recording, rec, spec, options, SPLIT_SPEAKERS,
                                   prints.get(rec.metadata.agent_id or ""), engines, on_progress, policy): rec
                       for rec in recordings}
            for future in as_completed(futures):
                yield collect(future.result, futures[future])
    return run


def collect(get_result: Callable[[], CallResult], rec: Recording) -> CallResult:
    """A finished unit of work as a result, even if the worker itself raised (a crash outside
    process_recording's own guard, a lost worker): never lets one call stop the batch."""
    try:
        return get_result()
    except Exception as exc:  # noqa: BLE001
        return failed_result(rec, StageClock(), exc)


@dataclass
class Execution:
    """One run: what was planned, what came back, and the run row."""

    run: RunRecord
    results: list[CallResult]
    plan: BatchPlan
    refreshed: list[str]


def execute(input_dir: Path, store: Store, spec: EngineSpec, processor: Processor, flow: str = "cli",
            reprocess: bool = False, customer_id: str | None = None, refresh: bool = True,
            on_result: Callable[[CallResult], None] | None = None, on_plan: Callable[[BatchPlan], None] | None = None,
            settings=None, options: TranscribeOptions | None = None,
            select: Callable[[Recording], bool] | None = None, engines: Engines | None = None) -> Execution:
    """The one loop behind every entry point: plan, process, write each call as it finishes
    (one writer), record the run (a row at the start, completed at the end; a killed run is
    marked interrupted by the next), refresh briefings (including those a killed run left stale).
    `engines`: the processor's loaded models, so the early model check loads the one it will use."""
    started_at, clock = utcnow(), time.perf_counter()
    run_id = new_run_id()
    store.mark_interrupted()
    plan = plan_batch(input_dir, store, spec, reprocess, customer_id=customer_id, settings=settings, options=options)
    if select is not None:  # e.g. the intake's "file complete" test
        plan = replace(plan, todo=[r for r in plan.todo if select(r)])
    if on_plan:
        on_plan(plan)
    store.start_run(summarise_run(run_id, flow, plan, [], spec, started_at, 0.0, status="running"))
    results: list[CallResult] = []
    try:
        if plan.todo:
            load_engine(spec, engines)  # fail fast (e.g. model missing) before any call is touched
        for result in processor(plan.todo):
            write_result(store, result, run_id, plan.attempts.get(result.call_id, 1), plan.fingerprint,
                         (settings or Settings()).policy)
            results.append(result)
            if on_result:
                on_result(result)
    except BaseException as exc:
        store.record_run(summarise_run(run_id, flow, plan, results, spec, started_at, time.perf_counter() - clock,
                                       status="failed", message=f"{exc.__class__.__name__}: {exc}"))
        raise
    run = summarise_run(run_id, flow, plan, results, spec, started_at, time.perf_counter() - clock)
    store.record_run(run)
    refreshed: list[str] = []
    if refresh:
        stale, stale_runs = store.customers_to_refresh()
        refreshed = refresh_briefings(store, results, also=stale, settings=settings)
        store.mark_briefings_refreshed([run_id, *stale_runs])
    return Execution(run, results, plan, refreshed)


def write_result(store: Store, result: CallResult, run_id: str | None = None, attempts: int = 1, fingerprint: str = "",
                 policy: Policy | None = None) -> None:
    """Write one call (its escalation plot drawn beside the database first); if even that fails (a
    bug on odd data), store it as failed with the reason."""
    try:
        plot = write_call_plot(result, store.path.parent / "plots", (policy or default_policy()).reported_flags)
        store.write_call(result, run_id, attempts, fingerprint, plot_path=str(plot) if plot else None)
    except Exception as exc:  # noqa: BLE001
        store.write_call(failed_result(result.recording, StageClock(first="store"), exc, timings=result.timings),
                         run_id, attempts, fingerprint)


def run_batch(input_dir: Path, db_path: Path, model: str = "base", workers: int = 2, reprocess: bool = False,
              options: TranscribeOptions | None = None, on_result: Callable[[CallResult], None] | None = None,
              flow: str = "cli", customer_id: str | None = None, refresh: bool = True,
              on_plan: Callable[[BatchPlan], None] | None = None, settings: Settings | None = None,
              on_progress: CallProgress | None = None) -> tuple[RunRecord, list[CallResult]]:
    """The nightly job without Prefect: a thread pool for concurrency, one writer for DuckDB.
    `customer_id` limits it to one customer's recordings; `refresh` rewrites the briefings of
    the customers it processed. `settings` (from the entry point; defaults when None) say where
    the models are; `on_progress` hears each call's transcription advance."""
    settings = settings or Settings()
    spec = engine_for_workers(model, workers)
    store = Store(db_path)
    engines = Engines.from_settings(settings)
    processor = thread_processor(spec, workers, options, stored_voiceprints(store), engines, on_progress,
                                 settings.policy)
    done = execute(Path(input_dir), store, spec, processor, flow=flow, reprocess=reprocess, customer_id=customer_id,
                   refresh=refresh, on_result=on_result, on_plan=on_plan, options=options, settings=settings,
                   engines=engines)
    return done.run, done.results
