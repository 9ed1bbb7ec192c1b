"""Conversation dynamics per call: who talked how much, silences, interruptions, overlap, pace."""
from __future__ import annotations

from pipeline.records import Diarization, Dynamics, Role, Turn

ROLES = (Role.AGENT, Role.CUSTOMER)
# A turn that starts while the other side is still talking is an interruption. In stereo the
# overlap is visible; mono diarization gives most overlapped speech one label (its overlap
# detector finds little), so there the other trace is a speaker change with no pause (LATCH).
INTERRUPT_MIN_OVERLAP = 0.3
LATCH = 0.1


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def _length(intervals) -> float:
    return sum(b - a for a, b in intervals)


def _intersection(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        total += max(0.0, hi - lo)
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def speech_units(text: str, language: str) -> int:
    """How much was said: characters for Chinese, words otherwise (the unit of speaking pace)."""
    if language == "zh":
        return sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff" or ch.isalnum())
    return len(text.split())


def interrupts(spans: list[tuple[float, float, str]]) -> list[bool]:
    """For (start, end, role) sorted by start: does each one start while the other role talks?"""
    out = []
    for i, (start, _, role) in enumerate(spans):
        if role not in ROLES or i == 0:
            out.append(False)
            continue
        others = [o for o in spans[:i] if o[2] in ROLES and o[2] != role]
        overlapped = any(o[0] < start < o[1] - INTERRUPT_MIN_OVERLAP for o in others)
        previous = spans[i - 1]
        latched = previous[2] in ROLES and previous[2] != role and start - previous[1] < LATCH
        out.append(overlapped or latched)
    return out


def measure(diarization: Diarization, roles: dict[str, str], turns: tuple[Turn, ...], duration: float,
            language: str) -> Dynamics:
    """Timing from the speaker segments (accurate to VAD frames); turn text only for the pace."""
    segs = [(s.start, s.end, roles.get(s.speaker, "unknown")) for s in diarization.segments]
    spans = {r: _union([(a, b) for a, b, role in segs if role == r]) for r in ROLES}
    speech = _union([(a, b) for a, b, _ in segs])
    gaps = [(b[0] - a[1], a[1]) for a, b in zip(speech, speech[1:])]
    longest, longest_at = max(gaps, default=(0.0, 0.0))
    interruptions = {r: 0 for r in ROLES}
    ordered = sorted(segs)
    for (_, _, role), interrupting in zip(ordered, interrupts(ordered)):
        if interrupting:
            interruptions[role] += 1
    rates = {}
    for r in ROLES:
        talk = _length(spans[r])
        units = sum(speech_units(t.text, t.language or language) for t in turns if t.role == r)
        rates[r] = round(60 * units / talk, 1) if talk > 0 else 0.0
    return Dynamics(
        agent_talk_s=round(_length(spans[Role.AGENT]), 2), customer_talk_s=round(_length(spans[Role.CUSTOMER]), 2),
        silence_s=round(max(0.0, duration - _length(speech)), 2), longest_silence_s=round(longest, 2),
        longest_silence_at=round(longest_at, 2), overlap_s=round(_intersection(spans[Role.AGENT], spans[Role.CUSTOMER]), 2),
        agent_interruptions=interruptions[Role.AGENT], customer_interruptions=interruptions[Role.CUSTOMER],
        agent_rate=rates[Role.AGENT], customer_rate=rates[Role.CUSTOMER],
        rate_unit="chars/min" if language == "zh" else "words/min",
    )
