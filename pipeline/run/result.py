"""The bundle of one call's results: what every stage produced, handed to the single writer
(pipeline.store) or sent back from a worker as a versioned record (pipeline.serial). Stage
results are defined in their stages; this module only gathers them."""
from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.speakers.dynamics import Dynamics
from pipeline.analysis.escalation import Escalation
from pipeline.speakers.diarize import Diarization
from pipeline.analysis.summary import CallSummary
from pipeline.records import Recording, StageTiming, Transcript, Turn
from pipeline.vocabulary.terms import Correction


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

    @property
    def call_id(self) -> str:
        return self.recording.call_id
