"""Word search across calls: a token table in DuckDB, filled with jieba.

DuckDB's `fts` extension is not in the Python wheel and cannot be downloaded here (no network),
and its stemmer does not segment Chinese anyway. So each turn's masked text is cut with jieba's
search mode (Chinese words and their sub-words) plus lower-cased Latin words and digits, one row
per (call, turn, token). A query is cut the same way and a turn matches when it holds every
query token. The index follows `calls.processed_at`, so reprocessed calls are re-indexed.
"""
from __future__ import annotations

import re
import threading
from functools import lru_cache
from pathlib import Path

import pandas as pd

from .db import DatabaseBusy, has_table, reading, rows, writing

_LATIN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_CJK = re.compile(r"[\u3400-\u9fff]+")
INDEX_BATCH = 2000  # calls per write transaction, so a writer waiting for the file is not starved
_REFRESHING = threading.Lock()  # one refresh at a time; a search meanwhile answers from the index as it is


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(60)
    jieba.initialize()
    return jieba


def tokens(text: str | None) -> list[str]:
    """Search tokens of a text: Chinese words and sub-words (jieba), Latin words, digit runs."""
    if not text:
        return []
    text = text.lower()
    out = set(_LATIN.findall(text))
    for run in _CJK.findall(text):
        out.update(w for w in _jieba().cut_for_search(run) if w.strip())
        if len(run) == 1:
            out.add(run)
    return sorted(out)


def query_tokens(text: str) -> list[str]:
    """A query's tokens: for Chinese, the longest words jieba finds (its sub-words are in the index too)."""
    text = (text or "").lower()
    out = list(dict.fromkeys(_LATIN.findall(text)))
    for run in _CJK.findall(text):
        out += [w for w in _jieba().cut(run) if w.strip()]
    return list(dict.fromkeys(out))


def stale_calls(conn) -> list[tuple[str, object]]:
    if not has_table(conn, "search_indexed"):
        return [(r[0], r[1]) for r in conn.execute("SELECT call_id, processed_at FROM calls").fetchall()]
    return conn.execute(
        "SELECT c.call_id, c.processed_at FROM calls c LEFT JOIN search_indexed i USING (call_id) "
        "WHERE i.call_id IS NULL OR i.processed_at IS DISTINCT FROM c.processed_at "
        "UNION ALL SELECT i.call_id, NULL FROM search_indexed i ANTI JOIN calls c USING (call_id)").fetchall()


def refresh_index(db_path: Path, budget: float = 2.0) -> int:
    """Index calls added or reprocessed since the last refresh; returns how many. Skipped (0)
    while another refresh runs or another process holds the file: search then answers from the
    index it has."""
    if not _REFRESHING.acquire(blocking=False):
        return 0
    try:
        return _refresh(db_path, budget)
    finally:
        _REFRESHING.release()


def _refresh(db_path: Path, budget: float) -> int:
    try:
        with reading(db_path, budget) as conn:
            stale = stale_calls(conn)
            if not stale:
                return 0
            ids = [c for c, _ in stale]
            turns = conn.execute("SELECT call_id, seq, coalesce(redacted_text, '') FROM turns "
                                 "WHERE call_id IN (SELECT unnest(?))", [ids]).fetchall()
    except DatabaseBusy:
        return 0
    by_call: dict[str, list] = {}
    for call_id, seq, text in turns:
        by_call.setdefault(call_id, []).extend((call_id, seq, t) for t in tokens(text))
    done = 0
    for start in range(0, len(stale), INDEX_BATCH):
        chunk = stale[start:start + INDEX_BATCH]
        chunk_ids = [c for c, _ in chunk]
        token_rows = [r for c in chunk_ids for r in by_call.get(c, [])]
        try:
            with writing(db_path, budget) as conn:
                conn.execute("DELETE FROM search_tokens WHERE call_id IN (SELECT unnest(?))", [chunk_ids])
                conn.execute("DELETE FROM search_indexed WHERE call_id IN (SELECT unnest(?))", [chunk_ids])
                frame = pd.DataFrame(token_rows, columns=["call_id", "seq", "token"])
                state = pd.DataFrame([(c, p) for c, p in chunk if p is not None], columns=["call_id", "processed_at"])
                conn.register("_tok", frame)
                conn.register("_state", state)
                conn.execute("INSERT INTO search_tokens SELECT * FROM _tok")
                conn.execute("INSERT INTO search_indexed SELECT * FROM _state")
        except DatabaseBusy:
            break
        done += len(chunk)
    return done


def search(conn, words: str = "", customer: str = "", agent: str = "", case: str = "", flag: str = "",
           category: str = "", date_from=None, date_to=None, min_escalation: float | None = None,
           limit: int = 200) -> list[dict]:
    """Matching turns (or calls, when no words are given), newest call first."""
    where, params = ["c.status = 'ok'"], []
    for column, value in (("c.customer_id", customer), ("c.agent_id", agent), ("c.case_id", case)):
        if value.strip():
            where.append(f"lower({column}) = lower(?)")
            params.append(value.strip())
    if category.strip():
        where.append("s.category = ?")
        params.append(category.strip())
    if flag.strip():
        where.append("list_contains(CAST(coalesce(e.flags, '[]') AS VARCHAR[]), ?)")
        params.append(flag.strip())
    if date_from:
        where.append("c.started_at >= ?")
        params.append(date_from)
    if date_to:
        where.append("c.started_at < ?")
        params.append(date_to)
    if min_escalation is not None:
        where.append("e.call_score >= ?")
        params.append(min_escalation)
    wanted = query_tokens(words)
    base = ("FROM calls c LEFT JOIN escalation e USING (call_id) LEFT JOIN summaries s USING (call_id) "
            f"WHERE {' AND '.join(where)}")
    if not wanted:
        return rows(conn, "SELECT c.call_id, c.customer_id, c.agent_id, c.case_id, c.started_at, s.category, "
                          f"e.call_score, e.flags, NULL AS seq, NULL AS start, NULL AS role, s.summary AS text {base} "
                          "ORDER BY c.started_at DESC NULLS LAST, c.call_id LIMIT ?", params + [limit])
    if not has_table(conn, "search_tokens"):
        return []
    hits = ("SELECT call_id, seq FROM search_tokens WHERE token IN (SELECT unnest(?)) "
            "GROUP BY call_id, seq HAVING count(DISTINCT token) = ?")
    return rows(conn, f"WITH hits AS ({hits}) SELECT c.call_id, c.customer_id, c.agent_id, c.case_id, c.started_at, "
                      "s.category, e.call_score, e.flags, t.seq, t.start, t.role, t.redacted_text AS text "
                      f"FROM hits h JOIN turns t USING (call_id, seq) JOIN (SELECT c.*, e.call_score AS _s {base}) c "
                      "USING (call_id) LEFT JOIN escalation e USING (call_id) LEFT JOIN summaries s USING (call_id) "
                      "ORDER BY c.started_at DESC NULLS LAST, c.call_id, t.seq LIMIT ?",
                [wanted, len(wanted)] + params + [limit])
