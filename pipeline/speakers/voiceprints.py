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

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.intake.audio import SAMPLE_RATE
from pipeline.engines import Engines, or_default
from pipeline.speakers.embeddings import window_embeddings
from pipeline.speakers.vad import speech_regions
from pipeline.speakers.options import DiarizationOptions
from pipeline.records import Diarization

TELEPHONE_BAND = (300.0, 3400.0)
# The cluster most like the agent's voiceprint is the agent when its similarity is at least
# MATCH_THRESHOLD and beats every other speaker by MATCH_MARGIN. Calibrated on measured
# similarities (README "Speakers"): same agent 0.976-0.985 (0.89 for one speaker neutral vs
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
    from scipy.signal import butter

    return butter(6, TELEPHONE_BAND, btype="band", fs=SAMPLE_RATE, output="sos")


def band_limit(samples: np.ndarray) -> np.ndarray:
    from scipy.signal import sosfiltfilt

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
        regions = [(s.start, s.end) for s in diarization.segments if s.speaker == speaker]
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


# --- the voiceprints table (schema in store.SCHEMA) --------------------------------------------

def add_source(conn, agent_id: str, source: str, embedding: np.ndarray, seconds: float) -> None:
    """Add (or replace) one source of an agent's voiceprint. Idempotent per (agent, source)."""
    from pipeline.store.store import utcnow

    conn.execute("DELETE FROM voiceprints WHERE agent_id = ? AND source = ?", [agent_id, source])
    conn.execute("INSERT INTO voiceprints (agent_id, source, embedding, seconds, added_at) VALUES (?, ?, ?, ?, ?)",
                 [agent_id, source, [float(x) for x in embedding], float(seconds), utcnow()])


def load_voiceprints(conn, agent_ids: list[str] | None = None) -> dict[str, Voiceprint]:
    rows = conn.execute("SELECT agent_id, embedding, seconds FROM voiceprints").fetchall()
    by_agent: dict[str, list] = {}
    for agent_id, embedding, seconds in rows:
        if agent_ids is None or agent_id in agent_ids:
            by_agent.setdefault(agent_id, []).append((np.asarray(embedding, dtype=np.float32), seconds))
    prints = {}
    for agent_id, sources in by_agent.items():
        mean = sum(e * s for e, s in sources) / max(sum(s for _, s in sources), 1e-9)
        mean = mean / (np.linalg.norm(mean) or 1.0)
        prints[agent_id] = Voiceprint(agent_id, tuple(float(x) for x in mean), float(sum(s for _, s in sources)),
                                      len(sources))
    return prints


def stored_voiceprints(store) -> dict[str, Voiceprint]:
    """Every agent's voiceprint from a `Store`, read once before a run's calls start (each call
    gets its agent's, to find the agent by voice on a mono call)."""
    with store.session() as conn:
        return load_voiceprints(conn)


def list_voiceprints(conn) -> list[dict]:
    """Who has a voiceprint, from how much speech and how many sources (never the embedding)."""
    rows = conn.execute("SELECT agent_id, count(*), sum(seconds), max(added_at), list(source ORDER BY source) "
                        "FROM voiceprints GROUP BY agent_id ORDER BY agent_id").fetchall()
    return [{"agent_id": a, "n_sources": n, "seconds": round(s, 1), "updated_at": str(t), "sources": json.dumps(src)}
            for a, n, s, t, src in rows]


def forget(conn, agent_id: str) -> int:
    """Delete every source of an agent's voiceprint; returns how many were deleted."""
    n = conn.execute("SELECT count(*) FROM voiceprints WHERE agent_id = ?", [agent_id]).fetchone()[0]
    conn.execute("DELETE FROM voiceprints WHERE agent_id = ?", [agent_id])
    return int(n)


def enrol(conn, agent_id: str, path: Path, engines: Engines | None = None) -> Voiceprint:
    """Add an enrolment recording (any format we read; one voice) to an agent's voiceprint."""
    from pipeline.intake.audio import BadRecording, decode

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
    add_source(conn, agent_id, f"enrol:{Path(path).name}", embedding, seconds)
    return load_voiceprints(conn, [agent_id])[agent_id]
