"""The search token index (web.search cuts the text into tokens): which calls it is behind on,
and their replacement, a batch of calls per short transaction."""
from __future__ import annotations

import pandas as pd

from pipeline.store.connect import has_table


class SearchIndexTable:
    """Mixed into `Store`: search_tokens and search_indexed."""

    def search_stale_calls(self) -> list[tuple[str, object]]:
        """(call_id, processed_at) of calls added or reprocessed since they were indexed, and
        (call_id, None) of indexed calls that are gone."""
        with self.reading() as conn:
            if not has_table(conn, "search_indexed"):
                return [(r[0], r[1]) for r in conn.execute("SELECT call_id, processed_at FROM calls").fetchall()]
            return conn.execute(
                "SELECT c.call_id, c.processed_at FROM calls c LEFT JOIN search_indexed i USING (call_id) "
                "WHERE i.call_id IS NULL OR i.processed_at IS DISTINCT FROM c.processed_at "
                "UNION ALL SELECT i.call_id, NULL FROM search_indexed i ANTI JOIN calls c USING (call_id)").fetchall()

    def masked_turn_texts(self, call_ids: list[str]) -> list[tuple[str, int, str]]:
        """(call_id, seq, masked text) of the calls' turns."""
        with self.reading() as conn:
            return conn.execute("SELECT call_id, seq, coalesce(redacted_text, '') FROM turns "
                                "WHERE call_id IN (SELECT unnest(?))", [call_ids]).fetchall()

    def replace_search_tokens(self, calls: list[tuple[str, object]], tokens: list[tuple[str, int, str]]) -> None:
        """The calls' tokens replace what was indexed for them, in one transaction."""
        ids = [c for c, _ in calls]
        with self.transaction() as conn:
            conn.execute("DELETE FROM search_tokens WHERE call_id IN (SELECT unnest(?))", [ids])
            conn.execute("DELETE FROM search_indexed WHERE call_id IN (SELECT unnest(?))", [ids])
            frame = pd.DataFrame(tokens, columns=["call_id", "seq", "token"])
            state = pd.DataFrame([(c, p) for c, p in calls if p is not None], columns=["call_id", "processed_at"])
            conn.register("_tok", frame)
            conn.register("_state", state)
            conn.execute("INSERT INTO search_tokens SELECT * FROM _tok")
            conn.execute("INSERT INTO search_indexed SELECT * FROM _state")
