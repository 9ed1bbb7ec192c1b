"""A call's speech decoded in windows cut at its pauses, several windows at once, the wide beam
only for the unsure ones (speech/streams.py, speech/backends/batch.py): real Mandarin speech,
the real model."""
import subprocess
from dataclasses import replace

import numpy as np
import pytest

from evaluation.metrics import cer
from pipeline.intake.audio import SAMPLE_RATE, decode
from pipeline.records import Diarization, SpeakerSegment
from pipeline.speech.asr import TranscribeOptions
from pipeline.speech.streams import (
    MAX_WINDOW_SECONDS,
    speaker_streams,
    stream_seconds,
    transcribe_streams,
    window_cuts,
)
from tests.conftest import SAMPLES, SHARED_AUDIO

FINANCE = SHARED_AUDIO / "zh_customer_service_finance"
needs_shared = pytest.mark.skipif(not FINANCE.exists(), reason="../shared/audio not present")
UTTERANCES = ("200001", "200002", "200003", "200004", "200005", "200006")


@pytest.fixture(scope="module")
def speech_en(tmp_path_factory):
    wav = tmp_path_factory.mktemp("en") / "en.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(wav),
                    "I would like to speak to a supervisor about the charges on my credit card statement"], check=True)
    return decode(wav).mono()


@pytest.fixture(scope="module")
def utterances():
    return [decode(FINANCE / f"{uid}.wav").mono() for uid in UTTERANCES]


def _one_speaker(clips, gap: float = 1.0):
    """The clips one after the other, `gap` seconds of silence between: one speaker's segments."""
    audio, segments, t = [], [], 0.0
    for clip in clips:
        audio += [clip, np.zeros(int(gap * SAMPLE_RATE), dtype=np.float32)]
        segments.append(SpeakerSegment(t, t + len(clip) / SAMPLE_RATE, "spk0"))
        t += len(clip) / SAMPLE_RATE + gap
    return np.concatenate(audio), Diarization(tuple(segments), "clustering", 1)


def test_a_stereo_call_is_cut_into_windows_at_its_pauses():
    from pipeline.speakers.diarize import diarize

    audio = decode(SAMPLES / "zh-1001-a.wav")
    for stream in speaker_streams(audio.samples, diarize(audio.samples)):
        total = len(stream.audio) / SAMPLE_RATE
        cuts = window_cuts(stream, 0.0, total, max_seconds=12.0)  # small windows: many cuts to check
        assert cuts[0][0] == 0.0 and cuts[-1][1] == total and len(cuts) > 1
        assert all(a[1] == b[0] for a, b in zip(cuts, cuts[1:]))  # they tile the stream
        assert all(end - start <= 12.0 for start, end in cuts)
        ends = stream.stream_starts + stream.lengths
        for _, cut in cuts[:-1]:  # every cut in a joining pause, none in a piece of speech
            assert any(ends[i] <= cut <= stream.stream_starts[i + 1] for i in range(len(ends) - 1)), cut


@needs_shared
def test_speech_without_a_pause_is_cut_at_its_quietest(utterances):
    # Six utterances run together as one segment: no joining pause to cut at.
    run_on = np.concatenate(utterances)
    stream = speaker_streams(run_on, Diarization((SpeakerSegment(0.0, len(run_on) / SAMPLE_RATE, "spk0"),),
                                                 "clustering", 1))[0]
    total = len(stream.audio) / SAMPLE_RATE
    cuts = window_cuts(stream, 0.0, total, max_seconds=12.0)  # small windows: several cuts to check
    assert len(cuts) >= 3 and all(end - start <= 12.0 for start, end in cuts)
    frame = int(0.02 * SAMPLE_RATE)
    energy = (stream.audio[: len(stream.audio) // frame * frame].reshape(-1, frame) ** 2).mean(axis=1)
    for _, cut in cuts[:-1]:
        assert energy[int(cut / 0.02)] <= np.percentile(energy, 10)


@needs_shared
def test_windows_decode_the_same_in_a_batch_as_alone(engine, utterances):
    options = TranscribeOptions()
    together = engine.transcribe_windows(utterances, ["zh"] * len(utterances), options)
    for clip, batched in zip(utterances, together):
        (alone,) = engine.transcribe_windows([clip], ["zh"], options)
        assert alone.text and cer(alone.text, batched.text) <= 0.05
        if alone.text == batched.text:  # the same words: the same times, whatever else is in the batch
            times = [t for w in alone.words for t in (w.start, w.end)]
            assert times == pytest.approx([t for w in batched.words for t in (w.start, w.end)], abs=0.05)
        words = batched.words
        assert words and all(0 <= w.start <= w.end <= len(clip) / SAMPLE_RATE + 0.5 for w in words)
        assert all(a.start <= b.start for a, b in zip(words, words[1:]))


@needs_shared
def test_the_wide_beam_replaces_the_decode_of_an_unsure_window(engine, utterances):
    # No retries and no loop test, so only the bar decides what is widened.
    plain = TranscribeOptions(temperature=(0.0,), compression_ratio_threshold=100.0)
    zh = ["zh"] * len(utterances)
    # A bar above every log probability: every window is unsure, so every one is decoded wide,
    # exactly as the setting that decodes every window wide from the start.
    widened = engine.transcribe_windows(utterances, zh, replace(plain, wide_beam_below=0.0))
    everywhere = engine.transcribe_windows(utterances, zh, replace(plain, wide_beam_below=None))
    assert [t.text for t in widened] == [t.text for t in everywhere]
    # A bar under every log probability: nothing widened, the beam-5 decodes stand.
    never = engine.transcribe_windows(utterances, zh, replace(plain, wide_beam_below=-99.0))
    narrow = engine.transcribe_windows(utterances, zh, replace(plain, mandarin_beam_size=None))
    assert [t.text for t in never] == [t.text for t in narrow]


@needs_shared
def test_a_call_decodes_each_second_of_speech_once(engine, utterances):
    samples, diarization = _one_speaker(utterances)
    streams = speaker_streams(samples, diarization)
    decoded = []

    class Counting:  # the real engine; records the audio it is given to encode
        def __getattr__(self, name):
            return getattr(engine, name)

        def encode_windows(self, clips):
            decoded.extend(len(c) for c in clips)
            return engine.encode_windows(clips)

        def transcribe_windows(self, clips, languages, options, on_done=None):
            decoded.extend(len(c) for c in clips)
            return engine.transcribe_windows(clips, languages, options, on_done)

    transcript = transcribe_streams(Counting(), streams, TranscribeOptions())
    assert transcript.segments and transcript.language == "zh"
    assert sum(decoded) == sum(len(s.audio) for s in streams)  # every sample once, none twice
    # Packed: fewer windows than segments, none longer than Whisper's window.
    assert len(decoded) < len(diarization.segments) and max(decoded) <= MAX_WINDOW_SECONDS * SAMPLE_RATE + 1
    assert stream_seconds(streams) > MAX_WINDOW_SECONDS
    # Times back in the recording, inside the speaker's segments.
    for seg in transcript.segments:
        assert any(s.start - 0.5 <= seg.start and seg.end <= s.end + 0.5 for s in diarization.segments), seg


@needs_shared
def test_languages_are_read_from_the_encoder_output_the_decoding_uses(engine, utterances, speech_en):
    # Mandarin, a pause, English: one window, its encoding read whole and by stretch.
    gap = np.zeros(SAMPLE_RATE, dtype=np.float32)
    mixed = np.concatenate([utterances[0], utterances[1], gap, speech_en])
    zh_end = (len(utterances[0]) + len(utterances[1])) / SAMPLE_RATE
    encoded = engine.encode_windows([mixed, utterances[2]])
    spans = engine.read_spans(encoded, [[(0.0, zh_end), (zh_end + 1.0, len(mixed) / SAMPLE_RATE)], []])
    assert len(spans[0]) == 2
    (zh, zh_prob), (en, en_prob) = spans[0]
    # The Mandarin stretch reads Mandarin surely; the English one never does (it is then detected
    # on its own audio: the next test).
    assert zh == "zh" and zh_prob >= 0.7 and not (en == "zh" and en_prob >= 0.7)


@needs_shared
def test_a_speaker_who_switches_within_a_window_is_decoded_in_each_language(engine, utterances, speech_en):
    samples, diarization = _one_speaker([utterances[0], utterances[1], speech_en])
    transcript = transcribe_streams(engine, speaker_streams(samples, diarization), TranscribeOptions())
    assert {s.language for s in transcript.segments} == {"zh", "en"} and transcript.language == "zh"
    english = [s for s in transcript.segments if s.language == "en"]
    assert english and english[0].start >= diarization.segments[2].start - 0.5


@needs_shared
def test_the_fixed_language_of_a_manifest_skips_detection(engine, utterances):
    samples, diarization = _one_speaker(utterances[:2])
    streams = speaker_streams(samples, diarization)
    fixed = transcribe_streams(engine, streams, replace(TranscribeOptions(), language="zh"))
    assert fixed.language == "zh" and all(s.language == "zh" for s in fixed.segments) and fixed.text
