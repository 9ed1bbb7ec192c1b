"""Correct a whole transcript by the vocabulary: near-homophones of domain terms (`terms`), then
misheard regulator hotlines (`hotlines`), segment by segment, each change kept as a `Correction`."""
from __future__ import annotations

from dataclasses import replace

from pipeline.records import Correction, Transcript
from pipeline.vocabulary.domain import call_domain
from pipeline.vocabulary.hotlines import correct_hotlines
from pipeline.vocabulary.terms import correct_segment


def correct_transcript(transcript: Transcript, source: str | None = None) -> tuple[Transcript, tuple[Correction, ...]]:
    """Near-homophone correction of the Chinese segments of a transcript (a mixed-language call
    may have them whatever its main language); other segments pass unchanged. `source`: the
    vocabulary's text (the policy's `vocabulary` file), None for the packaged one. A call that is
    no service call (vocabulary.domain) is left as it is."""
    if not call_domain(transcript, source).service:
        return transcript, ()
    segments, corrections = [], []
    for seg in transcript.segments:
        fixed, found = correct_segment(seg, len(corrections), source)
        corrections += found
        fixed, found = correct_hotlines(fixed, len(corrections), source)  # 12278 → 12378 beside 打/投诉
        segments.append(fixed)
        corrections += found
    return replace(transcript, segments=tuple(segments)), tuple(corrections)
