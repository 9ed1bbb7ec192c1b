"""The stage graph, as data: the stages a recording walks through, in order, each with what it
reads and what it writes of the call's state. The run loop walks this list (`process_recording`
from the audio, `analyse_call` from a stored transcript), the stage clock times it, the Prefect
flow names its progress by it, and `make bench` tables it.

Whatever goes wrong in a stage fails the call, named after that stage; `process_recording`
never raises, so one recording never stops a batch.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from pipeline.analysis.direction import call_direction
from pipeline.analysis.escalation import assess_escalation
from pipeline.analysis.redact import redact_turns
from pipeline.analysis.summary import summarise
from pipeline.config.policy import Policy, default_policy
from pipeline.engines import Engines, or_default
from pipeline.intake.audio import Audio, BadRecording, decode, probe
from pipeline.records import (
    CallDirection,
    CallResult,
    CallSummary,
    Correction,
    Diarization,
    Dynamics,
    Escalation,
    Recording,
    StageTiming,
    Transcript,
    Turn,
    join_words,
    label_channel,
)
from pipeline.speakers.align import assign_speakers, build_turns, turns_from_segments
from pipeline.speakers.diarize import diarize
from pipeline.speakers.dynamics import measure
from pipeline.speakers.roles import RoleDecision, assign_roles
from pipeline.speech.asr import EngineSpec, TranscribeOptions
from pipeline.speech.transcribe import SPLIT_SPEAKERS, load_engine, transcribe_call
from pipeline.vocabulary.correct import correct_transcript
from pipeline.vocabulary.rescore import rescore_transcript, segment_clip

log = logging.getLogger(__name__)

# A call's progress: the recording (its duration known, once decoded) and the seconds of it
# transcribed so far, increasing.
CallProgress = Callable[[Recording, float], None]
# A stage of a call finished: the recording, the stage's name, its seconds.
StageDone = Callable[[Recording, str, float], None]


@dataclass
class CallState:
    """What the stages of one call have produced so far (each stage fills its part)."""

    recording: Recording
    audio: Audio | None = None
    diarization: Diarization | None = None
    transcript: Transcript | None = None
    corrections: tuple[Correction, ...] = ()
    word_speakers: tuple[str | None, ...] = ()
    roles: RoleDecision | None = None
    speaker_evidence: dict = field(default_factory=dict)
    agent_voice: tuple | None = None
    turns: tuple[Turn, ...] = ()
    dynamics: Dynamics | None = None
    escalation: Escalation | None = None
    summary: CallSummary | None = None
    direction: CallDirection | None = None
    redacted: tuple[str, ...] = ()


@dataclass(frozen=True)
class CallContext:
    """What the stages of one call are given from outside: how to decode, the loaded models, the
    agent's voiceprint, the centre's policy."""

    spec: EngineSpec = EngineSpec()
    options: TranscribeOptions = TranscribeOptions()
    split: bool = SPLIT_SPEAKERS
    voiceprint: object = None
    engines: Engines | None = None
    policy: Policy | None = None
    on_progress: CallProgress | None = None
    on_stage: StageDone | None = None
    stop: threading.Event | None = None  # set when the run is asked to stop
    correct: bool = True  # vocabulary correction and rescoring
    scorer: object = None  # a Whisper engine that can `score` (rescoring); None: correction by sound only
    load_scorer: bool = False  # no scorer given: rescore with the call's own engine (loaded when needed)


class NoSpeech(Exception):
    """Recognition found no speech (voice activity found none, or only known hallucinations)."""


class CallCancelled(BaseException):
    """The run was asked to stop: the call is dropped where it is (nothing of it is written), at
    the next stage or the next decoded segment. A BaseException: no stage's guard turns it into a
    failed call."""


def _check(c: "CallContext") -> None:
    if c.stop is not None and c.stop.is_set():
        raise CallCancelled()


# --- the stages -------------------------------------------------------------------------------

def _decode(s: CallState, c: CallContext) -> None:
    info = probe(s.recording.path)
    rec = replace(s.recording, duration=info.duration, channels=info.channels, sample_rate=info.sample_rate)
    s.audio = decode(rec.path, info=info)
    s.recording = replace(rec, duration=s.audio.duration)


def _speakers(s: CallState, c: CallContext) -> None:
    # The manifest may bound the speaker count: (min, max), or None.
    s.diarization = diarize(s.audio.samples, speakers=s.recording.metadata.speakers, engines=c.engines)


def _transcribe(s: CallState, c: CallContext) -> None:
    options = replace(c.options, language=s.recording.metadata.language) if s.recording.metadata.language else c.options
    rec = s.recording

    def report(seconds: float) -> None:  # as each segment is decoded: a stop is heard within one
        _check(c)
        if c.on_progress:
            c.on_progress(rec, seconds)
    s.transcript = transcribe_call(s.audio, s.diarization, c.spec, options, c.split, c.engines,
                                   report if c.on_progress or c.stop else None)


def _correct(s: CallState, c: CallContext) -> None:
    if c.correct:
        s.transcript, s.corrections = correct_transcript(s.transcript, _vocabulary(c))


def _rescore(s: CallState, c: CallContext) -> None:
    scorer = c.scorer if c.scorer is not None or not c.load_scorer else load_engine(c.spec, c.engines)
    if c.correct and hasattr(scorer, "score"):
        audio = s.audio
        s.transcript, rescored = rescore_transcript(
            s.transcript, lambda seg: segment_clip(audio.samples, audio.sample_rate, seg, label_channel(seg.speaker)),
            scorer, first_seq=len(s.corrections), source=_vocabulary(c))
        s.corrections += rescored
    if not s.transcript.segments:
        raise NoSpeech("no speech detected (voice activity found none, or only known hallucinations)")


def _align(s: CallState, c: CallContext) -> None:
    transcript, diarization = s.transcript, s.diarization
    words = transcript.words
    # Per-speaker streams hand back segments that already carry their speaker.
    attributed = all(seg.speaker for seg in transcript.segments)
    speakers = ([seg.speaker for seg in transcript.segments for _ in seg.words] if attributed
                else assign_speakers(words, diarization))
    texts: dict[str, list[str]] = {}
    for word, speaker in zip(words, speakers):
        texts.setdefault(speaker or "", []).append(word.text)
    s.roles, s.speaker_evidence, s.agent_voice = assign_roles(
        s.recording, s.audio, diarization, {k: join_words(v) for k, v in texts.items()}, c.voiceprint, c.engines)
    roles = s.roles.roles
    if attributed:
        s.turns = turns_from_segments(transcript.segments, roles, transcript.language)
    else:
        order = sorted(range(len(words)), key=lambda i: words[i].start)
        s.turns = build_turns([words[i] for i in order], [speakers[i] for i in order], roles, transcript.language)
    s.word_speakers = tuple(speakers)
    s.dynamics = measure(diarization, roles, s.turns, s.audio.duration, transcript.language)


def _escalation(s: CallState, c: CallContext) -> None:
    # Roles from identity (the manifest's agent channel, the agent's voiceprint) are certain: the
    # call's score follows the customer. From speech evidence they may be wrong: it follows the
    # most escalated speaker.
    s.escalation = assess_escalation(s.audio, s.turns, s.transcript.language, s.diarization,
                                     roles_certain=s.roles.method in ("manifest", "voiceprint"), policy=c.policy)


def _summary(s: CallState, c: CallContext) -> None:
    s.summary = summarise(s.recording.call_id, s.turns, s.transcript.language, s.escalation, c.policy)


def _direction(s: CallState, c: CallContext) -> None:
    s.direction = call_direction(s.recording.metadata, s.turns)


def _mask(s: CallState, c: CallContext) -> None:
    s.redacted = tuple(redact_turns(s.turns))  # a number read across two turns is masked in both


def _vocabulary(c: CallContext) -> str | None:
    return (c.policy or default_policy()).vocabulary or None


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[CallState, CallContext], None]
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    doc: str


STAGES: tuple[Stage, ...] = (
    Stage("decode", _decode, ("recording",), ("recording", "audio"),
          "probe and decode to 16 kHz float, one row per channel (intake.audio)"),
    Stage("speakers", _speakers, ("audio", "recording"), ("diarization",),
          "channel split for stereo, diarization for mono (speakers.diarize)"),
    Stage("transcribe", _transcribe, ("audio", "diarization", "recording"), ("transcript",),
          "Whisper over each speaker's stream (speech.transcribe)"),
    Stage("correct", _correct, ("transcript",), ("transcript", "corrections"),
          "domain terms and hotlines misheard by sound (vocabulary.correct)"),
    Stage("rescore", _rescore, ("transcript", "audio", "corrections"), ("transcript", "corrections"),
          "Whisper judges loose vocabulary matches on the audio (vocabulary.rescore)"),
    Stage("align", _align, ("transcript", "diarization", "audio", "recording"),
          ("word_speakers", "roles", "speaker_evidence", "agent_voice", "turns", "dynamics"),
          "words to speakers to turns, agent and customer, conversation dynamics (speakers.*)"),
    Stage("escalation", _escalation, ("audio", "turns", "transcript", "diarization", "roles"), ("escalation",),
          "voice, words and dynamics per stretch, turn and call (analysis.escalation)"),
    Stage("summary", _summary, ("recording", "turns", "transcript", "escalation"), ("summary",),
          "category, demands, promises, outcome, key quotes (analysis.summary)"),
    Stage("direction", _direction, ("recording", "turns"), ("direction",),
          "inbound, outbound or callback: the manifest's, or read from the opening (analysis.direction)"),
    Stage("mask", _mask, ("turns",), ("redacted",),
          "card, ID and phone numbers masked in every text a person reads (analysis.redact)"),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)


class StageClock:
    """Times each stage, and knows which stage is running when something goes wrong."""

    def __init__(self, first: str = STAGE_NAMES[0]):
        self.timings: list[StageTiming] = []
        self.current = first
        self._since = time.perf_counter()

    def lap(self, stage: str) -> None:
        """`stage` just finished; the next one in the graph is now running."""
        now = time.perf_counter()
        self.timings.append(StageTiming(stage, now - self._since))
        self._since = now
        following = STAGE_NAMES[STAGE_NAMES.index(stage) + 1:] if stage in STAGE_NAMES else ()
        self.current = following[0] if following else "finish"


def _lap(clock: StageClock, name: str, state: CallState, context: CallContext) -> None:
    clock.lap(name)
    if context.on_stage:
        context.on_stage(state.recording, name, clock.timings[-1].seconds)


def run_stages(state: CallState, context: CallContext, first: str, clock: StageClock) -> CallResult:
    """Walk the graph from `first` to the end; a stage's exception propagates (NoSpeech becomes a
    failed call of its own kind)."""
    for stage in STAGES[STAGE_NAMES.index(first):]:
        _check(context)
        try:
            stage.run(state, context)
        except NoSpeech as exc:
            _lap(clock, stage.name, state, context)
            return CallResult(recording=state.recording, status="failed", transcript=state.transcript,
                              timings=tuple(clock.timings), diarization=state.diarization,
                              error_stage="transcribe", error_class="NoSpeech", corrections=state.corrections,
                              error=str(exc))
        _lap(clock, stage.name, state, context)
    return CallResult(recording=state.recording, status="ok", transcript=state.transcript, turns=state.turns,
                      timings=tuple(clock.timings), word_speakers=state.word_speakers, roles=state.roles.roles,
                      diarization=state.diarization, dynamics=state.dynamics, escalation=state.escalation,
                      summary=state.summary, speaker_evidence=state.speaker_evidence, agent_voice=state.agent_voice,
                      corrections=state.corrections, redacted=state.redacted, direction=state.direction)


def process_recording(rec: Recording, spec: EngineSpec, options: TranscribeOptions | None = None,
                      split: bool = SPLIT_SPEAKERS, voiceprint=None, engines: Engines | None = None,
                      on_progress: CallProgress | None = None, policy: Policy | None = None,
                      on_stage: StageDone | None = None, stop: threading.Event | None = None) -> CallResult:
    """Every stage of one recording, from decoding to masking. Never raises, but CallCancelled
    once `stop` is set.

    With `split`, each speaker (stereo channel, or diarized mono speaker) is transcribed on
    their own and words come out attributed; without it the down-mix is transcribed and words
    are attributed by time overlap with the speakers' segments. `engines`: the loaded models
    (a default set is built when None); `on_progress`: the call's seconds transcribed so far;
    `on_stage`: each stage as it finishes.
    """
    options = options or TranscribeOptions()
    engines = or_default(engines)
    context = CallContext(spec, options, split, voiceprint, engines, policy, on_progress, on_stage, stop,
                          load_scorer=options.rescore_vocabulary)
    state, clock = CallState(rec), StageClock()
    try:
        return run_stages(state, context, STAGE_NAMES[0], clock)
    except Exception as exc:  # noqa: BLE001 - one recording's failure must never stop the batch
        return failed_result(state.recording, clock, exc)


def analyse_call(rec: Recording, audio: Audio, diarization: Diarization, transcript: Transcript,
                 clock: StageClock | None = None, voiceprint=None, correct: bool = True,
                 engines: Engines | None = None, policy: Policy | None = None, scorer=None) -> CallResult:
    """Every stage after recognition, on a transcript and diarization already made: later stages
    re-run (and tested) on a stored transcript, independent of the characters Whisper writes on a
    given CPU. `scorer`: the Whisper engine, to judge loose vocabulary matches on the audio;
    without one (or with an engine that cannot score) correction is by sound alone."""
    state = CallState(rec, audio=audio, diarization=diarization, transcript=transcript)
    context = CallContext(voiceprint=voiceprint, engines=engines, policy=policy, correct=correct, scorer=scorer)
    return run_stages(state, context, "correct", clock or StageClock(first="correct"))


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
