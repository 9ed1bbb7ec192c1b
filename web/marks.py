"""Shown text with its marks (pipeline.analysis.uncertain): the words Whisper was unsure of, dotted,
with the vocabulary term they may have been, and the corrections made, with what Whisper wrote;
each note in the reader's language. Used wherever a page quotes what was said."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from pipeline.analysis.i18n import text as translated
from pipeline.analysis.uncertain import Piece, cut, marked, turn_words


@dataclass(frozen=True)
class Shown:
    """A piece of a quote as a page renders it: `note` is the hover text of a marked piece."""

    text: str
    kind: str | None = None  # None | "unsure" | "corrected"
    note: str | None = None


class Marker:
    def __init__(self, turns: dict, words: dict, corrections: dict, languages: dict, reader: str):
        self.turns, self.words, self.corrections = turns, words, corrections
        self.languages, self.reader = languages, reader  # call id -> its language; the reader's
        self._done: dict[tuple, tuple[Piece, ...]] = {}

    def _turn_pieces(self, call_id: str, k: int) -> tuple[Piece, ...]:
        key = (call_id, k)
        if key not in self._done:
            turn = self.turns[call_id][k]
            words = tuple((w["text"], w["probability"]) for w in turn_words(turn, self.words.get(call_id, [])))
            corrections = tuple((c["original"], c["corrected"]) for c in self.corrections.get(call_id, []))
            self._done[key] = _marked(turn["text"] or "", words, corrections, self.languages.get(call_id))
        return self._done[key]

    def turn(self, call_id: str, seq_index: int) -> list[Shown]:
        return [self._shown(p) for p in self._turn_pieces(call_id, seq_index)]

    def quote(self, call_id: str | None, time: float | None, text: str) -> list[Shown]:
        """A quote (a sentence of a turn, said at `time`) marked as its turn is; as written when
        its turn is not found (a shortened quote, a call whose words were removed)."""
        for k, turn in enumerate(self.turns.get(call_id, []) if call_id else []):
            at = (turn["text"] or "").find(text) if text else -1
            if at >= 0 and (time is None or turn["start"] - 0.5 <= time <= turn["end"] + 0.5):
                return [self._shown(p) for p in cut(self._turn_pieces(call_id, k), at, at + len(text))]
        return [Shown(text)]

    def _shown(self, p: Piece) -> Shown:
        if p.corrected_from:
            return Shown(p.text, "corrected", translated("mark.corrected", self.reader, original=p.corrected_from))
        if p.unsure:
            note = (translated("mark.may_be", self.reader, term=p.may_be) if p.may_be
                    else translated("mark.unsure", self.reader))
            return Shown(p.text, "unsure", note)
        return Shown(p.text)


@lru_cache(maxsize=4096)
def _marked(text: str, words: tuple, corrections: tuple, language: str | None) -> tuple[Piece, ...]:
    """`marked` of one turn, kept: the vocabulary's near-term search costs ~9 ms a turn, and what a
    stored turn shows never changes (its words and corrections are part of the key)."""
    return marked(text, [{"text": t, "probability": p} for t, p in words],
                  [{"original": o, "corrected": c} for o, c in corrections], language)
