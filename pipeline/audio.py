"""Decode recordings to float32 at 16 kHz, one row per channel, with ffmpeg.

ffmpeg reads every format we accept (wav/mp3/flac/m4a/ogg) the same way, so there is one
decoder and one set of error messages. Bad input raises `BadRecording` with a reason a
person can read; the caller records it against the call and moves on.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
SUPPORTED_EXTENSIONS = frozenset({".wav", ".mp3", ".flac", ".m4a", ".ogg"})
# Peak below this (dBFS) counts as a silent recording: nothing to transcribe, and Whisper
# hallucinates on silence.
SILENCE_PEAK_DBFS = -50.0


class BadRecording(Exception):
    """The recording itself is unusable (empty, corrupt, not audio, silent, unsupported)."""


@dataclass(frozen=True)
class AudioInfo:
    channels: int
    sample_rate: int
    duration: float
    codec: str


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32, shape (channels, n)
    sample_rate: int

    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    @property
    def duration(self) -> float:
        return self.samples.shape[1] / self.sample_rate

    def mono(self) -> np.ndarray:
        return self.samples.mean(axis=0) if self.channels > 1 else self.samples[0]


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise RuntimeError(f"{tool} is not on PATH: install it (Debian: apt-get install ffmpeg)")
    return found


def check_readable(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(path)
    if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise BadRecording(
            f"unsupported format '{path.suffix}': accepted are "
            + ", ".join(sorted(SUPPORTED_EXTENSIONS))
        )
    if path.stat().st_size == 0:
        raise BadRecording("empty file (0 bytes)")


def probe(path: Path) -> AudioInfo:
    """Read channels, rate and duration of the first audio stream."""
    check_readable(path)
    proc = subprocess.run(
        [_require("ffprobe"), "-v", "error", "-select_streams", "a:0", "-show_entries",
         "stream=channels,sample_rate,codec_name,duration:format=duration", "-of", "json", str(path)],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise BadRecording(f"not a readable audio file: {_last_line(proc.stderr)}")
    info = json.loads(proc.stdout or "{}")
    streams = info.get("streams") or []
    if not streams:
        raise BadRecording("no audio stream in file")
    stream = streams[0]
    duration = stream.get("duration") or info.get("format", {}).get("duration") or 0
    return AudioInfo(
        channels=int(stream.get("channels") or 0),
        sample_rate=int(stream.get("sample_rate") or 0),
        duration=float(duration),
        codec=str(stream.get("codec_name", "")),
    )


def check_wav_complete(path: Path) -> None:
    """A WAV header declares its size; ffprobe estimates WAV length from the file size instead,
    so a WAV cut short is caught here. Streamed WAVs (size 0 or 0xFFFFFFFF) are let through."""
    with path.open("rb") as fh:
        header = fh.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return
    declared = int.from_bytes(header[4:8], "little") + 8
    actual = path.stat().st_size
    if declared not in (8, 0xFFFFFFFF + 8) and actual < declared:
        raise BadRecording(f"truncated: the WAV header declares {declared} bytes but the file has {actual}")


def decode(path: Path, sample_rate: int = SAMPLE_RATE, info: AudioInfo | None = None) -> Audio:
    """Decode every channel to float32 at `sample_rate`; raise BadRecording on unusable input."""
    info = info or probe(path)
    if path.suffix.lower() == ".wav":
        check_wav_complete(path)
    channels = max(info.channels, 1)
    proc = subprocess.run(
        [_require("ffmpeg"), "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0",
         "-ac", str(channels), "-ar", str(sample_rate), "-f", "f32le", "-"],
        capture_output=True,
    )
    if proc.returncode != 0:
        raise BadRecording(f"cannot decode audio: {_last_line(proc.stderr.decode(errors='replace'))}")
    flat = np.frombuffer(proc.stdout, dtype=np.float32)
    if flat.size < channels * sample_rate // 10:
        raise BadRecording("no audio decoded (file is truncated or holds under 0.1 s)")
    flat = flat[: flat.size - flat.size % channels]
    decoded = flat.size / channels / sample_rate
    # A file cut short (interrupted upload or copy) still decodes up to the cut: the
    # container's declared length tells. Tolerance covers encoder padding and VBR estimates.
    if info.duration and decoded < info.duration - max(0.5, 0.02 * info.duration):
        raise BadRecording(f"truncated: the file declares {info.duration:.1f} s but only {decoded:.1f} s decode")
    # ffmpeg interleaves channels; one row per channel is what every stage wants.
    samples = flat.reshape(-1, channels).T.copy()
    audio = Audio(samples=samples, sample_rate=sample_rate)
    peak = peak_dbfs(audio.samples)
    if peak < SILENCE_PEAK_DBFS:
        raise BadRecording(f"silent recording (peak {peak:.0f} dBFS, threshold {SILENCE_PEAK_DBFS:.0f})")
    return audio


def peak_dbfs(samples: np.ndarray) -> float:
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return 20 * np.log10(peak) if peak > 0 else float("-inf")


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "unknown error"
