"""Emotional escalation per turn and per call, from measured signals, each one explainable.

Signals per turn: voice (loudness in dB, pitch in semitones, speaking rate), each against the
same speaker's own calm baseline (their first turns), so a naturally loud voice is not
"angry"; words (lexicon kept as data: complaints, threats, supervisor requests, profanity,
dissatisfaction, repetition of an earlier demand); dynamics (this turn interrupted the other
side). A `Scorer` turns the features into 0-100; `RuleScorer` is the explainable default and a
learned model can take its place behind the same interface.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

import numpy as np

from .audio import SAMPLE_RATE
from .datafiles import read_rows
from .dynamics import speech_units
from .redact import redact
from .types import Turn

FLAG_CATEGORIES = ("regulator_threat", "media_threat", "legal_threat", "supervisor_request", "profanity")
# Spread floors: below these a change is not meaningful however steady the baseline was.
FLOOR = {"loudness_db": 2.0, "pitch_st": 1.0, "rate": 0.12}
BASELINE_TURNS = 2


@dataclass(frozen=True)
class LexiconTerm:
    category: str
    weight: int
    term: str
    pattern: re.Pattern


@lru_cache(maxsize=1)
def lexicon() -> tuple[LexiconTerm, ...]:
    terms = []
    for category, weight, term in read_rows("escalation_lexicon.tsv"):
        term = term.strip().lower()
        # English on ASCII word boundaries ("hell" is not in "hello", and "12378" still
        # matches in "打12378", where \b would see no boundary); Chinese as substrings.
        pattern = re.compile(rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])" if term.isascii() else re.escape(term))
        terms.append(LexiconTerm(category, int(weight), term, pattern))
    return tuple(terms)


def lexicon_hits(text: str) -> list[LexiconTerm]:
    from .vocabulary import normalise_numbers  # 幺二三七八 is 12378

    low = text.lower()
    spoken = normalise_numbers(low)
    return [t for t in lexicon() if t.pattern.search(low) or t.pattern.search(spoken)]


# --- features ---------------------------------------------------------------------------

@dataclass(frozen=True)
class VoiceFeatures:
    loudness_db: float  # median RMS of voiced frames, dBFS
    pitch_st: float  # median F0 in semitones re 100 Hz (nan when unvoiced)
    pitch_range_st: float  # 90th - 10th percentile of F0, semitones
    rate: float  # characters (zh) or words (en) per second of the turn


@dataclass(frozen=True)
class TurnFeatures:
    turn_index: int
    role: str
    speaker: str | None
    start: float
    end: float
    text: str
    voice: VoiceFeatures
    z_loudness: float = 0.0
    z_pitch: float = 0.0
    z_rate: float = 0.0
    loudness_delta_db: float = 0.0
    pitch_delta_st: float = 0.0
    terms: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    repeat_of: int | None = None  # index of an earlier turn of this speaker it repeats
    interrupted: bool = False


def voice_features(samples: np.ndarray, start: float, end: float, units: int) -> VoiceFeatures:
    """Loudness and pitch of one stretch of a 16 kHz mono signal (yin: ~250x realtime; pyin ~30x)."""
    import librosa

    clip = samples[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)]
    duration = max(end - start, 1e-3)
    if len(clip) < 2048:
        return VoiceFeatures(float("nan"), float("nan"), float("nan"), units / duration)
    hop = 256
    rms = librosa.feature.rms(y=clip, frame_length=1024, hop_length=hop)[0]
    db = 20 * np.log10(np.maximum(rms, 1e-6))
    voiced = db > (db.max() - 25)  # frames within 25 dB of the turn's peak: speech, not pauses
    f0 = librosa.yin(clip, fmin=70, fmax=500, sr=SAMPLE_RATE, frame_length=1024, hop_length=hop)
    n = min(len(f0), len(voiced))
    f0v = f0[:n][voiced[:n]]
    f0v = f0v[(f0v > 72) & (f0v < 495)]  # yin's bounds mean "no pitch found"
    semis = 12 * np.log2(f0v / 100.0) if f0v.size else np.array([np.nan])
    return VoiceFeatures(
        loudness_db=float(np.median(db[voiced])),
        pitch_st=float(np.nanmedian(semis)),
        pitch_range_st=float(np.nanpercentile(semis, 90) - np.nanpercentile(semis, 10)) if f0v.size > 4 else 0.0,
        rate=units / duration,
    )


def _tokens(text: str, language: str) -> set[str]:
    if language == "zh":
        import jieba

        return {t for t in jieba.lcut(text) if len(t) > 1}
    return {w for w in re.findall(r"[a-z']+", text.lower()) if len(w) > 3}


def _robust(values: list[float], baseline: list[float], floor: float) -> tuple[float, float]:
    """(baseline centre, spread): centre from the calm start, spread from all turns (MAD)."""
    vals = np.array([v for v in values if np.isfinite(v)])
    base = np.array([v for v in baseline if np.isfinite(v)])
    if not vals.size:
        return float("nan"), floor
    centre = float(np.median(base)) if base.size else float(np.median(vals))
    spread = 1.4826 * float(np.median(np.abs(vals - np.median(vals))))
    return centre, max(spread, floor)


def turn_features(turns: tuple[Turn, ...], channel_audio: dict[str | None, np.ndarray], language: str,
                  interrupted: set[int] = frozenset()) -> list[TurnFeatures]:
    """Features of every turn; z-scores against each speaker's own first turns."""
    raw = []
    for i, t in enumerate(turns):
        samples = channel_audio.get(t.speaker, channel_audio.get(None))
        raw.append(voice_features(samples, t.start, t.end, speech_units(t.text, language)))
    out = []
    by_speaker: dict[str | None, list[int]] = {}
    for i, t in enumerate(turns):
        by_speaker.setdefault(t.speaker, []).append(i)
    stats = {}
    for speaker, idx in by_speaker.items():
        base = idx[:BASELINE_TURNS]
        stats[speaker] = {
            name: _robust([getattr(raw[i], name) for i in idx], [getattr(raw[i], name) for i in base], FLOOR[name])
            for name in ("loudness_db", "pitch_st")
        }
        rates = [np.log(max(raw[i].rate, 1e-3)) for i in idx]  # rate relative: log scale
        stats[speaker]["rate"] = _robust(rates, rates[:BASELINE_TURNS], FLOOR["rate"])
    earlier_tokens: dict[str | None, list[tuple[int, set[str]]]] = {}
    for i, t in enumerate(turns):
        s = stats[t.speaker]
        v = raw[i]
        dl = v.loudness_db - s["loudness_db"][0]
        dp = v.pitch_st - s["pitch_st"][0]
        dr = np.log(max(v.rate, 1e-3)) - s["rate"][0]
        hits = lexicon_hits(t.text)
        tokens = _tokens(t.text, language)
        repeat = None
        for j, prev in earlier_tokens.get(t.speaker, []):
            if tokens and prev and len(tokens & prev) / len(tokens | prev) >= 0.3:
                repeat = j
        earlier_tokens.setdefault(t.speaker, []).append((i, tokens))
        out.append(TurnFeatures(
            turn_index=i, role=t.role, speaker=t.speaker, start=t.start, end=t.end, text=t.text, voice=v,
            z_loudness=_finite(dl / s["loudness_db"][1]), z_pitch=_finite(dp / s["pitch_st"][1]),
            z_rate=_finite(dr / s["rate"][1]), loudness_delta_db=_finite(dl), pitch_delta_st=_finite(dp),
            terms=tuple(h.term for h in hits), categories=tuple(sorted({h.category for h in hits})),
            repeat_of=repeat, interrupted=i in interrupted,
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
    voice_weight: float = 0.5
    words_weight: float = 0.5
    interruption_points: float = 10.0
    repeat_points: float = 10.0

    def voice_score(self, f: TurnFeatures) -> float:
        """0-100 from how far above their own baseline the speaker is (3 SD = full)."""
        z = 0.45 * min(max(f.z_loudness, 0), 3) + 0.4 * min(max(f.z_pitch, 0), 3) + 0.15 * min(max(f.z_rate, 0), 3)
        return 100 * z / 3

    def words_score(self, f: TurnFeatures) -> float:
        weights = {t.term: t.weight for t in lexicon() if t.category != "de_escalation"}
        return min(100.0, sum(weights.get(term, 0) for term in f.terms))

    def score(self, f: TurnFeatures) -> tuple[float, dict[str, float]]:
        parts = {
            "voice": self.voice_weight * self.voice_score(f),
            "words": self.words_weight * self.words_score(f),
            "interruption": self.interruption_points if f.interrupted else 0.0,
            "repetition": self.repeat_points if f.repeat_of is not None else 0.0,
        }
        return min(100.0, sum(parts.values())), parts


# --- per call ---------------------------------------------------------------------------

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
class Escalation:
    call_score: float
    trend: str  # rising | falling | flat
    quarter_scores: tuple[float | None, ...]
    peak_time: float | None
    flags: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    turns: tuple[TurnScore, ...]
    de_escalation: tuple[dict, ...] = field(default_factory=tuple)


def mmss(t: float) -> str:
    return f"{int(t // 60):02d}:{int(t % 60):02d}"


def _detail(ts: TurnScore) -> str:
    f = ts.features
    bits = []
    if f.z_pitch >= 1:
        bits.append(f"pitch {f.z_pitch:+.1f} SD ({f.pitch_delta_st:+.1f} semitones)")
    if f.z_loudness >= 1:
        bits.append(f"loudness {f.loudness_delta_db:+.0f} dB ({f.z_loudness:+.1f} SD)")
    if f.z_rate >= 1:
        bits.append(f"rate {f.z_rate:+.1f} SD")
    if f.terms:
        bits.append("words: " + ", ".join(f.terms))
    if f.interrupted:
        bits.append("interrupted")
    if f.repeat_of is not None:
        bits.append("repeats an earlier demand")
    quote = f.text if len(f.text) <= 60 else f.text[:57] + "..."
    return f"{ts.role} {'; '.join(bits) or 'no marked change'} at {mmss(ts.start)}: '{quote}'"


def score_call(features: list[TurnFeatures], duration: float, scorer: Scorer = RuleScorer()) -> Escalation:
    scored = []
    for f in features:
        value, parts = scorer.score(f)
        scored.append(TurnScore(f.turn_index, f.role, f.start, f.end, round(value, 1),
                                {k: round(v, 1) for k, v in parts.items()}, f))
    customer = [s for s in scored if s.role == "customer"] or [s for s in scored if s.role != "agent"]
    if not customer:
        return Escalation(0.0, "flat", (None,) * 4, None, (), (), tuple(scored))
    values = [s.score for s in customer]
    call_score = round(0.6 * max(values) + 0.4 * float(np.mean(values)), 1)
    quarters: list[float | None] = []
    for q in range(4):
        lo, hi = duration * q / 4, duration * (q + 1) / 4
        inside = [s.score for s in customer if lo <= (s.start + s.end) / 2 < hi]
        quarters.append(round(float(np.mean(inside)), 1) if inside else None)
    trend = _trend(quarters)
    peak = max(customer, key=lambda s: s.score)
    flags = {c for s in customer for c in s.features.categories if c in FLAG_CATEGORIES}
    if any(s.features.repeat_of is not None for s in customer):
        flags.add("repeat_demand")
    top = sorted(customer, key=lambda s: -s.score)[:3]
    # Evidence is read by handlers: quotes are masked (card, ID, phone, e-mail).
    evidence = tuple(Evidence(round(s.start, 2), s.role, s.score, redact(s.features.text), redact(_detail(s)))
                     for s in sorted(top, key=lambda s: s.start))
    return Escalation(call_score, trend, tuple(quarters), round(peak.start, 2), tuple(sorted(flags)), evidence, tuple(scored),
                      _de_escalation(scored))


TREND_CHANGE = 10.0  # points between the early and the late half of the call
TREND_LEVEL = 25.0  # ...and the higher half must reach this to be called a trend


def _trend(quarters: list[float | None]) -> str:
    """Late half vs early half of the call (quarters, as call-analytics products report them);
    one calmer closing turn does not undo an escalation, and drift at a calm level is no trend."""
    early = [q for q in quarters[:2] if q is not None]
    late = [q for q in quarters[2:] if q is not None]
    if not early or not late:
        return "flat"
    a, b = float(np.mean(early)), float(np.mean(late))
    if b - a > TREND_CHANGE and b >= TREND_LEVEL:
        return "rising"
    if a - b > TREND_CHANGE and a >= TREND_LEVEL:
        return "falling"
    return "flat"


def _de_escalation(scored: list[TurnScore]) -> tuple[dict, ...]:
    """Agent apology/empathy turns, and the customer's score before and after them."""
    out = []
    for i, s in enumerate(scored):
        if s.role != "agent":
            continue
        phrases = [t for t in s.features.terms if t in {x.term for x in lexicon() if x.category == "de_escalation"}]
        if not phrases:
            continue
        before = [x.score for x in scored[:i] if x.role == "customer"][-1:]
        after = [x.score for x in scored[i + 1:] if x.role == "customer"][:1]
        out.append({"time": round(s.start, 2), "phrases": phrases,
                    "customer_before": before[0] if before else None, "customer_after": after[0] if after else None,
                    "calmed": bool(before and after and after[0] < before[0])})
    return tuple(out)


def plot_svg(esc: Escalation, duration: float, title: str = "") -> str:
    """Score over the call by role, flags marked: a small self-contained SVG."""
    w, h, pad = 640, 240, 36
    x = lambda t: pad + (w - 2 * pad) * (t / max(duration, 1e-6))  # noqa: E731
    y = lambda s: h - pad - (h - 2 * pad) * s / 100  # noqa: E731
    colours = {"customer": "#d62728", "agent": "#1f77b4", "unknown": "#7f7f7f"}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{pad}" y="16">{_esc(title)} escalation {esc.call_score:.0f}/100, {esc.trend}</text>',
             f'<line x1="{pad}" y1="{y(0)}" x2="{w - pad}" y2="{y(0)}" stroke="#999"/>',
             f'<line x1="{pad}" y1="{y(0)}" x2="{pad}" y2="{y(100)}" stroke="#999"/>']
    for s in (25, 50, 75, 100):
        parts.append(f'<text x="4" y="{y(s) + 4}">{s}</text>')
    for m in range(0, int(duration) + 1, 15):
        parts.append(f'<text x="{x(m) - 10}" y="{h - pad + 14}">{mmss(m)}</text>')
    for role in ("agent", "customer"):
        pts = [(x((t.start + t.end) / 2), y(t.score)) for t in esc.turns if t.role == role]
        if pts:
            parts.append(f'<polyline fill="none" stroke="{colours[role]}" stroke-width="2" points="'
                         + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
            parts += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{colours[role]}"/>' for a, b in pts]
            parts.append(f'<text x="{w - pad - 60}" y="{30 + 14 * (role == "customer")}" fill="{colours[role]}">{role}</text>')
    for t in esc.turns:
        flags = [c for c in t.features.categories if c in FLAG_CATEGORIES]
        if flags and t.role == "customer":
            parts.append(f'<text x="{x(t.start):.1f}" y="{y(t.score) - 8:.1f}" fill="#d62728">⚑ {_esc(", ".join(flags))}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
