"""Word search across calls: DuckDB's full-text index (fts, BM25) over turns cut into words.

fts splits text on whitespace and cannot segment Chinese, so each turn's masked text (never the
raw text) is cut here: jieba's search mode for Chinese (words and their sub-words), lower-cased
Latin words and digit runs, every occurrence kept (BM25 counts them), joined by spaces into
search_docs; pipeline.store rebuilds the fts index over it. A query is cut the same way
(`query_tokens`); web.store.search ranks the turns holding every query word first, then by BM25.
The index follows `calls.processed_at`: reprocessed calls are cut again, deleted ones dropped.
"""
from __future__ import annotations

import re
import threading
from functools import lru_cache

from pipeline.store import Store, StoreBusy

_LATIN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_CJK = re.compile(r"[\u3400-\u9fff]+")
_WORD = re.compile(f"{_LATIN.pattern}|{_CJK.pattern}")
_REFRESHING = threading.Lock()  # one refresh at a time; a search meanwhile answers from the index as it is


@lru_cache(maxsize=1)
def _jieba():
    import jieba  # heavy: its dictionary loads on first use

    jieba.setLogLevel(60)
    jieba.initialize()
    return jieba


def tokens(text: str | None) -> list[str]:
    """Search tokens of a text in order, repeats kept: Chinese words and sub-words (jieba),
    Latin words, digit runs."""
    if not text:
        return []
    out = []
    for m in _WORD.finditer(text.lower()):
        word = m.group(0)
        if _CJK.fullmatch(word):
            out += [w for w in _jieba().cut_for_search(word) if w.strip()] or [word]
        else:
            out.append(word)
    return out


def query_tokens(text: str) -> list[str]:
    """A query's tokens: for Chinese, the longest words jieba finds (its sub-words are in the index too)."""
    text = (text or "").lower()
    out = list(dict.fromkeys(_LATIN.findall(text)))
    for run in _CJK.findall(text):
        out += [w for w in _jieba().cut(run) if w.strip()]
    return list(dict.fromkeys(out))


def refresh_index(store: Store, budget: float = 2.0) -> int:
    """Index calls added or reprocessed since the last refresh (and drop deleted ones), then
    rebuild the fts index; returns how many calls. Skipped (0) while another refresh runs or
    another process holds the file: search then answers from the index it has."""
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
    docs = [(call_id, seq, " ".join(tokens(text))) for call_id, seq, text in turns]
    try:  # one transaction: the calls' rows and the fts index rebuilt over all rows (~1 s per 80,000 turns)
        store.replace_search_docs(stale, docs)
    except StoreBusy:
        return 0
    return len(stale)
