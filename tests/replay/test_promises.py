"""Follow-ups the bank promised (issue 25, item 3): an agent's promise with a time and a channel
("今天下午六点前给您回电话", "we'll text you in ten minutes") is a due item with its channel; one
about to be missed raises an alert through the outbox, unless a callback reached the customer
first. On the team's written conversations (tests/eval/callback_conversations.json) stored as calls
in a real DuckDB file, alerts delivered to a real local webhook."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from evaluation.eval_callback_card import timed_turns
from pipeline.analysis.facts import Utterance, extract_facts
from pipeline.config.settings import Settings
from pipeline.outputs.alerts import PROMISE_KIND, promise_alerts, raise_and_deliver
from pipeline.outputs.briefing import build_briefing
from pipeline.store import Store
from tests.receivers import Webhook

CONVERSATIONS = Path(__file__).resolve().parents[1] / "eval" / "callback_conversations.json"
CALLS = {c["id"]: c for c in json.loads(CONVERSATIONS.read_text(encoding="utf-8"))["calls"]}
STORED = ("in-zh-02", "cb-zh-02", "cb-zh-03")  # a phone follow-up by 18:00; a flat promise; a letter and a call
TZ = Settings(timezone="Asia/Shanghai").tz

# Hand-labelled: the channel of every agent promise with a time in the 20 conversations (None: it
# names no way of getting back, e.g. money "by Friday").
CHANNELS = {
    "We aim to credit it within five working days": None,
    "I'll send you a text message by 5 pm this Friday": "sms",
    "It'll definitely be back on your card by Friday": None,
    "We aim to email it to you within three working days": "email",
    "We aim to complete the review within ten working days": None,
    "11月30号下午五点前我会再给您打一个电话": "phone",
    "明天一定给你办好": None,
    "12月4号之前给您一个书面的处理方案": "letter",
    "我都会给您打电话同步一次进度": "phone",
    "两个工作日内给您发短信": "sms",
    "明天一定到": None,
    "they'll call you back within two hours": "phone",
    "24小时内给您回电话": "phone",
    "今天下午六点前给您回电话": "phone",
    "send you a text in the next ten minutes": "sms",
}


def agent_deadlines(conv: dict):
    start = datetime.fromisoformat(conv["started_at"]).astimezone(TZ)
    said = [Utterance(t.role, t.start, t.text, conv["language"]) for t in timed_turns(conv)]
    return [d for d in extract_facts(conv["id"], said, conv["language"], start)[1] if d.role == "agent"]


def test_every_promise_with_a_time_gets_the_channel_it_names():
    found = {d.text: d.channel for conv in CALLS.values() for d in agent_deadlines(conv)}
    assert len(found) == len(CHANNELS)
    for words, channel in CHANNELS.items():
        (text,) = [t for t in found if words in t]
        assert found[text] == channel, (text, found[text])


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "promises.duckdb") as s:
        calls, turns = [], []
        for n, call_id in enumerate(STORED):
            conv = CALLS[call_id]
            timed = timed_turns(conv)
            started = datetime.fromisoformat(conv["started_at"]).astimezone(TZ).replace(tzinfo=None)  # centre time
            calls.append({"call_id": call_id, "customer_id": f"K{n}", "case_id": f"case-{n}", "agent_id": "A1",
                          "status": "ok", "started_at": started, "language": conv["language"],
                          "duration": timed[-1].end, "direction": conv["direction"]})
            turns += [{"call_id": call_id, "seq": i, "role": t.role, "speaker": t.role, "start": t.start, "end": t.end,
                       "text": raw["text"], "redacted_text": t.text} for i, (t, raw) in enumerate(zip(timed, conv["turns"]))]
        s.insert_rows("calls", calls)
        s.insert_rows("turns", turns)
        yield s


def _due_utc(call_id: str, words: str) -> datetime:
    (d,) = [d for d in agent_deadlines(CALLS[call_id]) if words in d.text]
    return d.due.astimezone(timezone.utc).replace(tzinfo=None)


def test_a_follow_up_about_to_be_missed_alerts_with_its_channel(store):
    settings = Settings(timezone="Asia/Shanghai")
    due = _due_utc("in-zh-02", "六点前")  # 18:00 Beijing on the call's day
    assert promise_alerts(store, settings, now=due - timedelta(hours=3)) == []  # not yet within 2 h
    (alert,) = [a for a in promise_alerts(store, settings, now=due - timedelta(minutes=90)) if a.call_id == "in-zh-02"]
    assert (alert.kind, alert.contact_channel, alert.customer_id, alert.case_id, alert.due_at) == \
        (PROMISE_KIND, "phone", "K0", "case-0", due)
    assert "六点前" in alert.evidence and alert.evidence_time > 0
    assert alert.label("zh") == "银行承诺的跟进即将到期（电话）" and alert.label() == "A follow-up the bank promised is due (phone call)"
    # A promise with a time but no way of getting back ("明天一定给你办好") is the briefing's, not an alert.
    flat = _due_utc("cb-zh-02", "明天一定给你办好")
    assert not [a for a in promise_alerts(store, settings, now=flat - timedelta(minutes=30)) if a.call_id == "cb-zh-02"]


def test_a_callback_that_reached_the_customer_in_time_keeps_the_promise(store):
    settings = Settings(timezone="Asia/Shanghai")
    due = _due_utc("in-zh-02", "六点前")
    store.insert_rows("callbacks", [{"customer_id": "K0", "done_at": due - timedelta(hours=2), "handler": "hana",
                                     "outcome": "no_answer", "note": ""}])
    assert [a.call_id for a in promise_alerts(store, settings, now=due - timedelta(minutes=30))] == ["in-zh-02"]
    store.insert_rows("callbacks", [{"customer_id": "K0", "done_at": due - timedelta(hours=1), "handler": "hana",
                                     "outcome": "follow_up", "note": ""}])
    assert promise_alerts(store, settings, now=due - timedelta(minutes=30)) == []


def test_the_alert_is_delivered_once_and_the_briefing_lists_the_follow_up(store):
    due = _due_utc("cb-zh-03", "打电话同步一次进度")  # 11月27号下午五点前 (the letter is due later)
    hook = Webhook()
    try:
        settings = Settings(timezone="Asia/Shanghai", alert_webhook_url=hook.url)
        for minutes in (100, 90):  # two passes: one alert, sent once
            raise_and_deliver(store, [], settings, now=due - timedelta(minutes=minutes))
        bodies = [b for _, b in hook.received if b["kind"] == PROMISE_KIND]
        assert len(bodies) == 1 and bodies[0]["contact_channel"] == "phone" and bodies[0]["call_id"] == "cb-zh-03"
        assert bodies[0]["label_zh"] == "银行承诺的跟进即将到期（电话）"
    finally:
        hook.close()
    brief = build_briefing(store, "K2", now=(due - timedelta(minutes=90)).replace(tzinfo=timezone.utc), settings=settings)
    follow_ups = {p["channel"]: p for p in brief.promises if p["channel"]}
    assert set(follow_ups) == {"phone", "letter"}
    assert follow_ups["phone"]["due"].startswith("2026-11-27T17:00") and follow_ups["phone"]["due_status"] == "open"
