"""A second opinion from Whisper on loose vocabulary matches (contextual rescoring).

Correction on sound alone (vocabulary.correct_transcript) stops where pinyin stops: 处去看 is two
syllables from 储蓄卡, 狐狐态毒 from 服务态度, and 名气 is a real word Whisper was fairly sure of.
Such spans are only candidates here. For each, Whisper hears a window of the segment (the span
with `context_chars` characters either side) again with the candidate terms as its context (the
previous text, as hotwords would be given) and scores texts without searching: the window as
written and the window with the term. The term replaces the span only when Whisper finds it the
likelier reading of the audio by more than `margin` (log probability).

Measured on the 101 ../shared/audio utterances and the sample calls: README, "Mandarin domain
vocabulary". Costs one encoder pass over the window's own audio per window, and one
teacher-forced decoder pass per window that reads all its readings as one batch: windows of 8
characters made the same or better decisions than whole segments for 28% less time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Protocol

import numpy as np

from pipeline.intake.audio import SAMPLE_RATE
from pipeline.records import Correction, Segment, Transcript
from pipeline.vocabulary.domain import call_domain
from pipeline.vocabulary.terms import Match, apply_matches, find_loose_matches, segment_characters

# Whisper reads a segment with up to this much audio either side of its words.
PAD_SECONDS = 0.2
# ... and a window of a segment with this much either side of the window's words (as far as the
# segment's clip reaches: PAD_SECONDS at its ends): word times are Whisper's estimates, and a
# reading whose first or last words are cut off scores low whichever term it holds.
WINDOW_PAD_SECONDS = 0.5
MIN_WINDOW_SECONDS = 0.3


class Scorer(Protocol):
    def score(self, audio: np.ndarray, texts: list[tuple[str, str | None]], language: str) -> list[float]: ...


@dataclass(frozen=True)
class RescoreOptions:
    # Log-probability the term's reading must gain over the written one: ln 3, the term's reading
    # at least 3 times as likely (Kass and Raftery's "positive" evidence), not a value fitted to
    # these changes. The wrong changes seen gained little (手机运行→手机银行 +0.27 judged on a whole
    # segment; 客户端→客服端 +0.78 on a window of a reference line aligned by Whisper); the right
    # ones 2.9-12.6, except 火气→活期 (+0.58) and a down-mixed 服务态度 (+0.72), which it gives up:
    # under 1 a change was a coin flip, and a term written in that was never said can raise a flag.
    margin: float = math.log(3)
    # Best loose matches only, each a row of its window's decoder batch: 国家银行 sounds loosely like
    # half the banks in the vocabulary, and the best two stand for them.
    max_candidates_per_segment: int = 6
    max_terms_per_span: int = 2
    # Characters of the segment either side of a span that Whisper hears and reads with it.
    context_chars: int = 8


def _windows(candidates: list[Match], owner: list[int], context: int) -> list[tuple[int, int, list[Match]]]:
    """Candidates grouped into windows of the text, (first char, end char, candidates): each span
    with `context` characters either side, widened to whole words; overlapping windows merge."""
    first_char = {}  # a word's first character
    for k, w in enumerate(owner):
        first_char.setdefault(w, k)
    n = len(owner)

    def word_end(k: int) -> int:
        while k + 1 < n and owner[k + 1] == owner[k]:
            k += 1
        return k + 1

    windows: list[tuple[int, int, list[Match]]] = []
    for m in sorted(candidates, key=lambda m: m.start):
        lo = first_char[owner[max(0, m.start - context)]]
        hi = word_end(min(n - 1, m.end - 1 + context))
        if windows and lo < windows[-1][1]:
            prev_lo, prev_hi, group = windows[-1]
            windows[-1] = (prev_lo, max(prev_hi, hi), group + [m])
        else:
            windows.append((lo, hi, [m]))
    return windows


def rescore_segment(seg: Segment, clip: np.ndarray, scorer: Scorer, options: RescoreOptions,
                    first_seq: int = 0, source: str | None = None) -> tuple[Segment, list[Correction]]:
    """The segment with each loose match Whisper prefers replaced by its term (kind "rescored",
    score: the log-probability gained). `clip`: the segment's audio as `segment_clip` cuts it."""
    text, owner, probs, joined = segment_characters(seg)
    candidates, per_span = [], {}
    for m in find_loose_matches(text, probs, joined, source):  # best first
        if per_span.get((m.start, m.end), 0) < options.max_terms_per_span:
            per_span[(m.start, m.end)] = per_span.get((m.start, m.end), 0) + 1
            candidates.append(m)
    candidates = candidates[:options.max_candidates_per_segment]
    if not candidates:
        return seg, []
    clip_start = _clip_start(seg)
    gains = []
    for lo, hi, group in _windows(candidates, owner, options.context_chars):
        # Whisper hears the window's words only (their times, WINDOW_PAD_SECONDS either side) and
        # reads the window's text: the cost of a reading grows with its audio and its tokens.
        start = max(0, int((seg.words[owner[lo]].start - WINDOW_PAD_SECONDS - clip_start) * SAMPLE_RATE))
        end = min(len(clip), int((seg.words[owner[hi - 1]].end + WINDOW_PAD_SECONDS - clip_start) * SAMPLE_RATE))
        if end - start < MIN_WINDOW_SECONDS * SAMPLE_RATE:  # word times that make no sense: the segment
            start, end = 0, len(clip)
        window = text[lo:hi]
        # One context for the window: its candidate terms, as hotwords would be given. The written
        # text and each candidate reading are scored after it, so each compares with the same prior.
        context = "，".join(dict.fromkeys(m.term for m in group))
        texts = [(window, context)] + [(window[:m.start - lo] + m.term + window[m.end - lo:], context)
                                       for m in group]
        scores = scorer.score(np.ascontiguousarray(clip[start:end]), texts, "zh")
        gains += [(scores[k + 1] - scores[0], m) for k, m in enumerate(group)]
    chosen, taken = [], [False] * len(text)
    for gain, m in sorted(gains, key=lambda g: -g[0]):
        if gain > options.margin and not any(taken[m.start:m.end]):
            chosen.append(replace(m, score=gain))
            taken[m.start:m.end] = [True] * (m.end - m.start)
    if not chosen:
        return seg, []
    return apply_matches(seg, sorted(chosen, key=lambda m: m.start), "rescored", first_seq)


def rescore_transcript(transcript: Transcript, clip_of: Callable[[Segment], np.ndarray], scorer: Scorer,
                       options: RescoreOptions | None = None, first_seq: int = 0,
                       source: str | None = None) -> tuple[Transcript, tuple[Correction, ...]]:
    """Rescoring of the Chinese segments of a transcript. `clip_of(segment)`: the audio Whisper
    should read for a segment (its speaker's channel, or the mono mix); `first_seq`: where the
    numbering of this call's corrections goes on. The clip must be cut as `segment_clip` cuts it:
    windows are cut from it by word times. A call that is no service call (vocabulary.domain) is
    left as it is."""
    options = options or RescoreOptions()  # on or off: TranscribeOptions.rescore_vocabulary
    if not call_domain(transcript, source).service:
        return transcript, ()
    segments, corrections = [], []
    for seg in transcript.segments:
        language = seg.language or transcript.language
        if language == "zh" and seg.words:
            seg, found = rescore_segment(seg, clip_of(seg), scorer, options, first_seq + len(corrections), source)
            corrections += found
        segments.append(seg)
    return replace(transcript, segments=tuple(segments)), tuple(corrections)


def _clip_start(seg: Segment) -> float:
    """Where a segment's clip begins (s): rescore_segment cuts its windows from there."""
    return max(0.0, seg.start - PAD_SECONDS)


def segment_clip(samples: np.ndarray, sample_rate: int, seg: Segment, channel: int | None) -> np.ndarray:
    """The audio of a segment, PAD_SECONDS either side: the speaker's channel of a stereo call
    (`channel`), else the mono mix of all channels."""
    start = int(_clip_start(seg) * sample_rate)
    end = min(samples.shape[-1], int((seg.end + PAD_SECONDS) * sample_rate))
    if channel is not None and channel < samples.shape[0]:
        return np.ascontiguousarray(samples[channel, start:end], dtype=np.float32)
    return np.ascontiguousarray(samples[:, start:end].mean(axis=0), dtype=np.float32)
