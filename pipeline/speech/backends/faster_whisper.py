"""The default engine: faster-whisper (CTranslate2), int8 on CPU, with deterministic retries
(`backends.fallback`) instead of sampling."""
from __future__ import annotations

from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper.tokenizer import Tokenizer

from pipeline.intake.audio import SAMPLE_RATE
from pipeline.records import Segment, Transcript, Word
from pipeline.speech.asr import EngineSpec, Progress, TranscribeOptions, postprocess
from pipeline.speech.backends.batch import (
    Encoded,
    decode_encoded,
    decode_windows,
    encode_windows,
    read_spans,
)
from pipeline.speech.backends.fallback import DeterministicWhisperModel, wide_beam
from pipeline.speech.weights import ModelNotFound, resolve_whisper


class FasterWhisperEngine:
    name = "faster-whisper"

    def __init__(self, spec: EngineSpec, model_cache: Path | None = None, allow_download: bool = False):
        resolved = resolve_whisper(spec.model, model_cache, allow_download)
        self.model_id = spec.model_id
        try:
            self.model = DeterministicWhisperModel(str(resolved.path), device="cpu", compute_type=spec.compute_type,
                                                   cpu_threads=spec.cpu_threads, num_workers=spec.num_workers)
        except (RuntimeError, ValueError) as exc:  # CTranslate2 on a damaged model.bin: "invalid payload size"
            raise ModelNotFound(f"the Whisper model in {resolved.path} is damaged ({exc}): delete {resolved.path} "
                                "and run `make models` (or the command again) to rebuild it") from None

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions,
                   on_progress: Progress | None = None) -> Transcript:
        # No sampling: a window that decodes badly is retried deterministically (speech/backends/fallback.py).
        detected = None
        if options.language is None and options.mandarin_beam_size is not None:
            # The language decides the beam: detect it first (what transcribe would do on its own).
            language, probability, _ = self.model.detect_language(audio, vad_filter=options.vad_filter)
            detected = (language, probability)
        language = detected[0] if detected else options.language
        options = options.for_language(language)
        with wide_beam(options.wide_beam(language)):
            converted, info = self._decode(audio, options, on_progress)
        raw = Transcript(language=info.language,
                         language_probability=detected[1] if detected else info.language_probability,
                         segments=converted, duration=len(audio) / SAMPLE_RATE, model_id=self.model_id,
                         engine=self.name)
        return postprocess(raw, options)

    def _decode(self, audio: np.ndarray, options: TranscribeOptions,
                on_progress: Progress | None) -> tuple[tuple[Segment, ...], object]:
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
        return tuple(converted), info

    def transcribe_windows(self, clips: list[np.ndarray], languages: list[str], options: TranscribeOptions,
                           on_done: Progress | None = None) -> list[Transcript]:
        """Clips of at most 30 s, each decoded as one window of its own in its language, several at
        once (speech/backends/batch.py); a transcript per clip, in clip time. `on_done` gets the
        seconds of the clips done so far, after each batch."""
        found = decode_windows(self.model, clips, languages, options, on_done)
        return [self.window_transcript(clip, language, 1.0, segments, options)
                for clip, language, segments in zip(clips, languages, found)]

    def window_transcript(self, clip: np.ndarray, language: str, probability: float, segments,
                          options: TranscribeOptions) -> Transcript:
        raw = Transcript(language=language, language_probability=probability, segments=segments,
                         duration=len(clip) / SAMPLE_RATE, model_id=self.model_id, engine=self.name)
        return postprocess(raw, options.for_language(language))

    # The parts of transcribe_windows, for a caller that detects languages on the encoder output
    # in between (speech/streams.py).
    def encode_windows(self, clips: list[np.ndarray]) -> Encoded:
        return encode_windows(self.model, clips)

    def read_spans(self, encoded: Encoded, spans: list[list[tuple[float, float]]]) -> list[list[tuple[str, float]]]:
        return read_spans(self.model, encoded, spans)

    def decode_encoded(self, encoded: Encoded, rows: list[int], language: str, options: TranscribeOptions):
        return decode_encoded(self.model, encoded, rows, language, options)

    def score(self, audio: np.ndarray, texts: list[tuple[str, str | None]], language: str) -> list[float]:
        """How likely Whisper finds each text as what `audio` (up to 30 s) says, each after its
        prompt as the previous text: the summed log probability of the text's tokens, read with
        the text given (teacher-forced, no search). Scores on the same audio and prompt compare."""
        tokenizer = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual, task="transcribe",
                              language=language)
        features = self.model.feature_extractor(audio.astype(np.float32))
        frames = min(features.shape[-1] - 1, self.model.feature_extractor.nb_max_frames)
        frames -= frames % 2  # the encoder halves the frames
        # The clip's own frames, not padded to 30 s: ~5x faster on a few seconds of speech, and
        # the same decisions on the eval (as for language detection, pipeline/speech/language.py).
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
