"""An independent reader of digits, and every text a handler or QA reviewer sees: what the masking tests look through for planted numbers."""
from __future__ import annotations

import json
import re

_EN = {"zero": "0", "oh": "0", "o": "0", "nought": "0", "one": "1", "two": "2", "three": "3", "four": "4",
       "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}
_ZH = {c: d for d, chars in {"0": "零〇", "1": "一幺壹", "2": "二两贰", "3": "三叁", "4": "四肆", "5": "五伍",
                               "6": "六陆", "7": "七柒", "8": "八捌", "9": "九玖"}.items() for c in chars}
_FULL = str.maketrans("０１２３４５６７８９", "0123456789")


def recover_digits(text: str) -> str:
    """Every digit a reader could get back from `text`, in order, all else removed."""
    return re.sub(r"\D", "", _digits_as_digits(text))


# A time the system wrote (a briefing's generated_at, a quote's said_at): its microseconds are the
# clock's, and a 3-digit code is in them by chance on one run in a few.
_ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)?")


_MEASURE = re.compile(r"(?<![\d.])\d+\.\d(?![\d.])")


def recover_numbers(text: str) -> list[str]:
    """The digits of each stretch of text that holds only digits and separators: for short secrets
    (a 3-digit CVV), which a whole field's digits (times, scores, dates) would hold by chance."""
    # A decimal with one digit after its point is a measure (the briefing's "437.3 hours" past a
    # deadline, which moves with the clock), not a code read with dots ("6011. 5734.").
    text = _MEASURE.sub(" x ", _ISO_TIME.sub(" ", text))
    chunks = re.split(r"[^\d\s,.\-/，、。．－／()（）:;]+", _digits_as_digits(text))
    return [d for d in (re.sub(r"\D", "", c) for c in chunks) if d]


def _digits_as_digits(text: str) -> str:
    text = text.translate(_FULL)
    text = "".join(_ZH.get(c, c) for c in text)
    words = "|".join(_EN)

    def expand(m):
        n = 2 if m.group(1).lower() == "double" else 3
        return " " + _EN.get(m.group(2).lower(), m.group(2)) * n + " "

    text = re.sub(rf"(?<![a-z])(double|triple)\s+({words}|\d)(?![a-z])", expand, text, flags=re.IGNORECASE)
    return re.sub(rf"(?<![a-z])({words})(?![a-z])", lambda m: _EN[m.group(1).lower()], text, flags=re.IGNORECASE)


def handler_texts(store, call_ids: list[str]) -> dict[str, str]:
    """Every handler- or QA-visible text, by where it comes from."""
    with store.session() as conn:
        return _handler_texts(store, conn, call_ids)


def _handler_texts(store, conn, call_ids: list[str]) -> dict[str, str]:
    from pipeline.outputs.qa import prefill_scorecard

    out = {}
    for call_id, seq, text in conn.execute("SELECT call_id, seq, redacted_text FROM turns").fetchall():
        out[f"turns.redacted_text {call_id}#{seq}"] = text or ""
    for call_id, text in conn.execute("SELECT call_id, string_agg(redacted_text, ' ' ORDER BY seq) FROM turns "
                                      "GROUP BY call_id").fetchall():
        out[f"turns.redacted_text {call_id} (whole call)"] = text or ""
    columns = [r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = "
                                          "'summaries' AND data_type = 'VARCHAR'").fetchall()]
    for row in conn.execute(f"SELECT call_id, {', '.join(columns)} FROM summaries").fetchall():
        for col, value in zip(columns, row[1:]):
            out[f"summaries.{col} {row[0]}"] = value or ""
    for call_id, evidence, de_esc in conn.execute("SELECT call_id, evidence, de_escalation FROM escalation").fetchall():
        out[f"escalation.evidence {call_id}"] = evidence or ""
        out[f"escalation.de_escalation {call_id}"] = de_esc or ""
    for customer, md, payload in conn.execute("SELECT customer_id, markdown, json FROM briefings "
                                              "ORDER BY created_at").fetchall():  # the newest is kept by name
        out[f"briefings.markdown {customer}"] = md
        out[f"briefings.json {customer}"] = payload
        out[f"briefings (all) {customer}"] = out.get(f"briefings (all) {customer}", "") + md + payload
    for call_id in call_ids:
        out[f"qa prefill {call_id}"] = json.dumps(prefill_scorecard(store, call_id), ensure_ascii=False)
    return out


def _leaks(texts: dict[str, str], secrets: list[str]) -> list[tuple[str, str]]:
    """(field, secret) for every planted secret readable in a field: long numbers anywhere in the
    field's digits, short codes within one stretch of digits, words as words."""
    found = []
    for where, text in texts.items():
        digits, numbers, low = recover_digits(text), recover_numbers(text), text.lower()
        for s in secrets:
            if not s.isdigit():
                hit = re.search(rf"\b{s}\b", low)
            elif len(s) >= 8:
                hit = s in digits
            else:
                hit = any(s in n for n in numbers)
            if hit:
                found.append((where, s))
    return found
