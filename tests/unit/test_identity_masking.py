"""Dates of birth, addresses and names given for identity checks are masked, in Mandarin and
English, when the customer announces them or answers the agent's question for them; the same
kinds of words said for other reasons stay (issue 24, part 5). Planted values, as for numbers."""
from __future__ import annotations

import pytest

from pipeline.analysis.redact import redact, redact_turns
from pipeline.records import Turn
from tests.pii import recover_digits


def call(*lines: tuple[str, str]) -> list[Turn]:
    """Turns, agent and customer by turns of 4 s."""
    return [Turn(role, "A" if role == "agent" else "C", i * 4.0, i * 4.0 + 3.5, text)
            for i, (role, text) in enumerate(lines)]


ANSWERS = [  # (agent's question, customer's answer, planted values that must go)
    ("Can you confirm your date of birth and the first line of your address?",
     "Sure, it is the fourth of March, nineteen eighty six, and twelve Station Road.",
     ["fourth of March", "nineteen eighty six", "twelve Station Road"]),
    ("Before I look into it, can I have your full name please?", "Yes, it's Anna Smith.", ["Anna", "Smith"]),
    ("What is your date of birth?", "It's the 4th of March 1986.", ["4th", "1986"]),
    ("And your address?", "Flat 3, 27 Queen Street, London SW1A 1AA.", ["27 Queen Street", "SW1A 1AA"]),
    ("请问您的姓名？", "我叫张伟。", ["张伟"]),
    ("请问您的出生日期？", "一九八六年三月四日。", ["一九八六", "三月四日"]),
    ("请问您的住址是哪里？", "我住在北京市朝阳区建国路八十八号三号楼二单元五零一室。", ["建国路", "八十八号", "五零一"]),
    ("怎么称呼您？", "我姓王，叫王芳。", ["王芳"]),
]


@pytest.mark.parametrize("question, answer, planted", ANSWERS)
def test_an_answer_to_an_identity_question_is_masked(question, answer, planted):
    masked = redact_turns(call(("agent", question), ("customer", answer)))
    assert masked[0] == question  # the question stays
    assert not [p for p in planted if p in masked[1]], masked[1]
    assert "[" in masked[1]


ANNOUNCED = [
    ("Hi, my name is Anna Smith and I live at 12 Station Road, Leeds.", ["Anna", "Smith", "12 Station Road"]),
    ("I was born on March 4th, 1986, and my address is flat 3, 27 Queen Street.", ["March 4th", "1986", "27 Queen"]),
    ("我叫张伟，我的出生日期是一九八六年三月四日，住在阳光花园五栋。", ["张伟", "一九八六", "阳光花园"]),
    ("我的生日是1986年3月4日。", ["1986"]),
]


@pytest.mark.parametrize("text, planted", ANNOUNCED)
def test_a_value_the_customer_announces_is_masked(text, planted):
    masked = redact(text)
    assert not [p for p in planted if p in masked], masked


KEPT = [  # dates, places and names said for other reasons: what a handler needs
    "I made a transfer on the 4th of March and it has not arrived.",
    "I went to the branch on Station Road and they sent me away.",
    "我昨天下午三点去了建国路的网点。",
    "好的，那我们三月四号之前给您答复。",
    "My landlord Mr Jones is threatening to evict me.",
]


@pytest.mark.parametrize("text", KEPT)
def test_dates_places_and_names_said_for_other_reasons_stay(text):
    assert redact(text) == text
    assert redact_turns(call(("agent", "How can I help you today?"), ("customer", text)))[1] == text


def test_the_agents_own_name_stays_and_a_late_answer_is_not_read_as_one():
    turns = call(("agent", "Thank you for calling Harbour Bank, my name is Emma."),
                 ("customer", "Hi Emma, my name is Anna Smith."))
    masked = redact_turns(turns)
    assert "Emma" in masked[0] and "Anna" not in masked[1] and "Smith" not in masked[1]
    late = [Turn("agent", "A", 0.0, 3.0, "What is your date of birth?"),
            Turn("customer", "C", 80.0, 83.0, "The payment on the 4th of March 2026 failed.")]
    assert "4th of March" in redact_turns(late)[1]  # a minute later, not an answer


def test_masking_twice_changes_nothing_and_digits_stay_masked():
    once = redact_turns(call(("agent", "Your date of birth please?"), ("customer", "It is 04/03/1986.")))
    assert recover_digits(once[1]) == ""
    assert redact(once[1]) == once[1]
