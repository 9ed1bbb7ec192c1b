"""The loaded models a call needs, one set per entry point: Whisper engine(s), the silero VAD,
the speaker encoder.

An `Engines` is built once at an entry point from `Settings` (CLI run, a flow, the intake, a
Dask worker) and passed down to the stages; each model is loaded on first use and then shared
by the calls the entry point runs in its threads. It knows no model itself: each stage says how
its model is built (`speech.transcribe.load_engine`, `speakers.vad.vad_model`,
`speakers.embeddings.voice_encoder`), so this module sits below every stage and imports none.
Stages called on their own (a test, an eval script) build a default one, so every stage still
runs standalone: that reloads the models, so callers that run many calls pass one.

Per call, not per process: what a call's transcript depends on. CTranslate2's sampler cannot be
seeded per call (`ctranslate2.set_random_seed` seeds each worker thread's generator once, lazily),
so the faster-whisper engine never samples: a window that decodes badly is retried by
deterministic decodes (`pipeline.speech.backends.fallback`), and a call transcribes the same
whichever worker runs it and whatever it ran before. openai-whisper seeds torch per call, under
its lock.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class EngineConfig:
    """The settings that choose which models load: small and picklable, so a flow can hand it
    to a worker process that builds its own `Engines` from it."""

    model_cache: str = ""  # "": pipeline.config.paths.default_model_cache()
    allow_download: bool = False
    pyannote_pipeline: str = ""  # a pyannote.audio pipeline for mono calls, or ""
    pyannote_token: str = field(default="", repr=False)  # a secret: kept out of logs

    @classmethod
    def from_settings(cls, settings) -> EngineConfig:
        """`settings`: a pipeline.config.settings.Settings."""
        return cls(str(settings.model_cache_dir), settings.allow_download, settings.pyannote_pipeline,
                   settings.pyannote_token)


class Engines:
    """Lazily loaded models, each once per key, with a lock per model for those that are not
    safe to share between threads."""

    def __init__(self, config: EngineConfig = EngineConfig()):
        self.config = config
        self.model_cache = Path(config.model_cache) if config.model_cache else None  # None: the default cache
        self.allow_download = config.allow_download
        self.pyannote_pipeline = config.pyannote_pipeline
        self.pyannote_token = config.pyannote_token or None
        self._models: dict[Hashable, Any] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._loading = threading.Lock()  # two threads asking at once load a model once

    @classmethod
    def from_settings(cls, settings) -> Engines:
        return cls(EngineConfig.from_settings(settings))

    def load(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The model under `key`, built by `build()` the first time it is asked for."""
        with self._loading:
            if key not in self._models:
                self._models[key] = build()
            return self._models[key]

    def lock(self, key: Hashable) -> threading.Lock:
        """The lock of the model under `key`, for a model one call at a time may use."""
        with self._loading:
            return self._locks.setdefault(key, threading.Lock())


def or_default(engines: Engines | None) -> Engines:
    """`engines`, or a fresh default (checkout/per-user model cache, offline) for a standalone call."""
    return engines if engines is not None else Engines()
