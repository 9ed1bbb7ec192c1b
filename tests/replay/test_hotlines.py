"""Misheard regulator hotlines (pipeline/vocabulary/hotlines.py), on text and on the stored zh-1001-b run."""
import pytest

from evaluation.recognition import RECOGNITION, replay_call
from pipeline.records import Segment, Word
from pipeline.run.serial import load_recognition
from pipeline.vocabulary.correct import correct_transcript
from pipeline.vocabulary.hotlines import correct_hotlines, find_hotline_fixes, known_hotlines, nearest_hotline


def test_the_known_hotlines_come_from_the_vocabulary():
    assert {"12378", "12363", "12315"} <= known_hotlines()
    assert all(len(h) == 5 and h.startswith("12") for h in known_hotlines())


@pytest.mark.parametrize("heard, meant", [("12278", "12378"), ("12463", "12363"), ("12215", "12315")])
def test_one_digit_from_exactly_one_hotline_is_that_hotline(heard, meant):
    assert nearest_hotline(heard) == meant


@pytest.mark.parametrize("number", ["12378", "12999", "12373"])  # known; far from all; 12373 is near 12378 and 12363
def test_known_far_or_ambiguous_numbers_are_not_guessed(number):
    assert nearest_hotline(number) is None


@pytest.mark.parametrize("text", ["我要打12278找金融监管总局", "我去12278投诉你们", "拨打一二二七八", "12278热线"])
def test_a_misheard_hotline_next_to_a_call_cue_is_fixed(text):
    ((start, end, hotline),) = find_hotline_fixes(text)
    assert hotline == "12378" and end - start == 5


@pytest.mark.parametrize("text", ["这笔12278元的款项", "订单号是12278", "我要打123785", "我要打012278"])
def test_a_number_without_a_cue_or_inside_a_longer_one_stays(text):
    assert find_hotline_fixes(text) == []


def test_the_fix_keeps_word_times_and_is_recorded():
    words = (Word("我要", 0.0, 0.4, 0.9), Word("打", 0.4, 0.6, 0.9), Word("12", 0.6, 0.9, 0.9),
             Word("27", 0.9, 1.1, 0.6), Word("8", 1.1, 1.3, 0.6), Word("投诉", 1.3, 1.7, 0.9))
    fixed, (c,) = correct_hotlines(Segment(0.0, 1.7, "我要打12278投诉", words), first_seq=3)
    assert fixed.text == "".join(w.text for w in fixed.words) == "我要打12378投诉"
    assert [(w.start, w.end) for w in fixed.words] == [(w.start, w.end) for w in words]
    assert (c.seq, c.original, c.corrected, c.kind, c.start, c.end) == (3, "12278", "12378", "hotline", 0.6, 1.3)


def test_the_stored_zh_1001_b_run_gets_the_regulators_hotline():
    transcript, _ = load_recognition(RECOGNITION / "zh-1001-b.json")
    fixed, found = correct_transcript(transcript)
    hotline_fixes = [c for c in found if c.kind == "hotline"]
    # Whatever digits this CPU's run wrote, the hotline is there after correction, and every
    # hotline correction wrote a known hotline over a different number.
    assert "12378" in fixed.text
    assert all(c.corrected in known_hotlines() and c.original != c.corrected for c in hotline_fixes)
    assert [c.seq for c in found] == list(range(len(found)))
    result = replay_call("zh-1001-b")
    assert {"media_threat", "regulator_threat"} <= set(result.escalation.flags)
