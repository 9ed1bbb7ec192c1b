"""Decoding every accepted format, per channel, and refusing unusable input with a reason."""
from pathlib import Path

import numpy as np
import pytest

from pipeline.audio import SAMPLE_RATE, BadRecording, decode, probe
from tests.conftest import SAMPLES, ffmpeg_convert, write_bad_inputs


@pytest.mark.parametrize("ext", ["wav", "mp3", "flac", "m4a", "ogg"])
def test_every_accepted_format_decodes_to_16k_float32_per_channel(tmp_path, ext):
    src = SAMPLES / "zh-1001-a.wav"  # stereo, 16 kHz
    # Re-encode at 44.1 kHz so resampling is exercised too.
    converted = ffmpeg_convert(src, tmp_path / f"call.{ext}", "-ar", "44100")
    audio = decode(converted)
    reference = decode(src)
    assert audio.sample_rate == SAMPLE_RATE
    assert audio.samples.dtype == np.float32
    assert audio.channels == 2
    assert abs(audio.duration - reference.duration) < 0.15
    # Channels stay apart: the agent (left) and customer (right) speak at different times.
    left, right = audio.samples
    assert np.corrcoef(np.abs(left[:160000]), np.abs(right[:160000]))[0, 1] < 0.5


def test_mono_stays_one_channel_and_mono_mix_of_stereo_averages():
    mono = decode(SAMPLES / "zh-1001-b.flac")
    assert mono.channels == 1 and mono.mono().ndim == 1
    stereo = decode(SAMPLES / "zh-1001-a.wav")
    np.testing.assert_allclose(stereo.mono(), stereo.samples.mean(axis=0), atol=1e-7)


def test_probe_reports_layout():
    info = probe(SAMPLES / "en-2001.mp3")
    assert info.channels == 2 and info.codec == "mp3" and 50 < info.duration < 60


@pytest.mark.parametrize("name", ["empty", "not-audio", "silence", "truncated", "voicemail"])
def test_unusable_recordings_raise_with_readable_reason(tmp_path, name):
    expected = write_bad_inputs(tmp_path)
    path = next(tmp_path.glob(f"{name}.*"))
    with pytest.raises(BadRecording) as err:
        decode(path)
    assert expected[name] in str(err.value)


def test_missing_file_is_not_a_bad_recording(tmp_path):
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "nope.wav")
