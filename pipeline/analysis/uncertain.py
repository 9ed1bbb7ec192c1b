"""Words Whisper was unsure of, for the pages to show dotted (a reader hears the moment before
trusting it), with what the vocabulary says they may have been; and the words the vocabulary
corrected, with what Whisper wrote. Works on the masked text a page shows: only pieces of that
text are returned, never a stored word (which may hold the digits masking hid)."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.analysis.redact import redact
from pipeline.vocabulary.terms import LOOSE_MIN_SYLLABLES, MIN_SIMILARITY, find_loose_matches, similarity

# A word is shown as unsure when, at its probability, at least UNSURE_SHARE of Whisper's words
# were wrong: below 0.7 that held in every bin of the tuning half of the Mandarin sets (39-46%
# wrong; 0.7-0.8: 21%, 0.9+: 3%), `python -m evaluation.word_confidence`.
UNSURE_SHARE = 1 / 3
UNSURE_BELOW = 0.7
# How far ahead of the last placed word the next one is looked for (spaces, punctuation and a
# masked number the words hold but the text does not).
LOOKAHEAD = 12


@dataclass(frozen=True)
class Piece:
    """A run of the shown text: plain, or a word Whisper was unsure of (with the vocabulary's
    nearest term, if any), or a correction (with what Whisper wrote, masked)."""

    text: str
    unsure: bool = False
    may_be: str | None = None
    corrected_from: str | None = None


def _place(text: str, words: list[dict]) -> list[tuple[int, int, float]]:
    """(start, end, probability) in `text` of each word found there, in order."""
    placed, cursor = [], 0
    for w in words:
        word = (w.get("text") or "").strip()
        if not word:
            continue
        at = text.find(word, cursor, cursor + LOOKAHEAD + len(word))
        if at < 0:
            continue  # masked, or cut from the quote
        placed.append((at, at + len(word), float(w.get("probability") if w.get("probability") is not None else 1.0)))
        cursor = at + len(word)
    return placed


def marked(text: str, words: list[dict], corrections: list[dict] = (), language: str | None = None) -> tuple[Piece, ...]:
    """`text` (a turn's masked text, or part of one) cut into pieces. `words`: the turn's stored
    words in order (text, probability); `corrections`: the call's (original, corrected) changes."""
    if not text:
        return ()
    placed = _place(text, words)
    probabilities = [1.0] * len(text)
    for start, end, p in placed:
        probabilities[start:end] = [p] * (end - start)
    marks: list[tuple[int, int, Piece]] = []
    taken = [False] * len(text)
    for c in corrections:
        term = c.get("corrected") or ""
        at = text.find(term) if term else -1
        if at >= 0 and not any(taken[at:at + len(term)]):
            marks.append((at, at + len(term), Piece(term, corrected_from=redact(c.get("original")) or None)))
            taken[at:at + len(term)] = [True] * len(term)
    # Neighbouring unsure words are one run (拆 运 炉); a vocabulary term that sounds like a run
    # (查余额) names what it may have been and widens the run to the span it would replace.
    runs: list[list[int]] = []
    for start, end, p in placed:
        if p >= UNSURE_BELOW or any(taken[start:end]):
            continue
        if runs and runs[-1][1] == start:
            runs[-1][1] = end
        else:
            runs.append([start, end])
    # Named only as the vocabulary itself would consider it: a near-homophone by the correction's
    # bar, or a loose match of a term of LOOSE_MIN_SYLLABLES+ (shorter ones match loosely almost anywhere).
    candidates = [m for m in (find_loose_matches(text, probabilities) if language == "zh" and runs else [])
                  if len(m.term) >= LOOSE_MIN_SYLLABLES or similarity(text[m.start:m.end], m.term) >= MIN_SIMILARITY]
    for start, end in runs:
        near = next((m for m in candidates if m.start < end and start < m.end
                     and not any(taken[m.start:m.end]) and m.term != text[m.start:m.end]), None)
        if near is not None:
            start, end = min(start, near.start), max(end, near.end)
        if any(taken[start:end]):
            continue
        marks.append((start, end, Piece(text[start:end], unsure=True, may_be=near.term if near else None)))
        taken[start:end] = [True] * (end - start)
    pieces, cursor = [], 0
    for start, end, piece in sorted(marks, key=lambda m: m[0]):
        if start > cursor:
            pieces.append(Piece(text[cursor:start]))
        pieces.append(piece)
        cursor = end
    if cursor < len(text):
        pieces.append(Piece(text[cursor:]))
    return tuple(pieces)


def cut(pieces: tuple[Piece, ...], start: int, end: int) -> tuple[Piece, ...]:
    """The pieces of characters start..end of their text (a quote inside a turn): a marked piece
    cut by the edge keeps its mark."""
    out, at = [], 0
    for p in pieces:
        lo, hi = max(start, at), min(end, at + len(p.text))
        if lo < hi:
            out.append(Piece(p.text[lo - at:hi - at], p.unsure, p.may_be, p.corrected_from))
        at += len(p.text)
    return tuple(out)


def turn_words(turn: dict, words: list[dict]) -> list[dict]:
    """The stored words of one turn: its speaker's role, inside its times (10 ms of slack)."""
    return [w for w in words if w["role"] == turn["role"] and turn["start"] - 0.01 <= w["start"]
            and w["end"] <= turn["end"] + 0.01]
