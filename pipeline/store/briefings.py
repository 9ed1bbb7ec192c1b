"""What a briefing reads (a customer's processed calls and their masked turns) and the briefings
it writes (every version kept: a handler can see what the previous shift read)."""
from __future__ import annotations

from pipeline.store.calls import utcnow


class BriefingsTable:
    """Mixed into `Store`: the briefings table and a customer's history."""

    def customer_history(self, customer_key: str) -> list[dict]:
        """The customer's processed calls, oldest first, with their escalation and summary
        (`customer_key`: the id as pipeline.outputs.briefing.customer_key makes it). Rows as
        DuckDB gives them: a missing value is None (a frame would make it NaN, which is truthy and
        does not sort beside text)."""
        return self.rows(
            "SELECT c.call_id, c.customer_id, c.started_at, c.agent_id, c.case_id, c.language, c.duration, "
            "c.direction, c.direction_source, c.complaint_source, d.customer_talk_s, "
            "e.call_score, e.trend, e.flags, e.sources, e.evidence, e.plot_path, s.category, s.outcome, s.demands, s.promises, "
            "s.deadline_promises, s.summary FROM calls c LEFT JOIN escalation e USING (call_id) "
            "LEFT JOIN summaries s USING (call_id) LEFT JOIN dynamics d USING (call_id) WHERE lower(trim(c.customer_id)) = ? AND c.status = 'ok' "
            "ORDER BY c.started_at NULLS FIRST, c.call_id", [customer_key])

    def masked_turns(self, call_ids: list[str]) -> list[dict]:
        """The calls' turns in order, with the masked text only (as `text`): facts quote whole
        sentences, and a number cut at its dots is not recognisable."""
        return self.rows(
            'SELECT call_id, role, start, "end", redacted_text AS text, score, signals, language FROM turns '
            "WHERE call_id IN (SELECT unnest(?)) ORDER BY call_id, seq", [call_ids])

    def write_briefing(self, customer_id: str, language: str, n_calls: int, markdown: str, payload: str) -> None:
        self.insert_rows("briefings", [{"customer_id": customer_id, "created_at": utcnow(), "language": language,
                                        "n_calls": n_calls, "markdown": markdown, "json": payload}])
