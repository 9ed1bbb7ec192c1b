"""The second engine: openai-whisper (PyTorch) on the same weights, converted once from the
CTranslate2 model (`weights.openai_checkpoint`). Slower; kept to compare engines behind one interface."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from pipeline.intake.audio import SAMPLE_RATE
from pipeline.records import Segment, Transcript, Word
from pipeline.speech.asr import EngineSpec, Progress, TranscribeOptions, postprocess
from pipeline.speech.weights import openai_checkpoint

SEED = 20261123


class OpenAIWhisperEngine:
    name = "openai-whisper"

    def __init__(self, spec: EngineSpec, model_cache: Path | None = None, allow_download: bool = False):
        # torch and openai-whisper load only when this optional engine is chosen (seconds of import).
        import torch
        import whisper  # optional engine (torch): loaded only when chosen

        torch.set_num_threads(spec.cpu_threads)
        checkpoint = openai_checkpoint(spec.model, model_cache, allow_download)
        self.model = whisper.load_model(str(checkpoint), device="cpu")
        self.model_id = spec.model_id
        self._lock = threading.Lock()  # one torch model, not safe to share across threads

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions,
                   on_progress: Progress | None = None) -> Transcript:
        """openai-whisper decodes the whole audio in one call: progress is reported once, at the end."""
        import torch  # loaded by __init__ already: only the name

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
