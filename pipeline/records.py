"""The records that flow between stages, and the words they are written in (roles, flags,
trends, speaker labels): frozen dataclasses, one per thing a stage hands on, ending in
`CallResult`, everything one call produced. Imports nothing of the project, so every stage can
import it and a worker's result can travel as a versioned record (pipeline.run.serial).
Times are seconds from the start of the recording."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path


class Role(StrEnum):
    """Who spoke a turn. A StrEnum: stored, serialised and compared as the plain string."""
    AGENT = "agent"
    CUSTOMER = "customer"
    UNKNOWN = "unknown"


class Flag(StrEnum):
    """What escalation and the briefing flag on a call or a customer."""
    REGULATOR_THREAT = "regulator_threat"
    MEDIA_THREAT = "media_threat"
    LEGAL_THREAT = "legal_threat"
    SUPERVISOR_REQUEST = "supervisor_request"
    PROFANITY = "profanity"
    REPEAT_DEMAND = "repeat_demand"  # the customer repeated an earlier demand in the call
    REPEAT_COMPLAINT = "repeat_complaint"  # more than one complaint call (briefing)


class Direction(StrEnum):
    """Who dialled and why: the customer called in, the bank called about something else, or the
    bank called the customer back about their complaint (never a repeat complaint)."""
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    CALLBACK = "callback"


class ComplaintSource(StrEnum):
    """Where the complaint came in (the manifest's `source`): a call recording is by phone unless it says."""
    PHONE = "phone"
    BRANCH = "branch"
    ONLINE = "online"
    REGULATOR_REFERRAL = "regulator_referral"  # referred to the bank by a regulator (12363, 12378...)
    OTHER = "other"


class Trend(StrEnum):
    RISING = "rising"
    FALLING = "falling"
    FLAT = "flat"


# Speaker labels: "ch0", "ch1" for the channels of a stereo call; "spk0"... for voice clusters.
CHANNEL_PREFIX = "ch"


def channel_label(channel: int) -> str:
    return f"{CHANNEL_PREFIX}{channel}"


def label_channel(label: str | None) -> int | None:
    """The channel a speaker label names ("ch1" -> 1), None for a cluster label or none."""
    if label and label.startswith(CHANNEL_PREFIX) and label[len(CHANNEL_PREFIX):].isdigit():
        return int(label[len(CHANNEL_PREFIX):])
    return None


def _unspaced(ch: str) -> bool:
    """Scripts written without spaces between words (Han, kana, Hangul syllables) and their
    full-width punctuation."""
    o = ord(ch)
    return (0x2E80 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7AF or 0xF900 <= o <= 0xFAFF
            or 0xFF00 <= o <= 0xFFEF or 0x3000 <= o <= 0x303F or 0x20000 <= o <= 0x2FFFF)


def join_words(texts) -> str:
    """Join words (or turns, sentences) by the script of the neighbours, not the call's language:
    nothing between two Chinese words or between Chinese and Latin, a space between two Latin
    words. A Mandarin call with an English stretch reads "我明白I am really sorry的", not "Iamreallysorry". """
    out: list[str] = []
    for text in texts:
        text = text.strip()
        if not text:
            continue
        # Digits meeting digits are one number the decoder wrote in pieces ("12" "378").
        if out and not (_unspaced(out[-1][-1]) or _unspaced(text[0]) or (out[-1][-1].isdigit() and text[0].isdigit())):
            out.append(" ")
        out.append(text)
    return "".join(out)



@dataclass(frozen=True)
class CallMetadata:
    """What the manifest says about a recording (all optional but the call id)."""

    call_id: str
    customer_id: str | None = None
    agent_id: str | None = None
    case_id: str | None = None
    started_at: datetime | None = None
    channel_layout: str | None = None  # "stereo" | "mono" | None (unknown)
    agent_channel: int | None = None  # 0 = left, 1 = right, when the manifest knows
    language: str | None = None  # "zh", "en" ... overrides detection when given
    speakers: tuple[int, int] | None = None  # (min, max) people on the call, when the manifest knows
    direction: str | None = None  # a Direction, when the manifest knows (detected from the call otherwise)
    complaint_source: str | None = None  # a ComplaintSource, when the manifest knows (phone otherwise)


@dataclass(frozen=True)
class Recording:
    call_id: str
    path: Path
    sha256: str
    metadata: CallMetadata
    size_bytes: int = 0
    derived_id: bool = False  # the id was made from path and contents (no manifest call_id)
    # Filled once the audio has been probed; None before that or when probing failed.
    duration: float | None = None
    channels: int | None = None
    sample_rate: int | None = None


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    channel: int | None = None  # set when the segment comes from one channel of a stereo call
    speaker: str | None = None  # set when the segment was transcribed from one speaker's stream
    language: str | None = None  # set when the stream was transcribed stretch by stretch (pipeline/speech/language.py)


@dataclass(frozen=True)
class Transcript:
    language: str
    language_probability: float
    segments: tuple[Segment, ...]
    duration: float
    model_id: str
    engine: str
    dropped: tuple[str, ...] = ()  # texts removed as known silence hallucinations

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]

    @property
    def text(self) -> str:
        return join_words(s.text for s in self.segments)


@dataclass(frozen=True)
class Turn:
    role: str  # a Role
    speaker: str | None
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    language: str | None = None  # what the turn was transcribed in; the call's language when not known per turn


@dataclass(frozen=True)
class StageTiming:
    stage: str
    seconds: float


# --- speakers: who spoke when (pipeline.speakers) ---------------------------------------


@dataclass(frozen=True)
class SpeakerSegment:
    start: float
    end: float
    speaker: str  # "ch0"/"ch1" for channel split, "spk0".. for clusters
    channel: int | None = None
    # Mono overlapped speech: this speaker talks here too, over another speaker's segment whose
    # voice dominates the mix. It counts for who spoke when (DER, dynamics); its audio and words
    # stay the other speaker's (`Diarization.voice_segments`), so nothing is transcribed twice.
    overlap: bool = False


@dataclass(frozen=True)
class Diarization:
    segments: tuple[SpeakerSegment, ...]
    method: str  # "channels" | "clustering" | "single"
    n_speakers: int
    # Why this many speakers (clustering): the figures each candidate count was judged on.
    evidence: dict = field(default_factory=dict)
    # Mean L2-normalised voice embedding per speaker label (clustering; used to match voiceprints).
    centroids: dict = field(default_factory=dict)

    def speakers(self) -> list[str]:
        return sorted({s.speaker for s in self.segments})

    def voice_segments(self) -> tuple[SpeakerSegment, ...]:
        """The segments whose audio is their speaker's own voice: all but mono overlap segments."""
        return tuple(s for s in self.segments if not s.overlap)

    def talk_time(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for s in self.segments:
            totals[s.speaker] = totals.get(s.speaker, 0.0) + s.end - s.start
        return totals

    def to_annotation(self, uri: str = "call"):
        from pyannote.core import Annotation, Segment  # optional: scoring and the pyannote backend only

        annotation = Annotation(uri=uri)
        for i, seg in enumerate(self.segments):
            annotation[Segment(seg.start, seg.end), i] = seg.speaker
        return annotation


# --- conversation dynamics (pipeline.speakers.dynamics) ----------------------------------


@dataclass(frozen=True)
class Dynamics:
    agent_talk_s: float
    customer_talk_s: float
    silence_s: float
    longest_silence_s: float
    longest_silence_at: float  # where the longest silence starts
    overlap_s: float
    agent_interruptions: int
    customer_interruptions: int
    agent_rate: float  # characters (zh) or words (en) per minute of own talk time
    customer_rate: float
    rate_unit: str


# --- vocabulary corrections (pipeline.vocabulary) -----------------------------------------


@dataclass(frozen=True)
class Correction:
    """One change the machine made to what Whisper wrote, for a reviewer to see."""

    seq: int  # order within the call
    start: float
    end: float
    original: str
    corrected: str
    kind: str  # "homophone" | "hotline" | "rescored" (vocabulary/rescore.py)
    # homophone: similarity plus length and doubt bonuses; hotline: 1.0; rescored: log probability gained
    score: float = 0.0


# --- escalation (pipeline.analysis.escalation) -------------------------------------------


@dataclass(frozen=True)
class VoiceFeatures:
    """Measured in the telephone band (pipeline/analysis/prosody.py), so clean and 8 kHz audio compare."""

    loudness_db: float  # median band energy of speech frames, dB (only compared within a speaker)
    pitch_st: float  # median F0 in semitones re 100 Hz (nan when unvoiced)
    pitch_range_st: float  # 90th - 10th percentile of F0, semitones
    rate: float  # characters (zh) or words (en) per second of the turn
    high_band_db: float = float("nan")  # energy above 1 kHz vs below, dB: spectral tilt
    hnr_db: float = float("nan")  # harmonics-to-noise ratio of voiced frames


@dataclass(frozen=True)
class TurnFeatures:
    turn_index: int  # the turn this stretch of speech belongs to
    role: str
    speaker: str | None
    start: float
    end: float
    text: str
    voice: VoiceFeatures
    z_loudness: float = 0.0
    z_pitch: float = 0.0
    z_rate: float = 0.0
    z_tilt: float = 0.0
    loudness_delta_db: float = 0.0
    pitch_delta_st: float = 0.0
    terms: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    repeat_of: int | None = None  # index of an earlier turn of this speaker it repeats
    interrupted: bool = False


@dataclass(frozen=True)
class TurnScore:
    turn_index: int
    role: str
    start: float
    end: float
    score: float
    parts: dict[str, float]
    features: TurnFeatures


@dataclass(frozen=True)
class Evidence:
    time: float
    role: str
    score: float
    quote: str
    detail: str  # "customer pitch +2.1 SD, loudness +9 dB at 03:12: '我要投诉你们'"


@dataclass(frozen=True)
class ThreatSource:
    """An authority or channel the customer named in a threat: the first time it was said."""
    source: str  # an id of pipeline/data/threat_sources.json: pboc_12363, nfra_12378, court, online_platform...
    category: str  # the flag it raises: regulator_threat, media_threat, legal_threat
    term: str  # the lexicon term heard
    time: float  # start of the stretch of speech it was said in
    role: str
    quote: str  # masked, cut around the term


@dataclass(frozen=True)
class Escalation:
    call_score: float
    trend: str  # a Trend
    quarter_scores: tuple[float | None, ...]
    peak_time: float | None
    flags: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    turns: tuple[TurnScore, ...]  # one per turn: its most escalated stretch
    de_escalation: tuple[dict, ...] = field(default_factory=tuple)
    utterances: tuple[TurnScore, ...] = ()  # every scored stretch of every speaker
    party: str | None = None  # the speaker whose escalation the call score and trend follow
    sources: tuple[ThreatSource, ...] = ()  # which authorities and channels the threats named, in the order said


# --- summary (pipeline.analysis.summary) --------------------------------------------------


@dataclass(frozen=True)
class Quote:
    time: float
    role: str
    text: str  # redacted


@dataclass(frozen=True)
class CallSummary:
    call_id: str
    language: str
    category: str
    category_label: str
    demands: tuple[Quote, ...]
    promises: tuple[Quote, ...]
    deadline_promises: tuple[Quote, ...]  # promises naming a specific time: discouraged unless confirmed
    open_items: tuple[Quote, ...]
    outcome: str  # resolved | pending | escalated
    key_quotes: tuple[Quote, ...]
    summary: str
    category_scores: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


# --- call direction (pipeline.analysis.direction) ---------------------------------------------


@dataclass(frozen=True)
class CallDirection:
    """Who dialled: from the manifest (certain), or detected from the opening of the call."""

    direction: str  # a Direction
    confidence: float  # 1.0 from the manifest; the posterior probability of `direction` when detected
    source: str  # "manifest" | "detected"
    quote: str = ""  # the opening words that weighed most (masked), "" from the manifest or with no cue
    time: float | None = None  # when the quote was said
    cues: tuple[str, ...] = ()  # every cue found, in the order said


# --- one call's results, and a run (pipeline.run, pipeline.store) -----------------------


@dataclass(frozen=True)
class CallResult:
    """Everything one call produced: what the single DuckDB writer stores."""

    recording: Recording
    status: str  # "ok" | "failed"
    error: str | None = None
    error_stage: str | None = None  # where it failed: decode, speakers, transcribe, align, ...
    error_class: str | None = None  # BadRecording for unusable input; the exception's class otherwise
    transcript: Transcript | None = None
    turns: tuple[Turn, ...] = ()
    timings: tuple[StageTiming, ...] = field(default_factory=tuple)
    word_speakers: tuple[str | None, ...] = ()  # one per transcript word, in transcript order
    roles: dict[str, str] = field(default_factory=dict)  # speaker label -> role
    diarization: Diarization | None = None
    dynamics: Dynamics | None = None
    escalation: Escalation | None = None
    summary: CallSummary | None = None
    speaker_evidence: dict = field(default_factory=dict)  # speaker count and role decisions, for review
    # (embedding, seconds) of the agent's channel on a stereo call with a known agent: a voiceprint source.
    agent_voice: tuple[tuple[float, ...], float] | None = None
    corrections: tuple[Correction, ...] = ()  # what the vocabulary correction changed in the transcript
    redacted: tuple[str, ...] = ()  # each turn's text as people may read it (numbers masked)
    direction: CallDirection | None = None  # inbound, outbound or callback (pipeline.analysis.direction)

    @property
    def call_id(self) -> str:
        return self.recording.call_id


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    flow: str
    input_dir: str
    engine: str
    model_id: str
    started_at: datetime
    finished_at: datetime | None
    n_found: int
    n_processed: int
    n_skipped: int
    n_failed: int
    n_missing: int
    audio_seconds: float
    wall_seconds: float
    status: str = "completed"  # running | completed | completed_with_failures | interrupted | failed
    message: str = ""
    n_rejected: int = 0
