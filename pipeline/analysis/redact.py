"""Mask personal data in every text a handler sees: card numbers (last 4 kept), Chinese resident
ID numbers, phone and account numbers, announced security codes (CVV, sort code, 验证码...) and
e-mail addresses, however a recogniser wrote the digits.

Digits are read from a normalised shadow of the text: Arabic, full-width, Chinese (一二三, 幺,
两, 零/〇, 壹贰叁) and spoken English ("eight, two", "oh", "double four") digits become one
digit string per *run*, a stretch of digits joined only by separators (spaces, commas, dots,
dashes, slashes, brackets, CJK punctuation, in any mix). Each run keeps the original character
span of its digits, so the mask lands on the original text. A run is kept only when, as a
whole, it is a date, a clock time or an amount next to its currency or unit; otherwise it is
classified by its digits alone (length, Luhn, ID check structure, phone shape), never by how
it was written. Words live in `data/pii.json`. The raw transcript stays only in `words` and
`turns.text`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pipeline.config.datafiles import read_json

_FULLWIDTH = str.maketrans("０１２３４５６７８９", "0123456789")
# Separators a recogniser writes between digit groups, mapped to one ASCII form for the
# date/amount patterns (one character to one character, so positions do not move).
_SEP_MAP = str.maketrans("，、。．－‐‑–—／：；（）　", ",,..----/:;()  ")
_SEP_CHARS = set(" \t\n\r\u3000\u00a0,.-/\\:;()[]") | set("，、。．－‐‑–—／：；（）")
_MAX_GAP = 6  # separator characters between two digits of one run ("4111 , 1111", "0770) - 9")
_CUE_WINDOW = 30  # characters before a run in which an announcing word counts

# Existing masks are left alone, so masking twice gives the same text.
_MASK = re.compile(r"\[(?:CARD \*{4}\d{4}|ID|PHONE|NUMBER|CODE|EMAIL|DOB|ADDRESS|NAME)\]")

# Amounts are not written with a leading zero (phone numbers are: "07700 900123 pounds" is no amount).
_MAX_AMOUNT_DIGITS = 9
_AMOUNT = re.compile(r"[1-9]\d{0,2}(?:[, ]\d{3})+(?:\.\d+)?|(?:0|[1-9]\d*)(?:\.\d+)?")
_MAX_COUNT_DIGITS = 4  # "30 minutes", "2026年", "19号": a count, a year or a day, never longer
_DATE = (r"(?:(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])"
         r"|(?:0?[1-9]|[12]\d|3[01])[-/.](?:0?[1-9]|1[0-2])[-/.](?:19|20)\d\d"
         r"|(?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])[-/.](?:19|20)\d\d)")
_TIME = r"(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d+)?)?"
_YEAR = r"(?:19|20)\d\d"
_POINT = rf"(?:{_DATE}(?:[ ,]+{_TIME})?|{_TIME}(?:[ ,]+{_DATE})?)"
# One date or time, or a range of them ("10:00-11:30", "2019-2020", "2019, 2020"); not bare
# space-separated years, which read like any 8-digit number.
_DATE_TIME = re.compile(rf"{_POINT}(?:\s?[-–—]\s?{_POINT})?|{_YEAR}(?:\s?[-–—/]\s?|, ){_YEAR}")
_EMAIL_SUFFIX = r"(?:com|cn|net|org|edu|gov|co|uk|io|info|me|hk|tw|de|fr|us)"
_EMAIL_HINT = re.compile(rf"(?:\.|点|dot)\s*{_EMAIL_SUFFIX}(?![A-Za-z])", re.IGNORECASE)


@dataclass(frozen=True)
class Redaction:
    kind: str  # card | id | phone | number | code | email
    start: int
    end: int
    replacement: str


@dataclass(frozen=True)
class _Rules:
    token: re.Pattern  # one digit-like token: digit, CJK numeral run, English digit word
    email: re.Pattern
    currency_before: re.Pattern
    amount_unit_after: re.Pattern
    count_unit_after: re.Pattern
    code_cue: re.Pattern
    number_cue: re.Pattern
    filler: re.Pattern
    english: dict
    multipliers: dict
    chinese: dict
    positional: frozenset
    to_ascii: dict  # str.translate table: full-width and Chinese digits to ASCII, one char to one


def _words(words: list[str]) -> str:
    """Alternation of cue words; ASCII words must stand alone ('pin' is not in 'spinning')."""
    parts = []
    for w in sorted(words, key=len, reverse=True):
        esc = re.escape(w)
        parts.append(rf"(?<![a-z]){esc}(?![a-z])" if w[-1:].isascii() and w[-1:].isalpha() else esc)
    return "|".join(parts)


@lru_cache(maxsize=1)
def _rules() -> _Rules:
    data = read_json("pii.json")
    english, multipliers = data["english_digits"], data["english_multipliers"]
    chinese, positional = data["chinese_digits"], data["chinese_positional"]
    cjk = re.escape("".join(chinese) + positional)
    spoken = "|".join(sorted(list(english) + list(multipliers), key=len, reverse=True))
    token = re.compile(rf"(?P<d>[0-9０-９]+)|(?P<cjk>[{cjk}]+)|(?P<w>(?<![a-z])(?:{spoken})(?![a-z']))", re.IGNORECASE)
    digit_word = "|".join(english)
    email = re.compile(
        # Local part: letters and digits joined by dots/underscores, written or spoken
        # ("anna dot smith"), or spoken digits ("anna one two"); "at" may be glued to it.
        r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9]"
        rf"(?:[A-Za-z0-9._%+\-]|\s*(?:dot|underscore|dash|hyphen|点|下划线)\s*(?=[A-Za-z0-9])|\s+(?=(?:{digit_word})\b))*?"
        rf"\s*(?:@|at|艾特)\s*[A-Za-z0-9\-]+(?:\s+(?:{digit_word})(?![a-z]))*"
        rf"(?:\s*(?:\.|点|\bdot\b)\s*{_EMAIL_SUFFIX}(?![A-Za-z]))+",
        re.IGNORECASE)
    return _Rules(
        token=token, email=email,
        currency_before=re.compile(rf"(?:{_words(data['currency_before'])})\s?$", re.IGNORECASE),
        amount_unit_after=re.compile(rf"^\s?多?(?:{_words(data['amount_units_after'])})", re.IGNORECASE),
        count_unit_after=re.compile(rf"^\s?多?(?:{_words(data['count_units_after'])})", re.IGNORECASE),
        code_cue=re.compile(_words(data["code_cues"]), re.IGNORECASE),
        number_cue=re.compile(_words(data["number_cues"]), re.IGNORECASE),
        filler=re.compile(_words(data["fillers"]), re.IGNORECASE),
        english={k.lower(): v for k, v in english.items()}, multipliers=multipliers, chinese=chinese,
        positional=frozenset(positional), to_ascii={**str.maketrans(chinese), **_FULLWIDTH})


@dataclass(frozen=True)
class _Run:
    """Digits joined only by separators: an ASCII shadow (digits and separators) and the span
    of the original characters it was read from."""
    shadow: str
    start: int
    end: int

    @property
    def digits(self) -> str:
        return "".join(c for c in self.shadow if c.isdigit())


def _tokens(text: str, rules: _Rules, protected: list[tuple[int, int]]) -> list[tuple[int, int, str] | None]:
    """(start, end, digits) per digit-like token outside protected spans; None ends a run."""
    out: list[tuple[int, int, str] | None] = []
    times = None  # a pending "double"/"triple": (how many, where it starts)
    for m in rules.token.finditer(text):
        if any(a < m.end() and m.start() < b for a, b in protected):
            out.append(None)
            times = None
            continue
        if m.group("d"):
            tokens = [(m.start(), m.end(), m.group().translate(_FULLWIDTH))]  # a whole run of digits
        elif m.group("cjk"):
            run = m.group()
            if any(c in rules.positional for c in run):  # 三千, 十一: a quantity, not digits read out
                out.append(None)
                times = None
                continue
            tokens = [(m.start() + i, m.start() + i + 1, rules.chinese[c]) for i, c in enumerate(run)]
        else:
            word = m.group().lower()
            if word in rules.multipliers:
                times = (rules.multipliers[word], m.start(), m.end())
                continue
            tokens = [(m.start(), m.end(), rules.english[word])]
        if times and not text[times[2]:tokens[0][0]].strip():  # "double four" -> 44
            s, e, d = tokens[0]
            tokens[0] = (times[1], e, d[0] * times[0] + d[1:])
        elif times:
            out.append(None)
        times = None
        out += tokens
    return out


def _runs(text: str, rules: _Rules, protected: list[tuple[int, int]]) -> list[_Run]:
    runs: list[_Run] = []
    shadow: list[str] = []
    first = last_end = None

    for tok in _tokens(text, rules, protected) + [None]:
        if tok is not None:
            start, end, digits = tok
            gap = text[last_end:start] if last_end is not None else None
            if gap and not gap.isspace():
                gap = rules.filler.sub(lambda m: "\0" * len(m.group()), gap)  # "7, um, 9": a filler joins
                gap = gap.replace("\0", "") or " "
            if gap is not None and len(gap) <= _MAX_GAP and all(c in _SEP_CHARS for c in gap):
                shadow += [gap.translate(_SEP_MAP), digits]
                last_end = end
                continue
        if shadow:  # the run ends here
            runs.append(_Run("".join(shadow), first, last_end))
        shadow, first, last_end = [], None, None
        if tok is not None:
            shadow, first, last_end = [digits], start, end
    return runs


def _is_resident_id(digits: str) -> bool:
    """18 characters: 6-digit region, birth date (19xx/20xx, valid month), 3 digits, check digit or X."""
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


def _is_phone(digits: str) -> bool:
    """China mobile, UK/China numbers with a trunk 0, US 10-digit, or with a country code."""
    n = len(digits)
    return ((n == 11 and re.match(r"1[3-9]", digits) is not None) or (digits[:1] == "0" and 10 <= n <= 12)
            or (n == 10 and digits[0] in "23456789") or (digits[:2] in ("44", "86") and 12 <= n <= 13)
            or (digits[:1] == "1" and n == 11))


def _kept(run: _Run, text: str, rules: _Rules) -> bool:
    """A date, a clock time, or an amount beside its currency or unit: the whole run, nothing less."""
    if _DATE_TIME.fullmatch(run.shadow):
        return True
    # An amount is what an amount can be: at most 9 digits before the decimal point (under a
    # billion), so an account, phone or card-length run beside "元" or "dollars" is still masked.
    if _AMOUNT.fullmatch(run.shadow) and len(re.sub(r"\D", "", run.shadow.split(".")[0])) <= _MAX_AMOUNT_DIGITS:
        after = text[run.end:run.end + 12]
        return bool(rules.amount_unit_after.match(after)
                    or rules.currency_before.search(text[max(0, run.start - 8):run.start])
                    or (len(run.digits) <= _MAX_COUNT_DIGITS and rules.count_unit_after.match(after)))
    return False


def _classify(run: _Run, text: str, rules: _Rules) -> Redaction | None:
    digits = run.digits
    start, end = run.start, run.end
    # Trailing check character of a resident ID ("...876X", "...876 x", "...七六叉").
    if len(digits) == 17:
        m = re.match(r"[ ,，]?([xXｘＸ叉])(?![A-Za-z])", text[end:end + 3])
        if m:
            digits += "X"
            end += m.end()
    if len(digits) < 3 or _DATE_TIME.fullmatch(run.shadow):  # a date or a clock time, as a whole
        return None
    # A "+" or an opening bracket directly before belongs to the number: no "(0770) [PHONE]" leftovers.
    while start > 0 and text[start - 1] in "+(（":
        start -= 1
    if text[run.start - 1:run.start] in "(（" and text[end:end + 1] in ")）" and run.start > 0:
        end += 1
    n = len(digits)
    # A resident ID or a card number is masked whatever word follows it: "卡号6222...5678元" and
    # "card 4111... dollars" are no amounts (the amount rule below keeps only what an amount can be).
    if _is_resident_id(digits):
        return Redaction("id", start, end, "[ID]")
    if digits.isdigit() and 13 <= n <= 19 and (_luhn(digits) or n == 16):
        return Redaction("card", start, end, f"[CARD ****{digits[-4:]}]")
    if _kept(run, text, rules):
        return None
    before = text[max(0, start - _CUE_WINDOW):start]
    if n >= 7:
        # Phones, and any other long number a caller reads out (accounts, references):
        # 7+ digits that are not a date, time or amount are never harmless in a call.
        return Redaction("phone" if _is_phone(digits) else "number", start, end,
                         "[PHONE]" if _is_phone(digits) else "[NUMBER]")
    if rules.code_cue.search(before):
        return Redaction("code", start, end, "[CODE]")
    if n >= 5 and rules.number_cue.search(before):
        return Redaction("number", start, end, "[NUMBER]")
    return None


# --- identity checks: a date of birth, an address, a name ------------------------------------------
# Masked when a cue in the same turn announces it ("my date of birth is", "我住在", "my name is";
# a name only in the customer's own turns), or when the other speaker's turn just before asked
# for it ("can you confirm your date of birth and the first line of your address?"). Dates and
# addresses said elsewhere (a transfer on the 4th of March, the branch on Station Road) stay.
ASKED_WITHIN_SECONDS = 30.0
_EN_NUMBER = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
              "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred oh").split()
_EN_ORDINAL = ("first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
               "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth thirtieth").split()
_ZH_NUM = "0-9零〇一二三四五六七八九十百两幺"


_ZH_ADDRESS_CUE = re.compile(r"住在|家住|住址是|地址是|地址在|住址在")


@dataclass(frozen=True)
class _Identity:
    cues: dict  # kind -> pattern of the words announcing or asking for it
    date: re.Pattern
    address: re.Pattern
    name_after_cue: re.Pattern  # group "name"
    name_answer: re.Pattern  # a short answer to "your name?": group "name"


@lru_cache(maxsize=1)
def _identity() -> _Identity:
    data = read_json("pii.json")
    num = _words(_EN_NUMBER)  # longest first, whole words: "eighty" is not "eight" + "y"
    day = rf"(?:[0-3]?\d(?:st|nd|rd|th)?|(?:twenty|thirty)[- ](?:{'|'.join(_EN_ORDINAL[:9])})|{'|'.join(_EN_ORDINAL)})"
    month = _words(data["months"])
    year = rf"(?:(?:19|20)\d\d|(?:nineteen|twenty)(?:[- ](?:{num}))*|two thousand(?:[- ](?:and[- ])?(?:{num}))*)"
    en_date = (rf"(?:the\s+)?{day}\s+(?:of\s+)?(?:{month})\.?(?:,?\s+{year})?"
               rf"|(?:{month})\.?\s+(?:the\s+)?{day}(?:,?\s+{year})?|(?:{month})\s+{year}")
    zh_date = (rf"(?:[{_ZH_NUM}]{{2,4}}年)[{_ZH_NUM}]{{1,3}}月(?:[{_ZH_NUM}]{{1,3}}[日号])?"
               rf"|[{_ZH_NUM}]{{1,3}}月[{_ZH_NUM}]{{1,3}}[日号]")
    streets = _words(data["street_types"])
    unit = rf"(?:[{_ZH_NUM}]+(?:号楼|栋|幢|单元|室|层|楼|号))"
    en_address = (rf"(?:(?:flat|apartment|apt|unit)\s+\w+,?\s+)?(?:\d{{1,5}}(?:st|nd|rd|th|[a-z])?|(?:{num})(?:[- ](?:{num}))*),?\s+"
                  rf"(?-i:[A-Z][A-Za-z'\-]+\s+){{1,3}}?(?:{streets})\b(?:,?\s+(?-i:[A-Z][a-z]+))?"
                  r"|\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b")
    zh_address = (rf"(?:[\u4e00-\u9fa5]{{1,6}}?(?:省|市|区|县|镇|乡))*[\u4e00-\u9fa5]{{1,8}}?"
                  rf"(?:(?:{'|'.join(data['zh_street_types'])})[{_ZH_NUM}]+号?{unit}*"
                  rf"|(?:{'|'.join(data['zh_places'])}){unit}*)")
    name = r"(?:(?:mr|mrs|ms|miss|dr)\.?\s+)?[A-Z][a-z'\-]+(?:\s+[A-Z][a-z'\-]+){0,2}"
    return _Identity(
        cues={kind: re.compile(_words(data[f"{kind}_cues"]), re.IGNORECASE) for kind in ("dob", "address", "name")},
        date=re.compile(rf"{en_date}|{zh_date}|{_DATE}", re.IGNORECASE),
        address=re.compile(rf"{en_address}|{zh_address}", re.IGNORECASE),
        name_after_cue=re.compile(
            rf"(?i:my name is|my name's|name is)\s+(?P<name>{name})"
            r"|(?:我叫|我的名字是|名字叫|姓名是|我姓)\s*(?P<zh>[\u4e00-\u9fa5]{1,3}?)(?=[，,。.！!？?\s]|$|叫|是|的)"
            r"|(?:(?<=我姓[\u4e00-\u9fa5][，,])|(?<=我姓[\u4e00-\u9fa5]))叫(?P<zh2>[\u4e00-\u9fa5]{1,3}?)(?=[，,。.！!？?\s]|$)"),
        name_answer=re.compile(
            rf"^\W*(?:(?i:yes|yeah|sure|ok|okay|it's|it is|this is|i'm|i am|my name's|my name is)[\s,]+)*(?P<name>{name})\W*$"
            r"|^[\W嗯啊哦对是好的]*(?:我叫|我是|叫)?(?P<zh>[\u4e00-\u9fa5]{2,4})[\W]*$"))


def asked_for(text: str | None) -> frozenset[str]:
    """What a turn asks for or announces: dob, address, name."""
    cues = _identity().cues
    return frozenset(k for k, pattern in cues.items() if text and pattern.search(text))


def identity_spans(text: str, asked: frozenset[str] = frozenset(), customer: bool = True) -> list[Redaction]:
    """Dates of birth, addresses and names in `text` (see above); `asked`: what the other
    speaker's turn just before asked for; `customer`: whether the speaker is the customer (an
    agent's own name stays)."""
    ident, found = _identity(), []
    here = asked_for(text)
    for kind, pattern, token in (("dob", ident.date, "[DOB]"), ("address", ident.address, "[ADDRESS]")):
        if kind not in here and kind not in asked:
            continue
        # Asked for: anywhere in the answer; announced: the first one within reach after each cue.
        starts = [m.end() for m in ident.cues[kind].finditer(text)]  # never the cue's own words
        if kind in asked:
            starts = starts[-1:] or [0]
        for start in starts:
            last = None
            for m in pattern.finditer(text, start):
                if kind not in asked and m.start() - (start if last is None else last) > (_CUE_WINDOW * 2 if last is None else 3):
                    break  # announced: the value right after its cue, and what directly follows it (a postcode)
                if m.group().strip():
                    found.append(Redaction(kind, m.start(), m.end(), token))
                last = m.end()
    if "address" in here:  # "我住在…" that the pattern did not read (a misheard 号): the rest of the clause
        for m in _ZH_ADDRESS_CUE.finditer(text):
            if not any(r.kind == "address" and m.end() <= r.start <= m.end() + 2 for r in found):
                clause = re.match(r"[^，,。.！!？?；;\n]{2,24}", text[m.end():])
                if clause and re.search(rf"[{_ZH_NUM}]|[省市区县镇乡路街道巷弄村号楼栋室]|小区|花园|公寓|大厦", clause.group()):
                    found.append(Redaction("address", m.end(), m.end() + clause.end(), "[ADDRESS]"))
    if customer:
        for m in ident.name_after_cue.finditer(text):
            group = next(g for g in ("name", "zh", "zh2") if m.group(g))
            found.append(Redaction("name", m.start(group), m.end(group), "[NAME]"))
        if "name" in asked and (m := ident.name_answer.search(text)):
            group = "name" if m.group("name") else "zh"
            found.append(Redaction("name", m.start(group), m.end(group), "[NAME]"))
    out: list[Redaction] = []
    for r in sorted(found, key=lambda r: (r.start, -r.end)):
        if not out or r.start >= out[-1].end:
            out.append(r)
    return out


def masks_in(text: str | None) -> int:
    """How many masks a masked text holds."""
    return len(_MASK.findall(text or ""))


def find(text: str, asked: frozenset[str] = frozenset(), customer: bool = True) -> list[Redaction]:
    """Every mask `text` needs: identity-check values (see `identity_spans`), e-mails, numbers."""
    rules = _rules()
    protected = [m.span() for m in _MASK.finditer(text)] if "[" in text else []
    found: list[Redaction] = [r for r in identity_spans(text, asked, customer)
                              if not any(a < r.end and r.start < b for a, b in protected)]
    protected += [(r.start, r.end) for r in found]
    if _EMAIL_HINT.search(text):  # the full e-mail pattern is slow; most texts have no ".com"
        shadow = text.translate(rules.to_ascii)
        found = [Redaction("email", m.start(), m.end(), "[EMAIL]") for m in rules.email.finditer(shadow)
                 if not any(a < m.end() and m.start() < b for a, b in protected)]
        protected += [(r.start, r.end) for r in found]
    for run in _runs(text, rules, protected):
        r = _classify(run, text, rules)
        if r:
            found.append(r)
    return sorted(found, key=lambda r: r.start)


def redact(text: str | None, asked: frozenset[str] = frozenset(), customer: bool = True) -> str | None:
    if not text:
        return text
    out, last = [], 0
    for r in find(text, asked, customer):
        if r.start < last:  # spans may touch after bracket widening; never double-write
            continue
        out.append(text[last:r.start])
        out.append(r.replacement)
        last = r.end
    out.append(text[last:])
    return "".join(out)


# A caller may read one number across two turns ("07700" / agent: "mm-hmm" / "900123"): each
# half alone is too short to mask. A speaker's turns closer than this are read as one stream.
TURN_JOIN_SECONDS = 10.0


def redact_turns(turns) -> list[str]:
    """Masked text of each turn (anything with speaker, start, end, text, in time order).

    Each speaker's consecutive turns are masked as one text, so a number split between two turns
    is masked in both; the mask goes into every turn that holds part of it."""
    out = [_identity_masked(turns, i) for i in range(len(turns))]
    streams: dict[object, list[list[int]]] = {}
    for i, t in enumerate(turns):
        chains = streams.setdefault(t.speaker, [])
        if chains and t.start - turns[chains[-1][-1]].end <= TURN_JOIN_SECONDS:
            chains[-1].append(i)
        else:
            chains.append([i])
    for chains in streams.values():
        for chain in chains:
            texts = [out[i] or "" for i in chain]
            customer = getattr(turns[chain[0]], "role", None) != "agent"  # an agent's own name stays
            if len(chain) == 1:
                out[chain[0]] = redact(texts[0], customer=customer) if texts[0] else texts[0]
                continue
            joined = "\n".join(texts)  # a newline is a separator: a number may run across it
            bounds, pos = [], 0
            for text in texts:
                bounds.append((pos, pos + len(text)))
                pos += len(text) + 1
            edits: list[list[tuple[int, int, str]]] = [[] for _ in texts]
            for r in find(joined, customer=customer):
                for k, (a, b) in enumerate(bounds):
                    if r.start < b and a < r.end:
                        edits[k].append((max(r.start, a) - a, min(r.end, b) - a, r.replacement))
            for k, i in enumerate(chain):
                text, last, parts = texts[k], 0, []
                for s, e, rep in edits[k]:
                    if s < last:
                        continue
                    parts += [text[last:s], rep]
                    last = e
                out[i] = "".join(parts) + text[last:] if edits[k] else text
    return out


def _identity_masked(turns, i: int) -> str:
    """Turn i's text with its identity-check values masked: the other speaker's turn just before
    says what was asked; a name is masked only in the customer's turns (an agent's stays)."""
    t = turns[i]
    if not t.text:
        return t.text
    before = next((p for p in reversed(turns[:i]) if p.speaker != t.speaker), None)
    asked = asked_for(before.text) if before is not None and t.start - before.end <= ASKED_WITHIN_SECONDS else frozenset()
    spans = identity_spans(t.text, asked, customer=getattr(t, "role", None) != "agent")
    text, last, parts = t.text, 0, []
    for r in spans:
        parts += [text[last:r.start], r.replacement]
        last = r.end
    return "".join(parts) + text[last:]
