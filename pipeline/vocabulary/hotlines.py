"""Known service numbers misheard by one digit (12278 for the regulator's hotline 12378).

A customer who threatens to call a regulator says its five-digit 12xxx hotline; Whisper base
often gets one digit wrong, and the flag, the alert and the briefing then miss it. The known
numbers are data: the vocabulary's `regulator` terms that are 12xxx numbers. A written 12xxx
number that is not one of them is corrected only when it is one digit from exactly one known
number (no guess between two) and a call/complaint cue stands next to it (打, 拨打, 热线, 投诉...):
a stray 12xxx amount or code without such a cue is left alone.
"""
from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache

from pipeline.records import Correction, Segment, join_words
from pipeline.vocabulary.numbers import SPOKEN_DIGITS
from pipeline.vocabulary.terms import vocabulary

HOTLINE_CATEGORY = "regulator"
# Words that say a number is dialled or complained to; looked for within CUE_WINDOW characters.
CUES = ("打", "拨", "热线", "电话", "投诉", "举报", "找", "call", "hotline")
CUE_WINDOW = 4
_NUMBER = re.compile(r"(?<!\d)12\d{3}(?!\d)")


@lru_cache(maxsize=4)
def known_hotlines(source: str | None = None) -> frozenset[str]:
    """The regulators' hotlines of a vocabulary (see vocabulary.vocabulary for `source`)."""
    return frozenset(t.text for t in vocabulary(source)
                     if t.category == HOTLINE_CATEGORY and re.fullmatch(r"12\d{3}", t.text))


def nearest_hotline(number: str, source: str | None = None) -> str | None:
    """The one known hotline `number` is one digit away from, if exactly one; else None."""
    known = known_hotlines(source)
    if number in known:
        return None
    close = [h for h in known if sum(a != b for a, b in zip(h, number)) == 1]
    return close[0] if len(close) == 1 else None


def _has_cue(text: str, start: int, end: int) -> bool:
    around = text[max(0, start - CUE_WINDOW):start] + " " + text[end:end + CUE_WINDOW]
    return any(cue in around.lower() for cue in CUES)


def find_hotline_fixes(text: str, source: str | None = None) -> list[tuple[int, int, str]]:
    """(start, end, hotline) for each misheard hotline in `text` (positions in `text`)."""
    digits = "".join(SPOKEN_DIGITS.get(c, c) for c in text)
    out = []
    for m in _NUMBER.finditer(digits):
        hotline = nearest_hotline(m.group(0), source)
        if hotline and _has_cue(text, m.start(), m.end()):
            out.append((m.start(), m.end(), hotline))
    return out


def correct_hotlines(seg: Segment, first_seq: int = 0, source: str | None = None) -> tuple[Segment, list[Correction]]:
    """The segment with misheard hotlines rewritten (words and text), and the corrections."""
    if not seg.words:
        return seg, []
    chars, owner = [], []
    for wi, w in enumerate(seg.words):
        chars += list(w.text)
        owner += [wi] * len(w.text)
    text = "".join(chars)
    fixes = find_hotline_fixes(text, source)
    if not fixes:
        return seg, []
    corrections = []
    for start, end, hotline in fixes:
        chars[start:end] = list(hotline)
        corrections.append(Correction(seq=first_seq + len(corrections), start=seg.words[owner[start]].start,
                                      end=seg.words[owner[end - 1]].end, original=text[start:end],
                                      corrected=hotline, kind="hotline", score=1.0))
    new_words, k = [], 0
    for w in seg.words:
        new_words.append(replace(w, text="".join(chars[k:k + len(w.text)])))
        k += len(w.text)
    new_text = seg.text
    for c in corrections:
        if c.original not in new_text:  # spaced or written differently: rebuild from the words
            new_text = join_words(w.text for w in new_words)
            break
        new_text = new_text.replace(c.original, c.corrected, 1)
    return replace(seg, words=tuple(new_words), text=new_text), corrections
