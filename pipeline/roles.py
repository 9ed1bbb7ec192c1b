"""Agent or customer: from the manifest, else from what each speaker says, else unknown.

Cues are data (`data/role_cues.tsv`): service phrases vote for agent, first-person complaint
phrases for customer. With two or more speakers the one who sounds least like an agent is the
customer; the others are agents where they have agent cues (a transfer brings a second agent).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .datafiles import read_rows
from .speakers import Diarization


@dataclass(frozen=True)
class RoleCue:
    role: str
    weight: int
    phrase: str


@lru_cache(maxsize=1)
def role_cues() -> tuple[RoleCue, ...]:
    return tuple(RoleCue(role, int(weight), phrase.strip().lower())
                 for role, weight, phrase in read_rows("role_cues.tsv"))


def cue_score(text: str) -> float:
    """Agent votes minus customer votes, per 100 characters (so long talkers are not favoured)."""
    low = text.lower()
    score = sum((c.weight if c.role == "agent" else -c.weight) * low.count(c.phrase) for c in role_cues())
    return 100 * score / max(len(low), 1)


def infer_roles(diarization: Diarization, text_by_speaker: dict[str, str],
                agent_channel: int | None = None) -> dict[str, str]:
    """speaker label -> "agent" | "customer" | "unknown"."""
    speakers = diarization.speakers()
    if diarization.method == "channels" and agent_channel is not None:
        return {s: "agent" if s == f"ch{agent_channel}" else "customer" for s in speakers}
    scores = {s: cue_score(text_by_speaker.get(s, "")) for s in speakers}
    if len(speakers) == 1:
        (only,) = speakers
        return {only: "agent" if scores[only] > 1 else "customer" if scores[only] < -1 else "unknown"}
    customer = min(speakers, key=lambda s: scores[s])
    roles = {}
    for s in speakers:
        if s == customer:
            roles[s] = "customer" if scores[s] < max(scores.values()) else "unknown"
        else:
            roles[s] = "agent" if scores[s] > scores[customer] and scores[s] > 0 else "unknown"
    return roles
