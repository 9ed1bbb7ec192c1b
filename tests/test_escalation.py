"""Escalation scores on the sample calls, the lexicon, speaker-relative voice, and the eval set."""
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.audio import decode
from pipeline.escalation import RuleScorer, lexicon_hits, turn_features
from pipeline.types import Turn

ESCALATING, CALM = ("zh-1001-b", "en-2002"), ("zh-1001-a", "en-2001")


def _escalation(conn):
    rows = conn.execute("SELECT call_id, call_score, trend, flags, evidence, peak_time, plot_path, de_escalation "
                        "FROM escalation").fetchall()
    return {r[0]: {"score": r[1], "trend": r[2], "flags": json.loads(r[3]), "evidence": json.loads(r[4]),
                   "peak": r[5], "plot": r[6], "de_escalation": json.loads(r[7])} for r in rows}


def test_escalating_calls_score_clearly_above_calm_ones(read_db):
    esc = _escalation(read_db)
    # Measured: 55.8 and 75.4 against 9.2 and 8.0.
    assert min(esc[c]["score"] for c in ESCALATING) >= max(esc[c]["score"] for c in CALM) + 25
    for c in ESCALATING:
        assert esc[c]["trend"] == "rising"
    for c in CALM:
        assert esc[c]["trend"] == "flat" and esc[c]["flags"] == []


def test_customer_turn_scores_rise_across_the_escalating_part(read_db):
    for call_id in ESCALATING:
        scores = [r[0] for r in read_db.execute(
            "SELECT score FROM turns WHERE call_id = ? AND role = 'customer' ORDER BY start", [call_id]).fetchall()]
        half = len(scores) // 2
        assert max(scores[half:]) > max(scores[:half]) + 20, (call_id, scores)
        assert np.mean(scores[half:]) > np.mean(scores[:half]), (call_id, scores)


def test_flags_match_what_the_customer_said(read_db):
    esc = _escalation(read_db)
    assert {"supervisor_request", "legal_threat", "regulator_threat"} <= set(esc["en-2002"]["flags"])
    assert "regulator_threat" in esc["zh-1001-b"]["flags"]  # 12378 / 金融监管总局


def test_evidence_has_times_quotes_and_measured_deltas(read_db):
    esc = _escalation(read_db)["en-2002"]
    assert 1 <= len(esc["evidence"]) <= 3
    peak = max(esc["evidence"], key=lambda e: e["score"])
    assert abs(peak["time"] - esc["peak"]) < 1e-6
    assert "dB" in peak["detail"] and "SD" in peak["detail"]
    assert peak["quote"][:20] in peak["detail"]
    mm, ss = peak["detail"].split(" at ")[-1][:5].split(":")
    assert int(mm) * 60 + int(ss) == int(peak["time"])


def test_agent_apologies_are_found_with_the_customer_response(read_db):
    de = _escalation(read_db)["en-2002"]["de_escalation"]
    phrases = {p for d in de for p in d["phrases"]}
    assert phrases & {"i am sorry", "i am really sorry", "sorry to hear"} and "i understand" in phrases
    assert all("customer_before" in d and "calmed" in d for d in de)


def test_plot_is_written_per_call(read_db):
    for call_id, e in _escalation(read_db).items():
        svg = Path(e["plot"]).read_text(encoding="utf-8")
        assert svg.startswith("<svg") and "polyline" in svg and call_id in svg


def test_lexicon_matches_words_not_fragments():
    assert lexicon_hits("hello, how can I help") == []
    assert lexicon_hits("请帮我操作一下") == []
    categories = {h.category for h in lexicon_hits("I will call my LAWYER and the Ombudsman")}
    assert categories == {"legal_threat", "regulator_threat"}
    assert {h.category for h in lexicon_hits("我要投诉你们，打12378")} == {"complaint", "regulator_threat"}


def test_a_naturally_loud_voice_is_not_angry(tmp_path):
    """Loud from the first word to the last: no change against the speaker's own baseline."""
    def speak(text, name):
        path = tmp_path / name
        subprocess.run(["espeak-ng", "-v", "en-us+m1", "-a", "190", "-p", "65", "-s", "170", "-w", str(path), text],
                       check=True)
        return decode(path).mono()

    first = speak("Hello, I am calling about my account and a question I have.", "a.wav")
    second = speak("Could you tell me when the transfer to my landlord will arrive?", "b.wav")
    audio = np.concatenate([first, np.zeros(8000, np.float32), second])
    t1 = len(first) / 16000
    turns = (Turn("customer", "s", 0, t1, "a"), Turn("customer", "s", t1 + 0.5, t1 + 0.5 + len(second) / 16000, "b"))
    target = turn_features(turns, {None: audio}, "en")[1]
    assert RuleScorer().voice_score(target) < 15


def test_eval_set_auc():
    """The labelled set in tests/eval: combined score separates escalated from calm."""
    from pipeline.evaluation import evaluate

    report = evaluate(use_asr=False)
    assert report["n_items"] == 60
    assert report["auc"]["combined"] >= 0.9  # measured 1.000
    # Each signal alone sees only its half of the set: informative, but not enough.
    assert 0.6 < report["auc"]["voice_only"] < 0.95 and 0.6 < report["auc"]["words_only"] < 0.95


@pytest.mark.parametrize("quarters, trend", [
    ([10.8, 18.1, 74.1, 19.1], "rising"),  # a calmer closing turn does not undo the escalation
    ([3.7, 4.3, 7.4, 16.5], "flat"),  # drift at a calm level is no trend
    ([60, 70, 20, 10], "falling"),
    ([None, None, None, 50], "flat"),
])
def test_trend_compares_late_and_early_halves(quarters, trend):
    from pipeline.escalation import _trend

    assert _trend(quarters) == trend
