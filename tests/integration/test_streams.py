"""Speaker streams are cut into parts of bounded length (memory flat in call length), and the
parts are the whole stream: every speech piece once, in order, each mapped to where it was."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.intake.audio import SAMPLE_RATE, decode
from pipeline.speakers.diarize import diarize
from pipeline.speech.streams import JOIN_PAUSE, speaker_streams
from tests.conftest import SAMPLES


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


def test_a_word_stamped_across_a_join_stays_in_the_piece_holding_most_of_it():
    """Seen on en-2002: the agent's "I" began in the last 0.04 s of one piece and ended 0.27 s
    into the next, so it spanned the customer's turn and opened the agent's next turn 6 s early."""
    from pipeline.records import Segment, Word
    from pipeline.speech.streams import SpeakerStream, _remap

    # Two pieces of one speaker: 35.08-40.88 s and 46.32-48.37 s of the recording.
    stream = SpeakerStream("spk0", np.zeros(int(8.25 * SAMPLE_RATE), dtype=np.float32), None,
                           stream_starts=np.array([0.0, 5.8 + JOIN_PAUSE]), recording_starts=np.array([35.08, 46.32]),
                           lengths=np.array([5.8, 2.05]))
    join = 5.8 + JOIN_PAUSE
    words = (Word("released", 3.9, 4.5, 1.0), Word("I", 5.76, join + 0.27, 0.7),
             Word("completely", join + 0.27, join + 0.67, 0.9))
    pieces = _remap(Segment(3.9, join + 0.67, "released I completely", words), stream)
    assert [[w.text for w in p.words] for p in pieces] == [["released"], ["I", "completely"]]
    late = pieces[1].words[0]
    assert late.start == pytest.approx(46.32) and late.end == pytest.approx(46.59)
    assert pieces[1].start == pytest.approx(46.32)
    # A word mostly in the first piece stays there, ending where that piece ends.
    first_heavy = Word("hours", 5.2, join + 0.05, 0.8)
    (only,) = _remap(Segment(5.2, join + 0.05, "hours", (first_heavy,)), stream)
    assert only.words[0].start == pytest.approx(40.28) and only.words[0].end == pytest.approx(40.88)
