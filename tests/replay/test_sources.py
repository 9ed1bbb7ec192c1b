"""Sources and channels through the real stages and a real DuckDB file: the replayed sample calls
(stored recognition, real audio) store which authority each threat named, with its masked quote
and time; the threat alerts name it and reach a real webhook on 127.0.0.1 saying so; a rerun
duplicates nothing; the briefing and the worklist show it; where the complaint came in is stored
(phone unless the manifest says)."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from evaluation.recognition import replay_call, stored_ids
from pipeline.config.settings import Settings
from pipeline.intake.ingest import discover
from pipeline.outputs.alerts import WebhookChannel, alerts_for_call, deliver_due, record_alerts
from pipeline.outputs.briefing import build_briefing, to_markdown
from pipeline.run.execute import refresh_briefings, write_result
from pipeline.store import Store
from tests.dbfile import query
from tests.receivers import Webhook
from web.store import worklist

T0 = datetime(2026, 11, 20, 9, 0, 0)
NOW = datetime(2026, 11, 20, 7, 0, tzinfo=timezone.utc)  # 15:00 in the centre: C1001 and C2002 still waiting


@pytest.fixture(scope="module")
def calls() -> dict:
    return {c: replay_call(c) for c in stored_ids()}


@pytest.fixture
def db(tmp_path, calls):
    results = list(calls.values())
    # zh-1001-b's complaint came to the bank through the regulator (the manifest's source column says so).
    b = results[[r.call_id for r in results].index("zh-1001-b")]
    results[results.index(b)] = replace(b, recording=replace(b.recording, metadata=replace(
        b.recording.metadata, complaint_source="regulator_referral")))
    path = tmp_path / "calls.duckdb"
    with Store(path) as store:
        for result in results:
            write_result(store, result)
        refresh_briefings(store, results)
    return path


def test_the_authority_named_is_stored_with_its_masked_quote_and_time(db):
    stored = {c: json.loads(s) for c, s in query(db, "SELECT call_id, sources FROM escalation")}
    assert stored["en-2001"] == [] and stored["zh-1001-a"] == []
    zh = {s["source"]: s for s in stored["zh-1001-b"]}
    # 我要打幺二三七八找金融监管总局: the banking regulator's hotline, not just "a regulator"; 找媒体曝光: the press.
    assert set(zh) == {"nfra_12378", "media"}
    assert zh["nfra_12378"]["category"] == "regulator_threat" and "金融监管总局" in zh["nfra_12378"]["quote"]
    assert 20 < zh["nfra_12378"]["time"] < 28 and 33 < zh["media"]["time"] < 40
    en = {s["source"]: s for s in stored["en-2002"]}
    assert set(en) == {"ombudsman", "lawyer"} and "ombudsman" in en["ombudsman"]["quote"]
    assert {s["role"] for s in stored["en-2002"] + stored["zh-1001-b"]} == {"customer"}
    # The three flags are as they were.
    assert json.loads(query(db, "SELECT flags FROM escalation WHERE call_id = 'zh-1001-b'")[0][0]) == [
        "media_threat", "regulator_threat"]


def test_where_the_complaint_came_in_is_stored_phone_unless_the_manifest_says(db):
    assert dict(query(db, "SELECT call_id, complaint_source FROM calls")) == {
        "en-2001": "phone", "en-2002": "phone", "zh-1001-a": "phone", "zh-1001-b": "regulator_referral"}


def test_alerts_name_the_authority_and_a_rerun_duplicates_nothing(db, calls):
    hook = Webhook()
    try:
        channels = [WebhookChannel(hook.url)]
        with Store(db) as store:
            alerts = {a.kind: a for a in alerts_for_call(store, "zh-1001-b", T0)}
            assert alerts["regulator_threat"].sources == ("nfra_12378",) and alerts["media_threat"].sources == ("media",)
            assert len(record_alerts(store, list(alerts.values()), channels)) == 2
            assert deliver_due(store, channels, now=T0).delivered == 2
            # Processed again (a rerun of the call), then alerted again: nothing new is raised or sent.
            write_result(store, calls["zh-1001-b"])
            assert record_alerts(store, alerts_for_call(store, "zh-1001-b", T0), channels) == []
            assert deliver_due(store, channels, now=T0).delivered == 0
        bodies = {body["kind"]: body for _, body in hook.received}
        assert len(hook.received) == 2
        assert bodies["regulator_threat"]["label_zh"] == "客户扬言拨打12378向金融监管总局投诉"
        assert "12378" in bodies["regulator_threat"]["label"] and bodies["regulator_threat"]["sources"] == ["nfra_12378"]
        assert bodies["media_threat"]["label_zh"] == "客户扬言找媒体曝光"
        assert query(db, "SELECT count(*) FROM alerts WHERE call_id = 'zh-1001-b'") == [(2,)]
        en = {a.kind: a for a in alerts_for_call(Store(db, read_only=True), "en-2002", T0)}
        assert "Ombudsman" in en["regulator_threat"].payload("x")["label"]
        assert "lawyer" in en["legal_threat"].payload("x")["label"]
    finally:
        hook.close()


def test_an_alert_stored_before_sources_existed_still_goes_out_under_its_kinds_label(db):
    hook = Webhook()
    try:
        with Store(db) as store:
            (alert,) = [a for a in alerts_for_call(store, "en-2002", T0) if a.kind == "legal_threat"]
            record_alerts(store, [replace(alert, sources=())], [WebhookChannel(hook.url)])
            assert deliver_due(store, [WebhookChannel(hook.url)], now=T0).delivered == 1
        (_, body), = hook.received
        assert body["label"] == "Customer threatens legal action" and body["sources"] == []
    finally:
        hook.close()


def test_the_briefing_and_the_worklist_show_which_authority(db):
    with Store(db) as store:
        zh = build_briefing(store, "C1001", NOW)
        en = build_briefing(store, "C2002", NOW)
    assert zh.sources == ["nfra_12378", "media"] and en.sources == ["ombudsman", "lawyer"]
    assert "扬言向金融监管总局(12378)投诉" in to_markdown(zh)
    assert "threatens the ombudsman" in to_markdown(en)
    assert [c["complaint_source"] for c in zh.calls] == ["regulator_referral", "phone"]
    settings = Settings()
    with Store(db, read_only=True).reading() as conn:
        items = {i["customer_id"]: i for i in worklist(conn, settings.tz, settings.callback_target_minutes, NOW)}
    assert items["C1001"]["sources"] == ["nfra_12378", "media"] and items["C2002"]["sources"] == ["ombudsman", "lawyer"]


def test_the_intake_takes_the_manifests_source_and_holds_back_a_bad_rows_recording(tmp_path):
    samples = Path(__file__).resolve().parents[2] / "data" / "samples"
    for name in ("en-2001.mp3", "en-2002.ogg", "zh-1001-a.wav"):
        (tmp_path / name).write_bytes((samples / name).read_bytes())
    (tmp_path / "manifest.csv").write_text("call_id,file,customer_id,source\n"
                                           "a,en-2001.mp3,C2001,branch\n"
                                           "b,en-2002.ogg,C2002,12378\n"
                                           "c,zh-1001-a.wav,C1001,\n", encoding="utf-8")
    found = discover(tmp_path)
    assert [(r.call_id, r.metadata.complaint_source) for r in found.recordings] == [("a", "branch"), ("c", None)]
    assert [str(r) for r in found.rejected if r.field == "source"] == [
        "manifest.csv line 3, source: '12378' is not one of phone, branch, online, regulator_referral, other "
        "(where the complaint came in; leave it empty for a phone call)"]
