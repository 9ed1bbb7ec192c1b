"""The one loop behind every entry point: plan, process, write each call through one writer,
record the run, refresh briefings.

Plain functions used by the Prefect flows and the CLI alike; each caller only says how recordings
are processed concurrently (a thread pool here, Prefect tasks in the flows). A call's stages are
`pipeline.run.stages`; what to process is `pipeline.run.plan`.

What a run guarantees (docs/architecture.md, "Safety"):
- one batch per database at a time (`pipeline.run.lock`); calls a running run has claimed are
  left to it (a handler's brief, a second batch);
- a stop (Ctrl-C, SIGTERM: KeyboardInterrupt in the main thread) or a fatal write error (a full
  disk, a read-only folder, the database held too long) stops the run at once: queued calls are
  never started, running ones stop at their next segment, the call being written finishes or
  rolls back, and the run is recorded as cancelled or failed;
- the run row's counts are what the calls table holds for the run; its status says what
  happened, one line per problem;
- briefings are refreshed at the end of a run that finished, for its customers and for those of
  every earlier run that did not refresh them (interrupted, failed, cancelled); one customer's
  failed refresh never stops the others.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.config.policy import Policy, default_policy
from pipeline.config.settings import Settings
from pipeline.engines import Engines, or_default
from pipeline.outputs.briefing import NoCalls, write_briefing
from pipeline.outputs.plots import write_call_plot
from pipeline.records import CallResult, Recording, RunRecord
from pipeline.run.lock import batch_lock
from pipeline.run.plan import BatchPlan, plan_batch
from pipeline.run.stages import STAGE_NAMES, CallCancelled, CallProgress, StageClock, failed_result, process_recording
from pipeline.speakers.voiceprints import stored_voiceprints
from pipeline.speech.asr import EngineSpec, TranscribeOptions
from pipeline.speech.transcribe import SPLIT_SPEAKERS, load_engine
from pipeline.store import Store, StoreBusy, StoreError, explained, utcnow

log = logging.getLogger(__name__)

# How long a batch keeps trying to write a call while another process holds the database (a
# long report, a stuck reader): longer than any read, short enough for a night.
WRITE_PATIENCE_SECONDS = 1800.0


def engine_for_workers(model: str, workers: int, engine: str = "faster-whisper") -> EngineSpec:
    """Split the cores between concurrent transcriptions: one model serves `workers` at once."""
    cores = os.cpu_count() or 2
    return EngineSpec(engine=engine, model=model, num_workers=workers, cpu_threads=max(1, cores // workers))


def new_run_id() -> str:
    return f"{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def run_record(run_id: str, flow: str, plan: BatchPlan, spec: EngineSpec, started_at, wall_seconds: float,
               counts: tuple[int, int, float] = (0, 0, 0.0), status: str = "running", message: str = "") -> RunRecord:
    n_ok, n_failed, seconds = counts
    return RunRecord(
        run_id=run_id, flow=flow, input_dir=str(plan.input_dir), engine=spec.engine, model_id=spec.model_id,
        started_at=started_at, finished_at=utcnow() if status != "running" else None, n_found=plan.n_found,
        n_processed=n_ok, n_skipped=len(plan.skipped) + len(plan.copies), n_failed=n_failed,
        n_missing=len(plan.missing), n_rejected=len(plan.rejected), audio_seconds=seconds,
        wall_seconds=wall_seconds, status=status, message=message)


def plan_problems(plan: BatchPlan) -> list[str]:
    """What a person needs to know about a plan, in one line each."""
    lines = [f"manifest names missing file {m.file} ({m.metadata.call_id})" for m in plan.missing]
    lines += [str(r) for r in plan.rejected]
    lines += [f"{r.call_id}: left to the run that is processing it now" for r in plan.claimed]
    return lines


def refresh_briefings(store: Store, results: Iterable[CallResult] = (), also: Iterable[str] = (), settings=None,
                      problems: list[str] | None = None) -> list[str]:
    """Rewrite the briefing of every customer with a call in `results` stored ok (and of `also`);
    `settings`: the centre's time zone and callback target (defaults when None). A customer whose
    refresh fails is a line in `problems`; the others go on. A customer without a processed
    call has no briefing to write. Returns the customers refreshed."""
    customers = sorted({r.recording.metadata.customer_id for r in results
                        if r.status == "ok" and r.recording.metadata.customer_id} | set(also))
    refreshed = []
    for customer in customers:
        try:
            with store.session():  # one connection for the briefing's reads and its write
                write_briefing(store, customer, settings=settings)
            refreshed.append(customer)
        except NoCalls:
            continue
        except StoreError:  # the database, not the customer: the caller stops refreshing
            raise
        except Exception as exc:  # noqa: BLE001 - one customer's briefing never stops the others'
            log.error("briefing of %s failed: %s: %s", customer, exc.__class__.__name__, exc)
            if problems is not None:
                problems.append(f"briefing of customer {customer} not refreshed: {exc.__class__.__name__}: {exc}")
    return refreshed


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


# How a caller processes the planned recordings concurrently: recordings in, results out as they
# finish; `stop` set means: start nothing more, and the running calls stop at their next segment.
# A thread pool here; Prefect task futures in the flows.
Processor = Callable[[list[Recording], threading.Event], Iterable[CallResult]]


def thread_processor(spec: EngineSpec, workers: int, options: TranscribeOptions | None = None,
                     voiceprints: dict | None = None, engines: Engines | None = None,
                     on_progress: CallProgress | None = None, policy: Policy | None = None) -> Processor:
    """`voiceprints`: agent_id -> Voiceprint, to find the agent by voice on mono calls. The
    threads share `engines` (one loaded model each)."""
    prints = voiceprints or {}
    engines = or_default(engines)

    def run(recordings: list[Recording], stop: threading.Event) -> Iterator[CallResult]:
        pool = ThreadPoolExecutor(max_workers=max(1, workers))
        futures = {pool.submit(process_recording, rec, spec, options, SPLIT_SPEAKERS,
                               prints.get(rec.metadata.agent_id or ""), engines, on_progress, policy, None, stop): rec
                   for rec in recordings}
        try:
            for future in as_completed(futures):
                try:
                    yield future.result()
                except CallCancelled:
                    continue
                except Exception as exc:  # noqa: BLE001 - a crash outside process_recording's guard
                    yield failed_result(futures[future], StageClock(), exc)
        finally:
            # A run that stops early: queued calls never start, running ones stop at their next
            # segment (a stop must not wait for every queued call to be transcribed and thrown away).
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
    return run


def collect(get_result: Callable[[], CallResult], rec: Recording) -> CallResult | None:
    """A finished unit of work as a result, even if the worker itself raised (a crash outside
    process_recording's own guard, a lost worker): never lets one call stop the batch. None for
    a call cancelled by a stop."""
    try:
        return get_result()
    except CallCancelled:
        return None
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
            select: Callable[[Recording], bool] | None = None, engines: Engines | None = None,
            wait_seconds: float = 0.0, write_patience: float = WRITE_PATIENCE_SECONDS,
            exclusive: bool | None = None) -> Execution:
    """The one loop behind every entry point: plan, process, write each call as it finishes
    (one writer), record the run (a row at the start, completed at the end; a killed run is
    marked interrupted by the next), refresh briefings (including those a run that did not finish
    cleanly left stale). A batch (`exclusive`; by default any run not limited to one customer)
    holds the database's batch lock, waiting `wait_seconds` for a batch already running
    (BatchRunning after); a handler's brief and an intake pass take none and rely on claims alone. `engines`: the processor's loaded models, so the early model check loads the one it
    will use. A stop (KeyboardInterrupt) ends the run as cancelled, then raises RunStopped (a
    KeyboardInterrupt that carries the recorded run), so the caller stops too."""
    run_id = new_run_id()
    if exclusive is None:
        exclusive = customer_id is None
    lock = batch_lock(store.path, run_id, wait_seconds) if exclusive else nullcontext()
    with ExitStack() as held:
        try:
            held.enter_context(lock)
        except OSError as exc:  # the lock file beside the database: a full disk, a read-only folder
            raise (explained(exc, store.path) or exc) from exc
        return _execute(run_id, input_dir, store, spec, processor, flow, reprocess, customer_id, refresh, on_result,
                        on_plan, settings or Settings(), options, select, engines, write_patience)


def _execute(run_id, input_dir, store: Store, spec, processor: Processor, flow, reprocess, customer_id, refresh,
             on_result, on_plan, settings: Settings, options, select, engines, write_patience) -> Execution:
    started_at, clock = utcnow(), time.perf_counter()
    store.mark_interrupted()
    plan = plan_batch(input_dir, store, spec, reprocess, customer_id=customer_id, settings=settings, options=options)
    if select is not None:  # e.g. the intake's "file complete" test
        plan = replace(plan, todo=[r for r in plan.todo if select(r)])
    store.start_run(run_record(run_id, flow, plan, spec, started_at, 0.0))
    taken = store.claim_calls(run_id, [(r.call_id, r.sha256, str(r.path)) for r in plan.todo])
    plan = replace(plan, todo=[r for r in plan.todo if r.call_id not in taken],
                   claimed=[r for r in plan.todo if r.call_id in taken])
    for rec, call_id in plan.copies:  # a new name for audio already processed: another path of that call
        store.add_call_path(call_id, str(rec.path), rec.sha256)
    if on_plan:
        on_plan(plan)
    stop = threading.Event()
    results: list[CallResult] = []
    status, problem, raised = None, "", None
    stream = processor(plan.todo, stop)
    try:
        if plan.todo:
            load_engine(spec, engines)  # fail fast (e.g. model missing) before any call is touched
        for result in stream:
            if result is None:
                continue
            write_result(store, result, run_id, plan.attempts.get(result.call_id, 1), plan.fingerprint,
                         settings.policy, write_patience)
            results.append(result)
            _heartbeat(store, run_id)
            if on_result:
                on_result(result)
    except KeyboardInterrupt:
        status, problem = "cancelled", ("stopped by Ctrl-C or SIGTERM: the calls not yet written are left for "
                                        "the next run")
    except StoreError as exc:  # every later write would fail the same way
        status, problem = "failed", f"stopped: {exc}"
    except BaseException as exc:  # noqa: BLE001 - recorded, then raised again
        status, problem, raised = "failed", f"stopped: {exc.__class__.__name__}: {exc}", exc
    finally:
        stop.set()
        close = getattr(stream, "close", None)
        if close:
            close()
    # The run's own bookkeeping waits for a busy database as long as a call's write does.
    patient = store.waiting(write_patience)
    run = _finish(patient, run_id, flow, plan, spec, started_at, time.perf_counter() - clock, status, problem)
    refreshed: list[str] = []
    if status is None:
        run, refreshed = _refresh(patient, run, refresh, settings)
    if raised is not None:
        raise raised
    if status == "cancelled":  # the caller stops too (a watcher, a brief); the run is recorded
        raise RunStopped(Execution(run, results, plan, refreshed))
    return Execution(run, results, plan, refreshed)


class RunStopped(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM, after it recorded itself as cancelled."""

    def __init__(self, execution: Execution):
        super().__init__(execution.run.message.splitlines()[0] if execution.run.message else "cancelled")
        self.execution = execution


def _heartbeat(store: Store, run_id: str) -> None:
    """Say the run is alive (for a run on another host); a busy database only delays it."""
    try:
        store.waiting(1.0).heartbeat(run_id)
    except StoreError as exc:
        log.warning("heartbeat of run %s skipped: %s", run_id, exc)


def _refresh(store: Store, run: RunRecord, refresh: bool, settings: Settings) -> tuple[RunRecord, list[str]]:
    """Refresh the briefings a finished run owes (see `refresh_briefings`); a run that ends with
    any not refreshed is completed_with_failures, and the next run tries them again."""
    if not refresh:  # the caller writes the one briefing it runs for (a handler's brief)
        try:
            store.mark_briefings_refreshed([run.run_id])
        except StoreError as exc:
            log.error("run %s: %s", run.run_id, exc)
        return run, []
    problems: list[str] = []
    refreshed: list[str] = []
    try:
        stale, stale_runs = store.customers_to_refresh(current_run=run.run_id)
        refreshed = refresh_briefings(store, also=[*store.run_customers(run.run_id), *stale], settings=settings,
                                      problems=problems)
        if not problems:
            store.mark_briefings_refreshed([run.run_id, *stale_runs])
    except StoreError as exc:
        problems.append(f"briefings not refreshed: {exc}")
    if problems:
        run = replace(run, status="completed_with_failures", message="\n".join(filter(None, [run.message, *problems])))
        try:
            store.record_run(run)
        except StoreError as exc:
            log.error("run %s could not be recorded: %s", run.run_id, exc)
    return run, refreshed


def _finish(store: Store, run_id: str, flow: str, plan: BatchPlan, spec: EngineSpec, started_at, wall: float,
            status: str | None, problem: str) -> RunRecord:
    """The run row, from what the calls table holds for the run; its claims released."""
    try:
        counts = store.run_counts(run_id)
        failures = store.run_failures(run_id)
    except StoreError as exc:  # the database itself is what failed: the next run marks this one interrupted
        log.error("run %s could not be recorded: %s", run_id, exc)
        return run_record(run_id, flow, plan, spec, started_at, wall, status=status or "failed", message=problem)
    if status is None:
        # Calls left to another running run are not failures: the message says so, the status does not.
        status = "completed_with_failures" if counts[1] or plan.missing or plan.rejected else "completed"
    lines = [problem] if problem else []
    run = run_record(run_id, flow, plan, spec, started_at, wall, counts, status,
                     "\n".join(lines + failures + plan_problems(plan)))
    try:
        store.record_run(run)
        store.release_claims(run_id)
    except StoreError as exc:
        log.error("run %s could not be recorded: %s", run_id, exc)
    return run


def write_result(store: Store, result: CallResult, run_id: str | None = None, attempts: int = 1, fingerprint: str = "",
                 policy: Policy | None = None, patience: float = WRITE_PATIENCE_SECONDS) -> bool:
    """Write one call (its escalation plot drawn beside the database first); if that fails for the
    call's own sake (a bug on odd data), store it as failed with the reason. While another process
    holds the database, keep trying for `patience` seconds. A failure of the database itself (a
    full disk, a read-only folder, held too long) raises StoreError: it stops the run. Returns
    whether the call was stored as processed."""
    deadline = time.monotonic() + patience
    while True:
        try:
            plot = write_call_plot(result, store.path.parent / "plots", (policy or default_policy()).reported_flags)
            store.write_call(result, run_id, attempts, fingerprint, plot_path=str(plot) if plot else None)
            return result.status == "ok"
        except StoreBusy as exc:
            if time.monotonic() > deadline:
                raise StoreError(f"the database was held by another process for more than {patience / 60:.0f} min: "
                                 f"{exc}") from None
            log.warning("%s: the database is busy; trying again to write the call", result.call_id)
        except StoreError:
            raise
        except OSError as exc:  # the plot's file: a full disk is the run's problem, not the call's
            if (named := explained(exc, store.path)) is not None:
                raise named from exc
            return _write_failed(store, result, run_id, attempts, fingerprint, exc)
        except Exception as exc:  # noqa: BLE001
            return _write_failed(store, result, run_id, attempts, fingerprint, exc)


def _write_failed(store: Store, result: CallResult, run_id, attempts, fingerprint, exc: Exception) -> bool:
    store.write_call(failed_result(result.recording, StageClock(first="store"), exc, timings=result.timings),
                     run_id, attempts, fingerprint)
    return False


def run_batch(input_dir: Path, db_path: Path, model: str = "base", workers: int = 2, reprocess: bool = False,
              options: TranscribeOptions | None = None, on_result: Callable[[CallResult], None] | None = None,
              flow: str = "cli", customer_id: str | None = None, refresh: bool = True,
              on_plan: Callable[[BatchPlan], None] | None = None, settings: Settings | None = None,
              on_progress: CallProgress | None = None, wait_seconds: float = 0.0) -> tuple[RunRecord, list[CallResult]]:
    """The nightly job without Prefect: a thread pool for concurrency, one writer for DuckDB.
    `customer_id` limits it to one customer's recordings; `refresh` rewrites the briefings of
    the customers it processed. `settings` (from the entry point; defaults when None) say where
    the models are; `on_progress` hears each call's transcription advance; `wait_seconds`: how
    long to wait for another batch on the same database."""
    settings = settings or Settings()
    spec = engine_for_workers(model, workers)
    store = Store(db_path)
    engines = Engines.from_settings(settings)
    processor = thread_processor(spec, workers, options, stored_voiceprints(store), engines, on_progress,
                                 settings.policy)
    done = execute(Path(input_dir), store, spec, processor, flow=flow, reprocess=reprocess, customer_id=customer_id,
                   refresh=refresh, on_result=on_result, on_plan=on_plan, options=options, settings=settings,
                   engines=engines, wait_seconds=wait_seconds)
    return done.run, done.results
