"""Agent or customer: from the manifest, else the agent's voiceprint, else what and how each speaker talks.

Without a manifest channel or a voiceprint, roles come from evidence combined as log-odds that
one main speaker (rather than the other) is the agent, each piece bounded so none decides alone:
- phrase cues (`data/role_cues.tsv`): service and identity-check phrases vote agent, first-person
  complaints vote customer (per 100 characters, so long talkers are not favoured);
- how each addresses the other: agents say "you"/您 far more than "I"/我, callers the reverse
  (pronouns are among the words Whisper gets right, unlike domain terms);
- who asks: the share of question sentences;
- who opens the call (inbound calls open with the agent's greeting; weak: callers on hold speak first).
The confidence is the logistic of the summed log-odds; under MIN_CONFIDENCE both main speakers
are `unknown`. Speakers beyond the main two inherit the role of the main speaker they sound like,
or are a third party (a transfer, an IVR prompt).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from pipeline.config.datafiles import read_rows
from pipeline.engines import Engines
from pipeline.records import Diarization, Recording, Role, channel_label, label_channel
from pipeline.speakers.voiceprints import match_agent, speaker_embeddings, voice_embedding

THIRD_PARTY = "third_party"
MIN_CONFIDENCE = 0.6  # below this the evidence is a coin toss: say unknown
# Log-odds each kind of evidence can contribute at most (its weight); see `_evidence`.
WEIGHTS = {"cues": 2.0, "address": 2.5, "questions": 0.7, "opens": 0.4}


@dataclass(frozen=True)
class RoleCue:
    role: str  # agent | customer | address | self
    weight: int
    phrase: str


@dataclass(frozen=True)
class RoleDecision:
    roles: dict  # speaker label -> agent | customer | third_party | unknown
    method: str  # manifest | voiceprint | evidence | single
    confidence: float  # probability the agent/customer assignment is right
    evidence: dict = field(default_factory=dict)


@lru_cache(maxsize=1)
def role_cues() -> tuple[RoleCue, ...]:
    return tuple(RoleCue(role, int(weight), phrase.strip().lower())
                 for role, weight, phrase in read_rows("role_cues.tsv"))


def _count(text: str, phrase: str) -> int:
    """Occurrences of a phrase: as a substring in Chinese, as whole words in Latin script."""
    if phrase.isascii():
        return len(re.findall(r"(?<![a-z'])" + re.escape(phrase) + r"(?![a-z'])", text))
    return text.count(phrase)


CUE_PRIOR_CHARS = 100  # cue rates shrink towards 0 for short texts: one phrase in a few words is weak


def cue_score(text: str) -> float:
    """Agent votes minus customer votes, per 100 characters (smoothed by CUE_PRIOR_CHARS)."""
    low = text.lower()
    score = sum((c.weight if c.role == Role.AGENT else -c.weight) * _count(low, c.phrase)
                for c in role_cues() if c.role in (Role.AGENT, Role.CUSTOMER))
    return 100 * score / (len(low) + CUE_PRIOR_CHARS)


def address_share(text: str) -> float:
    """Share of second-person among first- and second-person words, smoothed towards 1/2."""
    low = text.lower()
    you = max(0, sum(c.weight * _count(low, c.phrase) for c in role_cues() if c.role == "address"))
    me = max(0, sum(c.weight * _count(low, c.phrase) for c in role_cues() if c.role == "self"))
    return (you + 1) / (you + me + 2)


_QUESTION_END = re.compile(r"[?？]|[吗呢][。，,.]?$")


def question_share(text: str) -> float:
    parts = [p for p in re.split(r"(?<=[。.!！?？])\s*", text) if p.strip()]
    return sum(bool(_QUESTION_END.search(p.strip())) for p in parts) / max(len(parts), 1)


TERMS = ("cues", "address", "questions", "opens")


def evidence_terms(a: str, b: str, texts: dict[str, str], opener: str | None) -> dict[str, float]:
    """Each kind of evidence that speaker `a`, not `b`, is the agent, in [-1, 1] before its weight."""
    ta, tb = texts.get(a, ""), texts.get(b, "")
    return {
        "cues": math.tanh((cue_score(ta) - cue_score(tb)) / 5),
        "address": 2 * (address_share(ta) - address_share(tb)),
        "questions": question_share(ta) - question_share(tb),
        "opens": float((opener == a) - (opener == b)),
    }


def _evidence(a: str, b: str, texts: dict[str, str], opener: str | None) -> dict[str, float]:
    """Log-odds that speaker `a`, not `b`, is the agent, per kind of evidence (each bounded)."""
    return {k: WEIGHTS[k] * v for k, v in evidence_terms(a, b, texts, opener).items()}


def _main_speakers(diarization: Diarization) -> list[str]:
    talk = diarization.talk_time()
    return sorted(talk, key=talk.get, reverse=True)[:2]


def _opener(diarization: Diarization) -> str | None:
    first = [s for s in sorted(diarization.voice_segments(), key=lambda s: s.start) if s.end - s.start >= 0.5]
    return first[0].speaker if first else None


def _extra_roles(diarization: Diarization, main: list[str], roles: dict[str, str], same_voice: float) -> dict:
    """Speakers beyond the main two: the role of the main speaker they sound like, else third party."""

    out = {}
    for s in diarization.speakers():
        if s in main:
            continue
        out[s] = THIRD_PARTY
        if s in diarization.centroids and all(m in diarization.centroids for m in main):
            sims = {m: float(np.dot(diarization.centroids[s], diarization.centroids[m])) for m in main}
            nearest = max(sims, key=sims.get)
            if sims[nearest] >= same_voice:
                out[s] = roles[nearest]
    return out


def decide_roles(diarization: Diarization, text_by_speaker: dict[str, str], agent_channel: int | None = None,
                 agent_speaker: str | None = None, same_voice: float = 0.85) -> RoleDecision:
    """Roles of every speaker label. `agent_speaker` is the label a voiceprint matched, if any."""
    speakers = diarization.speakers()
    if not speakers:
        return RoleDecision({}, "single", 0.0)
    if diarization.method == "channels" and agent_channel is not None:
        return RoleDecision({s: Role.AGENT if s == channel_label(agent_channel) else Role.CUSTOMER for s in speakers},
                                "manifest", 1.0)
    if len(speakers) == 1:
        (only,) = speakers
        text = text_by_speaker.get(only, "")
        # A lone voice: cues and how it addresses the listener (a voicemail says "I", "my").
        odds = WEIGHTS["cues"] * math.tanh(cue_score(text) / 5) + WEIGHTS["address"] * 2 * (address_share(text) - 0.5)
        p = 1 / (1 + math.exp(-odds))
        role = Role.AGENT if p >= MIN_CONFIDENCE else Role.CUSTOMER if 1 - p >= MIN_CONFIDENCE else Role.UNKNOWN
        return RoleDecision({only: role}, "single", round(max(p, 1 - p), 3), {"log_odds_agent": round(odds, 3)})
    main = _main_speakers(diarization)
    a, b = main
    if agent_speaker in main:
        roles = {agent_speaker: Role.AGENT, (b if agent_speaker == a else a): Role.CUSTOMER}
        roles |= _extra_roles(diarization, main, roles, same_voice)
        return RoleDecision(roles, "voiceprint", 1.0)
    parts = _evidence(a, b, text_by_speaker, _opener(diarization))
    odds = sum(parts.values())
    p = 1 / (1 + math.exp(-odds))  # P(a is the agent)
    confidence = max(p, 1 - p)
    if confidence < MIN_CONFIDENCE:
        roles = {a: "unknown", b: "unknown"}
    else:
        roles = {a: Role.AGENT, b: Role.CUSTOMER} if p >= 0.5 else {a: Role.CUSTOMER, b: Role.AGENT}
    roles |= _extra_roles(diarization, main, roles, same_voice)
    return RoleDecision(roles, "evidence", round(confidence, 3),
                        {"log_odds": {k: round(v, 3) for k, v in parts.items()}, "first_speaker_of_pair": a})


def infer_roles(diarization: Diarization, text_by_speaker: dict[str, str],
                agent_channel: int | None = None) -> dict[str, str]:
    """speaker label -> role (see `decide_roles` for the confidence and evidence)."""
    return decide_roles(diarization, text_by_speaker, agent_channel).roles


def assign_roles(rec: Recording, audio, diarization, texts: dict[str, str], voiceprint=None,
                 engines: Engines | None = None):
    """Roles (manifest channel, else the agent's voiceprint, else speech evidence), the evidence
    to store, and the agent channel's voice when a stereo call says whose it is (a voiceprint source)."""
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
        regions = [(s.start, s.end) for s in diarization.voice_segments() if s.speaker == agents[0]]
        embedding, seconds = voice_embedding(audio.samples[label_channel(agents[0])], regions, engines=engines)
        if seconds > 0:
            agent_voice = (tuple(float(x) for x in embedding), seconds)
    return decision, evidence, agent_voice
