"""Callbacks a handler recorded (the web app's worklist drops a customer whose callback since
their last complaint reached them)."""
from __future__ import annotations

from pipeline.store.calls import utcnow

# What a callback can end in. REACHED: the customer was spoken to (a callback made, for the
# dashboard). CLOSING: nothing more is owed, so the customer leaves the worklist and their
# recordings may age out; after "no answer" or a follow-up still owed they stay, next attempt due.
CALLBACK_OUTCOMES = ("resolved", "follow_up", "no_answer", "escalated")
REACHED_OUTCOMES = ("resolved", "follow_up", "escalated")
CLOSING_OUTCOMES = ("resolved", "escalated")


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
