"""The loaded models a call needs: Whisper engine(s), the silero VAD, the speaker encoder.

An `Engines` is built once at an entry point from `Settings` (CLI run, a flow, the intake, a
Dask worker) and passed down to the stages; each model is loaded on first use and then shared
by the calls the entry point runs in its threads. Stages called on their own (a test, an eval
script) build a default one, so every stage still runs standalone: that reloads the models, so
callers that run many calls pass one.

Per call, not per process: what a call's transcript depends on. CTranslate2's sampler cannot be
seeded per call (`ctranslate2.set_random_seed` seeds each worker thread's generator once, lazily),
so the faster-whisper engine never samples: a window that decodes badly is retried by
deterministic decodes (`pipeline.whisper_fallback`), and a call transcribes the same whichever
worker runs it and whatever it ran before. openai-whisper seeds torch per call, under its lock.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.speech.asr import AsrEngine, EngineSpec
    from pipeline.config.settings import Settings


@dataclass(frozen=True)
class EngineConfig:
    """The settings that choose which models load: small and picklable, so a flow can hand it
    to a worker process that builds its own `Engines` from it."""

    model_cache: str = ""  # "": pipeline.speech.weights.default_model_cache()
    allow_download: bool = False
    pyannote_pipeline: str = ""  # a pyannote.audio pipeline for mono calls, or ""
    pyannote_token: str = field(default="", repr=False)  # a secret: kept out of logs

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineConfig:
        return cls(str(settings.model_cache_dir), settings.allow_download, settings.pyannote_pipeline,
                   settings.pyannote_token)


class Engines:
    """Lazily loaded models with the locks that guard them (one per model, not per module)."""

    def __init__(self, config: EngineConfig = EngineConfig()):
        self.config = config
        self.model_cache = Path(config.model_cache) if config.model_cache else None  # None: models' default
        self.allow_download = config.allow_download
        self.pyannote_pipeline = config.pyannote_pipeline
        self.pyannote_token = config.pyannote_token or None
        self._whisper: dict[EngineSpec, AsrEngine] = {}
        self._vad = None
        self._encoder = None
        self._loading = threading.Lock()  # two threads asking at once load a model once
        # resemblyzer's torch module is not safe to share: one call at a time. (silero's sequence
        # model keeps its state per call, and ONNX Runtime sessions may run from several threads.)
        self.encoder_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Engines:
        return cls(EngineConfig.from_settings(settings))

    def whisper(self, spec: EngineSpec) -> AsrEngine:
        """The engine for `spec`, loaded once (tasks in threads share the loaded model)."""
        with self._loading:
            if spec not in self._whisper:
                from pipeline.speech.asr import build_engine

                self._whisper[spec] = build_engine(spec, self.model_cache, self.allow_download)
            return self._whisper[spec]

    def vad(self):
        with self._loading:
            if self._vad is None:
                # The sequence model (ships inside the package): blocks of 512 frames per ONNX
                # call instead of one call per 32-ms frame; the same timestamps, ~3x faster.
                self._vad = silero_vad().load_silero_vad(sequence=True)
            return self._vad

    def encoder(self):
        with self._loading:
            if self._encoder is None:
                from resemblyzer import VoiceEncoder

                self._encoder = VoiceEncoder(device="cpu", verbose=False)  # pretrained.pt ships inside the package
            return self._encoder


_silero_lock = threading.Lock()
_silero = None


def silero_vad():
    """The silero_vad package, imported without its side effect: its import sets torch to one
    thread for the whole process (silero_vad/model.py), and the speaker encoder's LSTM, the
    speaker stage's largest cost, then ran on one core of two (measured: 0.32 s vs 0.17 s for 160
    one-second windows). The count torch had before is restored. Under a lock, so that reading
    the count, importing and restoring are one step when the channels' VAD threads ask at once.
    Everything in callbrief imports silero through here (a direct import elsewhere, done first,
    would leave torch on one thread: tests/test_speakers.py checks a fresh process)."""
    global _silero
    with _silero_lock:
        if _silero is None:
            import importlib

            import torch

            threads = torch.get_num_threads()
            try:
                _silero = importlib.import_module("silero_vad")
            finally:
                torch.set_num_threads(threads)
        return _silero


def or_default(engines: Engines | None) -> Engines:
    """`engines`, or a fresh default (checkout/per-user model cache, offline) for a standalone call."""
    return engines if engines is not None else Engines()
