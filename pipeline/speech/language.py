"""Language per stretch of one speaker's stream, so a speaker who switches language (Mandarin,
then English; an English phrase between Mandarin turns) has each stretch decoded in its own
language. Decoding a whole stream in one language turns the other language's stretch into
garbage, a translation, or nothing (measured: 16 s of Mandarin then 7 s of English, decoded as
zh, lost the English entirely).

The stream is cut at its pauses (the joins between the speaker's speech segments) into
stretches of a few seconds; Whisper's language detector runs on each; the sequence is smoothed
(an unsure stretch takes the language of its nearest sure neighbour, so only a sure stretch can
switch); each run of same-language stretches is then transcribed in its language and its
times moved back onto the stream. A stream in one language is transcribed in one piece, as
before, only with the language given (which skips Whisper's own detection pass).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import ctranslate2
import numpy as np

from pipeline.intake.audio import SAMPLE_RATE
from pipeline.records import Segment, Transcript, Word
from pipeline.speech.asr import AsrEngine, TranscribeOptions

# Whisper's detector is reliable from a few seconds of speech; shorter pieces join their neighbours.
MIN_STRETCH_S = 3.0
# Longer pieces are cut (detection on a 30 s window would let the window's main language hide a
# phrase in the other one); the cut is not at a pause, so it is only used where the language changes.
MAX_STRETCH_S = 12.0
# A stretch's detection counts (may switch the language) at this probability or above; the same
# bar a stream's own language had to clear before stretches existed.
SURE_PROB = 0.7


@dataclass(frozen=True)
class Stretch:
    """A span of stream time with the language detected on it (and after smoothing)."""

    start: float
    end: float
    language: str
    probability: float  # the detector's probability of `language` on this stretch

    @property
    def seconds(self) -> float:
        return self.end - self.start


def cut_stretches(stream_starts, lengths, total: float) -> list[tuple[float, float]]:
    """(start, end) in stream time: the stream's pieces (speech segments joined by pauses), short
    ones merged with the next until MIN_STRETCH_S, long ones cut into equal parts under
    MAX_STRETCH_S. Cuts fall in the joining pause between pieces, so no word is split there."""
    spans: list[list[float]] = []
    for start, length in zip(stream_starts, lengths):
        start, end = float(start), float(start + length)
        if spans and spans[-1][1] - spans[-1][0] < MIN_STRETCH_S:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    if len(spans) > 1 and spans[-1][1] - spans[-1][0] < MIN_STRETCH_S:  # a short tail joins the one before
        tail = spans.pop()
        spans[-1][1] = tail[1]
    out: list[tuple[float, float]] = []
    for start, end in spans:
        parts = int(np.ceil((end - start) / MAX_STRETCH_S))
        edges = np.linspace(start, end, parts + 1) if parts > 1 else [start, end]
        out += [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:])]
    # Each stretch runs to the middle of the pause after it, so the stretches tile the stream.
    tiled = []
    for i, (start, end) in enumerate(out):
        nxt = out[i + 1][0] if i + 1 < len(out) else total
        tiled.append((0.0 if i == 0 else tiled[-1][1], (end + nxt) / 2 if i + 1 < len(out) else total))
    return tiled


# Stretches detected at once: sorted by length, so a batch's clips are padded little.
DETECT_BATCH = 8


def detect_clips(engine: AsrEngine, clips: list[np.ndarray]) -> list[tuple[str, float]] | None:
    """(language, probability) of each clip with faster-whisper's detector, or None when the
    engine has none. The features are not padded to Whisper's 30 s window: the encoder's cost
    grows with its input, and on clips of a few seconds the unpadded detection is as sure
    (measured: 0.10 s instead of 1.0 s per stretch, zh 0.998 / en 0.996 on real speech). Clips of
    similar length go through the encoder together, each padded with silence to the longest of
    its batch (at most a few seconds: Whisper is trained on speech followed by silence)."""
    whisper = getattr(engine, "model", None)
    if not hasattr(whisper, "feature_extractor") or not hasattr(whisper, "model"):
        return None
    out: list[tuple[str, float] | None] = [None] * len(clips)
    order = sorted(range(len(clips)), key=lambda k: len(clips[k]))
    for first in range(0, len(order), DETECT_BATCH):
        batch = order[first:first + DETECT_BATCH]
        longest = max(len(clips[k]) for k in batch)
        padded = [np.pad(clips[k], (0, longest - len(clips[k]))) for k in batch]
        features = np.stack([whisper.feature_extractor(np.ascontiguousarray(c, dtype=np.float32))[:, :3000]
                             for c in padded])
        found = whisper.model.detect_language(ctranslate2.StorageView.from_array(np.ascontiguousarray(features)))
        for k, result in zip(batch, found):
            token, prob = result[0]
            out[k] = (token[2:-2], float(prob))
    return out


def smooth(stretches: list[Stretch], fallback: str | None) -> list[Stretch]:
    """Unsure stretches take the language of the nearest sure one (before or after; the surer on a
    tie), so a switch needs a sure stretch. With no sure stretch at all, every stretch takes
    `fallback` (the call's language) when known, else the stream's most probable detection."""
    sure = [i for i, s in enumerate(stretches) if s.probability >= SURE_PROB]
    if not sure:
        best = fallback or max(stretches, key=lambda s: s.probability * s.seconds).language
        return [replace(s, language=best) for s in stretches]
    out = []
    for i, s in enumerate(stretches):
        if s.probability >= SURE_PROB:
            out.append(s)
            continue
        nearest = min(sure, key=lambda j: (abs(j - i), -stretches[j].probability))
        out.append(replace(s, language=stretches[nearest].language))
    return out


def runs(stretches: list[Stretch]) -> list[list[Stretch]]:
    """Consecutive stretches of one language."""
    out: list[list[Stretch]] = []
    for s in stretches:
        if out and out[-1][-1].language == s.language:
            out[-1].append(s)
        else:
            out.append([s])
    return out


def stream_stretches(engine: AsrEngine, audio: np.ndarray, stream_starts, lengths,
                     fallback: str | None = None) -> list[Stretch] | None:
    """The smoothed stretches of one stream, or None when the engine cannot detect per stretch."""
    total = len(audio) / SAMPLE_RATE
    spans = cut_stretches(stream_starts, lengths, total)
    detected = detect_clips(engine, [audio[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)] for start, end in spans])
    if detected is None:
        return None
    return smooth([Stretch(start, end, *d) for (start, end), d in zip(spans, detected)], fallback)


def dominant(languages_seconds) -> str | None:
    """The language with the most speech time, from (language, seconds) pairs."""
    totals: dict[str, float] = {}
    for language, seconds in languages_seconds:
        if language:
            totals[language] = totals.get(language, 0.0) + seconds
    return max(totals, key=totals.get) if totals else None


def transcribe_stretches(engine: AsrEngine, audio: np.ndarray, stretches: list[Stretch],
                         options: TranscribeOptions, on_progress=None) -> Transcript:
    """Each run of same-language stretches transcribed in its language; segment times moved back
    onto the stream, each segment marked with its language. The transcript's language is the one
    with most speech; its probability the detector's mean over those stretches, by time."""
    parts = []
    for run in runs(stretches):
        start, end = run[0].start, run[-1].end
        clip = audio[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)]
        report = (lambda t, before=start: on_progress(before + t)) if on_progress else None
        part = engine.transcribe(clip, options.for_language(run[0].language), report)
        parts.append((start, run[0].language, part))
    language = dominant((s.language, s.seconds) for s in stretches)
    mine = [s for s in stretches if s.language == language]
    probability = sum(s.probability * s.seconds for s in mine) / max(sum(s.seconds for s in mine), 1e-9)
    segments = tuple(shifted(seg, offset, lang) for offset, lang, part in parts for seg in part.segments)
    first = parts[0][2]
    return replace(first, language=language, language_probability=probability, segments=segments,
                   duration=len(audio) / SAMPLE_RATE, dropped=tuple(d for _, _, p in parts for d in p.dropped))


def shifted(seg: Segment, offset: float, language: str) -> Segment:
    return replace(seg, start=seg.start + offset, end=seg.end + offset, language=language,
                   words=tuple(Word(w.text, w.start + offset, w.end + offset, w.probability) for w in seg.words))
