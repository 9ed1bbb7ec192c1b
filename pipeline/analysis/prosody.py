"""Voice measures of a stretch of speech that hold through a telephone channel.

Everything is measured inside the telephone band (300-3400 Hz), on clean and telephone audio
alike, so a wideband recording and an 8 kHz mu-law one of the same voice give comparable
numbers. Per frame (40 ms, hop 10 ms): band energy; the normalised autocorrelation peak of the
band-limited signal (Boersma 1993: autocorrelation divided by the window's own), which gives the
pitch period even when the fundamental itself is filtered out, a voicing decision (peak above
Praat's default 0.45) and the harmonics-to-noise ratio; and the share of band energy above
1 kHz (spectral tilt: a tense, shouted voice puts more energy into the upper harmonics).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.intake.audio import SAMPLE_RATE

BAND_HZ = (300.0, 3400.0)
TILT_SPLIT_HZ = 1000.0
F0_RANGE_HZ = (60.0, 400.0)  # adult voices, shouting included
VOICING_THRESHOLD = 0.45  # Praat's default voicing threshold on the normalised autocorrelation
ANALYSIS_RATE = 8000  # the telephone rate: everything measured lies below 4 kHz
FRAME = 320  # 40 ms: at least two periods of a 60 Hz voice
HOP = 80  # 10 ms
NFFT = 512  # >= FRAME + longest lag, so the FFT autocorrelation does not wrap
OCTAVE_TOLERANCE = 0.9  # a shorter period wins if its correlation is within 10 % of the best
SPEECH_RANGE_DB = 30.0  # frames within this of the stretch's loud frames count as speech


@dataclass(frozen=True)
class Prosody:
    loudness_db: float  # median band energy of speech frames, dB (relative: only compared within a speaker)
    pitch_st: float  # median F0 of voiced frames, semitones re 100 Hz (nan when none)
    pitch_range_st: float  # 90th - 10th percentile of F0, semitones
    hnr_db: float  # median harmonics-to-noise ratio of voiced frames, dB
    high_band_db: float  # energy above 1 kHz vs 300 Hz-1 kHz in voiced frames, dB (spectral tilt)
    voiced_share: float  # voiced frames / speech frames
    seconds: float  # speech frames, seconds


NAN_PROSODY = Prosody(*(float("nan"),) * 6, 0.0)


def _frames(clip: np.ndarray) -> np.ndarray:
    n = 1 + (len(clip) - FRAME) // HOP
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(n)[:, None]
    return clip[idx]


def measure(clip: np.ndarray, sr: int = SAMPLE_RATE) -> Prosody:
    """Prosody of one stretch of mono audio (any level; the measures are level-free but loudness)."""
    from scipy import fft  # heavy: loaded by the first call that filters or measures a voice
    from scipy.signal import resample_poly  # heavy: loaded by the first call that filters or measures a voice

    if sr != ANALYSIS_RATE:
        clip = resample_poly(clip.astype(np.float32), ANALYSIS_RATE, sr)
        sr = ANALYSIS_RATE
    if len(clip) < FRAME + HOP * 4:
        return NAN_PROSODY
    window = np.hanning(FRAME).astype(np.float32)
    frames = _frames(clip.astype(np.float32))
    frames = frames - frames.mean(axis=1, keepdims=True)
    spec = fft.rfft(frames * window, NFFT, axis=1)
    freqs = fft.rfftfreq(NFFT, 1 / sr)
    power = np.abs(spec) ** 2
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    low = band & (freqs < TILT_SPLIT_HZ)
    high = band & (freqs >= TILT_SPLIT_HZ)
    energy = power[:, band].sum(axis=1) + 1e-12
    energy_db = 10 * np.log10(energy)
    speech = energy_db > np.percentile(energy_db, 95) - SPEECH_RANGE_DB
    # Autocorrelation of the band-limited frame (spectrum zeroed outside the band), normalised
    # by the window's autocorrelation so the peak reads as periodicity (1 = perfectly periodic).
    banded = np.where(band, power, 0.0)
    ac = fft.irfft(banded, NFFT, axis=1)[:, :FRAME]
    ac_win = fft.irfft(np.abs(fft.rfft(window, NFFT)) ** 2, NFFT)[:FRAME]
    r = ac / np.maximum(ac[:, :1], 1e-12) / np.maximum(ac_win / ac_win[0], 1e-3)
    lo_lag, hi_lag = int(sr / F0_RANGE_HZ[1]), min(int(sr / F0_RANGE_HZ[0]), FRAME // 2)
    lags = r[:, lo_lag:hi_lag + 1]
    # A periodic signal correlates as well at two or three periods as at one: take the first
    # local maximum within 10 % of the highest (as YIN takes the first dip), not a subharmonic.
    top = lags.max(axis=1, keepdims=True)
    local = np.zeros_like(lags, dtype=bool)
    local[:, 1:-1] = (lags[:, 1:-1] >= lags[:, :-2]) & (lags[:, 1:-1] >= lags[:, 2:])
    strong = local & (lags >= OCTAVE_TOLERANCE * top)
    best = np.where(strong.any(axis=1), strong.argmax(axis=1), lags.argmax(axis=1))
    peak = lags[np.arange(len(lags)), best]
    # Parabolic interpolation of the peak lag for sub-sample F0.
    i = np.clip(best, 1, lags.shape[1] - 2)
    a, b, c = lags[np.arange(len(lags)), i - 1], lags[np.arange(len(lags)), i], lags[np.arange(len(lags)), i + 1]
    denom = a - 2 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(denom) > 1e-9, 0.5 * (a - c) / denom, 0.0)
    lag = lo_lag + i + np.clip(shift, -1, 1)
    f0 = sr / lag
    voiced = speech & (peak > VOICING_THRESHOLD) & (best > 0) & (best < lags.shape[1] - 1)
    n_speech = int(speech.sum())
    if not voiced.any():
        return Prosody(float(np.median(energy_db[speech])), float("nan"), float("nan"), float("nan"), float("nan"),
                       0.0, n_speech * HOP / sr)
    semis = 12 * np.log2(f0[voiced] / 100.0)
    rv = np.clip(peak[voiced], 1e-3, 0.999)
    tilt = 10 * np.log10((power[voiced][:, high].sum(axis=1) + 1e-12) / (power[voiced][:, low].sum(axis=1) + 1e-12))
    return Prosody(
        loudness_db=float(np.median(energy_db[speech])),
        pitch_st=float(np.median(semis)),
        pitch_range_st=float(np.percentile(semis, 90) - np.percentile(semis, 10)) if semis.size > 4 else 0.0,
        hnr_db=float(np.median(10 * np.log10(rv / (1 - rv)))),
        high_band_db=float(np.median(tilt)),
        voiced_share=float(voiced.sum() / max(n_speech, 1)),
        seconds=n_speech * HOP / sr,
    )
