"""The callback scorecard in a QA sample, on a real DuckDB file holding the team's written
conversations (tests/eval/callback_conversations.json) as stored calls: a callback call is drawn
on the callback card (its stored answers name the card), an inbound call keeps the inbound card,
an outbound call is not drawn; a review is validated against the card of its call, through the
library and through the web review page and API."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from evaluation.eval_callback_card import CONVERSATIONS as CONVERSATIONS_FILE
from evaluation.eval_callback_card import timed_turns
from pipeline.analysis.i18n import text
from pipeline.config.settings import Settings
from pipeline.outputs.callback_card import callback_items
from pipeline.outputs.qa import (
    QAError,
    SamplingPlan,
    export_sample,
    record_review,
    sample_for_qa,
    scorecard_items,
    why_empty,
)
from pipeline.store import Store
from tests.dbfile import query

CONVERSATIONS = {c["id"]: c for c in json.loads(CONVERSATIONS_FILE.read_text(encoding="utf-8"))["calls"]}
STORED = ("cb-en-01", "cb-zh-02", "in-zh-01", "out-en-01")  # two callbacks, an inbound and an outbound call
CALLBACK_IDS = [i["id"] for i in callback_items()]
INBOUND_IDS = [i["id"] for i in scorecard_items()]


def store_conversations(store: Store) -> None:
    """Each conversation as a processed call: its direction, and its turns (text and masked text)."""
    day = datetime(2026, 11, 23, 9, 0)
    calls, turns = [], []
    for n, call_id in enumerate(STORED):
        conv = CONVERSATIONS[call_id]
        timed = timed_turns(conv)
        calls.append({"call_id": call_id, "agent_id": f"A{n}", "customer_id": f"K{n}", "status": "ok",
                      "started_at": day + timedelta(hours=n), "language": conv["language"],
                      "duration": timed[-1].end, "direction": conv["direction"]})
        turns += [{"call_id": call_id, "seq": i, "role": t.role, "speaker": t.role, "start": t.start, "end": t.end,
                   "text": raw["text"], "redacted_text": t.text}
                  for i, (t, raw) in enumerate(zip(timed, conv["turns"]))]
    store.insert_rows("calls", calls)
    store.insert_rows("turns", turns)


@pytest.fixture
def sampled(tmp_path):
    db = tmp_path / "qa.duckdb"
    with Store(db) as store:
        store_conversations(store)
        sample = sample_for_qa(store, SamplingPlan(n=5, seed=3))
    return db, sample


def stored_cards(db) -> dict[str, tuple[str, list[dict]]]:
    return {cid: (stratum, json.loads(card)) for cid, stratum, card in
            query(db, "SELECT call_id, stratum, scorecard FROM qa_samples")}


def test_a_callback_call_is_drawn_on_the_callback_card(sampled):
    db, sample = sampled
    cards = stored_cards(db)
    assert set(cards) == {"cb-en-01", "cb-zh-02", "in-zh-01"}  # the outbound call has no card: not drawn
    for call_id in ("cb-en-01", "cb-zh-02"):
        stratum, card = cards[call_id]
        assert stratum == "callback"
        assert [a["item"] for a in card] == CALLBACK_IDS and {a["card"] for a in card} == {"callback"}
    stratum, card = cards["in-zh-01"]
    assert stratum != "callback" and [a["item"] for a in card] == INBOUND_IDS
    # What the prefill found, stored with its quotes and times: the good callback passes every item,
    # the poor one's casual guarantee is quoted at its time; the staff number is masked.
    good = {a["item"]: a for a in cards["cb-en-01"][1]}
    assert {a["prefill"] for a in good.values()} == {"pass"}
    poor = {a["item"]: a for a in cards["cb-zh-02"][1]}
    guarantee = poor["cb_safe_deadline"]["evidence"][0]
    assert poor["cb_safe_deadline"]["prefill"] == "fail" and "明天一定给你办好" in guarantee["quote"]
    turn_at = query(db, "SELECT redacted_text FROM turns WHERE call_id = 'cb-zh-02' AND round(start, 2) = ?",
                    [guarantee["time"]])
    assert turn_at and guarantee["quote"] in turn_at[0][0]
    assert "70418" not in json.dumps(cards["cb-en-01"][1])
    # Drawn once, ever; the outbound call is said to have no card.
    with Store(db) as store:
        assert "1 outbound call(s)" in why_empty(store, SamplingPlan(n=5, seed=3))


def test_without_callback_calls_the_inbound_draw_is_unchanged(tmp_path):
    with_cb, without = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    for db, callbacks in ((with_cb, 5), (without, 0)):
        with Store(db) as store:
            store_conversations(store)
            sample_for_qa(store, SamplingPlan(n=5, seed=3, callbacks=callbacks))
    inbound = "SELECT call_id, stratum FROM qa_samples WHERE stratum <> 'callback' ORDER BY call_id"
    assert query(with_cb, inbound) == query(without, inbound) == [("in-zh-01", "agent_quota")]
    assert query(without, "SELECT count(*) FROM qa_samples WHERE stratum = 'callback'") == [(0,)]


def test_a_review_is_validated_against_the_card_of_its_call(sampled):
    db, sample = sampled
    with Store(db) as store:
        with pytest.raises(QAError, match="unknown scorecard item 'greeting'"):
            record_review(store, sample.sample_id, "cb-zh-02", "qa.lee", {i: "pass" for i in INBOUND_IDS})
        partial = {i: "fail" for i in CALLBACK_IDS if i != "cb_thanks_feedback"}
        with pytest.raises(QAError, match="missing: cb_thanks_feedback"):
            record_review(store, sample.sample_id, "cb-zh-02", "qa.lee", partial)
        with pytest.raises(QAError, match="unknown scorecard item 'cb_"):
            record_review(store, sample.sample_id, "in-zh-01", "qa.lee", {i: "pass" for i in CALLBACK_IDS})
        assert record_review(store, sample.sample_id, "cb-zh-02", "qa.lee",
                             {**partial, "cb_thanks_feedback": "no evidence"}) is False
        assert record_review(store, sample.sample_id, "in-zh-01", "qa.lee", {i: "n/a" for i in INBOUND_IDS}) is False
    scores = dict(query(db, "SELECT call_id, scores FROM qa_reviews"))
    assert set(json.loads(scores["cb-zh-02"])) == set(CALLBACK_IDS)
    # The export carries both cards' columns: each call's own filled, the other card's empty.
    with Store(db, read_only=True) as store:
        _, parquet = export_sample(store, sample.sample_id, db.parent / "out", files="plain")
    frame = pd.read_parquet(parquet).set_index("call_id")
    assert frame.loc["cb-zh-02", "review_cb_thanks_feedback"] == "no evidence"
    assert frame.loc["cb-zh-02", "prefill_cb_safe_deadline"] == "fail" and frame.loc["cb-zh-02", "prefill_greeting"] == ""
    assert frame.loc["in-zh-01", "review_greeting"] == "n/a" and frame.loc["in-zh-01", "prefill_cb_no_blame"] == ""


def test_the_review_page_shows_the_callback_card_of_a_callback_call(sampled):
    from web import auth
    from web.app import create_app

    db, sample = sampled
    auth.add_user(db, "quinn", "qa", "qa-pass-12345")
    app = create_app(db, Settings(web_secret_file=str(db.parent / "web-secret.key")))
    app.state.indexer.join()
    client = TestClient(app)
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    assert client.post("/login", data={"username": "quinn", "password": "qa-pass-12345", "csrf_token": token,
                                       "next": ""}, follow_redirects=False).status_code == 303
    url = f"/qa/{sample.sample_id}/cb-zh-02"
    page = client.get(url).text
    names = set(re.findall(r'type="radio" name="([^"]+)"', page))
    assert names == set(CALLBACK_IDS)
    assert "告知任何细节前确认是客户本人" in page and "回访评分表" in page  # the items' and the card's translations
    assert re.search(r'name="cb_safe_deadline" value="fail" checked', page)  # the prefill, preselected
    assert set(re.findall(r'type="radio" name="([^"]+)"', client.get(f"/qa/{sample.sample_id}/in-zh-01").text)) \
        == set(INBOUND_IDS)
    csrf = client.get("/api/me").json()["csrf_token"]
    # The inbound card's answers to a callback call: refused, nothing stored.
    r = client.post(url, data={**{i: "pass" for i in INBOUND_IDS}, "csrf_token": csrf})
    assert r.status_code == 422 and text("qa_item.cb_intro_and_reason", "zh") in r.text  # named as missing, in Chinese
    r = client.post(f"/api/qa/{sample.sample_id}/cb-zh-02", json={"scores": {i: "pass" for i in INBOUND_IDS}},
                    headers={"X-CSRF-Token": csrf})
    assert r.status_code == 422 and "unknown scorecard item 'greeting'" in r.json()["detail"]
    assert query(db, "SELECT count(*) FROM qa_reviews") == [(0,)]
    r = client.post(url, data={**{i: "fail" for i in CALLBACK_IDS}, "cb_result_explained": "pass", "csrf_token": csrf})
    assert r.status_code == 200
    assert json.loads(query(db, "SELECT scores FROM qa_reviews WHERE call_id = 'cb-zh-02'")[0][0])["cb_result_explained"] \
        == "pass"
    assert client.get(f"/api/qa/{sample.sample_id}/cb-zh-02").json()["card"] == "callback"
    header = client.get(f"/qa/export/{sample.sample_id}.csv").text.lstrip("\ufeff").splitlines()[0].split(",")
    assert set(INBOUND_IDS + CALLBACK_IDS) <= set(header)


def test_the_cli_draws_callbacks_on_request_and_checks_a_review_against_their_card(tmp_path, capsys):
    from flows.cli import main

    def cli(*argv):
        code = main(["qa", *argv, "--db", str(db)])
        out, err = capsys.readouterr()
        return code, out, err

    db = tmp_path / "qa.duckdb"
    with Store(db) as store:
        store_conversations(store)
    code, out, _ = cli("sample", "-n", "5", "--seed", "3", "--callbacks", "0")
    assert code == 0 and "in-zh-01" in out and "cb-" not in out
    code, out, _ = cli("sample", "-n", "5", "--seed", "3")  # the inbound call is drawn once, ever
    sample_id = out.split(":")[0]
    assert code == 0 and {line.split()[0] for line in out.splitlines()[1:] if line.strip()} >= {"cb-en-01", "cb-zh-02"}
    code, _, err = cli("review", sample_id, "cb-zh-02", "--reviewer", "qa.lee", "--scores",
                       json.dumps({i: "pass" for i in INBOUND_IDS}))
    assert code == 2 and "unknown scorecard item 'greeting'" in err and len(err.strip().splitlines()) == 1
    code, out, _ = cli("review", sample_id, "cb-zh-02", "--reviewer", "qa.lee", "--scores",
                       json.dumps({i: "fail" for i in CALLBACK_IDS}))
    assert code == 0 and "stored" in out
