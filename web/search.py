"""Word search across calls: a token table in DuckDB, filled with jieba.

DuckDB's `fts` extension is not in the Python wheel and cannot be downloaded here (no network),
and its stemmer does not segment Chinese anyway. So each turn's masked text is cut with jieba's
search mode (Chinese words and their sub-words) plus lower-cased Latin words and digits, one row
per (call, turn, token). A query is cut the same way and a turn matches when it holds every
query token (web.store.search). The index follows `calls.processed_at`, so reprocessed calls are
re-indexed; its rows are written by pipeline.store.
"""
from __future__ import annotations

import re
import threading
from functools import lru_cache

from pipeline.store import Store, StoreBusy

_LATIN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_CJK = re.compile(r"[\u3400-\u9fff]+")
INDEX_BATCH = 2000  # calls per write transaction, so a writer waiting for the file is not starved
_REFRESHING = threading.Lock()  # one refresh at a time; a search meanwhile answers from the index as it is


@lru_cache(maxsize=1)
def _jieba():
    import jieba  # heavy: its dictionary loads on first use

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


def refresh_index(store: Store, budget: float = 2.0) -> int:
    """Index calls added or reprocessed since the last refresh; returns how many. Skipped (0)
    while another refresh runs or another process holds the file: search then answers from the
    index it has."""
    if not _REFRESHING.acquire(blocking=False):
        return 0
    try:
        return _refresh(store, budget)
    finally:
        _REFRESHING.release()


def _refresh(store: Store, budget: float) -> int:
    store = store.waiting(budget)
    try:
        stale = store.search_stale_calls()
        if not stale:
            return 0
        turns = store.masked_turn_texts([c for c, _ in stale])
    except StoreBusy:
        return 0
    by_call: dict[str, list] = {}
    for call_id, seq, text in turns:
        by_call.setdefault(call_id, []).extend((call_id, seq, t) for t in tokens(text))
    done = 0
    for start in range(0, len(stale), INDEX_BATCH):
        chunk = stale[start:start + INDEX_BATCH]
        try:
            store.replace_search_tokens(chunk, [r for c, _ in chunk for r in by_call.get(c, [])])
        except StoreBusy:
            break
        done += len(chunk)
    return done
