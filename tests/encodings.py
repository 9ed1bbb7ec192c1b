"""Every accepted container, as the ffmpeg arguments that write it: shared by the truncation tests
(tests/unit/test_audio.py) and the sweep that measures how often a cut recording is caught
(scripts/truncation_sweep.py), so both always cover the same containers."""

ENCODINGS = {
    "cbr-no-xing.mp3": ["-c:a", "libmp3lame", "-b:a", "32k", "-write_xing", "0"],  # length only estimated
    "vbr-no-xing.mp3": ["-c:a", "libmp3lame", "-q:a", "5", "-write_xing", "0"],
    "xing.mp3": ["-c:a", "libmp3lame", "-b:a", "32k"],
    "vorbis.ogg": ["-c:a", "libvorbis"],
    "opus.ogg": ["-c:a", "libopus"],
    "flac": [],
    "moov-last.m4a": ["-c:a", "aac"],
    "faststart.m4a": ["-c:a", "aac", "-movflags", "+faststart"],
    "wav": [],
}
