"""Mask personal data in every text a handler sees: card numbers (last 4 kept), Chinese resident
ID numbers, phone numbers, e-mail addresses; in Arabic digits, spoken Chinese digits
(一二三, 幺 for 1, 两, 零/〇) and any mix, with spaces or dashes between digits.

Chinese digits map one-to-one onto Arabic digits in a shadow copy of the text, so one set of
patterns finds numbers in any script and the masks land on the original characters. The raw
transcript stays only in `words` and `turns.text`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_ZH_DIGITS = str.maketrans("零〇一幺二两三四五六七八九", "0011223456789")
_FULLWIDTH = str.maketrans("０１２３４５６７８９ｘＸ", "0123456789xX")

# A run of digits, allowing single spaces or dashes between them ("6222 0210 ..."); not dots,
# so decimals such as 18.700000000000003 are not read as one long number.
_DIGIT_RUN = re.compile(r"(?<![0-9.])[0-9](?:[ \-]?[0-9])+(?:[ \-]?[xX])?(?![0-9])")
_EMAIL = re.compile(
    # "at" may be glued to a spoken local part ("幺零九…幺at QQ点com"), so no \b around it; the
    # required domain and suffix keep ordinary words out.
    r"[A-Za-z0-9][A-Za-z0-9._%+\-]*?\s*(?:@|at|艾特)\s*[A-Za-z0-9\-]+(?:\s*(?:\.|点|dot)\s*(?:com|cn|net|org|edu|gov|co|uk|io|info))+",
    re.IGNORECASE)


# Dates and clock times are not personal numbers: found first and left alone.
_DATE_TIME = re.compile(r"\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?|\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?")


@dataclass(frozen=True)
class Redaction:
    kind: str  # card | id | phone | email
    start: int
    end: int
    replacement: str


def _shadow(text: str) -> str:
    return text.translate(_ZH_DIGITS).translate(_FULLWIDTH)


def _is_resident_id(digits: str) -> bool:
    """18 characters: 6-digit region, 8-digit birth date (19xx/20xx), 3 digits, check digit or X."""
    return (len(digits) == 18 and digits[:17].isdigit() and (digits[17].isdigit() or digits[17] in "xX")
            and digits[6:8] in ("19", "20") and 1 <= int(digits[10:12]) <= 12)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def find(text: str) -> list[Redaction]:
    shadow = _shadow(text)
    found: list[Redaction] = []
    for m in _EMAIL.finditer(shadow):
        found.append(Redaction("email", m.start(), m.end(), "[EMAIL]"))
    taken = [(r.start, r.end) for r in found] + [m.span() for m in _DATE_TIME.finditer(shadow)]
    for m in _DIGIT_RUN.finditer(shadow):
        if any(a < m.end() and m.start() < b for a, b in taken):
            continue
        digits = re.sub(r"[ \-]", "", m.group())
        if _is_resident_id(digits):
            found.append(Redaction("id", m.start(), m.end(), "[ID]"))
        elif digits.isdigit() and 13 <= len(digits) <= 19 and (_luhn(digits) or len(digits) == 16):
            found.append(Redaction("card", m.start(), m.end(), f"[CARD ****{digits[-4:]}]"))
        elif digits.isdigit() and len(digits) >= 7:
            # Phone numbers, and any other long number a caller reads out (account numbers):
            # 7+ digits are never an amount or a date in speech.
            found.append(Redaction("phone", m.start(), m.end(), "[PHONE]"))
    return sorted(found, key=lambda r: r.start)


def redact(text: str | None) -> str | None:
    if not text:
        return text
    out, last = [], 0
    for r in find(text):
        out.append(text[last:r.start])
        out.append(r.replacement)
        last = r.end
    out.append(text[last:])
    return "".join(out)
