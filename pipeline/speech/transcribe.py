"""The transcription stage: load a Whisper engine once per `Engines`, and transcribe a call
over each speaker's own stream (stereo channel or diarized speaker) or the down-mix."""
from __future__ import annotations

from pathlib import Path

from pipeline.engines import Engines, or_default
from pipeline.records import Transcript
from pipeline.speech.asr import AsrEngine, EngineSpec, Progress, TranscribeOptions
from pipeline.speech.backends.faster_whisper import FasterWhisperEngine
from pipeline.speech.backends.openai_whisper import OpenAIWhisperEngine
from pipeline.speech.streams import speaker_streams, stream_seconds, transcribe_streams

# Each speaker transcribed on their own stream (measured with `make bench` on the sample calls:
# docs/speakers.md); False transcribes the down-mix and attributes words by time.
SPLIT_SPEAKERS = True

_ENGINES = {"faster-whisper": FasterWhisperEngine, "openai-whisper": OpenAIWhisperEngine}


def build_engine(spec: EngineSpec, model_cache: Path | None = None, allow_download: bool = False) -> AsrEngine:
    """Load the engine `spec` names (a new model each time: `load_engine` keeps one per spec)."""
    try:
        kind = _ENGINES[spec.engine]
    except KeyError:
        raise ValueError(f"unknown ASR engine {spec.engine!r}: choose from {sorted(_ENGINES)}") from None
    return kind(spec, model_cache, allow_download)


def load_engine(spec: EngineSpec, engines: Engines | None = None) -> AsrEngine:
    """The engine for `spec`, loaded once per `engines` (tasks in threads share the loaded model);
    a fresh default set when None."""
    engines = or_default(engines)
    return engines.load(("whisper", spec), lambda: build_engine(spec, engines.model_cache, engines.allow_download))


def transcribe_call(audio, diarization, spec: EngineSpec, options: TranscribeOptions,
                    split: bool = SPLIT_SPEAKERS, engines: Engines | None = None,
                    on_progress: Progress | None = None) -> Transcript:
    """Whisper over each speaker's own stream (stereo channel or diarized speaker), or the down-mix.
    `on_progress` gets seconds of the call done, increasing, as segments are decoded."""
    engine = load_engine(spec, engines)
    # One voice is a stream too: the speech our voice activity found, so Whisper's own VAD (and its
    # language detection on the whole call) does not go over the call again.
    if split and diarization.segments:
        streams = speaker_streams(audio.samples, diarization)
        scale = audio.duration / (stream_seconds(streams) or 1.0)  # streams' seconds -> the call's
        return transcribe_streams(engine, streams, options,
                                  on_progress=call_progress(on_progress, scale, audio.duration))
    return engine.transcribe(audio.mono(), options, call_progress(on_progress, 1.0, audio.duration))


def call_progress(on_progress: Progress | None, scale: float, duration: float) -> Progress | None:
    """Progress in seconds of the call: scaled, never past the end, never backwards (a stream
    transcribed again in the call's language is not progress)."""
    if on_progress is None:
        return None
    furthest = 0.0

    def report(seconds: float) -> None:
        nonlocal furthest
        position = min(duration, seconds * scale)
        if position > furthest:
            furthest = position
            on_progress(position)
    return report
