"""Decoding every accepted format, per channel, and refusing unusable input with a reason."""
from pathlib import Path

import numpy as np
import pytest

from pipeline.intake.audio import DURATION_TOLERANCE, SAMPLE_RATE, BadRecording, decode, probe
from tests.conftest import SAMPLES, SHARED_DEV, ffmpeg_convert, needs_shared, write_bad_inputs
from tests.encodings import ENCODINGS


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


# --- recordings cut short -------------------------------------------------------------------------
# Real audio (a real 8 kHz mu-law telephone call, and a stereo sample call) encoded by real ffmpeg
# into each container, then cut the way an interrupted upload or copy cuts it.
TELEPHONE_CALL = SHARED_DEV / "calls_zh" / "liuchanhg.wav"


@pytest.fixture(scope="module")
def excerpts(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("excerpts")
    return [ffmpeg_convert(TELEPHONE_CALL, folder / "telephone.wav", "-ss", "30", "-t", "12"),
            ffmpeg_convert(SAMPLES / "zh-1001-a.wav", folder / "stereo.wav", "-t", "12")]


@needs_shared("dev", "calls_zh")
@pytest.mark.parametrize("kind", ENCODINGS)
def test_each_container_decodes_whole_and_is_refused_when_cut_short(tmp_path, excerpts, kind):
    for source in excerpts:
        whole = ffmpeg_convert(source, tmp_path / f"{source.stem}.{kind}", *ENCODINGS[kind])
        audio = decode(whole)
        assert abs(audio.duration - 12.0) < DURATION_TOLERANCE  # mp3 without Xing keeps encoder padding
        data = whole.read_bytes()
        cut = tmp_path / f"cut-{whole.name}"
        cut.write_bytes(data[: int(len(data) * 0.6) + 7])  # +7: not on a frame or page boundary
        with pytest.raises(BadRecording, match="truncated|damaged"):
            decode(cut)


def test_the_sample_calls_pass_every_completeness_check():
    for path in sorted(p for p in SAMPLES.iterdir() if p.suffix in (".wav", ".mp3", ".flac", ".ogg")):
        assert decode(path).duration > 30


@needs_shared("dev", "calls_zh")
def test_an_ogg_cut_at_a_page_boundary_is_still_caught(tmp_path, excerpts):
    """An Ogg file cut exactly between pages decodes without a single error: only the missing
    end-of-stream flag on its last page tells."""
    whole = ffmpeg_convert(excerpts[0], tmp_path / "call.ogg", "-c:a", "libvorbis")
    data = whole.read_bytes()
    boundary = data.rfind(b"OggS", 0, len(data) // 2)
    (tmp_path / "cut.ogg").write_bytes(data[:boundary])
    with pytest.raises(BadRecording, match="end-of-stream"):
        decode(tmp_path / "cut.ogg")
