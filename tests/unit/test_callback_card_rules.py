"""The callback scorecard's prefill on the team's written conversations (tests/eval/
callback_conversations.json, masked and placed in time as the evaluation does): every pass rests
on a quote of the call at its time, "no evidence" where the recording lacks the part, n/a when the
customer was not reached, and what a reviewer sees is masked."""
from __future__ import annotations

import json

import pytest

from evaluation.eval_callback_card import callbacks, timed_turns
from pipeline.outputs.callback_card import NO_EVIDENCE, callback_items, prefill_callback

CALLS = {c["id"]: c for c in callbacks()}


def card(call_id: str) -> dict[str, dict]:
    return {a["item"]: a for a in prefill_callback(timed_turns(CALLS[call_id]))}


def test_every_pass_rests_on_a_quote_of_the_call_at_its_time():
    n_pass = 0
    for call_id, call in CALLS.items():
        turns = timed_turns(call)
        starts = {round(t.start, 2): t.text for t in turns}
        for answer in prefill_callback(turns):
            assert answer["card"] == "callback" and answer["prefill"] in ("pass", "fail", "n/a", NO_EVIDENCE)
            if answer["prefill"] != "pass":
                continue
            n_pass += 1
            support = [e for e in answer["evidence"] if e["counts"] == "for"]
            assert support, (call_id, answer["item"])
            for e in support:  # the quote is in the turn that starts at the quoted time
                assert e["quote"] in starts[e["time"]], (call_id, answer["item"], e)
    assert n_pass > 40  # most items of the good callbacks pass: the check above is not vacuous


def test_a_model_callback_passes_every_item_and_a_poor_one_fails_them():
    good, poor = card("cb-zh-01"), card("cb-zh-02")
    assert {i: a["prefill"] for i, a in good.items()} == {i["id"]: "pass" for i in callback_items()}
    assert [i for i, a in poor.items() if a["prefill"] == "pass"] == ["cb_result_explained"]
    # The casual guarantee is quoted, told apart from the safe phrasing of the good call.
    assert "明天一定给你办好" in poor["cb_safe_deadline"]["evidence"][0]["quote"]
    assert any("以后台处理结果为准" in e["quote"] for e in good["cb_safe_deadline"]["evidence"])
    # Blaming the system, the rules and a branch colleague.
    blamed = " ".join(e["quote"] for e in poor["cb_no_blame"]["evidence"])
    assert "上面的规定就是这样" in blamed and "同事没跟你讲清楚" in blamed


def test_next_step_needs_how_and_when_from_the_bank():
    assert card("cb-zh-05")["cb_next_step"]["prefill"] == "pass"  # SMS within two working days
    vague = card("cb-zh-09")["cb_next_step"]  # "有结果了我们会通知您的": no channel, no time
    assert vague["prefill"] == "fail" and "会通知您" in vague["evidence"][0]["quote"]
    own_action = card("cb-en-02")["cb_next_step"]  # "Just check your statement."
    assert own_action["prefill"] == "fail" and "check your statement" in own_action["evidence"][0]["quote"]
    # The opening's "给您回个电话" about this call is no next contact, though it has a date and a channel.
    assert not any("反映" in e["quote"] for e in card("cb-zh-01")["cb_next_step"]["evidence"])


@pytest.mark.parametrize("call_id", ["cb-en-04", "cb-zh-04", "cb-zh-08"])
def test_a_call_that_did_not_reach_the_customer_is_na_throughout_with_the_reason(call_id):
    answers = card(call_id)
    assert {a["prefill"] for a in answers.values()} == {"n/a"}
    assert all(a["evidence"] and a["evidence"][0]["role"] == "customer" for a in answers.values())


def test_no_evidence_rather_than_a_pass():
    # The recording starts mid-call ("...so, as I was saying"): the opening cannot be judged.
    mid = card("cb-en-03")
    assert mid["cb_intro_and_reason"]["prefill"] == NO_EVIDENCE and mid["cb_verify_identity"]["prefill"] == NO_EVIDENCE
    # Neither an apology nor a deflection anywhere: no_blame is not a pass.
    quiet = card("cb-zh-07")["cb_no_blame"]
    assert quiet["prefill"] == NO_EVIDENCE and quiet["evidence"] == [] and quiet["note"]
    # The same call with its last agent turns removed before the thanks and the question: cut, so
    # the closing items are "no evidence", while a complete call without them fails.
    call = dict(CALLS["cb-zh-01"])
    call["turns"] = call["turns"][:11] + [{"role": "agent", "text": "我这边再跟您确认一下——"}]
    cut = {a["item"]: a for a in prefill_callback(timed_turns(call))}
    assert cut["cb_thanks_feedback"]["prefill"] == NO_EVIDENCE and cut["cb_confirm_resolution"]["prefill"] == NO_EVIDENCE
    assert card("cb-zh-02")["cb_thanks_feedback"]["prefill"] == "fail"


def test_quotes_are_masked():
    # Planted digits a reviewer must not see: the staff number read out in the quoted introduction
    # (cb-en-01). (A card's last four digits stay visible by the masker's design.)
    shown = json.dumps(prefill_callback(timed_turns(CALLS["cb-en-01"])), ensure_ascii=False)
    assert "staff number" in shown and "70418" not in shown
