"""Alerts on replayed sample calls (stored recognition, real audio, real DuckDB), delivered to real
receivers on 127.0.0.1: an HTTP server in a thread and aiosmtpd, up, down, failing then recovering."""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from pipeline.config.settings import Settings
from pipeline.outputs.alerts import (
    STALE_CLAIM,
    EmailChannel,
    WebhookChannel,
    alerts_for_call,
    channels_from_settings,
    deadline_alert,
    deliver_due,
    raise_and_deliver,
    record_alerts,
)
from pipeline.store import Store, utcnow
from tests.receivers import Mailbox, Webhook, free_port

T0 = datetime(2026, 11, 20, 9, 0, 0)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    from evaluation.recognition import replay_db

    return replay_db(tmp_path_factory.mktemp("replay") / "calls.duckdb")


@pytest.fixture
def store(replayed, tmp_path):
    path = tmp_path / "calls.duckdb"
    shutil.copy2(replayed, path)
    with Store(path) as s:
        yield s


def statuses(store) -> dict[str, tuple[str, int]]:
    rows = store.query("SELECT delivery_id, status, attempts FROM alert_deliveries").itertuples()
    return {r.delivery_id: (r.status, r.attempts) for r in rows}


def raise_for(store, call_id, channels, now=T0, kinds=None):
    """Record a call's alerts (only `kinds`, when given: delivery tests want one alert)."""
    alerts = [a for a in alerts_for_call(store, call_id, now) if kinds is None or a.kind in kinds]
    return record_alerts(store, alerts, channels)


ONE = {"regulator_threat"}  # zh-1001-b raises a regulator and a media alert; one is enough to test delivery


def test_threat_calls_raise_one_alert_per_kind_quoting_the_customer(store):
    zh = alerts_for_call(store, "zh-1001-b", T0)
    assert sorted(a.kind for a in zh) == ["media_threat", "regulator_threat"]  # 媒体曝光 restored by the vocabulary
    alert = next(a for a in zh if a.kind == "regulator_threat")
    assert alert.customer_id == "C1001" and alert.case_id == "K-2026-1101" and alert.agent_id == "A017"
    assert "监管" in alert.evidence and 20 < alert.evidence_time < 28  # the customer's 金融监管总局 turn
    assert {a.kind for a in alerts_for_call(store, "en-2002", T0)} == {"legal_threat", "regulator_threat"}
    # The policy's threat flags decide which flags alert (a bank may drop one, or add its own).
    assert {a.kind for a in alerts_for_call(store, "en-2002", T0, threats=("regulator_threat",))} == {"regulator_threat"}
    assert "lawyer" in next(a for a in alerts_for_call(store, "en-2002", T0) if a.kind == "legal_threat").evidence
    assert alerts_for_call(store, "zh-1001-a", T0) == [] and alerts_for_call(store, "en-2001", T0) == []
    assert alerts_for_call(store, "no-such-call", T0) == []


def test_a_rerun_never_duplicates_alerts_or_deliveries(store):
    channels = [WebhookChannel("http://127.0.0.1:9/x")]
    assert len(raise_for(store, "en-2002", channels)) == 2
    assert raise_for(store, "en-2002", channels, now=T0 + timedelta(hours=5)) == []  # same ids
    assert store.query("SELECT count(*) n FROM alerts").n[0] == 2
    assert store.query("SELECT count(*) n FROM alert_deliveries").n[0] == 2


def test_deadline_alert_fires_within_the_lead_time_and_masks_the_quote():
    shanghai = ZoneInfo("Asia/Shanghai")
    due = datetime(2026, 11, 20, 17, 0, tzinfo=shanghai)  # 09:00 UTC
    text = "今天下午五点之前把卡号6222 0210 1234 5678的钱退回来"
    kw = dict(lead=timedelta(hours=2))
    assert deadline_alert("C1001", "zh-1001-b", due, text, now=datetime(2026, 11, 20, 6, 30), **kw) is None
    soon = deadline_alert("C1001", "zh-1001-b", due, text, now=datetime(2026, 11, 20, 7, 30), **kw)
    assert soon.kind == "deadline_due" and soon.due_at == datetime(2026, 11, 20, 9, 0)
    assert "0210 1234" not in soon.evidence and "6222" not in soon.evidence and "五点" in soon.evidence
    passed = deadline_alert("C1001", "zh-1001-b", due, text, now=datetime(2026, 11, 20, 10, 0), **kw)
    assert passed is not None and passed.alert_id == soon.alert_id  # one alert per deadline, however often checked
    other = deadline_alert("C1001", "zh-1001-b", due + timedelta(days=1), text, now=datetime(2026, 11, 21, 8), **kw)
    assert other.alert_id != soon.alert_id


def test_deadline_alert_is_stored_and_delivered(store):
    hook = Webhook()
    try:
        due = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
        alert = deadline_alert("C1001", "zh-1001-b", due, "今天下午五点之前", now=T0, lead=timedelta(hours=2))
        record_alerts(store, [alert], [WebhookChannel(hook.url)])
        assert deliver_due(store, [WebhookChannel(hook.url)], now=T0).delivered == 1
        (headers, body), = hook.received
        assert body["kind"] == "deadline_due" and body["due_at"].startswith("2026-11-20T09:00")
    finally:
        hook.close()


def test_webhook_delivery_carries_the_idempotency_key_and_goes_out_once(store):
    hook = Webhook()
    try:
        channels = [WebhookChannel(hook.url)]
        raise_for(store, "zh-1001-b", channels, kinds=ONE)
        report = deliver_due(store, channels, now=T0)
        assert (report.delivered, report.failed, report.pending) == (1, 0, 0)
        (headers, body), = hook.received
        assert headers["Idempotency-Key"] == body["idempotency_key"]
        assert body["kind"] == "regulator_threat" and body["customer_id"] == "C1001" and "监管" in body["evidence"]
        for later in (T0, T0 + timedelta(hours=2)):
            assert deliver_due(store, channels, now=later).delivered == 0
        raise_for(store, "zh-1001-b", channels, now=T0 + timedelta(hours=3), kinds=ONE)  # a reprocessing pass
        deliver_due(store, channels, now=T0 + timedelta(hours=3))
        assert len(hook.received) == 1
    finally:
        hook.close()


def test_webhook_down_is_retried_with_backoff_never_lost_never_sent_twice(store):
    port = free_port()  # nothing listens here yet
    channels = [WebhookChannel(f"http://127.0.0.1:{port}/alerts", timeout=2)]
    raise_for(store, "en-2002", channels)
    first = deliver_due(store, channels, now=T0, retry_seconds=30)
    assert (first.delivered, first.failed, first.pending) == (0, 2, 2) and "refused" in first.errors[0].lower()
    assert set(statuses(store).values()) == {("pending", 1)}
    assert deliver_due(store, channels, now=T0 + timedelta(seconds=10)).failed == 0  # backing off: not yet
    second = deliver_due(store, channels, now=T0 + timedelta(seconds=31), retry_seconds=30)
    assert second.failed == 2 and set(statuses(store).values()) == {("pending", 2)}
    nxt = store.query("SELECT min(next_attempt_at) t FROM alert_deliveries").t[0]
    assert nxt.to_pydatetime() == T0 + timedelta(seconds=31 + 60)  # doubled
    hook = Webhook(port=port)  # the receiver comes back
    try:
        assert deliver_due(store, channels, now=T0 + timedelta(minutes=5)).delivered == 2
        assert deliver_due(store, channels, now=T0 + timedelta(hours=1)).delivered == 0
        assert sorted(b["kind"] for _, b in hook.received) == ["legal_threat", "regulator_threat"]
        assert set(statuses(store).values()) == {("delivered", 3)}
    finally:
        hook.close()


def test_webhook_that_fails_then_recovers(store):
    hook = Webhook(fail_first=2)
    try:
        channels = [WebhookChannel(hook.url)]
        raise_for(store, "zh-1001-b", channels, kinds=ONE)
        now = T0
        for expected in (0, 0, 1):
            assert deliver_due(store, channels, now=now, retry_seconds=1).delivered == expected
            now += timedelta(minutes=1)
        assert hook.refused == 2 and len(hook.received) == 1
        (row,) = store.query("SELECT status, attempts, last_error FROM alert_deliveries").itertuples()
        assert (row.status, row.attempts, row.last_error) == ("delivered", 3, None)
    finally:
        hook.close()


def test_email_down_then_failing_then_delivered_once(store):
    port = free_port()
    channel = EmailChannel("127.0.0.1", port, "callbrief@bank.test", ("risk@bank.test",), timeout=2)
    raise_for(store, "zh-1001-b", [channel], kinds=ONE)
    assert deliver_due(store, [channel], now=T0).failed == 1  # nobody listening
    box = Mailbox(port, fail_first=1)
    try:
        assert deliver_due(store, [channel], now=T0 + timedelta(minutes=5)).failed == 1  # 451
        assert deliver_due(store, [channel], now=T0 + timedelta(minutes=10)).delivered == 1
        assert deliver_due(store, [channel], now=T0 + timedelta(minutes=20)).delivered == 0
        (msg,) = box.messages
        key = next(iter(statuses(store)))
        assert msg["X-Idempotency-Key"] == key and msg["Message-ID"] == f"<{key}@callbrief>"
        assert "C1001" in msg["Subject"] and "监管" in msg.get_payload(decode=True).decode("utf-8")
    finally:
        box.close()


def test_one_channel_down_does_not_hold_up_the_other(store):
    port = free_port()
    box = Mailbox(port)
    try:
        settings = Settings(alert_webhook_url=f"http://127.0.0.1:{free_port()}/down", smtp_host="127.0.0.1",
                            smtp_port=port, smtp_to="risk@bank.test, duty@bank.test")
        assert [c.name for c in channels_from_settings(settings)] == ["webhook", "email"]
        report = raise_and_deliver(store, ["zh-1001-a", "zh-1001-b"], settings, now=T0 + timedelta(hours=5))
        assert (report.delivered, report.failed, report.pending) == (2, 2, 2)  # zh-1001-b: regulator + media
        assert len(box.messages) == 2 and box.messages[0]["To"] == "risk@bank.test, duty@bank.test"
    finally:
        box.close()


def test_a_fresh_claim_by_another_pass_is_respected_and_a_stale_one_taken_over(store):
    hook = Webhook()
    try:
        channels = [WebhookChannel(hook.url)]
        raise_for(store, "zh-1001-b", channels, kinds=ONE)
        # Another process claimed the row and is sending it right now.
        store.execute("UPDATE alert_deliveries SET status = 'sending', claimed_at = ?", [T0])
        assert deliver_due(store, channels, now=T0 + timedelta(minutes=1)).delivered == 0
        assert hook.received == []
        # That process died: after the claim goes stale the row is sent (receivers dedupe on the key).
        assert deliver_due(store, channels, now=T0 + STALE_CLAIM + timedelta(minutes=1)).delivered == 1
        assert len(hook.received) == 1
    finally:
        hook.close()


def test_no_channel_configured_still_records_the_alert(store):
    report = raise_and_deliver(store, ["zh-1001-b"], Settings(), now=utcnow())
    assert report.pending == 0 and store.query("SELECT count(*) n FROM alerts").n[0] == 2


def test_the_customers_17_00_deadline_alerts_on_the_pass_two_hours_before_it(store):
    """zh-1001-b (started 16:40 Beijing) sets 今天下午五点之前: due 17:00 Beijing = 09:00 UTC."""
    from pipeline.outputs.alerts import deadline_alerts

    settings = Settings(timezone="Asia/Shanghai")
    assert deadline_alerts(store, settings, now=datetime(2026, 11, 20, 6, 59)) == []  # more than 2 h before
    (soon,) = deadline_alerts(store, settings, now=datetime(2026, 11, 20, 8, 45))
    assert (soon.kind, soon.call_id, soon.customer_id, soon.case_id) == ("deadline_due", "zh-1001-b", "C1001",
                                                                          "K-2026-1101")
    assert soon.due_at == datetime(2026, 11, 20, 9, 0) and "五点" in soon.evidence and soon.evidence_time > 30
    assert deadline_alerts(store, settings, now=datetime(2026, 11, 20, 12, 0)) == []  # long passed: briefing's job
    hook = Webhook()
    try:
        with_hook = Settings(timezone="Asia/Shanghai", alert_webhook_url=hook.url)
        for minute in (45, 50):  # two passes: one alert, sent once
            raise_and_deliver(store, [], with_hook, now=datetime(2026, 11, 20, 8, minute))
        (_, body), = hook.received
        assert body["kind"] == "deadline_due" and body["due_at"] == "2026-11-20T09:00:00"
    finally:
        hook.close()
