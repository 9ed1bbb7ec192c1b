"""Process a folder of recordings: plan what is new, process each call, summarise the run.

Plain functions used by both the Prefect flows and the CLI. `process_recording` never raises
on bad input: it returns a failed `CallResult` with the reason, so the batch goes on.
"""
from __future__ import annotations

import logging
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

from . import __version__ as PIPELINE_VERSION
from .asr import EngineSpec, TranscribeOptions, load_engine
from .audio import BadRecording, decode, probe
from .ingest import ManifestRow, discover
from .store import RunRecord, Store, utcnow
from .align import assign_speakers, build_turns, turns_from_segments
from .dynamics import interrupts, measure
from .escalation import score_call, turn_features
from .roles import infer_roles
from .speakers import diarize
from .summary import summarise
from .streams import speaker_streams, transcribe_streams
from .types import CallResult, Recording, StageTiming, Transcript, join_words
from .vocabulary import correct_transcript

# Measured with `make bench` on the sample calls: see README ("Speakers").
SPLIT_SPEAKERS = True

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchPlan:
    input_dir: Path
    todo: list[Recording]
    skipped: list[Recording]  # already processed: same contents, pipeline version and model
    missing: list[ManifestRow]  # manifest rows naming files that do not exist

    @property
    def n_found(self) -> int:
        return len(self.todo) + len(self.skipped)


def plan_batch(input_dir: Path, store: Store, spec: EngineSpec, reprocess: bool = False,
               manifest: Path | None = None, customer_id: str | None = None) -> BatchPlan:
    found = discover(Path(input_dir), manifest)
    recordings = [r for r in found.recordings if customer_id is None or r.metadata.customer_id == customer_id]
    done = store.processed_keys()
    todo, skipped = [], []
    for rec in recordings:
        key = (rec.sha256, PIPELINE_VERSION, spec.model_id)
        if not reprocess and done.get(rec.call_id) in (key, (rec.sha256, PIPELINE_VERSION, None)):
            skipped.append(rec)
        else:
            todo.append(rec)
    return BatchPlan(Path(input_dir), todo, skipped, found.missing)


def process_recording(rec: Recording, spec: EngineSpec, options: TranscribeOptions | None = None,
                      split: bool = SPLIT_SPEAKERS) -> CallResult:
    """Decode, separate speakers, transcribe and attribute one recording.

    Bad input ends as a failed result, not an exception. With `split`, each speaker (stereo
    channel, or diarized mono speaker) is transcribed on their own and words come out
    attributed; without it the down-mix is transcribed and words are attributed by time
    overlap with the speakers' segments.
    """
    options = options or TranscribeOptions()
    timings: list[StageTiming] = []
    clock = time.perf_counter()
    try:
        info = probe(rec.path)
        rec = replace(rec, duration=info.duration, channels=info.channels, sample_rate=info.sample_rate)
        audio = decode(rec.path, info=info)
        rec = replace(rec, duration=audio.duration)
    except BadRecording as exc:
        log.warning("%s: %s", rec.call_id, exc)
        return CallResult(recording=rec, status="failed", error=str(exc))
    clock = _lap(timings, "decode", clock)

    if rec.metadata.language:
        options = replace(options, language=rec.metadata.language)
    diarization = diarize(audio.samples)
    clock = _lap(timings, "speakers", clock)

    transcript = transcribe_call(audio, diarization, spec, options, split)
    clock = _lap(timings, "transcribe", clock)
    return analyse_call(rec, audio, diarization, transcript, timings)


def transcribe_call(audio, diarization, spec: EngineSpec, options: TranscribeOptions,
                    split: bool = SPLIT_SPEAKERS) -> Transcript:
    """Whisper over each speaker's own stream (stereo channel or diarized speaker), or the down-mix."""
    engine = load_engine(spec)
    if split and (diarization.method == "channels" or diarization.n_speakers > 1):
        return transcribe_streams(engine, speaker_streams(audio.samples, diarization), options)
    return engine.transcribe(audio.mono(), options)


def analyse_call(rec: Recording, audio, diarization, transcript: Transcript,
                 timings: list[StageTiming] | None = None, correct: bool = True) -> CallResult:
    """Everything after recognition: vocabulary correction, words to speakers and turns, roles,
    dynamics, escalation, summary. Separate from recognition so later stages can be re-run (and
    tested) on a stored transcript, independent of the characters Whisper writes on a given CPU."""
    timings = list(timings or [])
    clock = time.perf_counter()
    corrections = ()
    if correct:
        transcript, corrections = correct_transcript(transcript)
        clock = _lap(timings, "correct", clock)
    if not transcript.segments:
        return CallResult(recording=rec, status="failed", transcript=transcript, timings=tuple(timings),
                          diarization=diarization, corrections=corrections,
                          error="no speech detected (voice activity found none, or only known hallucinations)")

    words = transcript.words
    # Per-speaker streams hand back segments that already carry their speaker.
    attributed = all(seg.speaker for seg in transcript.segments)
    if attributed:
        speakers = [seg.speaker for seg in transcript.segments for _ in seg.words]
    else:
        speakers = assign_speakers(words, diarization)
    texts: dict[str, list[str]] = {}
    for word, speaker in zip(words, speakers):
        texts.setdefault(speaker or "", []).append(word.text)
    roles = infer_roles(diarization, {k: join_words(v) for k, v in texts.items()}, rec.metadata.agent_channel)
    if attributed:
        turns = turns_from_segments(transcript.segments, roles, transcript.language)
    else:
        order = sorted(range(len(words)), key=lambda i: words[i].start)
        turns = build_turns([words[i] for i in order], [speakers[i] for i in order], roles, transcript.language)
    dynamics = measure(diarization, roles, turns, audio.duration, transcript.language)
    clock = _lap(timings, "align", clock)

    escalation = assess_escalation(audio, turns, transcript.language)
    clock = _lap(timings, "escalation", clock)
    summary = summarise(rec.call_id, turns, transcript.language, escalation)
    _lap(timings, "summary", clock)
    return CallResult(recording=rec, status="ok", transcript=transcript, turns=turns, timings=tuple(timings),
                      word_speakers=tuple(speakers), roles=roles, diarization=diarization, dynamics=dynamics,
                      escalation=escalation, summary=summary, corrections=corrections)


def assess_escalation(audio, turns, language: str):
    """Escalation of a call: each turn's voice measured on its speaker's own channel when stereo."""
    channel_audio = {None: audio.mono()}
    if audio.channels > 1:
        channel_audio |= {f"ch{i}": audio.samples[i] for i in range(audio.channels)}
    flags = interrupts([(t.start, t.end, t.role) for t in turns])
    features = turn_features(turns, channel_audio, language, {i for i, f in enumerate(flags) if f})
    return score_call(features, audio.duration)


def _lap(timings: list[StageTiming], stage: str, since: float) -> float:
    now = time.perf_counter()
    timings.append(StageTiming(stage, now - since))
    return now


def engine_for_workers(model: str, workers: int, engine: str = "faster-whisper") -> EngineSpec:
    """Split the cores between concurrent transcriptions: one model serves `workers` at once."""
    cores = os.cpu_count() or 2
    return EngineSpec(engine=engine, model=model, num_workers=workers, cpu_threads=max(1, cores // workers))


def new_run_id() -> str:
    return f"{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def summarise_run(run_id: str, flow: str, plan: BatchPlan, results: list[CallResult], spec: EngineSpec,
                  started_at, wall_seconds: float) -> RunRecord:
    return RunRecord(
        run_id=run_id, flow=flow, input_dir=str(plan.input_dir), engine=spec.engine, model_id=spec.model_id,
        started_at=started_at, finished_at=utcnow(), n_found=plan.n_found,
        n_processed=sum(r.status == "ok" for r in results), n_skipped=len(plan.skipped),
        n_failed=sum(r.status == "failed" for r in results), n_missing=len(plan.missing),
        audio_seconds=sum(r.recording.duration or 0 for r in results), wall_seconds=wall_seconds,
    )


def refresh_briefings(store: Store, results: list[CallResult]) -> list[str]:
    """Rewrite the briefing of every customer with a newly processed call."""
    from .briefing import write_briefing

    customers = sorted({r.recording.metadata.customer_id for r in results
                        if r.status == "ok" and r.recording.metadata.customer_id})
    for customer in customers:
        write_briefing(store, customer)
    return customers


def result_rows(results: Iterable[CallResult]) -> list[dict]:
    """One line per call for tables (Prefect artifact, CLI output)."""
    return [{"call_id": r.call_id, "status": r.status, "language": r.transcript.language if r.transcript else "",
             "duration_s": round(r.recording.duration or 0, 1), "turns": len(r.turns), "error": r.error or ""}
            for r in results]


def run_batch(input_dir: Path, db_path: Path, model: str = "base", workers: int = 2, reprocess: bool = False,
              options: TranscribeOptions | None = None, on_result: Callable[[CallResult], None] | None = None,
              flow: str = "cli", customer_id: str | None = None,
              refresh: bool = True) -> tuple[RunRecord, list[CallResult]]:
    """The nightly job without Prefect: threads for concurrency, one writer for DuckDB.
    `customer_id` limits it to one customer's recordings; `refresh` rewrites the briefings of
    the customers it processed."""
    spec = engine_for_workers(model, workers)
    started_at, clock = utcnow(), time.perf_counter()
    run_id = new_run_id()
    with Store(db_path) as store:
        plan = plan_batch(input_dir, store, spec, reprocess, customer_id=customer_id)
        if plan.todo:
            load_engine(spec)  # fail fast (e.g. model missing) before any call is touched
        results = []
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(process_recording, rec, spec, options) for rec in plan.todo]
            for future in as_completed(futures):
                result = future.result()
                store.write_call(result, run_id)
                results.append(result)
                if on_result:
                    on_result(result)
        run = summarise_run(run_id, flow, plan, results, spec, started_at, time.perf_counter() - clock)
        store.record_run(run)
        if refresh:
            refresh_briefings(store, results)
    return run, results
