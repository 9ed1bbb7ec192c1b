"""Voice activity: where someone speaks, by silero's sequence VAD (its ONNX model ships inside
the PyPI package)."""
from __future__ import annotations

import importlib
import threading

import numpy as np

from pipeline.engines import Engines, or_default
from pipeline.intake.audio import SAMPLE_RATE

_silero_lock = threading.Lock()
_silero = None


def silero_vad():
    """The silero_vad package, imported without its side effect: its import sets torch to one
    thread for the whole process (silero_vad/model.py), and the speaker encoder's LSTM, the
    speaker stage's largest cost, then ran on one core of two (measured: 0.32 s vs 0.17 s for 160
    one-second windows). The count torch had before is restored. Under a lock, so that reading
    the count, importing and restoring are one step when the channels' VAD threads ask at once.
    Everything in callbrief imports silero through here (a direct import elsewhere, done first,
    would leave torch on one thread: tests check a fresh process)."""
    global _silero
    with _silero_lock:
        if _silero is None:
            import torch  # heavy: loaded when the first call needs voice activity

            threads = torch.get_num_threads()
            try:
                _silero = importlib.import_module("silero_vad")
            finally:
                torch.set_num_threads(threads)
        return _silero


def vad_model(engines: Engines | None = None):
    """The sequence model (ships inside the package): blocks of 512 frames per ONNX call instead
    of one call per 32-ms frame; the same timestamps, ~3x faster. Loaded once per `engines`."""
    return or_default(engines).load("silero-vad", lambda: silero_vad().load_silero_vad(sequence=True))


def speech_regions(samples: np.ndarray, threshold: float = 0.5, min_silence: float = 0.25,
                   engines: Engines | None = None) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in a 16 kHz mono signal."""
    vad = vad_model(engines)
    stamps = silero_vad().get_speech_timestamps_sequence(
        np.ascontiguousarray(samples, dtype=np.float32), vad, sampling_rate=SAMPLE_RATE, threshold=threshold,
        min_silence_duration_ms=int(min_silence * 1000), speech_pad_ms=30, return_seconds=False)
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]
