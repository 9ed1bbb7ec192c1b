"""Base records that flow between stages, and the words they are written in (roles, flags,
trends, speaker labels). Imports nothing of the project, so every stage can import it; each
stage's own result lives in its stage, and a call's bundle of results in `pipeline.result`.
Times are seconds from the start of the recording."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from enum import StrEnum


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
