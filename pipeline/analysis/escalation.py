"""Emotional escalation per stretch of speech, per turn and per call, each signal explainable.

Every turn is cut to its speaker's speech segments and every stretch of every speaker is scored
the same way, whatever their role. Signals: voice measured inside the telephone band (loudness,
pitch, spectral tilt, pace; pipeline/analysis/prosody.py), each against the same speaker's own calm
reference (the lower half of their stretches, wherever in the call it came), so a naturally loud
voice is not "angry" and the first turns need not be calm; words (lexicon kept as data:
complaints, threats, supervisor requests, profanity, dissatisfaction, repetition of an earlier
demand); dynamics (this turn interrupted the other side). A `Scorer` turns the features into
0-100; `RuleScorer` is the explainable default and a learned model can take its place behind
the same interface. The call follows the customer when the roles are certain, otherwise the
most escalated speaker (a wrong role must not hide an angry customer).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

import numpy as np

from pipeline.analysis import prosody
from pipeline.analysis.i18n import mmss
from pipeline.analysis.redact import redact, redact_turns
from pipeline.analysis.tokens import content_words
from pipeline.config.datafiles import read_json
from pipeline.config.policy import Policy, TrendRule, default_policy
from pipeline.intake.audio import SAMPLE_RATE
from pipeline.records import (
    Escalation,
    Evidence,
    Flag,
    Role,
    ThreatSource,
    Trend,
    Turn,
    TurnFeatures,
    TurnScore,
    VoiceFeatures,
    channel_label,
    join_words,
)
from pipeline.speakers.dynamics import interrupts, speech_units
from pipeline.vocabulary.numbers import normalise_numbers

# A calm voice's spread from sentence to sentence (SD), measured in the telephone band on 100
# neutral read sentences of one speaker (../shared/audio, Magic Data; clean and through the
# telephone channel alike): pitch 0.9 st, loudness 1.6-2.1 dB, tilt 1.6 dB. A speaker's own
# spread is estimated from few stretches, so it is pulled towards these (PRIOR_WEIGHT
# pseudo-stretches) and never taken below them: a smaller change is not meaningful.
PRIOR_SD = {"loudness_db": 2.0, "pitch_st": 1.0, "high_band_db": 1.7, "rate": 0.12}
PRIOR_WEIGHT = 4
MIN_UTTERANCE_S = 0.3  # shorter speech segments are too short to measure a voice on


@dataclass(frozen=True)
class LexiconTerm:
    category: str
    weight: int
    term: str
    pattern: re.Pattern
    source: str | None = None  # the authority or channel a threat term names (pboc_12363, court...)


def lexicon(policy: Policy | None = None) -> tuple[LexiconTerm, ...]:
    """The escalation lexicon the policy names (pipeline/data/escalation_lexicon.tsv by default)."""
    return _parse_lexicon((policy or default_policy()).escalation_lexicon)


@lru_cache(maxsize=4)
def _parse_lexicon(text: str) -> tuple[LexiconTerm, ...]:
    rows = [line.split("\t") for line in text.splitlines() if line.strip() and not line.startswith("#")]
    generic = threat_sources()["generic"]
    terms = []
    for category, weight, term, *rest in rows:
        term = term.strip().lower()
        # English on ASCII word boundaries ("hell" is not in "hello", and "12378" still
        # matches in "打12378", where \b would see no boundary); Chinese as substrings.
        pattern = re.compile(rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])" if term.isascii() else re.escape(term))
        # A bank's three-column lexicon still works: its threat terms name the category's generic source.
        source = rest[0].strip() if rest and rest[0].strip() else generic.get(category)
        terms.append(LexiconTerm(category, int(weight), term, pattern, source))
    return tuple(terms)


@lru_cache(maxsize=1)
def threat_sources() -> dict:
    """pipeline/data/threat_sources.json: the source ids, the generic source per threat category
    and the words that make a threat term no threat."""
    return read_json("threat_sources.json")


@lru_cache(maxsize=1)
def _not_a_threat() -> tuple[re.Pattern, re.Pattern]:
    cues = threat_sources()["not_a_threat"]
    # The cue, then a short gap inside the clause (no punctuation), then the term (matched at the end).
    zh = "|".join(map(re.escape, sorted(cues["zh"], key=len, reverse=True)))
    en = "|".join(map(re.escape, sorted(cues["en"], key=len, reverse=True)))
    return (re.compile(rf"(?:{zh})[^，。！？,.!?;；:：]{{0,{cues['max_gap_zh']}}}$"),
            re.compile(rf"(?<![a-z])(?:{en})[^，。！？,.!?;；:：]{{0,{cues['max_gap_en']}}}$"))


def _said_as_threat(term: LexiconTerm, text: str) -> bool:
    """A threat term counts unless every time it is said it follows a denial ("我不会去找媒体",
    "本来想打12315...就没打", "I won't go to the press"). Other categories always count."""
    if term.category not in threat_sources()["generic"]:
        return True
    zh, en = _not_a_threat()
    return any(not (zh.search(text, 0, m.start()) or en.search(text, 0, m.start())) for m in term.pattern.finditer(text))


def lexicon_hits(text: str, policy: Policy | None = None) -> list[LexiconTerm]:
    low = text.lower()
    spoken = normalise_numbers(low)
    return [t for t in lexicon(policy) if any(t.pattern.search(x) and _said_as_threat(t, x) for x in (low, spoken))]


# --- features ---------------------------------------------------------------------------



def voice_features(samples: np.ndarray, start: float, end: float, units: int) -> VoiceFeatures:
    """Loudness, pitch, spectral tilt and voice quality of one stretch of a 16 kHz mono signal."""
    clip = samples[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)]
    p = prosody.measure(clip)
    return VoiceFeatures(loudness_db=p.loudness_db, pitch_st=p.pitch_st, pitch_range_st=p.pitch_range_st,
                         rate=units / max(end - start, 1e-3), high_band_db=p.high_band_db, hnr_db=p.hnr_db)


# For normally distributed values, the MAD of the lower half about its own median is 0.3986 SD:
# dividing by it makes the spread of the calm half a consistent estimate of the calm SD.
LOWER_HALF_MAD_PER_SD = 0.3986


def _calm_reference(values: list[float], prior_sd: float) -> tuple[float, float]:
    """(centre, spread) of a speaker's calm voice: the lower half of their own stretches.

    Anger raises every measure used here, so whatever part of the call was calm sits in the
    speaker's lower half, wherever it came in the call; the first turns need not be calm. The
    centre is the median of that half (the 25th percentile), the spread the SD the lower half's
    MAD implies, pulled towards and never below the prior SD of a calm voice."""
    vals = np.sort(np.array([v for v in values if np.isfinite(v)]))
    if not vals.size:
        return float("nan"), prior_sd
    lower = vals[: max(1, (len(vals) + 1) // 2)]
    centre = float(np.median(lower))
    own = float(np.median(np.abs(lower - centre))) / LOWER_HALF_MAD_PER_SD
    pooled = np.sqrt((len(lower) * own ** 2 + PRIOR_WEIGHT * prior_sd ** 2) / (len(lower) + PRIOR_WEIGHT))
    return centre, max(float(pooled), prior_sd)


def utterances(turns: tuple[Turn, ...], segments=(), language: str = "zh") -> list[tuple[int, Turn]]:
    """The stretches escalation scores: each turn cut to its speaker's speech segments.

    A turn that spans the other party's speech (on a mono call its voice is in the same signal),
    or that swallowed it (diarization gave both one label), or holds several sentences, is
    scored stretch by stretch, so a short angry reply is neither measured with the other voice
    nor averaged away inside a long turn. Words go to the stretch their middle falls in."""
    by_speaker: dict[str | None, list[tuple[float, float]]] = {}
    for seg in segments:
        by_speaker.setdefault(seg.speaker, []).append((seg.start, seg.end))
    out = []
    for i, t in enumerate(turns):
        spans = sorted((max(a, t.start), min(b, t.end)) for a, b in by_speaker.get(t.speaker, ())
                       if min(b, t.end) - max(a, t.start) >= MIN_UTTERANCE_S)
        if not spans:
            out.append((i, t))
            continue
        for k, (a, b) in enumerate(spans):
            lo = a if k else t.start
            hi = spans[k + 1][0] if k + 1 < len(spans) else t.end
            words = tuple(w for w in t.words if lo <= (w.start + w.end) / 2 < hi)
            text = join_words(w.text for w in words) if len(spans) > 1 else t.text
            out.append((i, Turn(t.role, t.speaker, a, b, text, words if len(spans) > 1 else t.words, t.language)))
    return out


VOICE_MEASURES = ("loudness_db", "pitch_st", "high_band_db")


def turn_features(turns: tuple[Turn, ...], channel_audio: dict[str | None, np.ndarray], language: str,
                  interrupted: set[int] = frozenset(), turn_of: list[int] | None = None,
                  policy: Policy | None = None) -> list[TurnFeatures]:
    """Features of every turn (or stretch: `turn_of` names each one's turn); z-scores against each
    speaker's own calm reference. Every speaker is measured the same way, whatever their role."""
    turn_of = turn_of if turn_of is not None else list(range(len(turns)))
    raw = []
    for t in turns:
        samples = channel_audio.get(t.speaker, channel_audio.get(None))
        # Each turn in its own language (a call may switch): characters for Mandarin, words for English.
        raw.append(voice_features(samples, t.start, t.end, speech_units(t.text, t.language or language)))
    by_speaker: dict[str | None, list[int]] = {}
    for i, t in enumerate(turns):
        by_speaker.setdefault(t.speaker, []).append(i)
    stats = {}
    for speaker, idx in by_speaker.items():
        stats[speaker] = {name: _calm_reference([getattr(raw[i], name) for i in idx], PRIOR_SD[name])
                          for name in VOICE_MEASURES}
        # Rate on a log scale; a stretch with no recognised words says nothing about pace.
        stats[speaker]["rate"] = _calm_reference([np.log(raw[i].rate) if raw[i].rate > 0 else np.nan for i in idx],
                                                 PRIOR_SD["rate"])
    out = []
    earlier_tokens: dict[str | None, list[tuple[int, set[str]]]] = {}
    for i, t in enumerate(turns):
        s = stats[t.speaker]
        v = raw[i]
        dl = v.loudness_db - s["loudness_db"][0]
        dp = v.pitch_st - s["pitch_st"][0]
        dt = v.high_band_db - s["high_band_db"][0]
        dr = (np.log(v.rate) if v.rate > 0 else np.nan) - s["rate"][0]
        hits = lexicon_hits(t.text, policy)
        tokens = content_words(t.text, t.language or language, min_latin=3)
        repeat = None
        for j, prev in earlier_tokens.get(t.speaker, []):
            if j != turn_of[i] and tokens and prev and len(tokens & prev) / len(tokens | prev) >= 0.3:
                repeat = j
        earlier_tokens.setdefault(t.speaker, []).append((turn_of[i], tokens))
        out.append(TurnFeatures(
            turn_index=turn_of[i], role=t.role, speaker=t.speaker, start=t.start, end=t.end, text=t.text, voice=v,
            z_loudness=_finite(dl / s["loudness_db"][1]), z_pitch=_finite(dp / s["pitch_st"][1]),
            z_rate=_finite(dr / s["rate"][1]), z_tilt=_finite(dt / s["high_band_db"][1]),
            loudness_delta_db=_finite(dl), pitch_delta_st=_finite(dp),
            terms=tuple(h.term for h in hits), categories=tuple(sorted({h.category for h in hits})),
            repeat_of=repeat, interrupted=turn_of[i] in interrupted and (i == 0 or turn_of[i - 1] != turn_of[i]),
        ))
    return out


def _finite(x: float) -> float:
    return float(x) if np.isfinite(x) else 0.0


# --- scoring ----------------------------------------------------------------------------

class Scorer(Protocol):
    """Features in, 0-100 out, with the contribution of each signal (for the evidence)."""

    def score(self, f: TurnFeatures) -> tuple[float, dict[str, float]]: ...


@dataclass(frozen=True)
class RuleScorer:
    """Voice and words, weighted as the policy says ([escalation] in pipeline/data/policy.toml)."""
    policy: Policy = field(default_factory=default_policy)

    def voice_score(self, f: TurnFeatures) -> float:
        """0-100 from how far above their own calm reference the speaker is."""
        w = self.policy.scorer
        span = w.full_sd - w.calm_sd
        return 100 * sum(weight * min(max((getattr(f, name) - w.calm_sd) / span, 0.0), 1.0)
                         for name, weight in w.voice_features)

    def words_score(self, f: TurnFeatures) -> float:
        weights = {t.term: t.weight for t in lexicon(self.policy) if t.category != "de_escalation"}
        return min(100.0, sum(weights.get(term, 0) for term in f.terms))

    def score(self, f: TurnFeatures) -> tuple[float, dict[str, float]]:
        w = self.policy.scorer
        parts = {
            "voice": w.voice_weight * self.voice_score(f),
            "words": w.words_weight * self.words_score(f),
            "interruption": w.interruption_points if f.interrupted else 0.0,
            "repetition": w.repeat_points if f.repeat_of is not None else 0.0,
        }
        return min(100.0, sum(parts.values())), parts


# --- per call ---------------------------------------------------------------------------



def _detail(ts: TurnScore, masked: str) -> str:
    f = ts.features
    bits = []
    if f.z_pitch >= 1:
        bits.append(f"pitch {f.z_pitch:+.1f} SD ({f.pitch_delta_st:+.1f} semitones)")
    if f.z_loudness >= 1:
        bits.append(f"loudness {f.loudness_delta_db:+.0f} dB ({f.z_loudness:+.1f} SD)")
    if f.z_tilt >= 1:
        bits.append(f"sharper voice {f.z_tilt:+.1f} SD")
    if f.z_rate >= 1:
        bits.append(f"rate {f.z_rate:+.1f} SD")
    if f.terms:
        bits.append("words: " + ", ".join(f.terms))
    if f.interrupted:
        bits.append("interrupted")
    if f.repeat_of is not None:
        bits.append("repeats an earlier demand")
    # The quote is masked before it is cut: a cut number is no longer recognisable.
    quote = masked if len(masked) <= 60 else masked[:57] + "..."
    return f"{ts.role} {'; '.join(bits) or 'no marked change'} at {mmss(ts.start)}: '{quote}'"


def score_call(features: list[TurnFeatures], duration: float, scorer: Scorer | None = None,
               roles_certain: bool = False, policy: Policy | None = None) -> Escalation:
    """Score every stretch of every speaker; the call follows one party.

    With certain roles (the manifest names the agent's channel) that is the customer. Otherwise
    (roles guessed from phrases, or speakers merged) it is the most escalated speaker who is not
    certainly the agent: a wrong or doubtful role never hides an escalation; the evidence names
    the role as labelled so a reader can judge it. `policy`: the flags reported and the trend
    rule; the scorer is the policy's rule scorer unless one is given."""
    policy = policy or default_policy()
    scorer = scorer or RuleScorer(policy)
    scored = []
    for f in features:
        value, parts = scorer.score(f)
        scored.append(TurnScore(f.turn_index, f.role, f.start, f.end, round(value, 1),
                                {k: round(v, 1) for k, v in parts.items()}, f))
    per_turn = _per_turn(scored)
    party = _party(scored, roles_certain)
    if not party:
        return Escalation(0.0, Trend.FLAT, (None,) * 4, None, (), (), per_turn, _de_escalation(scored, policy), tuple(scored), None)
    customer = party
    call_score = call_score_of([s.score for s in customer])
    quarters: list[float | None] = []
    for q in range(4):
        lo, hi = duration * q / 4, duration * (q + 1) / 4
        inside = [s.score for s in customer if lo <= (s.start + s.end) / 2 < hi]
        # How escalated the party got in the quarter: the upper quartile of its stretches, so
        # calm stretches in between (or another voice merged into the party) do not average
        # an angry quarter away.
        quarters.append(round(float(np.percentile(inside, 75)), 1) if inside else None)
    mid = duration / 2
    trend = _trend([s.score for s in customer if (s.start + s.end) / 2 < mid],
                   [s.score for s in customer if (s.start + s.end) / 2 >= mid], policy.trend)
    peak = max(customer, key=lambda s: s.score)
    flags = {Flag(c) for s in customer for c in s.features.categories if c in policy.reported_flags}
    if any(s.features.repeat_of is not None for s in customer):
        flags.add(Flag.REPEAT_DEMAND)
    top = sorted(customer, key=lambda s: -s.score)[:3]
    # Evidence is read by handlers: quotes are masked (card, ID, phone, e-mail), each speaker's
    # turns read together so a number split between two turns is masked too.
    masked = dict(zip((f.turn_index for f in features), redact_turns(features)))
    evidence = tuple(Evidence(round(s.start, 2), s.role, s.score, masked[s.turn_index],
                              redact(_detail(s, masked[s.turn_index])))
                     for s in sorted(top, key=lambda s: s.start))
    return Escalation(call_score, trend, tuple(quarters), round(peak.start, 2), tuple(sorted(flags)), evidence, per_turn,
                      _de_escalation(scored, policy), tuple(scored), customer[0].features.speaker,
                      named_sources(customer, masked, policy))


def named_sources(party: list[TurnScore], masked: dict[int, str], policy: Policy | None = None) -> tuple[ThreatSource, ...]:
    """The authorities and channels the party's threats named, each once, at the first stretch that
    named it, with the masked words around the term. Only for flags the policy reports; a generic
    source (监管, "legal") is left out when the same stretch names its category more precisely."""
    policy = policy or default_policy()
    by_term = {t.term: t for t in lexicon(policy)}
    generic = threat_sources()["generic"]
    found: dict[str, ThreatSource] = {}
    for s in sorted(party, key=lambda s: s.start):
        hits = [by_term[t] for t in s.features.terms
                if t in by_term and by_term[t].source and by_term[t].category in policy.reported_flags]
        precise = {h.category for h in hits if h.source != generic.get(h.category)}
        for h in hits:
            if h.source in found or (h.source == generic.get(h.category) and h.category in precise):
                continue
            found[h.source] = ThreatSource(h.source, h.category, h.term, round(s.start, 2), s.role,
                                           _around(masked.get(s.turn_index, ""), h.term))
    return tuple(found.values())


def _around(masked: str, term: str, reach: int = 30) -> str:
    """The masked text around the term's first occurrence (the whole text when it is short, or
    when the term was heard only in spoken digits, 幺二三七八 for 12378)."""
    at = masked.lower().find(term)
    if len(masked) <= 2 * reach + len(term) or at < 0:
        return masked if len(masked) <= 2 * reach + len(term) else masked[:2 * reach] + "..."
    lo, hi = max(0, at - reach), min(len(masked), at + len(term) + reach)
    if term.isascii():  # English: cut between words, not inside one
        lo = masked.find(" ", lo, at) + 1 if lo and " " in masked[lo:at] else lo
        hi = masked.rfind(" ", at + len(term), hi) if hi < len(masked) and " " in masked[at + len(term):hi] else hi
    return ("..." if lo else "") + masked[lo:hi] + ("..." if hi < len(masked) else "")


def call_score_of(values: list[float]) -> float:
    return round(0.6 * max(values) + 0.4 * float(np.mean(values)), 1)


def _per_turn(scored: list[TurnScore]) -> tuple[TurnScore, ...]:
    """A turn scores as its most escalated stretch (its features are that stretch's)."""
    best: dict[int, TurnScore] = {}
    for s in scored:
        if s.turn_index not in best or s.score > best[s.turn_index].score:
            best[s.turn_index] = s
    return tuple(best[i] for i in sorted(best))


def _party(scored: list[TurnScore], roles_certain: bool) -> list[TurnScore]:
    customer = [s for s in scored if s.role == Role.CUSTOMER]
    if roles_certain and customer:
        return customer
    candidates = [s for s in scored if not (roles_certain and s.role == Role.AGENT)]
    by_speaker: dict[str | None, list[TurnScore]] = {}
    for s in candidates:
        by_speaker.setdefault(s.features.speaker, []).append(s)
    if not by_speaker:
        return []
    # Ties (e.g. two calm speakers) go to the one labelled customer.
    return max(by_speaker.values(), key=lambda group: (call_score_of([s.score for s in group]),
                                                       any(s.role == Role.CUSTOMER for s in group)))


def _trend(early: list[float], late: list[float], rule: TrendRule | None = None) -> Trend:
    """Late half vs early half of the call, each half read as the upper quartile of the party's
    stretch scores (how escalated it got there, not diluted by calm stretches in between or by
    another voice merged into the party); one calmer closing turn does not undo an escalation,
    and drift at a calm level is no trend (`rule`: the policy's change and level)."""
    rule = rule or default_policy().trend
    if not early or not late:
        return Trend.FLAT
    a, b = float(np.percentile(early, 75)), float(np.percentile(late, 75))
    if b - a > rule.call_change and b >= rule.call_level:
        return Trend.RISING
    if a - b > rule.call_change and a >= rule.call_level:
        return Trend.FALLING
    return Trend.FLAT


def _de_escalation(scored: list[TurnScore], policy: Policy) -> tuple[dict, ...]:
    """Agent apology/empathy turns, and the customer's score before and after them."""
    out = []
    soothing = {x.term for x in lexicon(policy) if x.category == "de_escalation"}
    for i, s in enumerate(scored):
        if s.role != Role.AGENT:
            continue
        phrases = [t for t in s.features.terms if t in soothing]
        if not phrases:
            continue
        before = [x.score for x in scored[:i] if x.role == Role.CUSTOMER][-1:]
        after = [x.score for x in scored[i + 1:] if x.role == Role.CUSTOMER][:1]
        out.append({"time": round(s.start, 2), "phrases": phrases,
                    "customer_before": before[0] if before else None, "customer_after": after[0] if after else None,
                    "calmed": bool(before and after and after[0] < before[0])})
    return tuple(out)


def assess_escalation(audio, turns, language: str, diarization=None, roles_certain: bool = False,
                      policy: Policy | None = None):
    """Escalation of a call: each turn cut at its speaker's pauses and each stretch's voice measured
    on its speaker's own channel when stereo. `roles_certain` when the manifest named the agent."""
    flags = interrupts([(t.start, t.end, t.role) for t in turns])
    stretches = utterances(turns, diarization.voice_segments() if diarization else (), language)
    channel_audio = {channel_label(i): audio.samples[i] for i in range(audio.channels)} if audio.channels > 1 else {}
    if any(u.speaker not in channel_audio for _, u in stretches):
        channel_audio[None] = audio.mono()  # a speaker no channel holds: the mix (down-mixed only then)
    features = turn_features(tuple(u for _, u in stretches), channel_audio, language,
                             {i for i, f in enumerate(flags) if f}, turn_of=[i for i, _ in stretches], policy=policy)
    return score_call(features, audio.duration, roles_certain=roles_certain, policy=policy)
