"""QA sampling on a real DuckDB file, and scorecard prefill on the analysed sample calls."""
import json
import shutil
from datetime import datetime, timedelta

import pandas as pd
import pytest

from pipeline.qa import SamplingPlan, draw_sample, export_sample, prefill_scorecard, record_review, store_sample
from pipeline.store import Store

AGENTS = ["A1", "A2", "A3", "A4", "A5"]


@pytest.fixture
def populated(tmp_path):
    """60 analysed calls over 10 days: agent A5 has one call; 3 carry threats; 12 are escalated."""
    store = Store(tmp_path / "qa.duckdb")
    day0 = datetime(2026, 11, 1)
    calls, esc = [], []
    for i in range(60):
        agent = "A5" if i == 59 else AGENTS[i % 4]
        calls.append({"call_id": f"c{i:03d}", "agent_id": agent, "customer_id": f"K{i}", "status": "ok",
                      "started_at": day0 + timedelta(hours=4 * i)})
        flags = ["regulator_threat"] if i in (7, 23, 41) else []
        score = 70.0 if i % 5 == 0 else 10.0
        esc.append({"call_id": f"c{i:03d}", "call_score": score, "flags": json.dumps(flags)})
    store.insert_rows("calls", calls)
    store.insert_rows("escalation", esc)
    yield store
    store.close()


def test_same_seed_same_sample_and_different_seed_differs(populated):
    plan = SamplingPlan(n=20, seed=7)
    a, b = draw_sample(populated, plan), draw_sample(populated, plan)
    assert [(c.call_id, c.stratum) for c in a.calls] == [(c.call_id, c.stratum) for c in b.calls]
    other = draw_sample(populated, SamplingPlan(n=20, seed=8))
    assert {c.call_id for c in other.calls} != {c.call_id for c in a.calls}


def test_strata_are_honoured(populated):
    sample = draw_sample(populated, SamplingPlan(n=20, seed=1, high_escalation_share=0.3))
    by = pd.Series([c.stratum for c in sample.calls]).value_counts().to_dict()
    assert len(sample.calls) == 20
    assert by["flagged"] == 3  # every flagged call
    assert {c.agent_id for c in sample.calls} == set(AGENTS)  # every agent reviewed, A5 by quota
    assert by["high_escalation"] == 6  # 30 % of 20
    assert by["random"] == 20 - 3 - by.get("agent_quota", 0) - 6
    assert all(c.reason for c in sample.calls)


def test_flagged_calls_are_always_in_even_past_n(populated):
    sample = draw_sample(populated, SamplingPlan(n=2, seed=3))
    assert {"c007", "c023", "c041"} <= {c.call_id for c in sample.calls}


def test_date_range_and_no_call_sampled_twice(populated):
    first_week = SamplingPlan(n=10, seed=1, start=datetime(2026, 11, 1), end=datetime(2026, 11, 6))
    first = draw_sample(populated, first_week)
    assert all(datetime(2026, 11, 1) <= populated.query("SELECT started_at FROM calls WHERE call_id = ?", [c.call_id]).iloc[0, 0]
               < datetime(2026, 11, 6) for c in first.calls)
    store_sample(populated, first, {})
    again = draw_sample(populated, SamplingPlan(n=60, seed=1))
    assert not {c.call_id for c in first.calls} & {c.call_id for c in again.calls}
    assert again.n_candidates == 60 - len(first.calls)


def test_export_and_review(populated, tmp_path):
    sample = draw_sample(populated, SamplingPlan(n=5, seed=2))
    store_sample(populated, sample, {})
    csv_path, parquet_path = export_sample(populated, sample.sample_id, tmp_path / "out")
    exported = pd.read_parquet(parquet_path)
    assert len(exported) == len(sample.calls) == len(pd.read_csv(csv_path))
    assert set(exported["stratum"]) <= {"flagged", "agent_quota", "high_escalation", "random"}
    call = sample.calls[0].call_id
    record_review(populated, sample.sample_id, call, "qa.lee", {"greeting": "pass", "closing": "fail"}, "rushed close")
    review = populated.query("SELECT reviewer, scores, comment FROM qa_reviews").iloc[0]
    assert review["reviewer"] == "qa.lee" and json.loads(review["scores"])["closing"] == "fail"
    with pytest.raises(ValueError, match="unknown scorecard items"):
        record_review(populated, sample.sample_id, call, "qa.lee", {"charm": "pass"})
    with pytest.raises(ValueError, match="not in sample"):
        record_review(populated, sample.sample_id, "c999", "qa.lee", {"greeting": "pass"})


def _card(nightly_db, call_id):
    with Store(nightly_db[0], read_only=True) as store:
        return {i["item"]: i for i in prefill_scorecard(store, call_id)}


def test_scorecard_finds_apologies_and_the_deadline_promise(nightly_db):
    card = _card(nightly_db, "en-2002")
    phrases = {p for e in card["empathy_apology"]["evidence"] for p in e["phrases"]}
    assert card["empathy_apology"]["prefill"] == "pass" and {"i understand", "i am really sorry"} <= phrases
    assert card["improper_promise"]["prefill"] == "fail"
    assert "within" in card["improper_promise"]["evidence"][0]["quote"].lower()
    zh = _card(nightly_db, "zh-1001-b")
    assert zh["empathy_apology"]["prefill"] == "pass"  # 非常抱歉
    assert any("抱歉" in p for e in zh["empathy_apology"]["evidence"] for p in e["phrases"])


def test_scorecard_on_the_calm_call(nightly_db):
    card = _card(nightly_db, "en-2001")
    assert card["greeting"]["prefill"] == "pass" and card["identity_verification"]["prefill"] == "pass"
    assert card["closing"]["prefill"] == "pass" and card["improper_promise"]["prefill"] == "pass"
    assert card["listening"]["evidence"][0]["customer_talk_share"] > 0.3


def test_qa_flow_publishes_the_sample(prefect_harness, nightly_db, tmp_path):
    from prefect.artifacts import Artifact

    from flows.qa_sample import qa_sample

    db = tmp_path / "copy.duckdb"
    shutil.copy2(nightly_db[0], db)
    result = qa_sample(n=3, seed=5, db_path=str(db), export_dir=str(tmp_path / "qa"))
    assert result["n"] >= 3 and {"en-2002", "zh-1001-b"} <= {c["call_id"] for c in result["calls"]}  # flagged
    assert pd.read_parquet(result["parquet"])["scorecard"].map(json.loads).map(len).min() == 8
    table = Artifact.get("qa-sample").data
    assert "en-2002" in (table if isinstance(table, str) else json.dumps(table))
