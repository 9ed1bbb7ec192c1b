"""Summaries, briefings (flow, CLI, nightly refresh) and the PII scan of what handlers see."""
import json
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

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
    assert data["moments"] and data["latest_plot"].endswith("zh-1001-b.svg")


def test_cli_brief_prints_the_briefing(nightly_db, tmp_path, capsys):
    from flows.cli import main

    db = tmp_path / "copy.duckdb"
    shutil.copy2(nightly_db[0], db)
    shutil.copytree(nightly_db[0].parent / "plots", tmp_path / "plots")
    assert main(["brief", "C2002", "--db", str(db), "--input", str(SAMPLES)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Pre-callback briefing: Customer C2002")
    assert "en-2002" in out and "supervisor_request" in out and "Do not promise a specific deadline" in out
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
