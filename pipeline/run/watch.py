"""Continuous intake: process each recording minutes after it lands, so the worklist, briefings
and alerts are current during the day. The nightly run stays for reprocessing and reports.

A pass is stateless, so it runs the same from a polling loop (`watch`, `callbrief intake`) or a
Prefect deployment on an interval (`flows/intake.py`):
1. look at the folder: a file is complete once it has not changed for `intake_settle_seconds`
   (copies and uploads keep touching it while they write); a complete file is new when no
   call row for its path was processed after it last changed;
2. if anything is new, the run loop (`run.execute.execute`, as the nightly run and the CLI) over the
   folder, keeping only complete files: skip by sha256, one transaction per call, centre time
   zone from the settings, briefings refreshed;
3. raise alerts for the calls just processed, and work the whole alert outbox, so deliveries
   that failed earlier are retried on every pass.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pipeline.engines import Engines
from pipeline.intake.audio import SUPPORTED_EXTENSIONS
from pipeline.intake.ingest import REJECTED_AUDIO_EXTENSIONS, sha256_file
from pipeline.outputs.alerts import DeliveryReport, raise_and_deliver
from pipeline.records import CallResult, Recording, RunRecord
from pipeline.run.execute import engine_for_workers, execute, thread_processor
from pipeline.speakers.voiceprints import stored_voiceprints
from pipeline.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntakeReport:
    new_files: tuple[Path, ...]  # complete and not processed since they last changed
    incomplete: tuple[Path, ...]  # still being written: left for a later pass
    run: RunRecord | None  # None when nothing was new
    results: tuple[CallResult, ...] = field(default_factory=tuple)
    deliveries: DeliveryReport | None = None
    error: str | None = None  # processing failed this pass (e.g. model missing); retried next pass

    def line(self) -> str:
        calls = ", ".join(f"{r.call_id} {r.status}" for r in self.results) or "nothing new"
        d = self.deliveries
        sent = f"; alerts: {d.delivered} delivered, {d.pending} pending" if d else ""
        waiting = f"; {len(self.incomplete)} file(s) still arriving" if self.incomplete else ""
        failed = f"; processing failed: {self.error}" if self.error else ""
        return f"intake: {calls}{waiting}{failed}{sent}"


def is_complete(path: Path, settle_seconds: float, now: float | None = None) -> bool:
    """Not modified for `settle_seconds`: a writer still copying keeps moving the mtime."""
    try:
        return (now or time.time()) - path.stat().st_mtime >= settle_seconds
    except FileNotFoundError:  # moved away between listing and looking
        return False


def _file_key(path: Path) -> tuple[str, int, int] | None:
    """(path, size, mtime in ns): how planning's hash cache knows a file; None once it is gone."""
    try:
        stat = path.stat()
    except FileNotFoundError:  # moved away between listing and looking
        return None
    return str(path), stat.st_size, stat.st_mtime_ns


def audio_files(folder: Path) -> list[Path]:
    wanted = SUPPORTED_EXTENSIONS | REJECTED_AUDIO_EXTENSIONS
    return sorted(p.resolve() for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in wanted)


def scan(folder: Path, store: Store, settle_seconds: float, now: float | None = None) -> tuple[list[Path], list[Path]]:
    """(new complete files, files still arriving)."""
    now = now or time.time()
    done, purged = store.processed_paths(), store.purged_files()
    new, incomplete = [], []
    for path in audio_files(folder):
        if not is_complete(path, settle_seconds, now):
            incomplete.append(path)
            continue
        if purged and _file_key(path) in purged:
            continue  # a recording whose retention ended: its path is forgotten, it is never processed again
        if str(path) not in done:
            new.append(path)
            continue
        processed, sha = done[str(path)]
        changed = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).replace(tzinfo=None)
        # Touched since it was processed: new only if its contents changed (else every pass would rerun it).
        if processed.to_pydatetime() < changed and sha256_file(path) != sha:
            new.append(path)
    return new, incomplete


def intake_pass(folder: Path, db_path: Path, settings, model: str = "base", workers: int = 1,
                engines: Engines | None = None) -> IntakeReport:
    """One pass. `engines`: the loaded models, kept between passes by a watcher (built from
    `settings` when None)."""
    folder, db_path = Path(folder), Path(db_path)
    if not folder.is_dir():
        raise FileNotFoundError(f"intake folder {folder} does not exist")
    with Store(db_path) as store:
        new, incomplete = scan(folder, store, settings.intake_settle_seconds)
    run, results, error = None, [], None
    if new:
        settle = settings.intake_settle_seconds

        def complete(rec: Recording) -> bool:
            return is_complete(Path(rec.path), settle)

        try:
            spec = engine_for_workers(model, workers)
            store = Store(db_path)
            engines = engines or Engines.from_settings(settings)
            processor = thread_processor(spec, workers, voiceprints=stored_voiceprints(store), engines=engines)
            # No batch lock: the nightly batch may run beside the intake; claims keep them apart.
            done = execute(folder, store, spec, processor, flow="intake", settings=settings, select=complete,
                           engines=engines, exclusive=False)
            run, results = done.run, done.results
        except Exception as exc:  # the outbox below still gets its pass
            error = f"{type(exc).__name__}: {exc}"
            log.error("intake: processing failed, retried next pass: %s", error)
    with Store(db_path) as store:
        report = raise_and_deliver(store, [r.call_id for r in results if r.status == "ok"], settings)
    for error in report.errors:
        log.warning("alert delivery failed (will retry): %s", error)
    return IntakeReport(tuple(new), tuple(incomplete), run, tuple(results), report, error)


def watch(folder: Path, db_path: Path, settings, model: str = "base", stop: threading.Event | None = None,
          on_pass=None, max_passes: int | None = None) -> int:
    """Poll the folder every `intake_interval_seconds` until `stop` is set; returns the passes run.
    A pass that fails (e.g. the database busy) is logged and the next one tries again."""
    stop = stop or threading.Event()
    engines = Engines.from_settings(settings)  # loaded on the first call, then kept for every pass
    passes = 0
    while not stop.is_set() and (max_passes is None or passes < max_passes):
        try:
            report = intake_pass(folder, db_path, settings, model, engines=engines)
            if on_pass:
                on_pass(report)
        except FileNotFoundError:
            raise
        except Exception as exc:  # keep watching: the next pass retries
            log.error("intake pass failed: %s", exc)
        passes += 1
        if max_passes is None or passes < max_passes:
            stop.wait(settings.intake_interval_seconds)
    return passes
