"""Continuous intake on a real folder and a real DuckDB file: a recording dropped in (written in
pieces, as an upload would) is processed once complete, within the 5-minute bound, with its
briefing and an alert delivered to a real webhook on 127.0.0.1."""
from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from pipeline.config.settings import Settings
from pipeline.run.watch import intake_pass, is_complete, scan, watch
from pipeline.store import Store, utcnow
from tests.receivers import Webhook

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
MANIFEST_HEADER = "call_id,file,customer_id,agent_id,case_id,started_at,channel_layout,agent_channel\n"
BOUND_S = 300  # each new recording processed within 5 minutes of its arrival


def test_scan_waits_for_a_complete_file_and_skips_what_is_processed(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    audio = folder / "a.wav"
    shutil.copyfile(SAMPLES / "zh-1001-a.wav", audio)
    now = time.time()
    assert not is_complete(audio, 5, now) and is_complete(audio, 5, now + 6)
    with Store(tmp_path / "db.duckdb") as store:
        assert scan(folder, store, 5, now) == ([], [audio.resolve()])  # still arriving
        assert scan(folder, store, 5, now + 6) == ([audio.resolve()], [])
        from pipeline.intake.ingest import sha256_file

        store.insert_rows("calls", [{"call_id": "a", "path": str(audio.resolve()), "sha256": sha256_file(audio),
                                     "status": "ok", "processed_at": utcnow()}])
        later = time.time() + 60
        assert scan(folder, store, 5, later) == ([], [])  # processed after it last changed
        os.utime(audio, (later - 10, later - 10))  # touched, same contents: still nothing to do
        assert scan(folder, store, 5, later) == ([], [])
        with audio.open("ab") as fh:  # contents changed after processing
            fh.write(b"\0" * 64)
        os.utime(audio, (later - 10, later - 10))
        assert scan(folder, store, 5, later) == ([audio.resolve()], [])


def test_a_pass_with_nothing_new_retries_pending_deliveries_without_a_run(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    db = tmp_path / "db.duckdb"
    report = intake_pass(folder, db, Settings())
    assert report.run is None and report.results == () and report.deliveries.pending == 0
    with Store(db) as store:
        assert store.query("SELECT count(*) n FROM runs").n[0] == 0  # an idle pass leaves no trace
    with pytest.raises(FileNotFoundError, match="does not exist"):
        intake_pass(tmp_path / "nowhere", db, Settings())


@pytest.mark.slow
def test_dropped_recording_gets_call_briefing_and_alert_within_five_minutes(tmp_path):
    """Runs Whisper once, on one 42 s call (zh-1001-b: regulator and media threats)."""
    folder, db = tmp_path / "arrivals", tmp_path / "callbrief.duckdb"
    folder.mkdir()
    (folder / "manifest.csv").write_text(
        MANIFEST_HEADER + "zh-1001-b,zh-1001-b.flac,C1001,A017,K-2026-1101,2026-11-20T16:40:00,mono,\n")
    (folder / "broken.wav").write_text("not audio\n" * 100)  # a bad upload must not stop the good one
    hook = Webhook()
    settings = Settings(alert_webhook_url=hook.url, intake_interval_seconds=1, intake_settle_seconds=2)
    reports, stop = [], threading.Event()
    watcher = threading.Thread(target=watch, args=(folder, db, settings), daemon=True,
                               kwargs={"stop": stop, "on_pass": reports.append})
    watcher.start()
    try:
        # The upload arrives in pieces over ~2 s; no pass may take the half-written file.
        data = (SAMPLES / "zh-1001-b.flac").read_bytes()
        target = folder / "zh-1001-b.flac"
        with target.open("wb") as fh:
            for i in range(4):
                fh.write(data[i * len(data) // 4:(i + 1) * len(data) // 4])
                fh.flush()
                time.sleep(0.6)
        arrived = time.monotonic()
        while not hook.received and time.monotonic() - arrived < BOUND_S:
            time.sleep(0.5)
        latency = time.monotonic() - arrived
    finally:
        stop.set()
        watcher.join(timeout=BOUND_S)
        hook.close()
    print(f"\nzh-1001-b: alert delivered {latency:.1f} s after the file was complete")
    assert hook.received, f"no alert within {BOUND_S} s"
    assert latency < BOUND_S
    processed = [r for rep in reports for r in rep.results]
    assert [(r.call_id, r.status) for r in processed if r.call_id == "zh-1001-b"] == [("zh-1001-b", "ok")]
    # The bad upload fails with its reason and never stops the good one (a batch run retries it, up
    # to the run loop's attempt limit).
    broken = {r.call_id for r in processed if r.call_id.startswith("broken")}  # derived id: name + hash
    assert len(broken) == 1 and {r.status for r in processed if r.call_id in broken} == {"failed"}
    headers, body = hook.received[0]
    assert body["call_id"] == "zh-1001-b" and body["customer_id"] == "C1001"
    assert body["kind"] in {"regulator_threat", "media_threat", "legal_threat"}
    assert headers["Idempotency-Key"] == body["idempotency_key"]
    with Store(db) as store:
        call = store.query("SELECT status, processed_at FROM calls WHERE call_id = 'zh-1001-b'").iloc[0]
        assert call.status == "ok"
        assert not store.query("SELECT 1 FROM briefings WHERE customer_id = 'C1001' AND created_at >= ?",
                               [call.processed_at]).empty
        assert store.query("SELECT count(*) n FROM alert_deliveries WHERE status <> 'delivered'").n[0] == 0
        assert store.query("SELECT status FROM calls WHERE call_id = ?", [*broken]).status.tolist() == ["failed"]
    # Passes with nothing new ran no batch (no empty run rows), and each file was processed once.
    assert all(rep.results for rep in reports if rep.run) and len(reports) > sum(1 for rep in reports if rep.run)
    assert {r.call_id for r in processed} == broken | {"zh-1001-b"}


def test_intake_flow_and_cli_deliver_a_pending_alert_from_the_settings_file(prefect_harness, tmp_path, capsys):
    """The thin flow and `callbrief intake --once` read the channels from a settings file and work
    the outbox on a pass with nothing new: an alert whose receiver was down goes out once it is up."""
    from flows.cli import main
    from flows.intake import intake
    from pipeline.outputs.alerts import Alert, WebhookChannel, record_alerts

    folder, db = tmp_path / "arrivals", tmp_path / "callbrief.duckdb"
    folder.mkdir()
    hook = Webhook()
    toml = tmp_path / "callbrief.toml"
    toml.write_text(f'alert_webhook_url = "{hook.url}"\nintake_dir = "{folder}"\nalert_retry_seconds = 0\n')
    alerts = [Alert(alert_id=f"a{i}", kind="media_threat", customer_id="C1", call_id=f"c{i}", case_id=None,
                    agent_id=None, call_started_at=None, evidence_time=1.0, evidence="我就找媒体曝光", due_at=None,
                    raised_at=utcnow()) for i in range(2)]
    try:
        with Store(db) as store:
            record_alerts(store, alerts[:1], [WebhookChannel(hook.url)])
        result = intake(db_path=str(db), settings_path=str(toml))
        assert result["new_files"] == [] and result["alerts_delivered"] == 1 and result["alerts_pending"] == 0
        with Store(db) as store:
            record_alerts(store, alerts[1:], [WebhookChannel(hook.url)])
        assert main(["intake", "--once", "--db", str(db), "--settings", str(toml)]) == 0
        assert "1 delivered, 0 pending" in capsys.readouterr().out
        assert sorted(b["call_id"] for _, b in hook.received) == ["c0", "c1"]  # each once
        assert main(["intake", "--once", "--input", str(tmp_path / "nowhere"), "--db", str(db)]) == 2
        assert "does not exist" in capsys.readouterr().err
    finally:
        hook.close()


def test_a_failing_pass_still_works_the_outbox_and_the_file_is_retried(tmp_path):
    from pipeline.outputs.alerts import Alert, WebhookChannel, record_alerts

    folder, db = tmp_path / "arrivals", tmp_path / "callbrief.duckdb"
    folder.mkdir()
    shutil.copy2(SAMPLES / "zh-1001-a.wav", folder / "zh-1001-a.wav")  # old mtime: complete
    hook = Webhook()
    try:
        with Store(db) as store:
            record_alerts(store, [Alert("a1", "legal_threat", "C1", "c1", None, None, None, 2.0, "my lawyer", None,
                                        utcnow())], [WebhookChannel(hook.url)])
        settings = Settings(alert_webhook_url=hook.url)
        report = intake_pass(folder, db, settings, model=str(tmp_path / "no-such-model"))
        assert report.error and report.results == () and "processing failed" in report.line()
        assert report.deliveries.delivered == 1 and len(hook.received) == 1
        with Store(db) as store:
            assert scan(folder, store, settings.intake_settle_seconds)[0] == [(folder / "zh-1001-a.wav").resolve()]
    finally:
        hook.close()
