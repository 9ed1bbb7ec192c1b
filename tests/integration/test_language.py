"""Language per stretch (pipeline/speech/language.py): a speaker who switches between Mandarin and English.

Live tests build a speaker's stream from real speech: Mandarin lines read by a native speaker
(../shared/audio, Magic Data customer-service corpus) and English read by espeak-ng (Whisper
recognises it; its Mandarin voice it does not), joined at a pause as one speaker's turns, and
run the real engine. They assert properties only (script of the text, languages per stretch),
never the characters Whisper writes.
"""
from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
import soundfile as sf

from pipeline.intake.audio import SAMPLE_RATE
from pipeline.records import Diarization, SpeakerSegment
from pipeline.speech.asr import TranscribeOptions
from pipeline.speech.language import MIN_STRETCH_S, SURE_PROB, Stretch, cut_stretches, runs, smooth
from pipeline.speech.streams import speaker_streams, transcribe_streams
from tests.conftest import SHARED_AUDIO, needs_shared

ZH_LINES = SHARED_AUDIO / "zh_customer_service_finance"
pytestmark = needs_shared("audio", "zh_customer_service_finance")
ENGLISH = ("I am really sorry about the trouble with your card. I will ask my supervisor "
           "to call you back tomorrow morning before ten.")
CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN_WORD = re.compile(r"[A-Za-z]+")


# --- stretches and smoothing: pure functions on hand-made sequences -----------------------

def test_short_pieces_join_until_detection_has_enough_speech():
    # pieces of 1 s, 1 s, 2.5 s, 5 s, 0.8 s joined by 0.4 s pauses
    lengths = np.array([1.0, 1.0, 2.5, 5.0, 0.8])
    starts = np.concatenate([[0.0], np.cumsum(lengths + 0.4)[:-1]])
    total = float(starts[-1] + lengths[-1] + 0.4)
    spans = cut_stretches(starts, lengths, total)
    assert spans[0][0] == 0.0 and spans[-1][1] == pytest.approx(total)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))  # they tile the stream
    # every stretch but possibly a lone one has enough speech for detection; the short tail joined
    assert all(b - a >= MIN_STRETCH_S for a, b in spans)
    assert len(spans) == 2
    # cuts fall in pauses, never inside a piece
    for _, cut in spans[:-1]:
        assert not any(s < cut < s + n for s, n in zip(starts, lengths))


def test_long_piece_is_cut_under_the_maximum():
    spans = cut_stretches(np.array([0.0]), np.array([40.0]), 40.4)
    assert len(spans) == 4 and max(b - a for a, b in spans) <= 12.0 + 0.4


def _stretches(*labels):
    return [Stretch(4.0 * i, 4.0 * (i + 1), lang, prob) for i, (lang, prob) in enumerate(labels)]


def test_an_unsure_stretch_takes_its_neighbours_language():
    smoothed = smooth(_stretches(("zh", 0.99), ("ja", 0.5), ("zh", 0.95)), fallback=None)
    assert [s.language for s in smoothed] == ["zh", "zh", "zh"]
    assert len(runs(smoothed)) == 1


def test_a_sure_stretch_switches_language():
    smoothed = smooth(_stretches(("zh", 0.99), ("zh", 0.9), ("en", 0.97), ("en", SURE_PROB - 0.1)), fallback=None)
    assert [[s.language for s in run] for run in runs(smoothed)] == [["zh", "zh"], ["en", "en"]]


def test_a_stream_with_no_sure_stretch_takes_the_calls_language():
    smoothed = smooth(_stretches(("en", 0.5), ("nn", 0.4)), fallback="zh")
    assert {s.language for s in smoothed} == {"zh"}


# --- live: the real engine on a switching speaker -----------------------------------------

def _read(path) -> np.ndarray:
    import librosa

    audio, sr = sf.read(path, dtype="float32")
    audio = audio.mean(axis=1) if audio.ndim > 1 else audio
    return audio if sr == SAMPLE_RATE else librosa.resample(audio, orig_sr=sr, target_sr=SAMPLE_RATE)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    wav = tmp_path_factory.mktemp("lang") / "en.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(wav), ENGLISH], check=True)
    zh = np.concatenate([_read(ZH_LINES / "200001.wav"), _read(ZH_LINES / "200002.wav")])
    return {"zh": zh, "en": _read(wav)}


def _one_speaker_call(*clips, gap: float = 1.5):
    """One speaker's turns back to back with pauses between them; the diarization of it."""
    pause = np.zeros(int(gap * SAMPLE_RATE), dtype=np.float32)
    audio, segments, t = [pause], [], gap
    for clip in clips:
        audio += [clip, pause]
        segments.append(SpeakerSegment(t, t + len(clip) / SAMPLE_RATE, "spk0"))
        t += len(clip) / SAMPLE_RATE + gap
    return np.concatenate(audio), Diarization(tuple(segments), "clustering", 1)


def _script_of(segments, start, end):
    texts = [s.text for s in segments if start <= (s.start + s.end) / 2 < end]
    text = "".join(texts)
    cjk, latin = len(CJK.findall(text)), sum(len(w) for w in LATIN_WORD.findall(text))
    return texts, cjk, latin


@pytest.mark.parametrize("order", [("zh", "en"), ("en", "zh")])
def test_a_speaker_switching_language_is_transcribed_in_each(engine, speech, order):
    samples, diarization = _one_speaker_call(*(speech[lang] for lang in order))
    transcript = transcribe_streams(engine, speaker_streams(samples, diarization), TranscribeOptions())
    segs = transcript.segments
    assert [s.language for s in segs] and {s.language for s in segs} == {"zh", "en"}
    # languages per stretch in the order spoken
    spoken = [s.language for s in segs]
    assert [lang for i, lang in enumerate(spoken) if i == 0 or spoken[i - 1] != lang] == list(order)
    for lang, seg in zip(order, diarization.segments):
        texts, cjk, latin = _script_of(segs, seg.start - 0.3, seg.end + 0.3)
        assert texts, f"nothing recognised in the {lang} stretch"
        if lang == "zh":  # mostly Chinese characters (a few Latin letters: "APP", "CDS")
            assert cjk >= 15 and cjk > 3 * latin, texts
            assert all(s.language == "zh" for s in segs if seg.start - 0.3 <= s.start < seg.end + 0.3)
        else:  # Latin words with spaces, not characters
            assert cjk == 0 and latin >= 40, texts
            assert len(" ".join(texts).split()) >= 10, texts
    # the call's language is the one with most speech (16 s of Mandarin against 7 s of English)
    assert transcript.language == "zh"


def test_turns_split_at_the_switch_and_carry_their_language(engine, speech):
    from pipeline.speakers.align import turns_from_segments

    samples, diarization = _one_speaker_call(speech["zh"], speech["en"], gap=0.5)
    transcript = transcribe_streams(engine, speaker_streams(samples, diarization), TranscribeOptions())
    turns = turns_from_segments(transcript.segments, {"spk0": "customer"}, transcript.language)
    assert [t.language for t in turns] == ["zh", "en"]
    assert " " in turns[1].text and not CJK.search(turns[1].text)


def test_an_english_turn_in_a_mandarin_call_is_read_as_english():
    """Facts are read in the turn's own language: the amount an English-speaking customer names
    on a Mandarin call is found (read as Mandarin, it is not)."""
    from pipeline.analysis.facts import Utterance, extract_facts

    said = "I want my three thousand pounds back."
    as_call, _ = extract_facts("c", [Utterance("customer", 3.0, said)], "zh", None)
    as_turn, _ = extract_facts("c", [Utterance("customer", 3.0, said, "en")], "zh", None)
    assert not [f for f in as_call if f.kind == "amount"]
    assert [f.value for f in as_turn if f.kind == "amount"] == [{"amount": 3000, "currency": "GBP"}]


def test_a_stereo_call_with_a_switching_customer_is_stored_per_turn(tmp_path, speech):
    """The whole pipeline on a real stereo call: a Mandarin agent (left) and a customer (right)
    who complains in English, then speaks Mandarin (a second real Mandarin voice). Every stage
    runs; turns are stored with their language; the call's language is the main one."""
    from pipeline.intake.ingest import discover
    from pipeline.run.execute import refresh_briefings
    from pipeline.run.stages import process_recording
    from pipeline.speech.asr import EngineSpec
    from pipeline.store import Store

    agent = [_read(ZH_LINES / f"20000{i}.wav") for i in (3, 4)]
    customer = [speech["en"], _read(SHARED_AUDIO / "zh_BAC009S0764W0121.wav")]
    left, right = [], []
    for a, c in zip(agent, customer):  # agent line, then the customer's reply, 0.6 s apart
        gap = np.zeros(int(0.6 * SAMPLE_RATE), np.float32)
        left += [gap, a, gap, np.zeros_like(c)]
        right += [gap, np.zeros_like(a), gap, c]
    folder = tmp_path / "mixed"
    folder.mkdir()
    sf.write(folder / "mixed.wav", np.stack([np.concatenate(left), np.concatenate(right)], axis=1), SAMPLE_RATE)
    (folder / "manifest.csv").write_text("call_id,file,customer_id,channel_layout,agent_channel\n"
                                         "mix-1,mixed.wav,C8888,stereo,0\n")
    result = process_recording(discover(folder).recordings[0], EngineSpec())
    assert result.status == "ok", result.error
    assert result.transcript.language == "zh"
    customer_turns = [t for t in result.turns if t.role == "customer"]
    assert [t.language for t in customer_turns] == ["en", "zh"]
    assert " " in customer_turns[0].text and not CJK.search(customer_turns[0].text)
    assert CJK.search(customer_turns[1].text)
    assert {t.language for t in result.turns if t.role == "agent"} == {"zh"}
    with Store(tmp_path / "mixed.duckdb") as store:
        store.write_call(result)
        refresh_briefings(store, [result])
        stored = store.query("SELECT role, language FROM turns WHERE call_id = 'mix-1' ORDER BY seq").to_dict("records")
        call = store.query("SELECT language FROM calls WHERE call_id = 'mix-1'").to_dict("records")
    assert [(r["role"], r["language"]) for r in stored] == [(t.role, t.language) for t in result.turns]
    assert call == [{"language": "zh"}]


def test_a_call_in_one_language_is_transcribed_as_before(engine):
    """A sample call in one language: per-stretch detection finds that language everywhere and the
    streams are decoded exactly as with one language per stream (same segments, same times)."""
    from pipeline.intake.audio import decode
    from pipeline.speakers.diarize import diarize
    from tests.conftest import SAMPLES

    audio = decode(SAMPLES / "zh-1001-b.flac")
    streams = speaker_streams(audio.samples, diarize(audio.samples))
    assert len(streams) >= 2
    before = transcribe_streams(engine, streams, TranscribeOptions(), per_stretch=False)
    after = transcribe_streams(engine, streams, TranscribeOptions())
    assert before.language == after.language == "zh"
    assert {s.language for s in after.segments} == {"zh"}
    key = lambda t: [(s.speaker, round(s.start, 3), round(s.end, 3), s.text) for s in t.segments]  # noqa: E731
    assert key(after) == key(before) and key(after)
