"""Who dialled: the manifest's `direction` when it has one; otherwise read from the opening of the
call (the turns that start within the first `window_seconds`): the agent's hotline greeting
("很高兴为您服务", "how can I help") against a callback's opening ("就您…的投诉给您回电", "I'm calling
you back about your complaint") or another outbound call's ("请问是王女士吗？…核实一笔交易"), and
who speaks first (on a call the bank places, the person answering usually does: "喂？").

The cues and their likelihoods are data (pipeline/data/direction_cues.json). They are combined as
naive Bayes: posterior(d) ∝ prior(d) · Π P(cue | d) over the cues found, each cue counted once,
absent cues ignored (Whisper drops words, recordings start late: not hearing a greeting is weak
evidence). The confidence is the posterior of the likeliest direction; with no cue it is the
prior's (inbound, 0.7). Measured on hand-written openings by `python -m evaluation.eval_direction`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from pipeline.analysis.redact import redact
from pipeline.config.datafiles import read_json
from pipeline.records import CallDirection, CallMetadata, Direction, Role, Turn

MAX_QUOTE = 80  # characters of the deciding turn shown as evidence


@dataclass(frozen=True)
class Cue:
    id: str
    role: str  # the role whose turns are searched (a turn of unknown role is searched for both)
    patterns: tuple[re.Pattern, ...]
    likelihood: dict[str, float]  # direction -> P(cue heard in the opening | direction)
    first: bool = False  # looked for in the call's first turn only


@dataclass(frozen=True)
class Cues:
    window_seconds: float
    prior: dict[str, float]
    cues: tuple[Cue, ...]


@lru_cache(maxsize=1)
def load_cues() -> Cues:
    data = read_json("direction_cues.json")
    directions = set(Direction)
    if set(data["prior"]) != directions or any(set(c["likelihood"]) != directions for c in data["cues"]):
        raise ValueError(f"direction_cues.json: every prior and likelihood must name exactly {sorted(directions)}")
    cues = tuple(Cue(c["id"], c["role"], tuple(re.compile(p, re.I) for p in c["patterns"]),
                     {d: float(v) for d, v in c["likelihood"].items()}, bool(c.get("first")))
                 for c in data["cues"])
    return Cues(float(data["window_seconds"]), {d: float(v) for d, v in data["prior"].items()}, cues)


def from_manifest(metadata: CallMetadata) -> CallDirection | None:
    return CallDirection(metadata.direction, 1.0, "manifest") if metadata.direction else None


def _searched(turn: Turn, cue: Cue) -> bool:
    return turn.role == cue.role or turn.role == Role.UNKNOWN


def detect_direction(turns: Sequence[Turn], cues: Cues | None = None) -> CallDirection:
    """The likeliest direction of a call from its opening turns, with its posterior probability
    and the turn that weighed most for it (masked)."""
    cues = cues or load_cues()
    spoken = sorted((t for t in turns if t.text.strip()), key=lambda t: t.start)
    opening = [t for t in spoken if t.start <= spoken[0].start + cues.window_seconds] if spoken else []
    found: list[tuple[Cue, Turn]] = []
    for cue in cues.cues:
        searched = opening[:1] if cue.first else opening
        hit = next((t for t in searched if _searched(t, cue) and any(p.search(t.text) for p in cue.patterns)), None)
        if hit is not None:
            found.append((cue, hit))
    log_post = {d: math.log(p) + sum(math.log(c.likelihood[d]) for c, _ in found) for d, p in cues.prior.items()}
    top = max(log_post.values())
    total = sum(math.exp(v - top) for v in log_post.values())
    best = max(log_post, key=log_post.get)
    confidence = 1.0 / total  # exp(best - top) is 1
    # The evidence: the cue that favours the chosen direction most over the likeliest other one.
    others = [d for d in cues.prior if d != best]

    def margin(item: tuple[Cue, Turn]) -> float:
        c = item[0]
        return math.log(c.likelihood[best]) - max(math.log(c.likelihood[d]) for d in others)
    quote, time = "", None
    if found:
        _, turn = max(found, key=margin)
        text = redact(turn.text) or ""
        quote, time = (text if len(text) <= MAX_QUOTE else text[:MAX_QUOTE - 3] + "..."), round(turn.start, 2)
    ordered = sorted(found, key=lambda item: item[1].start)
    return CallDirection(best, round(confidence, 3), "detected", quote, time, tuple(c.id for c, _ in ordered))


def call_direction(metadata: CallMetadata, turns: Sequence[Turn]) -> CallDirection:
    """The manifest's direction when it gives one, detected from the call otherwise."""
    return from_manifest(metadata) or detect_direction(turns)
