"""Callbacks a handler recorded (the web app's worklist drops a customer whose callback since
their last complaint closed it), and recorded callback calls (calls.direction = 'callback'), which
count as callbacks made: one the customer spoke in reached them."""
from __future__ import annotations

from datetime import datetime

from pipeline.store.calls import utcnow

# What a callback can end in. REACHED: the customer was spoken to (a callback made, for the
# dashboard). CLOSING: nothing more is owed, so the customer leaves the worklist and their
# recordings may age out; after "no answer" or a follow-up still owed they stay, next attempt due.
CALLBACK_OUTCOMES = ("resolved", "follow_up", "no_answer", "escalated")
REACHED_OUTCOMES = ("resolved", "follow_up", "escalated")
CLOSING_OUTCOMES = ("resolved", "escalated")


# A recorded callback reached the customer when the other side spoke this long (a ring-out, a
# voicemail greeting cut short or a hang-up is shorter); it closes the case only when its summary
# found it resolved, otherwise a follow-up is still owed, as when a handler records "follow_up".
REACHED_SECONDS = 3.0


def attempts_sql(tz: str, form: bool = True) -> str:
    """Every callback attempt as rows (customer_id, case_id, done_at UTC, outcome): those recorded
    through the web form (no case) and the recorded callback calls, at their start (centre time,
    converted with the zone parameter `tz`, e.g. "?" or "$tz"). A callback call is a callback made
    whatever its case; which complaint it answers is for the reader (same case, or either unknown).
    `form`: False for a database without the callbacks table."""
    recorded = ("SELECT customer_id, NULL::VARCHAR AS case_id, done_at, outcome FROM callbacks UNION ALL"
                if form else "")
    return f"""({recorded}
        SELECT c.customer_id, c.case_id, timezone('UTC', timezone({tz}, c.started_at)) AS done_at,
               CASE WHEN coalesce(d.customer_talk_s, 0) < {REACHED_SECONDS} THEN 'no_answer'
                    WHEN s.outcome = 'resolved' THEN 'resolved' ELSE 'follow_up' END AS outcome
        FROM calls c LEFT JOIN dynamics d USING (call_id) LEFT JOIN summaries s USING (call_id)
        WHERE c.status = 'ok' AND c.direction = 'callback' AND c.customer_id IS NOT NULL
          AND c.started_at IS NOT NULL)"""


def complaint_sql(level: float, call: str = "c", escalation: str = "e") -> str:
    """A complaint call, as every reader counts it: not a callback (the bank calling the customer back
    is never a new or repeat complaint), at or above the complaint level, or flagged."""
    return (f"(coalesce({call}.direction, 'inbound') <> 'callback' AND ({escalation}.call_score >= {float(level)} "
            f"OR json_array_length(coalesce({escalation}.flags, '[]')) > 0))")


def outcomes_sql(outcomes: tuple[str, ...]) -> str:
    """An SQL list of outcomes ('resolved', 'escalated'): for the constants above only, never input."""
    if not set(outcomes) <= set(CALLBACK_OUTCOMES):
        raise ValueError(f"not callback outcomes: {sorted(set(outcomes) - set(CALLBACK_OUTCOMES))}")
    return ", ".join(f"'{o}'" for o in outcomes)


class CallbacksTable:
    """Mixed into `Store`: the callbacks table."""

    def record_callback(self, customer_id: str, handler: str, outcome: str, note: str) -> str | None:
        """Mark a customer called back; returns the customer id as stored, None for an unknown customer."""
        with self.transaction() as conn:
            found = conn.execute("SELECT customer_id FROM calls WHERE lower(customer_id) = lower(?) LIMIT 1",
                                 [customer_id.strip()]).fetchone()
            if not found:
                return None
            conn.execute("INSERT INTO callbacks VALUES (?, ?, ?, ?, ?)", [found[0], utcnow(), handler, outcome, note])
        return found[0]

    def reached_since(self, since: datetime, tz: str) -> dict[str, list[datetime]]:
        """Per customer, when (UTC) a callback reached them since `since`: one a handler recorded
        or a recorded callback call the customer spoke in (`attempts_sql`); `tz` the centre's zone."""
        with self.reading() as conn:
            has_form = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'callbacks'"
                                    ).fetchone()[0] > 0
            found = conn.execute(f"SELECT customer_id, done_at FROM {attempts_sql('?', has_form)} a "
                                 f"WHERE outcome IN ({outcomes_sql(REACHED_OUTCOMES)}) AND done_at >= ? "
                                 "ORDER BY done_at", [tz, since]).fetchall()
        out: dict[str, list[datetime]] = {}
        for customer, at in found:
            out.setdefault(customer, []).append(at)
        return out
