"""Agent voiceprints: a bank knows its agents' voices, so on a mono call the agent can be found by voice.

A voiceprint is the mean L2-normalised resemblyzer embedding of an agent's speech, kept per
source (an enrolment recording, or the agent channel of one of their stereo calls) in the
`voiceprints` table; the agent's voiceprint is the talk-time-weighted mean of their sources.
Audio is limited to the telephone band (300-3400 Hz) before embedding, so a wideband enrolment
and an 8 kHz call are compared on the same footing (measured: the same agent, wideband
enrolment vs 8 kHz mu-law call, 0.69 without the band limit, 0.98 with it).

A voiceprint is biometric data: `forget` deletes it, and it never leaves the database (exports
carry only the similarity a call was matched with).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.engines import Engines, or_default
from pipeline.intake.audio import SAMPLE_RATE, BadRecording, decode
from pipeline.records import Diarization
from pipeline.speakers.embeddings import window_embeddings
from pipeline.speakers.options import DiarizationOptions
from pipeline.speakers.vad import speech_regions

TELEPHONE_BAND = (300.0, 3400.0)
# The cluster most like the agent's voiceprint is the agent when its similarity is at least
# MATCH_THRESHOLD and beats every other speaker by MATCH_MARGIN. Calibrated on measured
# similarities (docs/speakers.md): same agent 0.976-0.985 (0.89 for one speaker neutral vs
# angry), different people 0.59-0.90 on the same telephone channel.
MATCH_THRESHOLD = 0.93
MATCH_MARGIN = 0.03
MIN_ENROL_SECONDS = 5.0  # less speech than this gives an unstable mean
MAX_WINDOWS = 60  # windows embedded per speaker: bounds the cost on long calls


class EnrolmentError(ValueError):
    """The enrolment recording cannot make a voiceprint (unreadable, too little speech)."""


@dataclass(frozen=True)
class Voiceprint:
    agent_id: str
    embedding: tuple[float, ...]
    seconds: float  # speech behind it, over all sources
    n_sources: int


@dataclass(frozen=True)
class VoiceMatch:
    agent_id: str
    speaker: str | None  # the speaker label judged to be the agent; None under the threshold
    similarities: dict  # speaker label -> cosine similarity to the voiceprint


@lru_cache(maxsize=1)
def _band_filter():
    from scipy.signal import butter  # heavy: loaded by the first call that filters or measures a voice

    return butter(6, TELEPHONE_BAND, btype="band", fs=SAMPLE_RATE, output="sos")


def band_limit(samples: np.ndarray) -> np.ndarray:
    from scipy.signal import sosfiltfilt  # heavy: loaded by the first call that filters or measures a voice

    return sosfiltfilt(_band_filter(), samples).astype(np.float32)


def voice_embedding(samples: np.ndarray, regions: list[tuple[float, float]] | None = None,
                    max_windows: int = MAX_WINDOWS, engines: Engines | None = None) -> tuple[np.ndarray, float]:
    """(unit 256-d embedding, seconds of speech) of one voice: speech only, telephone band,
    at most `max_windows` windows spread evenly over the speech."""
    engines = or_default(engines)
    samples = band_limit(samples)
    regions = speech_regions(samples, engines=engines) if regions is None else regions
    seconds = float(sum(end - start for start, end in regions))
    # Only the windows kept are embedded (an hour's agent channel has thousands).
    centres, embeds = window_embeddings(samples, regions, DiarizationOptions(), engines=engines,
                                        max_windows=max_windows)
    if len(embeds) == 0:
        return np.zeros(256, dtype=np.float32), 0.0
    mean = embeds.mean(axis=0)
    return mean / np.linalg.norm(mean), seconds


def _spread(regions: list[tuple[float, float]], seconds: float) -> list[tuple[float, float]]:
    """About `seconds` of the regions, taken evenly across the call (bounds the embedding cost)."""
    total = sum(e - s for s, e in regions)
    if total <= seconds:
        return regions
    step = total / seconds
    return [r for i, r in enumerate(regions) if int(i % max(1, round(step))) == 0] or regions[:1]


def speaker_embeddings(mono: np.ndarray, diarization: Diarization,
                       engines: Engines | None = None) -> dict[str, np.ndarray]:
    """Each speaker's voice embedding from their own segments of the call: one band filter and one
    embedding pass over a spread of each speaker's segments (about MAX_WINDOWS windows each)."""
    hop = DiarizationOptions().hop
    owned = []
    for speaker in diarization.speakers():
        regions = [(s.start, s.end) for s in diarization.voice_segments() if s.speaker == speaker]
        owned += [(start, end, speaker) for start, end in _spread(regions, MAX_WINDOWS * hop)]
    owned.sort()
    centres, embeds = window_embeddings(band_limit(mono), [(s, e) for s, e, _ in owned], DiarizationOptions(),
                                        engines=engines)
    if len(embeds) == 0:
        return {}
    starts = np.array([s for s, _, _ in owned])
    who = np.array([owned[i][2] for i in np.clip(np.searchsorted(starts, centres, side="right") - 1, 0, None)])
    out = {}
    for speaker in diarization.speakers():
        mine = embeds[who == speaker]
        if len(mine):
            mean = mine.mean(axis=0)
            out[speaker] = mean / np.linalg.norm(mean)
    return out


def match_agent(voiceprint: Voiceprint, embeddings: dict[str, np.ndarray]) -> VoiceMatch:
    vp = np.asarray(voiceprint.embedding, dtype=np.float32)
    sims = {s: round(float(e @ vp), 4) for s, e in embeddings.items()}
    ranked = sorted(sims, key=sims.get, reverse=True)
    best = ranked[0] if ranked else None
    runner_up = sims[ranked[1]] if len(ranked) > 1 else -1.0
    ok = best is not None and sims[best] >= MATCH_THRESHOLD and sims[best] - runner_up >= MATCH_MARGIN
    return VoiceMatch(voiceprint.agent_id, best if ok else None, sims)


# --- a store's voiceprints (the rows: pipeline.store.voiceprints) ----------------------------

def combine(sources: list[tuple[np.ndarray, float]], agent_id: str) -> Voiceprint:
    """An agent's voiceprint: the talk-time-weighted mean of their sources, unit length."""
    mean = sum(e * s for e, s in sources) / max(sum(s for _, s in sources), 1e-9)
    mean = mean / (np.linalg.norm(mean) or 1.0)
    return Voiceprint(agent_id, tuple(float(x) for x in mean), float(sum(s for _, s in sources)), len(sources))


def stored_voiceprints(store, agent_ids: list[str] | None = None) -> dict[str, Voiceprint]:
    """Every agent's voiceprint from a `Store` (or those of `agent_ids`), read once before a run's
    calls start (each call gets its agent's, to find the agent by voice on a mono call)."""
    return {agent: combine(sources, agent) for agent, sources in store.voiceprint_sources(agent_ids).items()}


def enrol(store, agent_id: str, path: Path, engines: Engines | None = None) -> Voiceprint:
    """Add an enrolment recording (any format we read; one voice) to an agent's voiceprint in `store`."""
    if not Path(path).is_file():
        raise EnrolmentError(f"{path}: no such file")
    try:
        audio = decode(Path(path))
    except (BadRecording, OSError) as exc:
        raise EnrolmentError(f"{path}: {exc}") from None
    embedding, seconds = voice_embedding(audio.mono(), engines=engines)
    if seconds < MIN_ENROL_SECONDS:
        raise EnrolmentError(f"{path}: only {seconds:.1f} s of speech; an enrolment needs at least "
                             f"{MIN_ENROL_SECONDS:.0f} s of the agent speaking")
    store.add_voiceprint_source(agent_id, f"enrol:{Path(path).name}", embedding, seconds)
    return stored_voiceprints(store, [agent_id])[agent_id]
