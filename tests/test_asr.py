"""Both Whisper engines on real Mandarin speech, and the engine-independent clean-up."""
from pathlib import Path

import pytest

from pipeline.asr import EngineSpec, TranscribeOptions, is_hallucination, load_engine, postprocess
from pipeline.audio import decode
from pipeline.metrics import cer
from pipeline.types import Segment, Transcript, Word
from tests.conftest import SHARED_AUDIO

AISHELL = SHARED_AUDIO / "zh_BAC009S0764W0121.wav"
needs_shared = pytest.mark.skipif(not AISHELL.exists(), reason="../shared/audio not present")


def _reference(path: Path) -> str:
    return path.with_suffix(".txt").read_text(encoding="utf-8").split()[-1]


@needs_shared
def test_faster_whisper_detects_mandarin_and_writes_simplified_with_word_times(engine):
    audio = decode(AISHELL).mono()
    transcript = engine.transcribe(audio, TranscribeOptions())
    assert transcript.language == "zh" and transcript.language_probability > 0.8
    assert cer(_reference(AISHELL), transcript.text) <= 0.15
    words = transcript.words
    assert words and all(0 <= w.start <= w.end <= transcript.duration + 0.5 for w in words)
    assert all(a.start <= b.start for a, b in zip(words, words[1:]))


@needs_shared
def test_language_override_is_obeyed(engine):
    transcript = engine.transcribe(decode(AISHELL).mono(), TranscribeOptions(language="en"))
    assert transcript.language == "en"


@needs_shared
def test_openai_whisper_engine_runs_the_same_weights_offline():
    engine = load_engine(EngineSpec(engine="openai-whisper", model="base"))
    transcript = engine.transcribe(decode(AISHELL).mono(), TranscribeOptions(language="zh", beam_size=1))
    assert transcript.engine == "openai-whisper"
    assert cer(_reference(AISHELL), transcript.text) <= 0.15
    assert transcript.words and transcript.words[0].end > transcript.words[0].start


def _transcript(language, *texts):
    segs = tuple(Segment(start=i, end=i + 1, text=t, words=(Word(t, i, i + 1, 0.9),)) for i, t in enumerate(texts))
    return Transcript(language=language, language_probability=1.0, segments=segs, duration=len(texts),
                      model_id="test", engine="test")


def test_known_silence_hallucinations_are_dropped_and_reported():
    raw = _transcript("zh", "我的卡被冻结了", "字幕由Amara.org社群提供", "請不吝點贊 訂閱 轉發 打賞支持明鏡與點點欄目", "……")
    cleaned = postprocess(raw, TranscribeOptions())
    assert [s.text for s in cleaned.segments] == ["我的卡被冻结了"]
    assert len(cleaned.dropped) == 3


def test_hallucination_match_is_whole_segment_not_substring():
    assert is_hallucination("Thanks for watching!")
    assert not is_hallucination("Thanks for watching my account so closely")


def test_traditional_is_converted_to_simplified_in_text_and_words():
    cleaned = postprocess(_transcript("zh", "我要投訴你們銀行"), TranscribeOptions())
    assert cleaned.segments[0].text == "我要投诉你们银行"
    assert cleaned.segments[0].words[0].text == "我要投诉你们银行"
    kept = postprocess(_transcript("zh", "我要投訴你們銀行"), TranscribeOptions(simplified_chinese=False))
    assert kept.segments[0].text == "我要投訴你們銀行"
