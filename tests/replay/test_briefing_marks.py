"""What a briefing's moments and marked words say, on the replayed sample calls (stored recognition,
real audio, a real DuckDB file): moments that mean what they say, words Whisper was unsure of and
corrections shown where the text is used."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pipeline.analysis.i18n import text
from pipeline.analysis.uncertain import UNSURE_BELOW, marked
from pipeline.config.settings import Settings
from pipeline.outputs.briefing import build_briefing
from pipeline.store import Store


@pytest.fixture
def store(replayed, tmp_path):
    path = tmp_path / "calls.duckdb"
    shutil.copy2(replayed, path)
    with Store(path) as s:
        yield s


def _party_scores(store: Store, call_id: str) -> list[float]:
    roles = {e["role"] for e in json.loads(store.rows("SELECT evidence FROM escalation WHERE call_id = ?",
                                                      [call_id])[0]["evidence"])}
    return [r["score"] for r in store.rows("SELECT role, score FROM turns WHERE call_id = ?", [call_id])
            if r["role"] in roles and r["score"] is not None]


@pytest.mark.parametrize("language", ["zh", "en"])
def test_moments_are_above_their_calls_calm_level_and_say_why_in_one_language(store, language):
    policy = Settings().policy
    seen = 0
    for customer in [r["customer_id"] for r in store.rows("SELECT DISTINCT customer_id FROM calls")]:
        b = build_briefing(store, customer, language=language)
        for m in b.moments:
            seen += 1
            calm = float(np.percentile(_party_scores(store, m["call_id"]), 25))
            assert m["score"] > calm and m["reasons"], m
            # The headline is the translation of each reason, in the briefing's language only.
            assert m["headline"] == text("evidence.separator", language).join(
                text(f"moment.{r}", language) for r in m["reasons"])
            assert m["quote"] not in m["detail"]  # the evidence says what rose; the quote is shown once
        # A threat the call was flagged for is the first moment of that call's customer.
        flagged = {f for f in b.flags if f in {str(x) for x in policy.threat_flags}}
        if flagged:
            assert set(b.moments[0]["reasons"]) & flagged
    assert seen


def test_a_calm_call_has_no_moment_worth_hearing(store):
    """en-2001 (a fee query, calm throughout) and zh-1001-a (a calm first call): nothing is listed
    from them, where the old list showed their 0-score openings."""
    calm_calls = [r["call_id"] for r in store.rows(
        "SELECT call_id FROM escalation WHERE call_score < ? AND flags = '[]'", [Settings().policy.levels.complaint])]
    assert calm_calls
    customers = {r["customer_id"] for r in store.rows("SELECT customer_id FROM calls")}
    listed = {m["call_id"] for c in customers for m in build_briefing(store, c, language="zh").moments}
    assert not listed & set(calm_calls)


def _turn_words(store: Store, call_id: str) -> list[tuple[dict, list[dict]]]:
    words = store.rows('SELECT text, probability, role, start, "end" FROM words WHERE call_id = ? ORDER BY seq', [call_id])
    turns = store.rows('SELECT role, start, "end", redacted_text FROM turns WHERE call_id = ? ORDER BY seq', [call_id])
    return [(t, [w for w in words if w["role"] == t["role"] and t["start"] - 0.01 <= w["start"] and w["end"] <= t["end"] + 0.01])
            for t in turns]


def test_marked_text_is_the_shown_text_with_unsure_words_and_corrections_marked(store):
    unsure = corrected = 0
    for call_id in [r["call_id"] for r in store.rows("SELECT call_id FROM calls WHERE status = 'ok'")]:
        corrections = store.rows("SELECT original, corrected FROM corrections WHERE call_id = ?", [call_id])
        for turn, words in _turn_words(store, call_id):
            shown = turn["redacted_text"] or ""
            pieces = marked(shown, words, corrections, "zh" if call_id.startswith("zh") else "en")
            assert "".join(p.text for p in pieces) == shown  # nothing added, nothing lost, nothing unmasked
            doubted = [w["text"].strip() for w in words if w["probability"] < UNSURE_BELOW and w["text"].strip()]
            for p in pieces:
                if p.unsure:
                    unsure += 1
                    # An unsure run holds at least one word below the bar (a vocabulary term may widen it).
                    assert any(w in p.text for w in doubted)
                if p.corrected_from:
                    corrected += 1
                    assert any(c["corrected"] == p.text for c in corrections)
                    assert p.corrected_from != p.text
    assert unsure and corrected


def test_a_misheard_term_shows_the_vocabulary_term_it_may_have_been(store):
    """In the stored run of zh-1001-b Whisper was unsure of 服务态度 and wrote something else;
    the dotted run names the term. Common words it was unsure of (你们, 非常) name nothing."""
    pieces = [p for turn, words in _turn_words(store, "zh-1001-b")
              for p in marked(turn["redacted_text"] or "", words, [], "zh")]
    assert any(p.unsure and p.may_be == "服务态度" for p in pieces)
    assert all(p.may_be is None for p in pieces if p.unsure and p.text in ("你们", "非常", "我", "您"))
    assert all(p.unsure for p in pieces if p.may_be)
