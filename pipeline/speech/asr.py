"""Speech recognition: one interface, two Whisper engines.

`FasterWhisperEngine` (CTranslate2, the default) and `OpenAIWhisperEngine` (openai-whisper)
both return a `Transcript`. Engine-independent clean-up lives in `postprocess`: known silence
hallucinations are dropped and Mandarin is converted to Simplified characters.
"""
from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from pipeline.intake.audio import SAMPLE_RATE
from pipeline.config.datafiles import read_rows
from pipeline.speech.weights import DEFAULT_MODEL, openai_checkpoint, resolve_whisper
from pipeline.records import Segment, Transcript, Word


SEED = 20261123


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
    # retries deterministically instead (pipeline/whisper_fallback.py, at most three retries), so a
    # call's transcript does not depend on what the process decoded before. openai-whisper samples,
    # seeded per call. (0.0,): no retry.
    temperature: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    patience: float = 1.0
    # Mandarin decodes with a wider, more patient beam: chosen on the seen half of ../shared/audio
    # and confirmed on the held-out half (README "Mandarin domain vocabulary"); on English it made
    # en-2002 worse, so other languages keep beam_size / patience. None: as for other languages.
    mandarin_beam_size: int | None = 8
    mandarin_patience: float | None = 2.0
    simplified_chinese: bool = True
    # Domain terms offered to the decoder (faster-whisper only; see pipeline/vocabulary.py).
    hotwords: str | None = None
    initial_prompt: str | None = None
    # After recognition, Whisper judges loose vocabulary matches on the audio (pipeline/rescore.py):
    # 4 more of the sample calls' 31 domain terms, ~6% of transcription time on Mandarin calls.
    rescore_vocabulary: bool = True

    def for_language(self, language: str | None) -> "TranscribeOptions":
        """The options to decode audio known to be in `language` (None: still unknown)."""
        if language is None:
            return self
        if language == "zh":
            return replace(self, language=language,
                           beam_size=self.beam_size if self.mandarin_beam_size is None else self.mandarin_beam_size,
                           patience=self.patience if self.mandarin_patience is None else self.mandarin_patience)
        return replace(self, language=language)


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


class FasterWhisperEngine:
    name = "faster-whisper"

    def __init__(self, spec: EngineSpec, model_cache: Path | None = None, allow_download: bool = False):
        from pipeline.speech.backends.fallback import DeterministicWhisperModel

        resolved = resolve_whisper(spec.model, model_cache, allow_download)
        self.model_id = spec.model_id
        self.model = DeterministicWhisperModel(str(resolved.path), device="cpu", compute_type=spec.compute_type,
                                  cpu_threads=spec.cpu_threads, num_workers=spec.num_workers)

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions,
                   on_progress: Progress | None = None) -> Transcript:
        # No sampling: a window that decodes badly is retried deterministically (whisper_fallback.py).
        detected = None
        if options.language is None and options.mandarin_beam_size is not None:
            # The language decides the beam: detect it first (what transcribe would do on its own).
            language, probability, _ = self.model.detect_language(audio, vad_filter=options.vad_filter)
            detected = (language, probability)
        options = options.for_language(detected[0] if detected else options.language)
        segments, info = self.model.transcribe(
            audio, language=options.language, beam_size=options.beam_size, vad_filter=options.vad_filter,
            word_timestamps=options.word_timestamps,
            condition_on_previous_text=options.condition_on_previous_text,
            no_speech_threshold=options.no_speech_threshold,
            compression_ratio_threshold=options.compression_ratio_threshold,
            log_prob_threshold=options.log_prob_threshold, temperature=list(options.temperature),
            patience=options.patience, hotwords=options.hotwords, initial_prompt=options.initial_prompt,
        )
        # transcribe() is lazy: consume it here, never hand the generator on. Each segment
        # decoded is progress through the audio (a long call advances instead of jumping at the end).
        converted = []
        for s in segments:
            converted.append(Segment(start=s.start, end=s.end, text=s.text.strip(), avg_logprob=s.avg_logprob,
                                     no_speech_prob=s.no_speech_prob,
                                     words=tuple(Word(w.word.strip(), w.start, w.end, w.probability)
                                                 for w in (s.words or []))))
            if on_progress:
                on_progress(float(s.end))
        converted = tuple(converted)
        raw = Transcript(language=info.language,
                         language_probability=detected[1] if detected else info.language_probability,
                         segments=converted, duration=len(audio) / SAMPLE_RATE, model_id=self.model_id,
                         engine=self.name)
        return postprocess(raw, options)

    def score(self, audio: np.ndarray, texts: list[tuple[str, str | None]], language: str) -> list[float]:
        """How likely Whisper finds each text as what `audio` (up to 30 s) says, each after its
        prompt as the previous text: the summed log probability of the text's tokens, read with
        the text given (teacher-forced, no search). Scores on the same audio and prompt compare."""
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer

        tokenizer = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual, task="transcribe",
                              language=language)
        features = self.model.feature_extractor(audio.astype(np.float32))
        frames = min(features.shape[-1] - 1, self.model.feature_extractor.nb_max_frames)
        frames -= frames % 2  # the encoder halves the frames
        # The clip's own frames, not padded to 30 s: ~5x faster on a few seconds of speech, and
        # the same decisions on the eval (as for language detection, pipeline/language.py).
        encoded = np.asarray(self.model.encode(np.ascontiguousarray(features[:, :frames])))
        scores: list[float] = [0.0] * len(texts)
        by_prompt: dict[str | None, list[int]] = {}
        for k, (_, prompt) in enumerate(texts):
            by_prompt.setdefault(prompt, []).append(k)
        for prompt, indices in by_prompt.items():
            previous = tokenizer.encode(" " + prompt.strip())[-(self.model.max_length // 2 - 1):] if prompt else []
            start = ([tokenizer.sot_prev] + previous if previous else []) + list(tokenizer.sot_sequence)
            # The texts after one prompt in one batch: align() pairs each text with its own row of
            # encoder output, so the row is repeated (the same scores as one call per text, ~15%
            # less time on the sample calls' windows).
            batch = np.repeat(encoded, len(indices), axis=0)  # a new C-contiguous array
            # Only the token probabilities are used, not the alignment: median_filter_width=1 skips
            # smoothing the attention it aligns by (the same probabilities, ~10% less time).
            results = self.model.model.align(ctranslate2.StorageView.from_array(batch), start,
                                             [tokenizer.encode(texts[k][0]) for k in indices], [frames] * len(indices),
                                             median_filter_width=1)
            for k, result in zip(indices, results):
                scores[k] = float(np.log(np.maximum(np.asarray(result.text_token_probs), 1e-12)).sum())
        return scores


class OpenAIWhisperEngine:
    name = "openai-whisper"

    def __init__(self, spec: EngineSpec, model_cache: Path | None = None, allow_download: bool = False):
        import torch
        import whisper

        torch.set_num_threads(spec.cpu_threads)
        checkpoint = openai_checkpoint(spec.model, model_cache, allow_download)
        self.model = whisper.load_model(str(checkpoint), device="cpu")
        self.model_id = spec.model_id
        self._lock = threading.Lock()  # one torch model, not safe to share across threads

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions,
                   on_progress: Progress | None = None) -> Transcript:
        """openai-whisper decodes the whole audio in one call: progress is reported once, at the end."""
        import torch

        options = options.for_language(options.language)
        with self._lock:
            torch.manual_seed(SEED)  # temperature fallback samples: same call, same transcript
            result = self.model.transcribe(
                audio.astype(np.float32), language=options.language, beam_size=options.beam_size,
                word_timestamps=options.word_timestamps, fp16=False,
                condition_on_previous_text=options.condition_on_previous_text,
                no_speech_threshold=options.no_speech_threshold,
                compression_ratio_threshold=options.compression_ratio_threshold,
                logprob_threshold=options.log_prob_threshold, temperature=options.temperature,
                patience=options.patience, initial_prompt=options.initial_prompt or options.hotwords,
            )
        segments = tuple(
            Segment(start=s["start"], end=s["end"], text=s["text"].strip(), avg_logprob=s["avg_logprob"],
                    no_speech_prob=s["no_speech_prob"],
                    words=tuple(Word(w["word"].strip(), w["start"], w["end"], w["probability"])
                                for w in s.get("words", [])))
            for s in result["segments"]
        )
        if on_progress:
            on_progress(len(audio) / SAMPLE_RATE)
        raw = Transcript(language=result["language"], language_probability=1.0 if options.language else float("nan"),
                         segments=segments, duration=len(audio) / SAMPLE_RATE, model_id=self.model_id,
                         engine=self.name)
        return postprocess(raw, options)


_ENGINES = {"faster-whisper": FasterWhisperEngine, "openai-whisper": OpenAIWhisperEngine}


def build_engine(spec: EngineSpec, model_cache: Path | None = None, allow_download: bool = False) -> AsrEngine:
    """Load the engine `spec` names (a new model each time: `Engines.whisper` keeps one per spec)."""
    try:
        kind = _ENGINES[spec.engine]
    except KeyError:
        raise ValueError(f"unknown ASR engine {spec.engine!r}: choose from {sorted(_ENGINES)}") from None
    return kind(spec, model_cache, allow_download)


def load_engine(spec: EngineSpec, engines=None) -> AsrEngine:
    """The engine for `spec` from `engines` (a `pipeline.engines.Engines`), or a fresh default one."""
    from pipeline.engines import or_default

    return or_default(engines).whisper(spec)


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
    import opencc

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
    import zlib

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
