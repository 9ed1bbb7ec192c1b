"""Rescoring: loose vocabulary matches that pinyin alone cannot settle, judged by Whisper on the
real audio. The texts judged are references (../shared/audio transcripts with one term misheard
on purpose) or a stored recognition run, never what Whisper writes live, so they hold on any CPU;
a term said gains 5-20 log-probability here, a term not said loses, or gains less than the margin
(客户端 read as 客服端: +0.78 on one window). Word times come from Whisper's forced alignment of the
text given, as word timestamps would."""
import re
from pathlib import Path

import pytest

from evaluation.recognition import replay_call
from pipeline.intake.audio import decode
from pipeline.records import Segment, Word
from pipeline.store import Store
from pipeline.store.connect import Database
from pipeline.vocabulary.rescore import RescoreOptions, rescore_segment, segment_clip
from pipeline.vocabulary.terms import (
    LOOSE_MIN_SIMILARITY,
    find_corrections,
    find_loose_matches,
    loose_similarity,
    similarity,
    vocabulary,
)
from tests.conftest import SHARED_AUDIO

needs_shared = pytest.mark.skipif(not SHARED_AUDIO.exists(), reason="needs ../shared/audio")


def _terms(matches) -> set[str]:
    return {m.term for m in matches}


def _unsure(text: str):
    """Loose matches in `text` as Whisper would hand it over when fairly unsure of every word."""
    return find_loose_matches(text, [0.6] * len(text))


def test_loose_matches_reach_terms_two_syllables_off_that_correction_leaves():
    # 处去看 / 储蓄卡: chu = chu, qu ~ xu (a listed confusion), kan shares only its initial with ka.
    assert similarity("处去看", "储蓄卡") == 0.0 and loose_similarity("处去看", "储蓄卡") >= 0.55
    assert "储蓄卡" not in _terms(find_corrections("我只有一张个人处去看"))
    assert "储蓄卡" in _terms(_unsure("我只有一张个人处去看"))
    # Where Whisper was sure of every character it had no doubt to settle: no candidate.
    assert not find_loose_matches("我只有一张个人处去看", [0.95] * 10)
    assert "服务态度" in _terms(_unsure("你们这是什么狐狐态毒"))


def test_loose_matches_stay_near_the_term():
    # Too far (拆运炉 is not 查余额), or a short term matched loosely.
    assert loose_similarity("拆运炉", "查余额") < LOOSE_MIN_SIMILARITY
    assert loose_similarity("哦算炉", "查余额") == 0.0  # two syllables unlike the term's
    assert not _unsure("我不是要拆运炉")
    assert not [m for m in _unsure("我想借几百块钱") if len(m.term) < 3]
    # A short term only when correction turned the span down as a common word (名气 for 明细).
    assert "明细" not in _terms(find_corrections("查询账户娱乐名气的话"))
    assert "明细" in _terms(_unsure("查询账户娱乐名气的话"))
    # Next to a written term a short term may match loosely (terms come in runs: 账户余额明细).
    assert "余额" in _terms(_unsure("查询账户娱乐明细"))
    assert "余额" not in _terms(_unsure("我喜欢看娱乐节目"))
    # Never a span that is already a term.
    written = {t.text for t in vocabulary()}
    for m in _unsure("我的信用卡和储蓄卡都被冻结了"):
        assert "我的信用卡和储蓄卡都被冻结了"[m.start:m.end] not in written


def _reference(uid: str) -> tuple[Path, str]:
    for folder in SHARED_AUDIO.glob("zh_customer_service_*"):
        for line in (folder / "transcripts.tsv").read_text(encoding="utf-8").splitlines():
            if line.startswith(uid + "\t"):
                return folder / f"{uid}.wav", re.sub(r"[，。？！、]", "", line.split("\t", 1)[1].strip())
    raise LookupError(uid)


def _aligned_segment(engine, text: str, samples) -> Segment:
    """A segment of `text` with its words placed on the audio by Whisper's forced alignment of
    that text (how faster-whisper times words, without its punctuation merging), Whisper fairly
    unsure of each word."""
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer

    model = engine.model
    assert len(samples) <= 30 * 16000  # one window of Whisper's
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="zh")
    features = model.feature_extractor(samples)
    frames = min(features.shape[-1] - 1, model.feature_extractor.nb_max_frames)  # the extractor pads one
    encoded = model.encode(pad_or_trim(features[:, :frames]))
    (aligned,) = model.find_alignment(tokenizer, [tokenizer.encode(text)], encoded, frames)
    words = tuple(Word(w["word"], float(w["start"]), float(w["end"]), 0.6) for w in aligned)
    assert "".join(w.text for w in words) == text
    return Segment(words[0].start, words[-1].end, text, words=words)


def _rescore(engine, uid: str, heard: str | None = None):
    path, reference = _reference(uid)
    audio = decode(path)
    seg = _aligned_segment(engine, heard or reference, audio.mono())
    return reference, *rescore_segment(seg, segment_clip(audio.samples, audio.sample_rate, seg, None), engine,
                                       RescoreOptions())


@needs_shared
def test_readings_scored_together_score_as_each_alone(engine):
    # score() reads the texts after one prompt in one batch (the encoder output repeated per
    # text): each must score as if read alone, or a window's decision would depend on its company.
    path, reference = _reference("200003")
    audio = decode(path).mono()
    # Two prompts, interleaved: each score must come back in its text's place.
    texts = [(reference, "手机银行"), (reference, None), (reference.replace("手机银行", "手机运行"), "手机银行"),
             (reference.replace("银行", "很行"), None), (reference.replace("银行", "很行"), "手机银行")]
    together = engine.score(audio, texts, "zh")
    alone = [engine.score(audio, [t], "zh")[0] for t in texts]
    assert together == pytest.approx(alone, abs=1e-3)
    assert together[0] > together[2] and together[0] > together[4]  # what is said is likelier
    assert together[1] > together[3]
    assert together[0] != together[1]  # the prompt is part of the reading


@needs_shared
@pytest.mark.parametrize("uid, said, heard", [("200003", "手机银行", "手机运行"), ("200046", "信用卡", "信用看"),
                                              ("200034", "手续费", "首序飞")])
def test_whisper_restores_a_term_the_audio_says(engine, uid, said, heard):
    reference, fixed, corrections = _rescore(engine, uid, None)
    assert not corrections  # the reference as it is: nothing to change
    path, reference = _reference(uid)
    reference, fixed, corrections = _rescore(engine, uid, reference.replace(said, heard))
    assert fixed.text == reference
    (c,) = corrections
    assert (c.original, c.corrected, c.kind) == (heard, said, "rescored") and c.score > RescoreOptions().margin
    assert 0.0 <= c.start < c.end <= fixed.end


@needs_shared
@pytest.mark.parametrize("uid", ["400013", "400027", "200018"])
def test_whisper_keeps_words_the_audio_says_that_sound_like_terms(engine, uid):
    # 个人中心 sounds loosely like 个人贷款 / 征信中心, 国家银行 like bank names: all candidates here.
    reference, fixed, corrections = _rescore(engine, uid)
    assert find_loose_matches(reference, [0.6] * len(reference))
    assert corrections == [] and fixed.text == reference


@pytest.mark.skipif(not (SHARED_AUDIO.exists()), reason="needs ../shared")
def test_a_stored_call_gets_the_term_whisper_prefers_and_the_change_is_recorded(engine, tmp_path):
    by_sound = replay_call("zh-1001-a")
    rescored = replay_call("zh-1001-a", scorer=engine)
    assert "储蓄卡" not in " ".join(t.text for t in by_sound.turns)
    assert "储蓄卡" in " ".join(t.text for t in rescored.turns)
    assert [c for c in by_sound.corrections] == [c for c in rescored.corrections if c.kind != "rescored"]
    new = [c for c in rescored.corrections if c.kind == "rescored"]
    assert ("处去看", "储蓄卡") in [(c.original, c.corrected) for c in new]
    assert [c.seq for c in rescored.corrections] == list(range(len(rescored.corrections)))
    with Store(tmp_path / "calls.duckdb") as store:
        store.write_call(rescored)
    with Database(tmp_path / "calls.duckdb", read_only=True).reading() as conn:
        rows = conn.execute("SELECT original, corrected, kind, score FROM corrections WHERE call_id = 'zh-1001-a' "
                            "ORDER BY seq").fetchall()
    assert ("处去看", "储蓄卡", "rescored") in [r[:3] for r in rows]
    assert all(score > RescoreOptions().margin for *_, kind, score in rows if kind == "rescored")  # the log probability gained
