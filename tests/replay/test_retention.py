"""Retention (`callbrief purge`, pipeline/run/retention.py) on a real, encrypted DuckDB file of
replayed sample calls written with the store, their start times moved into the past: exactly
the raw data past each period goes (counted per table), masked text, summaries, scores,
briefings and QA stay, calls an open case or open QA sample needs are kept and said so, the
audit log records it and still verifies, a rerun deletes nothing, a dry run deletes nothing and
counts the same, a bad period deletes nothing; pages and briefings of purged calls still work,
and a purged recording is never processed again."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from evaluation.recognition import replay_call, sample_audio
from pipeline.config.settings import Settings
from pipeline.outputs.briefing import write_briefing
from pipeline.run.execute import engine_for_workers, refresh_briefings, write_result
from pipeline.run.plan import plan_batch
from pipeline.run.watch import scan
from pipeline.store import Store
from tests.dbfile import execute, query

ROOT = Path(__file__).resolve().parents[2]
# Periods of this test: paths 30 days, raw text 150, redacted audio 60.
PERIODS = {"CALLBRIEF_RETAIN_AUDIO_PATHS_DAYS": "30", "CALLBRIEF_RETAIN_RAW_TEXT_DAYS": "150",
           "CALLBRIEF_RETAIN_REDACTED_AUDIO_DAYS": "60"}
# call id -> (sample call replayed, customer, days ago it started; None: no start time)
CALLS = {
    "old-plain": ("en-2001", "C-A", 200),  # no complaint: purged
    "old-closed": ("zh-1001-b", "C-B", 200),  # a complaint called back since: purged
    "old-case": ("en-2002", "C-C", 200),  # a complaint whose callback got no answer: kept (open case)
    "old-qa": ("zh-1001-a", "C-D", 200),  # in a sample one call of which has no review: kept
    "old-reviewed": ("en-2001", "C-E", 200),  # in a sample every call of which is reviewed: purged
    "new-1": ("zh-1001-a", "C-F", 10),  # young: untouched (and in the open sample)
    "mid": ("en-2001", "C-G", 100),  # past the paths' period, not the text's
    "nostart": ("en-2001", "C-H", None),  # no start time: aged by processed_at (set 200 days back)
}
AUDIO_PURGED = ["mid", "nostart", "old-closed", "old-plain", "old-reviewed"]
TEXT_PURGED = ["nostart", "old-closed", "old-plain", "old-reviewed"]
KEPT_TABLES = ("summaries", "escalation", "briefings", "qa_samples", "qa_reviews", "dynamics", "alerts")


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **PERIODS, **(env or {})}, timeout=300)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("retention")
    recordings = folder / "recordings"
    recordings.mkdir()
    db = folder / "callbrief.duckdb"
    tz = Settings().tz
    now_local = datetime.now(tz).replace(tzinfo=None)
    replayed = {sample: replay_call(sample) for sample in {s for s, _, _ in CALLS.values()}}
    results, manifest = [], ["call_id,file,customer_id,agent_id,case_id,started_at"]
    for call_id, (sample, customer, days) in CALLS.items():
        base = replayed[sample]
        audio = recordings / f"{call_id}{sample_audio(sample).suffix}"
        shutil.copy(sample_audio(sample), audio)  # the call's own copy: purging files never touches data/
        started = None if days is None else now_local - timedelta(days=days)
        meta = replace(base.recording.metadata, call_id=call_id, customer_id=customer, started_at=started)
        results.append(replace(base, recording=replace(base.recording, call_id=call_id, path=audio, metadata=meta)))
        manifest.append(f"{call_id},{audio.name},{customer},{meta.agent_id},K-{call_id},"
                        f"{started.isoformat(timespec='seconds') if started else ''}")
    (recordings / "manifest.csv").write_text("\n".join(manifest) + "\n", encoding="utf-8")
    with Store(db) as store:
        for result in results:
            write_result(store, result)
        execute(db, ("UPDATE calls SET processed_at = processed_at - INTERVAL 200 DAY WHERE call_id = 'nostart'", []))
        refresh_briefings(store, results)
        store.add_call_path("old-plain", str(recordings / "old-plain-copy.mp3"), "x")
        store.add_call_path("new-1", str(recordings / "new-1-copy.wav"), "y")
        store.record_callback("C-B", "hana", "resolved", "called back")
        store.record_callback("C-C", "hana", "no_answer", "rang out")  # an attempt: the case stays open
        sample_row = {"agent_id": "A1", "stratum": "all", "reason": "random", "seed": 1, "plan": "{}",
                      "drawn_at": now_local, "scorecard": "{}"}
        store.store_qa_sample([{**sample_row, "sample_id": "S-open", "call_id": c} for c in ("old-qa", "new-1")]
                              + [{**sample_row, "sample_id": "S-done", "call_id": "old-reviewed"}])
        store.replace_qa_review("S-open", "old-qa", "quinn", {"greeting": "pass"}, "")
        store.replace_qa_review("S-done", "old-reviewed", "quinn", {"greeting": "pass"}, "")
    redacted = folder / "redacted"
    redacted.mkdir()
    for name in ("old-plain.wav", "old-case.wav", "mid.wav.enc", "new-1.wav", "notes.txt"):
        (redacted / name).write_bytes(b"redacted audio")
    return db


@pytest.fixture
def db(pristine, tmp_path) -> Path:
    """A copy per test (with the recordings and redacted files as they were)."""
    for item in pristine.parent.iterdir():
        (shutil.copytree if item.is_dir() else shutil.copy)(item, tmp_path / item.name)
    db = tmp_path / pristine.name
    execute(db, ("UPDATE calls SET path = replace(path, ?, ?)", [str(pristine.parent), str(tmp_path)]),
            ("UPDATE call_paths SET path = replace(path, ?, ?)", [str(pristine.parent), str(tmp_path)]))
    return db


def snapshot(db: Path) -> dict:
    """Every row of the tables retention reads or changes, in a fixed order."""
    out = {t: query(db, f"SELECT * FROM {t} ORDER BY ALL") for t in
           ("words", "turns", "corrections", "call_paths", *KEPT_TABLES)}
    out["calls"] = query(db, "SELECT call_id, path FROM calls ORDER BY call_id")
    return out


def counts_of(db: Path, ids: list[str]) -> dict[str, int]:
    """Per table, what the purge must remove of these calls (counted here, not by the purge)."""
    where = "call_id IN (SELECT unnest(?))"
    return {"words": query(db, f"SELECT count(*) FROM words WHERE {where}", [ids])[0][0],
            "turns.text": query(db, f"SELECT count(*) FROM turns WHERE {where} AND text IS NOT NULL", [ids])[0][0],
            "corrections": query(db, f"SELECT count(*) FROM corrections WHERE {where}", [ids])[0][0]}


def test_purge_deletes_exactly_the_old_raw_data_and_keeps_what_cases_and_qa_need(db):
    before = snapshot(db)
    text = counts_of(db, TEXT_PURGED)
    assert text["words"] > 100 and text["turns.text"] > 10 and text["corrections"] > 0  # there is something to purge
    n_paths = query(db, "SELECT count(*) FROM call_paths WHERE call_id IN (SELECT unnest(?))", [AUDIO_PURGED])[0][0]
    assert n_paths == 1
    audit_rows = query(db, "SELECT count(*) FROM audit_log")[0][0]

    done = cli("purge", "--db", str(db))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"the recording paths of {len(AUDIO_PURGED)} call(s)" in out and "calls.path 5, call_paths 1" in out
    assert (f"the raw words and turn texts of {len(TEXT_PURGED)} call(s)" in out and
            f"words {text['words']}, turns.text {text['turns.text']}, corrections {text['corrections']}" in out), out
    assert "kept 2 call(s) past a period: 1 in open QA samples, 1 with open cases" in out
    assert "redacted audio of calls started before" in out and "2 file(s)" in out

    after = snapshot(db)
    # Raw words and texts of exactly the old calls are gone; the masked text of every turn stays.
    assert query(db, "SELECT DISTINCT call_id FROM words ORDER BY 1") == \
        [(c,) for c in sorted(set(CALLS) - set(TEXT_PURGED))]
    assert query(db, "SELECT DISTINCT call_id FROM turns WHERE text IS NULL ORDER BY 1") == [(c,) for c in TEXT_PURGED]
    assert [r for r in after["words"]] == [r for r in before["words"] if r[0] not in TEXT_PURGED]
    assert [r[:6] + r[7:] for r in after["turns"]] == [r[:6] + r[7:] for r in before["turns"]]  # all but text
    assert [r for r in after["corrections"]] == [r for r in before["corrections"] if r[0] not in TEXT_PURGED]
    # Paths: forgotten for the calls past 30 days, kept for the young and the protected.
    assert [c for c, p in after["calls"] if p is None] == AUDIO_PURGED
    assert after["call_paths"] == [r for r in before["call_paths"] if r[0] not in AUDIO_PURGED]
    for table in KEPT_TABLES:
        assert after[table] == before[table], table
    # The redacted copies of calls past 60 days go, but the protected call's; other files stay.
    assert sorted(p.name for p in (db.parent / "redacted").iterdir()) == ["new-1.wav", "notes.txt", "old-case.wav"]
    # The recordings themselves are the bank's: left (purge_recording_files is off).
    assert len(list((db.parent / "recordings").glob("old-*"))) == 5

    # What was deleted is in the audit log (ids and counts, in the deletion's transaction); the chain holds.
    logged = query(db, "SELECT role, action, detail FROM audit_log WHERE id > ? ORDER BY id", [audit_rows])
    assert [(r, a) for r, a, _ in logged] == [("system", "purge_raw_data"), ("system", "purge_files")]
    detail = json.loads(logged[0][2])
    assert detail["calls"] == {"audio": AUDIO_PURGED, "text": TEXT_PURGED}
    assert detail["tables"] == {"calls.path": 5, "call_paths": 1, **text}
    assert detail["kept"] == {"qa_samples": ["old-qa"], "open_cases": ["old-case"]}
    assert str(db.parent) not in logged[0][2]  # ids and counts: no path, no content
    verified = cli("audit", "verify", "--db", str(db))
    assert verified.returncode == 0 and verified.stdout.startswith("audit log OK"), verified.stderr

    # A rerun deletes nothing more, and says so.
    again = cli("purge", "--db", str(db))
    assert again.returncode == 0, again.stderr
    assert "the recording paths of 0 call(s)" in again.stdout and "words 0, turns.text 0, corrections 0" in again.stdout
    assert "0 file(s)" in again.stdout and "kept 2 call(s)" in again.stdout
    assert snapshot(db) == after
    assert query(db, "SELECT count(*) FROM audit_log")[0][0] == audit_rows + 2


def test_dry_run_counts_the_same_and_deletes_nothing(db):
    before = snapshot(db)
    audit_rows = query(db, "SELECT count(*) FROM audit_log")[0][0]
    dry = cli("purge", "--db", str(db), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would delete" in dry.stdout and dry.stdout.strip().endswith("dry run: nothing was deleted")
    assert snapshot(db) == before
    assert query(db, "SELECT count(*) FROM audit_log")[0][0] == audit_rows
    assert len(list((db.parent / "redacted").iterdir())) == 5
    real = cli("purge", "--db", str(db))
    assert real.returncode == 0, real.stderr

    def numbers(text: str) -> list[str]:
        return re.findall(r"\d+", re.sub(r"before \S+ \S+", "", text.replace("would delete", "deleted")))
    assert numbers(real.stdout) == numbers(dry.stdout.replace("dry run: nothing was deleted", "")), (dry.stdout, real.stdout)


@pytest.mark.parametrize("value", ["-5", "abc", "", "0", "12.5"])
def test_a_bad_period_is_one_line_and_deletes_nothing(db, value):
    before = snapshot(db)
    bad = cli("purge", "--db", str(db), env={"CALLBRIEF_RETAIN_RAW_TEXT_DAYS": value})
    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "retain_raw_text_days" in bad.stderr, bad.stderr
    assert snapshot(db) == before and len(list((db.parent / "redacted").iterdir())) == 5


def test_recording_files_are_deleted_only_when_set_and_only_if_they_hold_the_calls_audio(db):
    recordings = db.parent / "recordings"
    (recordings / "mid.mp3").write_bytes(b"a newer recording under the same name")
    done = cli("purge", "--db", str(db), env={"CALLBRIEF_PURGE_RECORDING_FILES": "true"})
    assert done.returncode == 1  # one file was left: said, not silently
    assert "recording files 4" in done.stdout
    assert re.search(r"not deleted: .*mid\.mp3: holds other audio now", done.stdout), done.stdout
    left = sorted(p.name for p in recordings.iterdir() if p.suffix != ".csv")
    assert left == ["mid.mp3", "new-1.wav", "old-case.ogg", "old-qa.wav"]


def test_pages_and_briefings_of_purged_calls_still_work(db, tmp_path):
    from fastapi.testclient import TestClient

    from tests.replay.test_web import login
    from web import auth
    from web.app import create_app

    assert cli("purge", "--db", str(db)).returncode == 0
    settings = Settings(web_secret_file=str(tmp_path / "web-secret.key"))
    with Store(db) as store:
        _, markdown = write_briefing(store, "C-B", settings=settings)  # rebuilt from the masked rows
    assert "old-closed 00:35" in markdown  # its quotes: masked, kept
    auth.add_user(db, "hana", "handler", "handler-pass-1")
    app = create_app(db, settings)
    app.state.indexer.join()
    client = TestClient(app)
    assert login(client, "hana", "handler-pass-1").status_code == 303
    masked = query(db, "SELECT redacted_text FROM turns WHERE call_id = 'old-closed' ORDER BY seq LIMIT 1")[0][0]
    page = client.get("/calls/old-closed")
    assert page.status_code == 200 and masked[:12] in page.text and "已过保存期限" in page.text  # hana reads Chinese
    audio = client.get("/calls/old-closed/audio")
    assert audio.status_code == 410 and "已过保存期限" in audio.text
    assert client.get("/calls/new-1/audio").status_code == 200  # a young call still plays
    assert client.get("/customers/C-B").status_code == 200
    assert client.get("/calls/mid").status_code == 200  # paths gone, raw text still in its period


def test_a_purged_recording_is_never_processed_again(db):
    assert cli("purge", "--db", str(db)).returncode == 0
    with Store(db) as store:
        plan = plan_batch(db.parent / "recordings", store, engine_for_workers("base", 1), reprocess=True)
        assert sorted(r.call_id for r in plan.skipped) == AUDIO_PURGED
        assert sorted(r.call_id for r in plan.todo) == sorted(set(CALLS) - set(AUDIO_PURGED))
        # The intake watcher does not take them for new files either (their paths are forgotten).
        assert scan(db.parent / "recordings", store, settle_seconds=0) == ([], [])


def test_the_nightly_job_ends_with_the_purge(db, tmp_path):
    """`callbrief run` (no new recordings: no model is loaded) purges as its last step."""
    empty = tmp_path / "incoming"
    empty.mkdir()
    done = cli("run", "--input", str(empty), "--db", str(db), "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert "deleted the raw words and turn texts of 4 call(s)" in done.stderr, done.stderr
    assert query(db, "SELECT count(*) FROM words WHERE call_id IN (SELECT unnest(?))", [TEXT_PURGED])[0][0] == 0
