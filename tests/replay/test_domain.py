"""The vocabulary corrects service calls only (vocabulary.domain): decided on the call's own
Mandarin, on real texts (the general Mandarin set's references, the sample calls' stored runs)."""

import json
from pathlib import Path

from evaluation.recognition import RECOGNITION
from pipeline.records import Segment, Transcript, Word
from pipeline.run.serial import load_recognition
from pipeline.vocabulary.correct import correct_transcript
from pipeline.vocabulary.domain import CHARS_PER_TERM, MISS_PROBABILITY, call_domain

GENERAL = Path(__file__).resolve().parents[1] / "eval" / "zh_general" / "manifest.json"


def _transcript(lines: list[str]) -> Transcript:
    """One segment per line, each character a word Whisper was unsure of (so correction may act)."""
    segments, t = [], 0.0
    for line in lines:
        words = tuple(Word(ch, t + 0.2 * k, t + 0.2 * (k + 1), 0.5) for k, ch in enumerate(line))
        segments.append(Segment(t, t + 0.2 * len(line), line, words))
        t += 0.2 * len(line) + 0.5
    return Transcript("zh", 1.0, tuple(segments), t, "test", "test")


def _general_lines(speaker: str) -> list[str]:
    rows = json.loads(GENERAL.read_text(encoding="utf-8"))
    return [r["reference"] for r in rows if r["id"].startswith(speaker)]


def test_a_long_conversation_without_one_banking_term_is_no_service_call():
    lines = _general_lines("BAC009S0150")  # read commands and place names, 700 characters
    domain = call_domain(_transcript(lines))
    assert not domain.service and domain.terms == () and domain.characters > 300
    assert domain.p_no_term < MISS_PROBABILITY


def test_a_short_line_without_a_term_is_too_little_evidence():
    (line,) = _general_lines("BAC009S0150W0001")
    domain = call_domain(_transcript([line]))
    assert domain.service and domain.characters < CHARS_PER_TERM


def test_the_sample_calls_are_service_calls_by_their_own_words():
    for call_id in ("zh-1001-a", "zh-1001-b"):
        transcript, _ = load_recognition(RECOGNITION / f"{call_id}.json")
        domain = call_domain(transcript)
        assert domain.service and len(domain.terms) >= 3


def test_a_misheard_term_is_corrected_in_a_service_call_and_left_alone_elsewhere():
    misheard = "我想问一下里才产品什么时候能熟悔"  # 理财产品, 赎回 as a service line would mishear them
    alone, found = correct_transcript(_transcript([misheard]))
    assert {(c.original, c.corrected) for c in found} >= {("里才产品", "理财产品"), ("熟悔", "赎回")}
    # The same line inside a long conversation that says nothing of banking: no change at all.
    general = _transcript(_general_lines("BAC009S0252") + [misheard])
    fixed, found = correct_transcript(general)
    assert fixed == general and found == ()


def test_words_of_service_and_complaint_are_no_evidence_of_banking():
    # 理解, 抱歉, 领导, 媒体 are in the vocabulary (complaint handling), but any conversation says them.
    lines = _general_lines("BAC009S0150") + ["我理解你的意思抱歉我去问一下领导", "媒体上也说过这件事"]
    domain = call_domain(_transcript(lines))
    assert not domain.service and domain.terms == ()


def test_a_banks_own_vocabulary_adds_evidence_and_never_removes_the_packaged():
    lines = _general_lines("BAC009S0150")
    own = "wealth\t嘉实稳健\n"  # a bank's product name, in one of the banking categories
    assert call_domain(_transcript(lines + ["我想问问嘉实稳健"]), own).service
    # The packaged banking terms still count with a bank's short list in place.
    assert call_domain(_transcript(lines + ["我的信用卡被冻结了"]), own).service
