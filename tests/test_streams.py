"""Speaker streams are cut into parts of bounded length (memory flat in call length), and the
parts are the whole stream: every speech piece once, in order, each mapped to where it was."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import SAMPLES

from pipeline.audio import SAMPLE_RATE, decode
from pipeline.speakers import diarize
from pipeline.streams import JOIN_PAUSE, speaker_streams


@pytest.mark.parametrize("name", ["zh-1001-a.wav", "zh-1001-b.flac"])
def test_long_streams_are_cut_at_joins_into_bounded_parts(name):
    audio = decode(SAMPLES / name)
    diarization = diarize(audio.samples)
    whole = speaker_streams(audio.samples, diarization, max_seconds=1e9)
    parts = speaker_streams(audio.samples, diarization, max_seconds=8.0)
    assert len(whole) == len(diarization.speakers()) and len(parts) > len(whole)

    mix = audio.mono()
    for stream in whole:
        mine = [p for p in parts if p.speaker == stream.speaker]
        # The same pieces, in the same order, split between the parts.
        assert np.concatenate([p.recording_starts for p in mine]).tolist() == stream.recording_starts.tolist()
        assert np.concatenate([p.lengths for p in mine]).tolist() == stream.lengths.tolist()
        for part in mine:
            # At most 8 s of speech and pauses, unless one piece is longer on its own.
            speech = float(part.lengths.sum() + JOIN_PAUSE * (len(part.lengths) - 1))
            assert speech <= 8.0 or len(part.lengths) == 1
            assert part.stream_starts[0] == 0.0
            source = audio.samples[part.channel] if part.channel is not None else mix
            for s0, r0, n in zip(part.stream_starts, part.recording_starts, part.lengths):
                a, b = int(round(s0 * SAMPLE_RATE)), int(r0 * SAMPLE_RATE)
                k = int(round(n * SAMPLE_RATE))
                np.testing.assert_array_equal(part.audio[a:a + k], source[b:b + k])
