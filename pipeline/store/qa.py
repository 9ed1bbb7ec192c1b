"""QA samples and reviews (pipeline.outputs.qa draws, prefills and validates): what sampling
reads, a sample stored once (a call is sampled once, ever), one review per reviewer per call."""
from __future__ import annotations

import json
from datetime import datetime

import pandas as pd

from pipeline.store.calls import utcnow


def _period(where: list[str], params: list, start: datetime | None, end: datetime | None, column: str) -> None:
    if start:
        where.append(f"{column} >= ?")
        params.append(start)
    if end:
        where.append(f"{column} < ?")
        params.append(end)


_INBOUND = "coalesce(c.direction, 'inbound') = 'inbound'"


class QATable:
    """Mixed into `Store`: qa_samples, qa_reviews, and what sampling and prefill read."""

    def qa_candidates(self, start: datetime | None, end: datetime | None) -> pd.DataFrame:
        """Processed inbound calls (or of unknown direction) in the period never sampled before: id,
        agent, score, flags. The scorecard is the inbound one: the bank's callbacks (drawn apart,
        `qa_callback_candidates`) and other calls it placed are left out."""
        where, params = ["c.status = 'ok'", "c.call_id NOT IN (SELECT call_id FROM qa_samples)", _INBOUND], []
        _period(where, params, start, end, "c.started_at")
        return self.query(
            "SELECT c.call_id, c.agent_id, coalesce(e.call_score, 0) AS score, coalesce(e.flags, '[]') AS flags "
            f"FROM calls c LEFT JOIN escalation e USING (call_id) WHERE {' AND '.join(where)} ORDER BY c.call_id",
            params)

    def qa_period_counts(self, start: datetime | None, end: datetime | None) -> tuple[int, int, int, object, object]:
        """(processed inbound calls in the period, of them already sampled, processed calls in all,
        first and last start time of those)."""
        where, params = ["c.status = 'ok'", _INBOUND], []
        _period(where, params, start, end, "c.started_at")
        n_in_range, n_sampled = self.query(
            f"SELECT count(*), count(*) FILTER (WHERE call_id IN (SELECT call_id FROM qa_samples)) FROM calls c "
            f"WHERE {' AND '.join(where)}", params).iloc[0].tolist()
        n_ok, first, last = self.query(
            "SELECT count(*), min(started_at), max(started_at) FROM calls WHERE status = 'ok'").iloc[0].tolist()
        first, last = (None if pd.isna(t) else t for t in (first, last))
        return n_in_range, n_sampled, n_ok, first, last

    def qa_callback_candidates(self, start: datetime | None, end: datetime | None) -> pd.DataFrame:
        """Processed callback calls (the bank calling a customer back about a complaint) in the period
        never sampled before: id and agent. They are scored on the callback card."""
        where, params = ["c.status = 'ok'", "c.direction = 'callback'",
                         "c.call_id NOT IN (SELECT call_id FROM qa_samples)"], []
        _period(where, params, start, end, "c.started_at")
        return self.query(f"SELECT c.call_id, c.agent_id FROM calls c WHERE {' AND '.join(where)} ORDER BY c.call_id",
                          params)

    def qa_call_direction(self, call_id: str) -> str | None:
        """The stored direction of a call (None when unknown): which scorecard it is prefilled on."""
        found = self.rows("SELECT direction FROM calls WHERE call_id = ?", [call_id])
        return found[0]["direction"] if found else None

    def qa_left_out(self, start: datetime | None, end: datetime | None) -> int:
        """Processed calls in the period the bank placed for another purpose than a callback (outbound):
        no scorecard of theirs, not sampled."""
        where, params = ["c.status = 'ok'", "c.direction = 'outbound'"], []
        _period(where, params, start, end, "c.started_at")
        return int(self.query(f"SELECT count(*) FROM calls c WHERE {' AND '.join(where)}", params).iloc[0, 0])

    def store_qa_sample(self, rows: list[dict]) -> None:
        if rows:
            self.insert_rows("qa_samples", rows)

    def qa_call_rows(self, call_id: str) -> tuple[list[dict], dict, dict]:
        """What the prefill reads of one call: its turns (masked), its summary, its dynamics."""
        turns = self.query('SELECT seq, role, start, "end", redacted_text, signals FROM turns WHERE call_id = ? '
                           "ORDER BY start", [call_id]).to_dict("records")
        summary = self.query("SELECT category, demands, promises, deadline_promises FROM summaries WHERE call_id = ?",
                             [call_id]).to_dict("records")
        dynamics = self.query("SELECT agent_talk_s, customer_talk_s, agent_interruptions FROM dynamics "
                              "WHERE call_id = ?", [call_id]).to_dict("records")
        return turns, (summary[0] if summary else {}), (dynamics[0] if dynamics else {})

    def qa_sample_exists(self, sample_id: str) -> bool:
        return not self.query("SELECT 1 FROM qa_samples WHERE sample_id = ? LIMIT 1", [sample_id]).empty

    def qa_sampled(self, sample_id: str, call_id: str) -> dict | None:
        """The sample's row for the call (stratum, reason, prefilled scorecard), None if not in it."""
        found = self.rows("SELECT * FROM qa_samples WHERE sample_id = ? AND call_id = ?", [sample_id, call_id])
        return found[0] if found else None

    def qa_export_frame(self, sample_id: str) -> pd.DataFrame:
        """One row per sampled call and review: the call, its prefilled scorecard, the review."""
        return self.query(
            "SELECT s.sample_id, s.call_id, s.agent_id, c.customer_id, c.started_at, s.stratum, s.reason, s.seed, "
            "e.call_score, e.flags, s.scorecard, r.reviewer, r.reviewed_at, r.scores, r.comment "
            "FROM qa_samples s JOIN calls c USING (call_id) LEFT JOIN escalation e USING (call_id) "
            "LEFT JOIN qa_reviews r ON r.call_id = s.call_id AND r.sample_id = s.sample_id "
            "WHERE s.sample_id = ? ORDER BY s.stratum, s.call_id, r.reviewer", [sample_id])

    def qa_review_of(self, sample_id: str, call_id: str, reviewer: str) -> dict | None:
        found = self.rows("SELECT scores, comment, reviewed_at FROM qa_reviews WHERE sample_id = ? AND call_id = ? "
                          "AND reviewer = ? ORDER BY reviewed_at DESC LIMIT 1", [sample_id, call_id, reviewer])
        return found[0] if found else None

    def replace_qa_review(self, sample_id: str, call_id: str, reviewer: str, scores: dict[str, str],
                          comment: str) -> bool:
        """Store a review, replacing the reviewer's earlier one of the call; True when it replaced one."""
        with self.transaction() as conn:
            replaced = conn.execute("DELETE FROM qa_reviews WHERE call_id = ? AND reviewer = ? RETURNING 1",
                                    [call_id, reviewer]).fetchall()
            conn.execute("INSERT INTO qa_reviews (sample_id, call_id, reviewer, reviewed_at, scores, comment) "
                         "VALUES (?, ?, ?, ?, ?, ?)", [sample_id, call_id, reviewer, utcnow(), json.dumps(scores), comment])
        return bool(replaced)
