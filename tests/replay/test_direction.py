"""Call direction through the real stages and a real DuckDB file: the replayed sample calls
(stored recognition, real audio), detected from their openings and stored; a recorded callback
(a real call given direction=callback by its manifest) closes the callback clock of its case's
complaint on the worklist, is no repeat complaint in the briefing, and is not sampled for the
inbound QA scorecard (it is drawn apart, for the callback card)."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from evaluation.recognition import replay_call, stored_ids
from pipeline.analysis.direction import call_direction
from pipeline.config.settings import Settings
from pipeline.intake.ingest import discover
from pipeline.outputs.briefing import build_briefing
from pipeline.outputs.qa import SamplingPlan, draw_sample, why_empty
from pipeline.run.execute import refresh_briefings, write_result
from pipeline.store import Store
from tests.dbfile import execute, query
from web.store import dashboard, worklist

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)  # 20:00 in the centre (Asia/Shanghai)


@pytest.fixture(scope="module")
def calls() -> dict:
    return {c: replay_call(c) for c in stored_ids()}


def as_callback(result, started_at: datetime, customer_id: str, case_id: str, call_id: str):
    """A real call recast as the bank's callback, as a manifest with direction=callback names it."""
    meta = replace(result.recording.metadata, direction="callback", started_at=started_at, customer_id=customer_id,
                   case_id=case_id)
    rec = replace(result.recording, call_id=call_id, metadata=meta)
    return replace(result, recording=rec, direction=call_direction(meta, result.turns))


def make_db(path: Path, results) -> Path:
    with Store(path) as store:
        for result in results:
            write_result(store, result)
        refresh_briefings(store, results)
    return path


def items(db: Path, customer_id: str | None = None) -> dict[str, dict]:
    settings = Settings()
    with Store(db, read_only=True).reading() as conn:
        return {i["customer_id"]: i for i in worklist(conn, settings.tz, settings.callback_target_minutes,
                                                      NOW, customer_id=customer_id)}


def test_sample_calls_are_detected_inbound_and_stored(tmp_path, calls):
    db = make_db(tmp_path / "db.duckdb", list(calls.values()))
    stored = {r[0]: r[1:] for r in query(db, "SELECT call_id, direction, direction_confidence, direction_source, "
                                             "direction_evidence->>'quote' FROM calls")}
    assert {d for d, *_ in stored.values()} == {"inbound"} and {s for _, _, s, _ in stored.values()} == {"detected"}
    # The English calls open with the hotline greeting: confidently inbound, the greeting quoted (masked).
    for call_id in ("en-2001", "en-2002"):
        _, confidence, _, quote = stored[call_id]
        assert confidence > 0.9 and "calling" in quote.lower()
    # A rerun replaces the row: no duplicate, the same direction.
    with Store(db) as store:
        write_result(store, calls["en-2001"])
    assert query(db, "SELECT count(*), any_value(direction) FROM calls WHERE call_id = 'en-2001'") == [(1, "inbound")]


def test_a_recorded_callback_closes_the_clock_of_its_cases_complaint(tmp_path, calls):
    complaint = calls["en-2002"]  # C2002's complaint call (threats), 2026-11-20 14:30 centre time
    assert complaint.escalation.flags
    # en-2001 is a real call the customer spoke in and whose summary found it resolved; recast as the
    # bank's callback to C2002 twenty minutes after the complaint.
    callback = as_callback(calls["en-2001"], datetime(2026, 11, 20, 14, 50), "C2002", "K-2026-2002", "cb-2002")
    assert (callback.direction.direction, callback.direction.source) == ("callback", "manifest")
    db = make_db(tmp_path / "db.duckdb", [complaint, callback])
    assert query(db, "SELECT direction, direction_source FROM calls WHERE call_id = 'cb-2002'") == [("callback", "manifest")]
    assert "C2002" not in items(db)  # called back, resolved: off the worklist
    brief = build_briefing(Store(db, read_only=True), "C2002", now=NOW)
    assert brief.n_complaints == 1 and "repeat_complaint" not in brief.flags and brief.callback_overdue is False
    # The dashboard counts the complaint as called back within the target.
    settings = Settings()
    with Store(db, read_only=True).reading() as conn:
        (day,) = dashboard(conn, "day", settings.tz, settings.callback_target_minutes)
    assert (day["complaints"], day["callbacks_in_time"]) == (1, 1)

    # A follow-up still owed (the summary did not find it resolved): reached, but the case stays, the
    # next attempt due a callback target after it.
    execute(db, "UPDATE summaries SET outcome = 'pending' WHERE call_id = 'cb-2002'")
    item = items(db)["C2002"]
    assert item["attempt_outcome"] == "follow_up" and item["next_attempt_local"] > item["due_local"]
    # Nobody spoke on the other side: an attempt, not a callback made.
    execute(db, "UPDATE dynamics SET customer_talk_s = 1.0 WHERE call_id = 'cb-2002'")
    assert items(db)["C2002"]["attempt_outcome"] == "no_answer"
    with Store(db, read_only=True).reading() as conn:
        (day,) = dashboard(conn, "day", settings.tz, settings.callback_target_minutes)
    assert day["callbacks_in_time"] == 0


def test_a_callback_of_another_case_or_before_the_complaint_closes_nothing(tmp_path, calls):
    complaint = calls["en-2002"]
    other_case = as_callback(calls["en-2001"], datetime(2026, 11, 20, 14, 50), "C2002", "K-OTHER", "cb-other")
    earlier = as_callback(calls["en-2001"], datetime(2026, 11, 20, 9, 0), "C2002", "K-2026-2002", "cb-early")
    db = make_db(tmp_path / "db.duckdb", [complaint, other_case, earlier])
    item = items(db)["C2002"]
    assert item["attempt_at"] is None and item["done_at"] is not None  # the early one is older than the complaint


def test_a_callback_is_never_a_repeat_complaint_nor_sampled_for_the_inbound_card(tmp_path, calls):
    # C1001: zh-1001-b is the complaint (regulator and media threats); zh-1001-a, a real call the
    # customer spoke in, recast as the handler's callback after it.
    complaint = calls["zh-1001-b"]
    callback = as_callback(calls["zh-1001-a"], datetime(2026, 11, 20, 17, 5), "C1001", "K-2026-1101", "cb-1001")
    db = make_db(tmp_path / "db.duckdb", [complaint, callback])
    item = items(db)["C1001"]
    assert "repeat_complaint" not in item["flags"] and item["n_complaints"] == 1
    assert item["attempt_outcome"] == "follow_up"  # its summary found it pending: a follow-up is owed
    brief = build_briefing(Store(db, read_only=True), "C1001", now=NOW)
    assert brief.n_complaints == 1 and "repeat_complaint" not in brief.flags
    assert {c["call_id"]: c["direction"] for c in brief.calls} == {"zh-1001-b": "inbound", "cb-1001": "callback"}
    # The same two calls, both the customer's own: a repeat complaint, as before.
    db2 = make_db(tmp_path / "db2.duckdb", [complaint, replace(callback, direction=replace(
        callback.direction, direction="inbound"))])
    assert "repeat_complaint" in items(db2)["C1001"]["flags"]

    store = Store(db)
    sample = draw_sample(store, SamplingPlan(n=10, seed=1))
    # The inbound strata draw the complaint (its threats) only; the callback is drawn apart, for its card.
    assert [(c.call_id, c.stratum) for c in sample.calls if c.stratum != "callback"] == [("zh-1001-b", "flagged")]
    assert [c.call_id for c in sample.calls if c.stratum == "callback"] == ["cb-1001"]
    assert [c.call_id for c in draw_sample(store, SamplingPlan(n=10, seed=1, callbacks=0)).calls] == ["zh-1001-b"]
    store.store_qa_sample([{"sample_id": "s1", "call_id": c, "agent_id": None, "stratum": "random",
                            "reason": "test", "seed": 1, "plan": "{}", "drawn_at": NOW.replace(tzinfo=None),
                            "scorecard": "[]"} for c in ("zh-1001-b", "cb-1001")])
    assert draw_sample(store, SamplingPlan(n=10, seed=1)).calls == []
    assert "already sampled" in why_empty(store, SamplingPlan(n=10, seed=1))


def test_the_intake_takes_the_manifests_direction_and_holds_back_a_bad_rows_recording(tmp_path):
    samples = Path(__file__).resolve().parents[2] / "data" / "samples"
    for name in ("en-2001.mp3", "en-2002.ogg"):
        (tmp_path / name).write_bytes((samples / name).read_bytes())
    (tmp_path / "manifest.csv").write_text("call_id,file,customer_id,case_id,direction\n"
                                           "cb-1,en-2001.mp3,C2002,K-2026-2002,callback\n"
                                           "in-1,en-2002.ogg,C2002,K-2026-2002,callbak\n", encoding="utf-8")
    found = discover(tmp_path)
    assert [(r.call_id, r.metadata.direction, r.metadata.case_id) for r in found.recordings] == [
        ("cb-1", "callback", "K-2026-2002")]
    assert [str(r) for r in found.rejected if r.field == "direction"] == [
        "manifest.csv line 3, direction: 'callbak' is not one of inbound, outbound, callback (leave it empty to "
        "detect it from the call)"]
