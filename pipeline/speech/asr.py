"""Speech recognition's public face: what to load (`EngineSpec`), how to decode
(`TranscribeOptions`), the interface every Whisper engine meets (`AsrEngine`), and the
engine-independent clean-up (`postprocess`: known silence hallucinations dropped, Mandarin in
Simplified characters). The engines are in `backends/` (faster-whisper, the default; and
openai-whisper); `speech.transcribe` loads one and runs the transcription stage.
"""
from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Callable, Protocol

import numpy as np

from pipeline.config.datafiles import read_rows
from pipeline.records import Segment, Transcript
from pipeline.speech.weights import DEFAULT_MODEL

# Average log probability under which a Mandarin window decoded at the normal beam is decoded
# again at the wide one (TranscribeOptions.wide_beam_below): see docs/measurements.md, "Speed".
WIDE_BEAM_BELOW = -0.3


@dataclass(frozen=True)
class WideBeam:
    """The wider, more patient search for unsure windows (TranscribeOptions.mandarin_*)."""

    beam_size: int
    patience: float
    below: float  # average log probability under which a window decoded at the normal beam is decoded again wide


@dataclass(frozen=True)
class TranscribeOptions:
    """Anti-hallucination defaults for call audio (see DESIGN.md, "Models")."""

    language: str | None = None  # None: detect
    beam_size: int = 5
    vad_filter: bool = True
    word_timestamps: bool = True
    condition_on_previous_text: bool = False  # stops one bad segment from poisoning the next
    no_speech_threshold: float = 0.6
    compression_ratio_threshold: float = 2.4
    log_prob_threshold: float = -1.0
    # A window that decodes too repetitive or too unsure is decoded again once per temperature
    # above 0. faster-whisper would sample at these temperatures; callbrief's faster-whisper engine
    # retries deterministically instead (pipeline/speech/backends/fallback.py, at most three retries), so a
    # call's transcript does not depend on what the process decoded before. openai-whisper samples,
    # seeded per call. (0.0,): no retry.
    temperature: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    patience: float = 1.0
    # Mandarin's wide search: a wider, more patient beam (chosen on the seen half of
    # ../shared/audio and confirmed on the held-out half, docs/vocabulary.md; on English it made
    # en-2002 worse, so other languages keep beam_size / patience). Spent only on the windows whose
    # decode at beam_size is unsure: average log probability under `wide_beam_below`, or a loop
    # (speech/backends/fallback.py). None for `wide_beam_below`: every Mandarin window decoded
    # wide from the start, the setting before (a third of the pipeline's throughput,
    # docs/measurements.md "Speed"). None for the beam: Mandarin as other languages.
    mandarin_beam_size: int | None = 8
    mandarin_patience: float | None = 2.0
    wide_beam_below: float | None = WIDE_BEAM_BELOW
    simplified_chinese: bool = True
    # Domain terms offered to the decoder (faster-whisper only; see pipeline/vocabulary/terms.py).
    hotwords: str | None = None
    initial_prompt: str | None = None
    # After recognition, Whisper judges loose vocabulary matches on the audio (vocabulary/rescore.py):
    # 4 more of the sample calls' 31 domain terms, ~6% of transcription time on Mandarin calls.
    rescore_vocabulary: bool = True

    def for_language(self, language: str | None) -> "TranscribeOptions":
        """The options to decode audio known to be in `language` (None: still unknown). Mandarin
        starts at the wide beam only when every window is to be decoded wide (`wide_beam_below`
        None); otherwise at beam_size, and `wide_beam` says how to widen an unsure window."""
        if language is None:
            return self
        if language == "zh" and self.mandarin_beam_size is not None and self.wide_beam_below is None:
            return replace(self, language=language, beam_size=self.mandarin_beam_size,
                           patience=self.patience if self.mandarin_patience is None else self.mandarin_patience)
        return replace(self, language=language)

    def wide_beam(self, language: str | None) -> WideBeam | None:
        """The wide search for unsure windows in `language`, or None (no such search, or every
        window already decoded at it: see for_language)."""
        if language != "zh" or self.mandarin_beam_size is None or self.wide_beam_below is None:
            return None
        return WideBeam(self.mandarin_beam_size, self.patience if self.mandarin_patience is None
                        else self.mandarin_patience, self.wide_beam_below)


# What `callbrief run --preset` chooses. "fast": greedy decoding, no wide beam, no rescoring pass
# (retries stay: a loop is worse than slow); its CER and term recall are printed by `make bench`
# beside its speed, so the trade is known.
PRESETS = {
    "accurate": TranscribeOptions(),
    "fast": TranscribeOptions(beam_size=1, mandarin_beam_size=None, mandarin_patience=None, rescore_vocabulary=False),
}


def preset_options(name: str) -> TranscribeOptions:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}: choose from {', '.join(PRESETS)}") from None


@dataclass(frozen=True)
class EngineSpec:
    """What to load: hashable, so it can cross to Prefect tasks and key an engine cache."""

    engine: str = "faster-whisper"  # or "openai-whisper"
    model: str = DEFAULT_MODEL
    compute_type: str = "int8"
    cpu_threads: int = 2
    num_workers: int = 1  # concurrent transcriptions one faster-whisper model serves

    @property
    def model_id(self) -> str:
        """What is stored with each call: a rerun with another model reprocesses."""
        return f"{self.engine}:{self.model}"


# Called with the seconds of the given audio transcribed so far, as segments come out of the decoder.
Progress = Callable[[float], None]


class AsrEngine(Protocol):
    model_id: str

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions,
                   on_progress: Progress | None = None) -> Transcript: ...


# --- engine-independent clean-up -------------------------------------------------------

@lru_cache(maxsize=1)
def hallucination_texts() -> frozenset[str]:
    return frozenset(_normalise(row[0]) for row in read_rows("hallucinations.txt"))


def _normalise(text: str) -> str:
    """Lowercase, no spaces or punctuation: how hallucination texts are compared."""
    return "".join(ch for ch in text.lower() if not unicodedata.category(ch).startswith(("P", "Z", "S")))


def is_hallucination(text: str) -> bool:
    norm = _normalise(text)
    return not norm or norm in hallucination_texts()


@lru_cache(maxsize=1)
def _t2s():
    import opencc  # loaded by the first Mandarin transcript

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


_CJK = re.compile(r"[\u4e00-\u9fff]")


def echoes_prompt(text: str, prompt: str | None, min_piece: int = 2, min_length: int = 5) -> bool:
    """Is this segment only pieces of the prompt (hotwords, initial prompt) said back? Whisper
    fills trailing silence with its prompt ("国家金融监国家金融监" after a hotword list): such a
    segment is read greedily as prompt substrings of at least `min_piece` characters. A short
    segment ("投诉!") is a word someone said, never an echo."""
    text, prompt = _normalise(text), _normalise(prompt or "")
    if len(text) < min_length or not prompt:
        return False
    i = 0
    while i < len(text):
        j = i + min_piece
        if text[i:j] not in prompt:
            return False
        while j < len(text) and text[i:j + 1] in prompt:
            j += 1
        i = j
    return True


def is_repetition_loop(text: str, threshold: float) -> bool:
    """Whisper's own test for a looping decoder (gzip compression ratio of the text above
    `compression_ratio_threshold`), applied to what survived its temperature fallback: a segment
    of one syllable said 150 times ("颂颂颂…") is kept by Whisper when every retry loops too."""

    data = text.encode("utf-8")
    return len(data) > 60 and len(data) / len(zlib.compress(data)) > threshold


def postprocess(transcript: Transcript, options: TranscribeOptions) -> Transcript:
    kept, dropped = [], []
    prompt = " ".join(p for p in (options.hotwords, options.initial_prompt) if p)
    for seg in transcript.segments:
        text = seg.text.replace("\ufffd", "")  # bytes of a character split across tokens
        if (is_hallucination(text) or echoes_prompt(text, prompt)
                or is_repetition_loop(text, options.compression_ratio_threshold)):
            dropped.append(seg.text)
            continue
        if text != seg.text:
            seg = replace(seg, text=text, words=tuple(replace(w, text=w.text.replace("\ufffd", "")) for w in seg.words))
        kept.append(seg)
    if options.simplified_chinese and transcript.language == "zh":
        kept = [_simplify_segment(s) for s in kept]
    return replace(transcript, segments=tuple(kept), dropped=tuple(dropped))


def _simplify_segment(seg: Segment) -> Segment:
    if not _CJK.search(seg.text):
        return seg
    return replace(seg, text=to_simplified(seg.text),
                   words=tuple(replace(w, text=to_simplified(w.text)) for w in seg.words))
