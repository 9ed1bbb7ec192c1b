"""Error rates for transcripts against reference text.

Mandarin is scored by characters (CER), English by words (WER). Both sides are normalised
the same way first, so the score measures recognition, not formatting: punctuation and case
go, Traditional becomes Simplified, and digits are compared in one script ("12378" and
"幺二三七八" are the same spoken digits; Whisper's English normaliser maps "twenty five" to "25").
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import numpy as np

_ZH_DIGITS = str.maketrans("0123456789幺", "零一二三四五六七八九一")


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance between token lists (one row of the DP table at a time)."""
    if not ref:
        return len(hyp)
    previous = np.arange(len(hyp) + 1)
    for i, r in enumerate(ref, start=1):
        current = np.empty_like(previous)
        current[0] = i
        for j, h in enumerate(hyp, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return int(previous[-1])


def normalise_zh(text: str) -> str:
    from .asr import to_simplified

    text = to_simplified(text).translate(_ZH_DIGITS).lower()
    return "".join(ch for ch in text if not unicodedata.category(ch).startswith(("P", "Z", "S", "C")))


@lru_cache(maxsize=1)
def _english_normaliser():
    from whisper.normalizers import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalise_en(text: str) -> list[str]:
    return _english_normaliser()(text).split()


def cer(reference: str, hypothesis: str) -> float:
    ref, hyp = list(normalise_zh(reference)), list(normalise_zh(hypothesis))
    return edit_distance(ref, hyp) / max(len(ref), 1)


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = normalise_en(reference), normalise_en(hypothesis)
    return edit_distance(ref, hyp) / max(len(ref), 1)


def error_rate(language: str, reference: str, hypothesis: str) -> float:
    """CER for Chinese, WER otherwise."""
    return cer(reference, hypothesis) if language == "zh" else wer(reference, hypothesis)


_SPACES = re.compile(r"\s+")


def join_turn_texts(texts: list[str], language: str) -> str:
    return ("" if language == "zh" else " ").join(_SPACES.sub(" ", t).strip() for t in texts)
