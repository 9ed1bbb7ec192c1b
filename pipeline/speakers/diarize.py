"""Who spoke when: channel split for real stereo, diarization for mono.

Stereo call-centre recordings carry the agent and the customer on separate channels, so the
channel is the speaker. "Fake stereo" (the same signal on both channels) is treated as mono.
Mono calls are diarized: silero VAD finds speech, resemblyzer embeds 1.6 s windows of speech
only (L2-normalised) every `hop` seconds, and the count is chosen among 1, 2 and 3 speakers
(`choose_speaker_count`: two unless the audio shows otherwise; the evidence is kept). A Viterbi
pass over the windows with a cost per speaker change then re-segments, so short flips inside a
turn do not survive (telephone audio makes single windows noisy). The result converts to
`pyannote.core.Annotation` for scoring with pyannote.metrics.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pipeline.engines import Engines, or_default
from pipeline.records import Diarization, SpeakerSegment, channel_label
from pipeline.speakers.backends.clustering import cluster_diarization
from pipeline.speakers.backends.pyannote import pyannote_diarization
from pipeline.speakers.options import DiarizationOptions
from pipeline.speakers.vad import speech_regions

# --- stereo ---------------------------------------------------------------------------------

def is_fake_stereo(samples: np.ndarray, tolerance: float = 0.95) -> bool:
    """Both channels carry (nearly) the same signal: correlation above `tolerance`."""
    if samples.shape[0] < 2:
        return True
    left, right = samples[0], samples[1]
    if not np.any(left) or not np.any(right):
        return False  # one channel silent: a real two-channel recording with one side quiet
    return correlation(left, right) >= tolerance


def correlation(x: np.ndarray, y: np.ndarray, chunk: int = 1 << 20) -> float:
    """Pearson correlation of two long signals, summed chunk by chunk in float64: np.corrcoef
    would stack and centre float64 copies of both (1.8 GB for an hour at 16 kHz)."""
    n = min(len(x), len(y))
    sx = sy = sxx = syy = sxy = 0.0
    for i in range(0, n, chunk):
        a, b = x[i:i + chunk].astype(np.float64), y[i:i + chunk].astype(np.float64)
        sx, sy = sx + a.sum(), sy + b.sum()
        sxx, syy, sxy = sxx + a @ a, syy + b @ b, sxy + a @ b
    cov, vx, vy = sxy - sx * sy / n, sxx - sx * sx / n, syy - sy * sy / n
    return float(cov / np.sqrt(vx * vy)) if vx > 0 and vy > 0 else 0.0


def channel_diarization(samples: np.ndarray, options: DiarizationOptions = DiarizationOptions(),
                        engines: Engines | None = None) -> Diarization:
    engines = or_default(engines)
    # One thread per channel: the sequence VAD is fastest on one ONNX Runtime thread (its LSTM is
    # a chain of small steps; two intra-op threads measured slower), and the runs release the GIL,
    # so the channels take two cores (measured: 25-30% less time for a stereo call's VAD).
    with ThreadPoolExecutor(max_workers=min(samples.shape[0], os.cpu_count() or 1)) as pool:
        regions = list(pool.map(lambda ch: speech_regions(samples[ch], options.vad_threshold, options.min_silence,
                                                          engines), range(samples.shape[0])))
    segments = [SpeakerSegment(start, end, channel_label(ch), ch)
                for ch, found in enumerate(regions) for start, end in found]
    segments.sort(key=lambda s: s.start)
    return Diarization(tuple(segments), "channels", len({s.speaker for s in segments}))


def diarize(samples: np.ndarray, options: DiarizationOptions = DiarizationOptions(),
            speakers: tuple[int, int] | None = None, engines: Engines | None = None) -> Diarization:
    """Channels when the recording really is two-channel; otherwise clustering, or a pyannote.audio
    pipeline when the settings name one (`pyannote_pipeline`: path or hub name; `pyannote_token`,
    else HF_TOKEN), carried by `engines`.
    `speakers` = (min, max) from the manifest bounds the count the clustering may choose."""
    engines = or_default(engines)
    if samples.ndim == 2 and samples.shape[0] >= 2 and not is_fake_stereo(samples):
        return channel_diarization(samples, options, engines)
    mono = samples.mean(axis=0) if samples.ndim == 2 else samples
    if engines.pyannote_pipeline:
        return pyannote_diarization(mono, engines.pyannote_pipeline, engines.pyannote_token)
    return cluster_diarization(mono, options, speakers, engines)
