"""Word sets for comparing utterances (repeats, near-duplicates): one place that knows how
Mandarin and English text split into words."""
from __future__ import annotations

import re

_LATIN_WORD = re.compile(r"[a-z']+")
_LATIN_OR_HAN = re.compile(r"[a-z]+|[\u4e00-\u9fff]")


def content_words(text: str, language: str, min_latin: int = 3) -> set[str]:
    """The words of `text` that carry content: jieba words of two characters or more in Mandarin,
    lower-cased Latin words longer than `min_latin` letters otherwise (short ones are function words)."""
    if language == "zh":
        import jieba  # heavy: its dictionary loads on first use

        return {t for t in (w.strip() for w in jieba.lcut(text)) if len(t) > 1}
    return {w for w in _LATIN_WORD.findall(text.lower()) if len(w) > min_latin}


def letters(text: str) -> set[str]:
    """Han characters and lower-cased Latin words: a word split that needs no segmenter, for
    telling whether two short texts say the same thing."""
    return set(_LATIN_OR_HAN.findall(text.lower()))
