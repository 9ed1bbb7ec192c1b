"""Decode recordings to float32 at 16 kHz, one row per channel, with ffmpeg.

ffmpeg reads every format we accept (wav/mp3/flac/m4a/ogg) the same way, so there is one
decoder and one set of error messages. Bad input raises `BadRecording` with a reason a
person can read; the caller records it against the call and moves on.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.intake.containers import incomplete

SAMPLE_RATE = 16_000
SUPPORTED_EXTENSIONS = frozenset({".wav", ".mp3", ".flac", ".m4a", ".ogg"})
# Peak below this (dBFS) counts as a silent recording: nothing to transcribe, and Whisper
# hallucinates on silence.
SILENCE_PEAK_DBFS = -50.0
# Decoded audio may fall short of a container's stated (exact) length by the encoder's priming and
# padding, a few codec frames: at most 0.16 s measured (mp3 at 8 kHz; AAC, Vorbis, Opus, FLAC
# under 0.04 s). A shortfall beyond this is a cut.
DURATION_TOLERANCE = 0.25
# A float recording may carry a few inf/NaN samples (a glitch); those are zeroed. A larger share
# means the data is not audio.
MAX_NONFINITE_SHARE = 0.001
# Decoder messages that say the data is damaged: every [error] line, and these warnings.
_DAMAGE_WARNING = re.compile(r"corrupt|truncat|partial file", re.IGNORECASE)


class BadRecording(Exception):
    """The recording itself is unusable (empty, corrupt, not audio, silent, unsupported)."""


@dataclass(frozen=True)
class AudioInfo:
    channels: int
    sample_rate: int
    duration: float
    codec: str
    format_name: str = ""
    # False when the container states no length and ffprobe estimated it (an mp3 without a
    # Xing/LAME header: file size / bitrate, which shrinks with the file when it is cut).
    duration_exact: bool = True


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
        [_require("ffprobe"), "-v", "warning", "-select_streams", "a:0", "-show_entries",
         "stream=channels,sample_rate,codec_name,duration:format=duration,format_name", "-of", "json", str(path)],
        capture_output=True, text=True,
    )
    if "moov atom not found" in proc.stderr:  # MP4/M4A writes its index last: a cut file has none
        raise BadRecording("truncated: the MP4/M4A index (moov atom) is missing, the recording was cut "
                           "short or never finished")
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
        format_name=str(info.get("format", {}).get("format_name", "")),
        duration_exact="Estimating duration from bitrate" not in proc.stderr,
    )


def decode(path: Path, sample_rate: int = SAMPLE_RATE, info: AudioInfo | None = None) -> Audio:
    """Decode every channel to float32 at `sample_rate`; raise BadRecording on unusable input:
    truncated (by the container's structure, its stated length, or the decoder's errors), damaged,
    not finite, silent."""
    info = info or probe(path)
    if reason := incomplete(path, info.format_name or path.suffix.lstrip(".").lower()):
        raise BadRecording(reason)
    channels = max(info.channels, 1)
    resample = ["-ar", str(sample_rate)]
    stdin = None
    if info.codec.startswith("pcm_f") and info.sample_rate and info.sample_rate != sample_rate:
        # Float PCM may hold inf/NaN, and resampling would smear each over its neighbours: read
        # them at the file's own rate first (counted and zeroed), then resample the clean samples.
        # The samples read are resampled from memory, never decoded from the file a second time.
        native = _ffmpeg_f32(path, channels, [])
        if native.size:
            zero_nonfinite(native)
            stdin = memoryview(np.ascontiguousarray(native)).cast("B")  # the samples' own buffer, not a copy
        del native
    if stdin is None:
        proc = subprocess.run(
            [_require("ffmpeg"), "-nostdin", "-loglevel", "level+warning", "-i", str(path), "-map", "0:a:0",
             "-ac", str(channels), *resample, "-f", "f32le", "-"],
            capture_output=True,
        )
    else:
        proc = subprocess.run(
            [_require("ffmpeg"), "-loglevel", "level+warning", "-f", "f32le", "-ac", str(channels), "-ar",
             str(info.sample_rate), "-i", "-", *resample, "-f", "f32le", "-"],
            input=stdin, capture_output=True,
        )
    messages = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise BadRecording(f"cannot decode audio: {_clean(_last_line(messages))}")
    flat = np.frombuffer(proc.stdout, dtype=np.float32)
    if flat.size < channels * sample_rate // 10:
        raise BadRecording("no audio decoded (file is truncated or holds under 0.1 s)")
    flat = flat[: flat.size - flat.size % channels]
    decoded = flat.size / channels / sample_rate
    # A file cut short (interrupted upload or copy) still decodes up to the cut: the container's
    # stated length tells, when it is stated (not estimated from the size of what is left).
    if info.duration_exact and info.duration and decoded < info.duration - DURATION_TOLERANCE:
        raise BadRecording(f"truncated: the file declares {info.duration:.1f} s but only {decoded:.1f} s decode")
    if damage := decoder_damage(messages):
        raise BadRecording(f"damaged or truncated: the decoder reported {damage}")
    # ffmpeg interleaves channels; one row per channel is what every stage wants.
    samples = flat.reshape(-1, channels).T.copy()
    del flat, proc  # the interleaved bytes: as large as the audio, not needed past here
    zero_nonfinite(samples)
    audio = Audio(samples=samples, sample_rate=sample_rate)
    peak = peak_dbfs(audio.samples)
    if peak < SILENCE_PEAK_DBFS:
        raise BadRecording(f"silent recording (peak {peak:.0f} dBFS, threshold {SILENCE_PEAK_DBFS:.0f})")
    return audio


def _ffmpeg_f32(path: Path, channels: int, resample: list[str]) -> np.ndarray:
    """The first audio stream as interleaved float32 (an empty array when ffmpeg fails: the
    decode that follows reports why)."""
    proc = subprocess.run([_require("ffmpeg"), "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0:a:0",
                           "-ac", str(channels), *resample, "-f", "f32le", "-"], capture_output=True)
    return np.frombuffer(proc.stdout, dtype=np.float32).copy() if proc.returncode == 0 else np.zeros(0, np.float32)


def decoder_damage(messages: str) -> str | None:
    """The decoder's complaints about the data (ffmpeg run with -loglevel level+warning), as one
    phrase, or None. Warnings about the container's metadata are not complaints about the audio."""
    lines = [ln for ln in messages.splitlines()
             if "[error]" in ln or "[fatal]" in ln or ("[warning]" in ln and _DAMAGE_WARNING.search(ln))]
    if not lines:
        return None
    more = f" (and {len(lines) - 1} more messages)" if len(lines) > 1 else ""
    return f"'{_clean(lines[0])}'{more}"


def zero_nonfinite(samples: np.ndarray) -> None:
    """Zero inf/NaN samples in place (librosa and the mean of a mix would fail on them); raise
    BadRecording when more than a small share of the recording is not finite."""
    bad = ~np.isfinite(samples)
    n_bad = int(bad.sum())
    if not n_bad:
        return
    if n_bad > MAX_NONFINITE_SHARE * samples.size:
        raise BadRecording(f"damaged: {n_bad} samples ({n_bad / samples.size:.1%}) are not finite numbers "
                           f"(inf/NaN), over the {MAX_NONFINITE_SHARE:.1%} that are zeroed")
    samples[bad] = 0.0


def _clean(line: str) -> str:
    """An ffmpeg log line without its '[mp3float @ 0x55..] [error]' prefixes."""
    return re.sub(r"^(\[[^\]]*\]\s*)+", "", line.strip())


def peak_dbfs(samples: np.ndarray) -> float:
    # max and -min rather than abs(): no temporary as large as the audio
    peak = max(float(samples.max()), -float(samples.min())) if samples.size else 0.0
    return 20 * np.log10(peak) if peak > 0 else float("-inf")


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "unknown error"
