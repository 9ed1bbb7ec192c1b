"""The search index: one row per turn of its tokens (web.search cuts the masked text into
words), and DuckDB's full-text index (fts) over them, ranked by BM25.

`search_docs` holds (doc, call_id, seq, tokens), `doc` being "call_id:seq" (fts wants one key
column); `search_indexed` says which version of each call (its `processed_at`) the rows are of.
The fts index (schema `fts_main_search_docs`, in the same database file) does not follow its
table by itself, so a refresh replaces the rows of the calls that changed and rebuilds it, in
one transaction: a search never sees rows the index does not know, or the reverse.
"""
from __future__ import annotations

import pandas as pd

from pipeline.store.connect import has_table

DOCS = "search_docs"
FTS_SCHEMA = f"fts_main_{DOCS}"
# Tokens are cut before they get here (jieba words, Latin words, digit runs) and joined by spaces:
# the index splits on whitespace only (an empty `ignore` would split Chinese into characters) and
# neither stems nor drops stop words. A query is cut the same way.
_CREATE_FTS = (f"PRAGMA create_fts_index('{DOCS}', 'doc', 'tokens', stemmer='none', stopwords='none', "
               r"ignore='\s+', strip_accents=0, lower=1, overwrite=1)")


def has_search_index(conn) -> bool:
    """Whether the fts index over search_docs exists in the current database (it is built by
    the first refresh)."""
    return bool(conn.execute("SELECT 1 FROM duckdb_schemas() WHERE schema_name = ? AND database_name = current_database()",
                             [FTS_SCHEMA]).fetchone())


class SearchIndexTable:
    """Mixed into `Store`: search_docs, search_indexed and the fts index over search_docs."""

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

    def replace_search_docs(self, calls: list[tuple[str, object]], docs: list[tuple[str, int, str]]) -> None:
        """The calls' turns (call_id, seq, space-joined tokens) replace what was indexed for them,
        and the fts index is rebuilt over all turns, in one transaction."""
        ids = [c for c, _ in calls]
        frame = pd.DataFrame([(f"{c}:{s}", c, s, t) for c, s, t in docs], columns=["doc", "call_id", "seq", "tokens"])
        state = pd.DataFrame([(c, p) for c, p in calls if p is not None], columns=["call_id", "processed_at"])
        with self.transaction() as conn:
            conn.execute(f"DELETE FROM {DOCS} WHERE call_id IN (SELECT unnest(?))", [ids])
            conn.execute("DELETE FROM search_indexed WHERE call_id IN (SELECT unnest(?))", [ids])
            conn.register("_docs", frame)
            conn.register("_state", state)
            try:
                conn.execute(f"INSERT INTO {DOCS} SELECT * FROM _docs")
                conn.execute("INSERT INTO search_indexed SELECT * FROM _state")
            finally:
                conn.unregister("_docs")
                conn.unregister("_state")
            conn.execute(_CREATE_FTS)
