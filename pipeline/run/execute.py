"""Process a folder of recordings: plan what is new, process each call, write it, record the run.

Plain functions used by the Prefect flows and the CLI alike: `execute` is the one loop (plan,
process, write through one writer, record the run, refresh briefings), and each caller only says
how recordings are processed concurrently (a thread pool, Prefect tasks). `process_recording`
never raises: whatever goes wrong with one recording (bad input, or a bug on odd audio) becomes
a failed `CallResult` with the stage, the error class and the message, so the batch goes on.
"""
from __future__ import annotations

import logging
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

from pipeline.speech.asr import EngineSpec, TranscribeOptions
from pipeline.speech.transcribe import SPLIT_SPEAKERS, load_engine, transcribe_call
from pipeline.intake.audio import BadRecording, decode, probe
from pipeline.engines import Engines, or_default
from pipeline.intake.ingest import ManifestRow, discover
from pipeline.config.policy import Policy, default_policy
from pipeline.config.settings import Settings, results_fingerprint
from pipeline.store.store import Store, utcnow
from pipeline.records import RunRecord
from pipeline.speakers.align import assign_speakers, build_turns, turns_from_segments
from pipeline.speakers.dynamics import interrupts, measure
from pipeline.analysis.escalation import score_call, turn_features, utterances
from pipeline.speakers.roles import decide_roles
from pipeline.speakers.diarize import diarize
from pipeline.analysis.summary import summarise
from pipeline.records import CallResult
from pipeline.records import Recording, Role, StageTiming, Transcript, channel_label, join_words, label_channel
from pipeline.vocabulary.rescore import rescore_transcript, segment_clip
from pipeline.vocabulary.correct import correct_transcript

# A call that failed is tried again on later runs, this many times in all, then left with its reason.
MAX_ATTEMPTS = 3

log = logging.getLogger(__name__)

# A call's progress: the recording (its duration known, once decoded) and the seconds of it
# transcribed so far, increasing.
CallProgress = Callable[[Recording, float], None]


@dataclass(frozen=True)
class BatchPlan:
    input_dir: Path
    todo: list[Recording]
    skipped: list[Recording]  # already processed: same contents, pipeline version and model
    missing: list[ManifestRow]  # manifest rows naming files that do not exist
    rejected: list = field(default_factory=list)  # manifest rows or files refused, with the reason
    attempts: dict[str, int] = field(default_factory=dict)  # call_id -> the try this run makes
    fingerprint: str = ""  # of the settings this run produces rows with (part of the skip key)

    @property
    def n_found(self) -> int:
        return len(self.todo) + len(self.skipped)


def call_fingerprint(spec: EngineSpec, settings: Settings | None = None,
                     options: TranscribeOptions | None = None) -> str:
    """The hash of what changes a call's rows (model, decoding, the policy's result-changing part,
    the data files), stored with each call and part of its skip key."""
    return results_fingerprint(spec.engine, spec.model, spec.compute_type, options or TranscribeOptions(),
                               (settings or Settings()).policy.results_part())


def plan_batch(input_dir: Path, store: Store, spec: EngineSpec, reprocess: bool = False,
               manifest: Path | None = None, customer_id: str | None = None, settings: Settings | None = None,
               options: TranscribeOptions | None = None) -> BatchPlan:
    """What to process: recordings whose audio or result-changing settings differ from what is
    stored, and failed ones still under MAX_ATTEMPTS."""
    fingerprint = call_fingerprint(spec, settings, options)
    found = discover(Path(input_dir), manifest, known_hashes=store.known_hashes())
    store.remember_hashes(found.hashed)
    tz = (settings or Settings()).tz
    recordings = [in_centre_time(r, tz) for r in found.recordings
                  if customer_id is None or _same_customer(r.metadata.customer_id, customer_id)]
    done = store.processed_keys()
    todo, skipped, attempts = [], [], {}
    for rec in recordings:
        stored = done.get(rec.call_id)
        same = stored is not None and stored.key == (rec.sha256, fingerprint)
        if same and not reprocess and (stored.status == "ok" or stored.attempts >= MAX_ATTEMPTS):
            skipped.append(rec)
            continue
        # A failed call with the same contents counts its tries; anything new starts again at 1.
        attempts[rec.call_id] = stored.attempts + 1 if same and stored.status == "failed" and not reprocess else 1
        todo.append(rec)
    return BatchPlan(Path(input_dir), todo, skipped, found.missing, found.rejected, attempts, fingerprint)


def in_centre_time(rec: Recording, tz) -> Recording:
    """Call times are stored as the centre's wall-clock time (what handlers read): a manifest time
    with a zone is converted to the centre's zone; one without a zone is already in it."""
    started = rec.metadata.started_at
    if started is None or started.tzinfo is None:
        return rec
    local = started.astimezone(tz).replace(tzinfo=None)
    return replace(rec, metadata=replace(rec.metadata, started_at=local))


def _same_customer(a: str | None, b: str) -> bool:
    return a is not None and a.strip().casefold() == b.strip().casefold()


def process_recording(rec: Recording, spec: EngineSpec, options: TranscribeOptions | None = None,
                      split: bool = SPLIT_SPEAKERS, voiceprint=None, engines: Engines | None = None,
                      on_progress: CallProgress | None = None, policy: Policy | None = None) -> CallResult:
    """Decode, separate speakers, transcribe and analyse one recording. Never raises.

    With `split`, each speaker (stereo channel, or diarized mono speaker) is transcribed on
    their own and words come out attributed; without it the down-mix is transcribed and words
    are attributed by time overlap with the speakers' segments. `engines`: the loaded models
    (a default set is built when None); `on_progress`: the call's seconds transcribed so far.
    """
    options = options or TranscribeOptions()
    engines = or_default(engines)
    clock = StageClock()
    try:
        info = probe(rec.path)
        rec = replace(rec, duration=info.duration, channels=info.channels, sample_rate=info.sample_rate)
        audio = decode(rec.path, info=info)
        rec = replace(rec, duration=audio.duration)
        clock.lap("decode")

        if rec.metadata.language:
            options = replace(options, language=rec.metadata.language)
        # The manifest may bound the speaker count: (min, max), or None.
        diarization = diarize(audio.samples, speakers=getattr(rec.metadata, "speakers", None), engines=engines)
        clock.lap("speakers")

        report = (lambda seconds, rec=rec: on_progress(rec, seconds)) if on_progress else None
        transcript = transcribe_call(audio, diarization, spec, options, split, engines, report)
        clock.lap("transcribe")
        return analyse_call(rec, audio, diarization, transcript, clock, voiceprint, engines=engines, policy=policy,
                            scorer=load_engine(spec, engines) if options.rescore_vocabulary else None)
    except Exception as exc:  # noqa: BLE001 - one recording's failure must never stop the batch
        return failed_result(rec, clock, exc)


class StageClock:
    """Times each stage, and knows which stage is running when something goes wrong."""

    STAGES = ("decode", "speakers", "transcribe", "correct", "rescore", "align", "escalation", "summary")

    def __init__(self, first: str = "decode"):
        self.timings: list[StageTiming] = []
        self.current = first
        self._since = time.perf_counter()

    def lap(self, stage: str) -> None:
        """`stage` just finished; the next one in STAGES is now running."""
        now = time.perf_counter()
        self.timings.append(StageTiming(stage, now - self._since))
        self._since = now
        following = self.STAGES[self.STAGES.index(stage) + 1:] if stage in self.STAGES else ()
        self.current = following[0] if following else "finish"


def failed_result(rec: Recording, clock: StageClock, exc: BaseException, **partial) -> CallResult:
    """A failed call: the stage it failed in, the error class and a one-line message."""
    message = " ".join(str(exc).split()) or exc.__class__.__name__
    if isinstance(exc, BadRecording):
        log.warning("%s: %s", rec.call_id, message)
    else:
        log.exception("%s: %s failed", rec.call_id, clock.current)
    partial.setdefault("timings", tuple(clock.timings))
    return CallResult(recording=rec, status="failed", error=f"{clock.current}: {message}", error_stage=clock.current,
                      error_class=exc.__class__.__name__, **partial)


def analyse_call(rec: Recording, audio, diarization, transcript: Transcript,
                 clock: StageClock | None = None, voiceprint=None, correct: bool = True,
                 engines: Engines | None = None, policy: Policy | None = None, scorer=None) -> CallResult:
    """Everything after recognition: vocabulary correction, words to speakers and turns, roles,
    dynamics, escalation, summary. Separate from recognition so later stages can be re-run (and
    tested) on a stored transcript, independent of the characters Whisper writes on a given CPU.
    `scorer`: the Whisper engine, to judge loose vocabulary matches on the audio (rescore.py);
    without one (or with an engine that cannot score) correction is by sound alone."""
    clock = clock or StageClock(first="correct")
    corrections = ()
    if correct:
        vocabulary_text = (policy or default_policy()).vocabulary or None
        transcript, corrections = correct_transcript(transcript, vocabulary_text)
    clock.lap("correct")
    if correct and hasattr(scorer, "score"):
        transcript, rescored = rescore_transcript(
            transcript, lambda seg: segment_clip(audio.samples, audio.sample_rate, seg, label_channel(seg.speaker)),
            scorer, first_seq=len(corrections), source=vocabulary_text)
        corrections += rescored
    clock.lap("rescore")
    if not transcript.segments:
        return CallResult(recording=rec, status="failed", transcript=transcript, timings=tuple(clock.timings),
                          diarization=diarization, error_stage="transcribe", error_class="NoSpeech",
                          corrections=corrections,
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
    decision, speaker_evidence, agent_voice = assign_roles(rec, audio, diarization,
                                                          {k: join_words(v) for k, v in texts.items()}, voiceprint,
                                                          engines)
    roles = decision.roles
    if attributed:
        turns = turns_from_segments(transcript.segments, roles, transcript.language)
    else:
        order = sorted(range(len(words)), key=lambda i: words[i].start)
        turns = build_turns([words[i] for i in order], [speakers[i] for i in order], roles, transcript.language)
    dynamics = measure(diarization, roles, turns, audio.duration, transcript.language)
    clock.lap("align")

    # Roles from identity (the manifest's agent channel, the agent's voiceprint) are certain: the
    # call's score follows the customer. From speech evidence they may be wrong: it follows the
    # most escalated speaker.
    escalation = assess_escalation(audio, turns, transcript.language, diarization,
                                   roles_certain=decision.method in ("manifest", "voiceprint"), policy=policy)
    clock.lap("escalation")
    summary = summarise(rec.call_id, turns, transcript.language, escalation, policy)
    clock.lap("summary")
    return CallResult(recording=rec, status="ok", transcript=transcript, turns=turns, timings=tuple(clock.timings),
                      word_speakers=tuple(speakers), roles=roles, diarization=diarization, dynamics=dynamics,
                      escalation=escalation, summary=summary, speaker_evidence=speaker_evidence,
                      agent_voice=agent_voice, corrections=corrections)


def assign_roles(rec: Recording, audio, diarization, texts: dict[str, str], voiceprint=None,
                 engines: Engines | None = None):
    """Roles (manifest channel, else the agent's voiceprint, else speech evidence), the evidence
    to store, and the agent channel's voice when a stereo call says whose it is (a voiceprint source)."""
    from pipeline.speakers.voiceprints import match_agent, speaker_embeddings, voice_embedding

    match = None
    if voiceprint is not None and diarization.method != "channels" and len(diarization.speakers()) > 1:
        match = match_agent(voiceprint, speaker_embeddings(audio.mono(), diarization, engines))
    decision = decide_roles(diarization, texts, rec.metadata.agent_channel, match.speaker if match else None)
    evidence = {"count": diarization.evidence, "roles": {"method": decision.method, "confidence": decision.confidence,
                                                         **decision.evidence}}
    if match is not None:
        evidence["voiceprint"] = {"agent_id": match.agent_id, "matched": match.speaker,
                                  "similarities": match.similarities}
    agent_voice = None
    agents = [s for s, r in decision.roles.items() if r == Role.AGENT]
    # Only roles we are sure of feed a voiceprint: the manifest's channel, or near-certain evidence.
    if (rec.metadata.agent_id and diarization.method == "channels" and len(agents) == 1
            and decision.confidence >= 0.95):
        regions = [(s.start, s.end) for s in diarization.segments if s.speaker == agents[0]]
        embedding, seconds = voice_embedding(audio.samples[label_channel(agents[0])], regions, engines=engines)
        if seconds > 0:
            agent_voice = (tuple(float(x) for x in embedding), seconds)
    return decision, evidence, agent_voice


def assess_escalation(audio, turns, language: str, diarization=None, roles_certain: bool = False,
                      policy: Policy | None = None):
    """Escalation of a call: each turn cut at its speaker's pauses and each stretch's voice measured
    on its speaker's own channel when stereo. `roles_certain` when the manifest named the agent."""
    channel_audio = {None: audio.mono()}
    if audio.channels > 1:
        channel_audio |= {channel_label(i): audio.samples[i] for i in range(audio.channels)}
    flags = interrupts([(t.start, t.end, t.role) for t in turns])
    stretches = utterances(turns, diarization.segments if diarization else (), language)
    features = turn_features(tuple(u for _, u in stretches), channel_audio, language,
                             {i for i, f in enumerate(flags) if f}, turn_of=[i for i, _ in stretches], policy=policy)
    return score_call(features, audio.duration, roles_certain=roles_certain, policy=policy)


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
    from pipeline.outputs.briefing import write_briefing

    customers = sorted({r.recording.metadata.customer_id for r in results
                        if r.status == "ok" and r.recording.metadata.customer_id} | set(also))
    for customer in customers:
        with store.session():  # one connection for the briefing's reads and its write
            write_briefing(store, customer, settings=settings)
    return customers


def result_rows(results: Iterable[CallResult]) -> list[dict]:
    """One line per call for tables (Prefect artifact, CLI output)."""
    return [{"call_id": r.call_id, "status": r.status, "language": r.transcript.language if r.transcript else "",
             "duration_s": round(r.recording.duration or 0, 1), "turns": len(r.turns), "error": r.error or ""}
            for r in results]


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
            write_result(store, result, run_id, plan.attempts.get(result.call_id, 1), plan.fingerprint)
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


def write_result(store: Store, result: CallResult, run_id: str, attempts: int = 1, fingerprint: str = "") -> None:
    """Write one call; if even that fails (a bug on odd data), store it as failed with the reason."""
    try:
        store.write_call(result, run_id, attempts, fingerprint)
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
    from pipeline.speakers.voiceprints import stored_voiceprints

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
