"""The dataclasses that flow between stages. Times are seconds from the start of the recording."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # stage results referenced by CallResult; imported for type checkers only
    from .dynamics import Dynamics
    from .escalation import Escalation
    from .summary import CallSummary
    from .speakers import Diarization
    from .vocabulary import Correction


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


def word_separator(language: str | None) -> str:
    """Deprecated: the separator depends on the neighbouring words, not the language. Use
    `join_words`."""
    return "" if language == "zh" else " "


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


@dataclass(frozen=True)
class Recording:
    call_id: str
    path: Path
    sha256: str
    metadata: CallMetadata
    size_bytes: int = 0
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
    language: str | None = None  # set when the stream was transcribed stretch by stretch (pipeline/language.py)


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
    role: str  # "agent" | "customer" | "unknown"
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
    diarization: "Diarization | None" = None
    dynamics: "Dynamics | None" = None
    escalation: "Escalation | None" = None
    summary: "CallSummary | None" = None
    speaker_evidence: dict = field(default_factory=dict)  # speaker count and role decisions, for review
    # (embedding, seconds) of the agent's channel on a stereo call with a known agent: a voiceprint source.
    agent_voice: tuple[tuple[float, ...], float] | None = None
    corrections: "tuple[Correction, ...]" = ()  # what the vocabulary correction changed in the transcript

    @property
    def call_id(self) -> str:
        return self.recording.call_id
