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

from pipeline.records import join_words

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
    from pipeline.speech.asr import to_simplified

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
    return join_words(_SPACES.sub(" ", t).strip() for t in texts)


def reference_annotation(turns: list[dict], uri: str = "call"):
    """pyannote Annotation of ground-truth turns ({'start', 'end', 'speaker'})."""
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=uri)
    for i, t in enumerate(turns):
        annotation[Segment(t["start"], t["end"]), i] = t["speaker"]
    return annotation


def diarization_error_rate(turns: list[dict], diarization, collar: float = 0.0) -> float:
    """DER of a `speakers.Diarization` against ground-truth turns (no collar unless given)."""
    from pyannote.metrics.diarization import DiarizationErrorRate

    metric = DiarizationErrorRate(collar=collar, skip_overlap=False)
    return float(metric(reference_annotation(turns), diarization.to_annotation()))


def diarization_error_parts(turns: list[dict], diarization, collar: float = 0.0) -> tuple[float, float]:
    """(error seconds, reference speech seconds) of the DER, for a DER pooled over calls."""
    from pyannote.metrics.diarization import DiarizationErrorRate

    parts = DiarizationErrorRate(collar=collar, skip_overlap=False)(
        reference_annotation(turns), diarization.to_annotation(), detailed=True)
    return (float(parts["confusion"] + parts["missed detection"] + parts["false alarm"]), float(parts["total"]))


def turn_agreement(truth_turns: list[dict], turns, language: str) -> dict:
    """How well stored turns reproduce the script: each script turn is compared with the text of
    the hypothesis turns of the same role that overlap it in time."""
    errors, role_hits = [], 0
    for ref in truth_turns:
        matched = [t for t in turns if min(t.end, ref["end"]) - max(t.start, ref["start"]) > 0.2]
        same_role = [t for t in matched if t.role == ref["role"]]
        role_hits += bool(same_role)
        hyp = join_turn_texts([t.text for t in same_role], language)
        errors.append(error_rate(language, ref["text"], hyp))
    return {"mean_error": float(np.mean(errors)) if errors else 1.0, "max_error": max(errors, default=1.0),
            "role_coverage": role_hits / max(len(truth_turns), 1), "n_turns": len(turns),
            "n_script_turns": len(truth_turns)}
