"""Summaries, briefings (flow, CLI, nightly refresh) and the PII scan of what handlers see."""
import json
import shutil

import pytest

from pipeline.outputs.plots import plot_name
from pipeline.records import Flag, Trend
from tests.conftest import SAMPLES


def test_every_ok_call_has_a_summary(read_db):
    rows = read_db.execute("SELECT call_id, category, outcome, summary, demands FROM summaries ORDER BY call_id").fetchall()
    by_id = {r[0]: r for r in rows}
    assert set(by_id) == {"en-2001", "en-2002", "zh-1001-a", "zh-1001-b"}
    assert by_id["zh-1001-a"][1] == "card_blocked" and by_id["en-2001"][1] == "fees_interest"
    assert by_id["en-2002"][1] == "transfer_failed"
    assert by_id["en-2002"][2] == "escalated" and by_id["en-2001"][2] == "resolved"
    assert by_id["zh-1001-b"][3].startswith(("客户", "坐席"))  # written in the call's language
    assert json.loads(by_id["en-2002"][4])  # demands found, with times


def test_deadline_promise_is_flagged(read_db):
    deadlines = json.loads(read_db.execute(
        "SELECT deadline_promises FROM summaries WHERE call_id = 'en-2002'").fetchone()[0])
    assert any("within" in d["text"].lower() for d in deadlines)


def test_nightly_refreshed_the_briefing_of_the_customer_with_two_calls(read_db):
    md, payload = read_db.execute("SELECT markdown, json FROM briefings WHERE customer_id = 'C1001' "
                                  "ORDER BY created_at DESC LIMIT 1").fetchone()
    data = json.loads(payload)
    assert data["n_calls"] == 2 and data["language"] == "zh"
    assert "zh-1001-a" in md and "zh-1001-b" in md
    assert {d["call_id"] for d in data["demands"]} == {"zh-1001-a", "zh-1001-b"}  # merged across calls
    assert data["escalation_trend"] == "rising" and "regulator_threat" in data["flags"]
    assert "repeat_complaint" in data["flags"]
    assert "建议沟通方式" in md and "不要承诺具体时限" in md and "客户已经告诉我们的" in md
    assert data["callback_overdue"] is True  # the sample calls are days old
    assert data["moments"] and data["latest_plot"].endswith(f"{plot_name('zh-1001-b')}.svg")


def test_cli_brief_prints_the_briefing(nightly_db, tmp_path, capsys):
    from flows.cli import main

    db = tmp_path / "copy.duckdb"
    shutil.copy2(nightly_db[0], db)
    shutil.copytree(nightly_db[0].parent / "plots", tmp_path / "plots")
    assert main(["brief", "C2002", "--db", str(db), "--input", str(SAMPLES)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Pre-callback briefing: Customer C2002")
    assert "en-2002" in out and "asked for a supervisor" in out and "Do not promise a specific deadline" in out
    assert "Caution: an earlier call promised a specific deadline" in out
    assert main(["brief", "NOBODY", "--db", str(db), "--input", str(SAMPLES)]) == 1


def test_briefing_flow_processes_new_calls_first(prefect_harness, tmp_path):
    from prefect.artifacts import Artifact

    from flows.briefing import briefing

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("zh-1001-a.wav", "zh-1001-b.flac", "en-2001.mp3", "manifest.csv"):
        shutil.copy2(SAMPLES / name, folder / name)
    result = briefing("C1001", input_dir=str(folder), db_path=str(tmp_path / "b.duckdb"))
    assert result["processed"] == 2 and result["n_calls"] == 2  # only C1001's calls, not en-2001
    assert "zh-1001-a" in result["markdown"] and "zh-1001-b" in result["markdown"]
    assert Artifact.get("briefing-c1001").data.startswith("# 回访前简报")
    again = briefing("C1001", input_dir=str(folder), db_path=str(tmp_path / "b.duckdb"))
    assert again["processed"] == 0


# --- Briefings on stored recognition runs (evaluation/recognition.py): facts, deadlines, one language, time zones.
# These hold on any CPU: the transcripts are fixed, the audio and every later stage are real.

from datetime import datetime, timedelta, timezone  # noqa: E402
from pathlib import Path  # noqa: E402
from zoneinfo import ZoneInfo  # noqa: E402

BEIJING = ZoneInfo("Asia/Shanghai")
READ_AT = datetime(2026, 11, 21, 9, 0, tzinfo=BEIJING)  # the morning after the sample calls
CUSTOMERS = ("C1001", "C2001", "C2002")


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    from evaluation.recognition import replay_db

    return replay_db(tmp_path_factory.mktemp("replay") / "replay.duckdb")


@pytest.fixture(scope="module")
def briefings(replayed):
    from pipeline.outputs.briefing import build_briefing, to_markdown
    from pipeline.store import Store

    with Store(replayed) as store:
        built = {c: build_briefing(store, c, now=READ_AT) for c in CUSTOMERS}
    return {c: (b, to_markdown(b)) for c, b in built.items()}


def _kinds(b, kind):
    return [f for f in b.facts if f["kind"] == kind]


def test_every_briefing_lists_facts_and_deadlines_with_clock_times_and_status(briefings):
    for customer, (b, md) in briefings.items():
        assert b.facts, customer
        calls = {c["call_id"] for c in b.calls}
        for f in b.facts:
            assert f["call_id"] in calls and f["time"] >= 0 and f["text"]
            assert datetime.fromisoformat(f["said_at"]).utcoffset() == timedelta(hours=8)  # centre zone
            assert f["label"] in md
        for d in b.deadlines:
            due = datetime.fromisoformat(d["due"])
            assert due.utcoffset() == timedelta(hours=8)
            hours = (due - READ_AT).total_seconds() / 3600
            assert d["status"] == ("passed" if hours <= 0 else "open") and d["hours_left"] == pytest.approx(hours, abs=0.06)
            assert due.strftime("%Y-%m-%d %H:%M") in md


def test_the_told_us_list_shows_each_sentence_once_with_all_its_facts(briefings):
    from pipeline.outputs.briefing import facts_by_sentence

    for customer, (b, md) in briefings.items():
        told = md.split("### ")[2]  # the facts list, after the deadlines list
        sentences = facts_by_sentence(b.facts)
        for s in sentences:
            quoted = [line for line in told.splitlines() if s["text"] in line]
            assert len(quoted) == 1, (customer, s["text"])
            assert all(x["label"] in quoted[0] for x in s["facts"])
        kinds = {(f["call_id"], f["time"], f["text"]) for f in b.facts if f["kind"] != "deadline"}
        assert len(sentences) == len(kinds)
    # The sample calls do say sentences that hold two kinds of fact, so the grouping is exercised.
    assert any(len(s["facts"]) > 1 for b, _ in briefings.values() for s in facts_by_sentence(b.facts))


def test_c2002_the_payment_to_the_landlord_and_the_eviction_threat(briefings):
    b, md = briefings["C2002"]
    amounts = [f["value"] for f in _kinds(b, "amount")]
    assert {"amount": 3000, "currency": "GBP", "payee": "landlord"} in amounts
    assert "eviction" in {f["value"]["id"] for f in _kinds(b, "consequence")}
    assert "3,000 GBP to the landlord" in md and "Consequence: eviction" in md
    transfer_day = [f for f in _kinds(b, "date") if f["call_id"] == "en-2002"]
    assert any(f["value"]["start"].startswith("2026-11-16") for f in transfer_day)  # "on Monday", before the Friday call


def test_c1001_school_fees_next_week_and_the_five_pm_deadline_that_passed(briefings):
    b, md = briefings["C1001"]
    fees = [f for f in _kinds(b, "consequence") if f["value"]["id"] == "school_fees"]
    assert fees and fees[0]["call_id"] == "zh-1001-a"
    assert fees[0]["value"]["start"].startswith("2026-11-23")  # 下个星期, said on Thursday 19 Nov
    five_pm = [d for d in b.deadlines if d["due"] == "2026-11-20T17:00:00+08:00"]
    assert len(five_pm) == 1 and five_pm[0]["call_id"] == "zh-1001-b"
    assert five_pm[0]["status"] == "passed" and five_pm[0]["hours_left"] == -16.0
    assert "截止 2026-11-20 17:00" in md and "已过期" in md and "要交学费" in md
    assert "K-2026-1101" in md and "A017" in md and b.case_ids == ["K-2026-1101"]


def test_the_five_pm_deadline_is_open_before_five(replayed):
    from pipeline.outputs.briefing import build_briefing
    from pipeline.store import Store

    with Store(replayed) as store:
        b = build_briefing(store, "C1001", now=datetime(2026, 11, 20, 8, 45, tzinfo=timezone.utc))  # 16:45 Beijing
    (five_pm,) = [d for d in b.deadlines if d["due"] == "2026-11-20T17:00:00+08:00"]
    assert five_pm["status"] == "open" and five_pm["hours_left"] == 0.2


def _ascii_phrases(language):
    from pipeline.analysis.i18n import phrases

    return {p for p in phrases(language) if len(p) >= 4 and any(ch.isalpha() and ch.isascii() for ch in p)}


def test_one_language_per_briefing(briefings):
    from pipeline.analysis.i18n import phrases

    zh_b, zh_md = briefings["C1001"]
    assert zh_b.language == "zh"
    english = _ascii_phrases("en") - phrases("zh")
    leaks = [p for p in english if p in zh_md]
    assert not leaks, leaks
    assert "SD" not in zh_md and "semitones" not in zh_md and "标准差" in zh_md  # evidence re-rendered
    for customer in ("C2001", "C2002"):
        b, md = briefings[customer]
        assert b.language == "en"
        assert not [ch for ch in md if "\u4e00" <= ch <= "\u9fff"], customer  # not one Chinese character
        assert not [p for p in phrases("zh") if p in md and p not in phrases("en")]


def test_trend_across_calls_only_with_more_than_one_call(briefings):
    assert briefings["C1001"][0].escalation_trend == "rising"
    for customer in ("C2001", "C2002"):
        b, md = briefings[customer]
        assert b.escalation_trend is None and "one call only, no trend across calls" in md
        assert "Trend across calls: rising" not in md


def test_customer_ids_match_case_insensitively_and_trimmed(replayed, tmp_path, capsys):
    from flows.cli import main

    empty = tmp_path / "no-new-calls"
    empty.mkdir()
    db = tmp_path / "elsewhere" / "copy.duckdb"
    db.parent.mkdir()
    shutil.copy2(replayed, db)
    assert main(["brief", " c1001 ", "--db", str(db), "--input", str(empty), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["customer_id"] == "C1001" and data["n_calls"] == 2
    assert data["latest_plot"] == f"plots/{plot_name('zh-1001-b')}.svg"  # relative to the database's folder, wherever it is
    assert main(["brief", "c9999", "--db", str(db), "--input", str(empty)]) == 1


def test_the_plot_link_resolves_from_the_database_folder(replayed, briefings):
    b, md = briefings["C1001"]
    assert b.latest_plot == f"plots/{plot_name('zh-1001-b')}.svg" and f"]({b.latest_plot})" in md
    assert (Path(replayed).parent / b.latest_plot).read_text(encoding="utf-8").startswith("<svg")


def test_callback_clock_compares_in_the_centre_zone(replayed):
    from pipeline.config.settings import Settings
    from pipeline.outputs.briefing import build_briefing
    from pipeline.store import Store

    ten_past = datetime(2026, 11, 20, 8, 50)  # naive = UTC, i.e. 16:50 in Beijing: 10 min after zh-1001-b began
    with Store(replayed) as store:
        beijing = build_briefing(store, "C1001", now=ten_past)
        london = build_briefing(store, "C1001", now=ten_past, settings=Settings(timezone="Europe/London"))
    assert beijing.minutes_since_last_complaint == 10.0 and beijing.callback_overdue is False
    assert beijing.last_contact == "2026-11-20T16:40:00+08:00"
    # The same manifest time read in a London centre is 8 hours later: the call has not happened yet.
    assert london.minutes_since_last_complaint == -470.0 and london.last_contact.endswith("+00:00")


def test_translation_table_is_complete():
    from pipeline.analysis.facts import lexicon
    from pipeline.analysis.i18n import LANGUAGES, table
    from pipeline.analysis.summary import categories

    entries = table()
    for key, entry in entries.items():
        assert set(entry) == set(LANGUAGES) and all(entry.values()), key
        holes = [set(__import__("re").findall(r"\{(\w+)\}", entry[lang])) for lang in LANGUAGES]
        if key.startswith("error."):  # an English error may add detail for the API (zh leaves it out)
            assert all(h <= holes[LANGUAGES.index("en")] for h in holes), key
        else:
            assert all(h == holes[0] for h in holes), key  # the same placeholders in every language
    needed = [f"flag.{f}" for f in Flag]  # every flag any stage can raise has a label
    needed += [f"category.{c['id']}" for c in categories()["categories"]] + ["category.other"]
    needed += [f"consequence.{k}" for k in lexicon()["consequences"]] + [f"product.{k}" for k in lexicon()["products"]]
    needed += [f"trend.{t}" for t in Trend] + [f"outcome.{o}" for o in ("resolved", "pending", "escalated")]
    assert not [k for k in needed if k not in entries]
