"""Per-call summary for handlers: category, demands, promises, open items, outcome, key quotes,
and a short extractive summary (TextRank over the turns' sentences), all with PII masked.

Rules and lexicons are data (`data/categories.json`, `data/summary_markers.tsv`) so a bank can
extend them. An LLM summariser can replace `extractive_summary` (not needed offline).
"""
from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache

import numpy as np

from pipeline.analysis.i18n import mmss
from pipeline.analysis.redact import redact, redact_turns
from pipeline.analysis.tokens import content_words
from pipeline.config.datafiles import read_json, read_rows
from pipeline.config.policy import Policy, default_policy
from pipeline.records import CallSummary, Escalation, Quote, Role, Turn, join_words
from pipeline.vocabulary.numbers import normalise_numbers

ROLE_LABELS = {"zh": {Role.AGENT: "坐席", Role.CUSTOMER: "客户", Role.UNKNOWN: "未知"},
               "en": {Role.AGENT: "Agent", Role.CUSTOMER: "Customer", Role.UNKNOWN: "Unknown"}}


@lru_cache(maxsize=1)
def categories() -> dict:
    return read_json("categories.json")


@lru_cache(maxsize=1)
def markers() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for kind, marker in read_rows("summary_markers.tsv"):
        out.setdefault(kind, []).append(marker.strip().lower())
    return {k: tuple(v) for k, v in out.items()}


def _has(text: str, kind: str) -> bool:
    low = text.lower()
    spoken = normalise_numbers(low)
    return any(m in low or m in spoken for m in markers()[kind])


def classify(turns: tuple[Turn, ...]) -> tuple[str, dict[str, int]]:
    scores = {}
    for cat in categories()["categories"]:
        score = 0
        for t in turns:
            low = t.text.lower()
            hits = sum(low.count(k) for k in cat["keywords"])
            score += hits * (2 if t.role == Role.CUSTOMER else 1)
        scores[cat["id"]] = score
    best = max(scores, key=scores.get) if scores else "other"
    return (best if scores.get(best, 0) > 0 else "other"), scores


def category_info(category_id: str) -> dict:
    for cat in categories()["categories"]:
        if cat["id"] == category_id:
            return cat
    return categories()["other"]


_SENTENCE = re.compile(r"[^。！？!?；;]+[。！？!?；;]?")


def sentences(turn: Turn) -> list[str]:
    """Sentences of a turn; English also splits on '. '."""
    text = turn.text.strip()
    parts = [s.strip() for s in _SENTENCE.findall(text) if s.strip()]
    out = []
    for p in parts:
        out += [q.strip() for q in re.split(r"(?<=[a-z0-9\]])\.\s+", p, flags=re.IGNORECASE) if q.strip()]
    return out or [text]


def extractive_summary(turns: tuple[Turn, ...], language: str, n: int = 4) -> str:
    """TextRank: sentences ranked by PageRank over token-overlap similarity, kept in call order."""
    # Sentences are measured and tokenised in their turn's language (a call may switch).
    said = [(t.role, s, t.language or language) for t in turns for s in sentences(t)]
    items = [(role, s) for role, s, lang in said if len(s) >= (6 if lang == "zh" else 15)]
    if not items:
        return ""
    toks = [content_words(s, lang, min_latin=2) for role, s, lang in said if len(s) >= (6 if lang == "zh" else 15)]
    k = len(items)
    sim = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            if i != j and toks[i] and toks[j]:
                sim[i, j] = len(toks[i] & toks[j]) / (np.log(len(toks[i]) + 1) + np.log(len(toks[j]) + 1))
    rank = np.ones(k) / k
    out_weight = sim.sum(axis=1, keepdims=True)
    transition = np.divide(sim, out_weight, out=np.full_like(sim, 1 / k), where=out_weight > 0)
    for _ in range(50):
        rank = 0.15 / k + 0.85 * transition.T @ rank
    # Demands and threats matter to a handler even when they share few words with the rest.
    boost = np.array([1.5 if r == Role.CUSTOMER and (_has(s, "demand")) else 1.0 for r, s in items])
    chosen = sorted(np.argsort(-rank * boost)[: min(n, k)])
    labels = ROLE_LABELS.get(language, ROLE_LABELS["en"])
    colon = "：" if language == "zh" else ": "
    ends = "。" if language == "zh" else "."
    return join_words(f"{labels.get(items[i][0], items[i][0])}{colon}{items[i][1].rstrip('。.!！?？')}{ends}" for i in chosen)


def summarise(call_id: str, turns: tuple[Turn, ...], language: str, escalation: Escalation | None,
              policy: Policy | None = None) -> CallSummary:
    # Masked whole turns, before sentence splitting: "4111. 1111. 1111." split at its dots is
    # four short numbers no masker can recognise.
    turns = tuple(replace(t, text=masked) for t, masked in zip(turns, redact_turns(turns)))
    category, scores = classify(turns)
    info = category_info(category)
    demands, promises, deadlines, open_items = [], [], [], []
    for t in turns:
        for s in sentences(t):
            quote = Quote(round(t.start, 2), t.role, redact(s))
            if t.role == Role.CUSTOMER and _has(s, "demand"):
                demands.append(quote)
            elif t.role == Role.AGENT and (_has(s, "promise") or _has(s, "deadline")):
                promises.append(quote)
                if _has(s, "deadline"):
                    deadlines.append(quote)
    for d in demands:  # a demand with no agent commitment after it stays open
        if not any(p.time >= d.time for p in promises):
            open_items.append(d)
    flags = set(escalation.flags) if escalation else set()
    policy = policy or default_policy()
    urgent_flag = flags & set(policy.urgent_flags)
    customer_turns = [t for t in turns if t.role == Role.CUSTOMER]
    thanked = bool(customer_turns) and _has(customer_turns[-1].text, "thanks")
    if urgent_flag or (escalation and escalation.call_score >= policy.levels.urgent):
        outcome = "escalated"
    elif promises and not open_items and thanked:
        outcome = "resolved"
    else:
        outcome = "pending"
    quotes: list[Quote] = []
    if escalation:
        for ev in sorted(escalation.evidence, key=lambda e: -e.score)[:2]:
            quotes.append(Quote(round(ev.time, 2), ev.role, redact(ev.quote)))
    for q in demands[-2:] + deadlines[:1] + promises[:1]:
        if all(abs(q.time - x.time) > 0.5 or q.role != x.role for x in quotes):
            quotes.append(q)
    quotes = sorted(quotes, key=lambda q: q.time)[:5]
    return CallSummary(
        call_id=call_id, language=language, category=category, category_label=info.get(language, info["en"]),
        demands=tuple(demands), promises=tuple(promises), deadline_promises=tuple(deadlines),
        open_items=tuple(open_items), outcome=outcome, key_quotes=tuple(quotes),
        summary=redact(extractive_summary(turns, language)) or "", category_scores=scores,
    )


def quote_line(q: Quote, language: str) -> str:
    labels = ROLE_LABELS.get(language, ROLE_LABELS["en"])
    return f"[{mmss(q.time)}] {labels.get(q.role, q.role)}: {q.text}"
