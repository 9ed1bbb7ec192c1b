"""Facts and deadlines a customer states: amounts with currency, dates and times, deadlines,
consequences (eviction, school fees, a missed payment...), products and account types.

Times are normalised against the call's start in the centre's time zone: "今天下午五点之前" said
at 2026-11-20 16:40 is due 2026-11-20 17:00; "within 24 hours" is the start + 24 h. Numbers
written as words are normalised first (Chinese with cn2an, English with a small word table),
so "三千块" and "three thousand pounds" read like "3000块" and "3000 pounds". The lexicons are
data (`data/facts_lexicon.json`); labels live in `data/translations.json`.

Conventions (documented, not tuned to a file): a day or a week named as a deadline is due at its
end ("by Friday" = Friday 23:59:59); a day part ends at its usual hour (上午 12:00, 下午 18:00);
a clock hour 1-6 with no day part is afternoon (a call centre's working day); a weekday in a
sentence told in the past tense is the latest one before the call, otherwise the next one;
dates more than a year from the call are left out (they are dates of birth or history).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Iterable
from zoneinfo import ZoneInfo

from pipeline.analysis.redact import redact
from pipeline.config.datafiles import read_json
from pipeline.records import Role
from pipeline.vocabulary.numbers import normalise_numbers

DAY_PARTS = {  # Chinese day part -> (start hour, end hour, add 12 to a clock hour below 12?)
    "凌晨": (0, 6, False), "早上": (6, 9, False), "早晨": (6, 9, False), "上午": (9, 12, False),
    "中午": (11, 13, None), "下午": (13, 18, True), "傍晚": (17, 19, True), "晚上": (18, 24, True),
    "夜里": (20, 24, True), "半夜": (0, 3, False),
    "morning": (6, 12, False), "afternoon": (12, 18, True), "evening": (17, 22, True), "night": (20, 24, True),
}
ZH_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6,
              "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}
EN_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
EN_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MAX_FACT_DAYS = 400  # a date further than this from the call is not a fact about this case


class FactError(ValueError):
    pass


@dataclass(frozen=True)
class Utterance:
    """One turn as the store keeps it."""

    role: str
    start: float
    text: str
    language: str | None = None  # the turn's own language, when stored (a call may switch)


@dataclass(frozen=True)
class TimeMention:
    text: str  # as written (numerals normalised)
    start: datetime  # when the named period begins, in the centre's zone
    end: datetime  # when it ends; an exact moment has start == end
    deadline: bool  # said as a limit: 之前, 以内, 必须, by, before, within

    @property
    def due(self) -> datetime:
        return self.end


@dataclass(frozen=True)
class Fact:
    kind: str  # amount | date | deadline | consequence | product
    text: str  # the sentence it comes from, masked
    value: dict
    call_id: str
    time: float  # seconds into the call
    said_at: datetime | None  # call start + time, centre zone


@dataclass(frozen=True)
class Deadline:
    text: str  # the sentence, masked
    due: datetime | None  # None when the call has no start time
    call_id: str
    time: float
    role: str  # who set it: customer (their deadline) or agent (a deadline promise)
    # An agent's promise to get back by a channel (phone, sms, email, wechat, letter, app): a
    # follow-up due then; None for a deadline that names no channel (money "by Friday").
    channel: str | None = None

    def status(self, now: datetime) -> tuple[str, float | None]:
        """("passed" | "open" | "unknown", hours left, negative once passed)."""
        if self.due is None:
            return "unknown", None
        hours = (self.due - now).total_seconds() / 3600
        return ("passed" if hours <= 0 else "open"), round(hours, 1)


@lru_cache(maxsize=1)
def lexicon() -> dict:
    return read_json("facts_lexicon.json")


def _number(s: str) -> float:
    return float(s.replace(",", ""))


# --- times ----------------------------------------------------------------------------------

def _day_bounds(d: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(d, time(0), tz)
    return start, datetime.combine(d, time(23, 59, 59), tz)


def _add(ref: datetime, delta: timedelta) -> datetime:
    """Elapsed-time arithmetic (correct across a daylight-saving change)."""
    return (ref.astimezone(timezone.utc) + delta).astimezone(ref.tzinfo)


def _add_working_days(ref: datetime, n: int) -> datetime:
    out = ref
    while n > 0:
        out += timedelta(days=1)
        if out.weekday() < 5:
            n -= 1
    return out


def _weekday_date(ref: date, weekday: int, week_offset: int | None, past: bool, deadline: bool) -> date:
    """week_offset: None = no 'this/next/last' said; 0 this week, 1 next week, -1 last week."""
    monday = ref - timedelta(days=ref.weekday())
    if week_offset is not None:
        return monday + timedelta(weeks=week_offset, days=weekday)
    ahead = (weekday - ref.weekday()) % 7
    if past and not deadline:
        return ref - timedelta(days=(ref.weekday() - weekday) % 7 or 7)
    return ref + timedelta(days=ahead)


_ZH_DAY = re.compile(
    r"大后天|后天|明天|明日|明早|明晚|今天|今日|今早|今晚|昨天|昨日|昨晚|前天"
    r"|(?P<wk>下下个?|下个?|上个?|这个?|本)?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天1-7])"
    r"|(?:(?P<y>\d{4})年)?(?P<mo>\d{1,2})月(?P<d>\d{1,2})[日号]|(?P<d2>\d{1,2})号")
_ZH_WEEK = re.compile(r"(?P<wk>下下个?|下个?|上个?|这个?|本)(?:周|星期|礼拜)(?![一二三四五六日天1-7])|月底|下个?月")
_ZH_PART = re.compile("|".join(k for k in DAY_PARTS if not k.isascii()))
_ZH_CLOCK = re.compile(r"(?P<h>\d{1,2})[点时](?:(?P<half>半)|(?P<q>[13])刻|(?P<m>\d{1,2})分?)?(?P<sure>整|钟)?")
_ZH_DURATION = re.compile(r"(?P<n>\d+(?:\.\d+)?|半)个?(?P<unit>小时|钟头|分钟|工作日|天|周|星期|月)(?P<mark>内|之内|以内)")
_ZH_AFTER = re.compile(r"^(?:的)?(?:之前|以前|前|为止|以内|之内|内)")
_ZH_BEFORE = re.compile(r"(?:最晚|最迟|截止到?|截至|不晚于|必须在?|务必在?|一定在?)$")
_ZH_URGENT = re.compile(r"必须|一定|务必|马上|立刻|立即|赶紧")
_ZH_OFFSETS = {"大后天": 3, "后天": 2, "明天": 1, "明日": 1, "明早": 1, "明晚": 1, "今天": 0, "今日": 0, "今早": 0,
               "今晚": 0, "昨天": -1, "昨日": -1, "昨晚": -1, "前天": -2}

_EN_WD = "|".join(EN_WEEKDAYS)
_EN_MON = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*"
_EN_DAY = re.compile(
    rf"\b(?:the day after tomorrow|today|tonight|tomorrow|yesterday"
    rf"|(?:(?P<wk>next|this|last|coming)\s+)?(?P<wd>{_EN_WD})"
    rf"|(?:the\s+)?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:(?:of|on)\s+)?(?P<mon>{_EN_MON})(?:,?\s+(?P<y>\d{{4}}))?"
    rf"|(?P<mon2>{_EN_MON})\s+(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<y2>\d{{4}}))?"
    rf"|(?P<iso>\d{{4}}-\d{{2}}-\d{{2}})|the\s+(?P<d3>\d{{1,2}})(?:st|nd|rd|th))\b", re.IGNORECASE)
_EN_WEEK = re.compile(r"\b(?:(?P<wk>next|this|last)\s+week|(?:the\s+)?end\s+of\s+(?:the\s+)?(?P<eo>day|week|month)"
                      r"|close\s+of\s+business|cob|eod)\b", re.IGNORECASE)
_EN_PART = re.compile(r"\b(?:morning|afternoon|evening|night)\b", re.IGNORECASE)
_EN_CLOCK = re.compile(r"\b(?:(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ampm>[ap])\.?m\b\.?|(?P<h2>\d{1,2}):(?P<m2>\d{2})\b"
                       r"|(?P<h3>\d{1,2})\s*o'?clock\b|(?P<noon>noon|midday|midnight)\b)", re.IGNORECASE)
_EN_DURATION = re.compile(r"\b(?P<mark>within|in the next|in)\s+(?:the\s+next\s+)?(?P<n>\d+(?:\.\d+)?|an?|half an?)\s+"
                          r"(?P<unit>hours?|minutes?|(?:working |business )?days?|weeks?|months?)\b", re.IGNORECASE)
_EN_BEFORE = re.compile(r"\b(?:by|before|until|till|no later than|not later than|latest by|deadline is|deadline of)\s+(?:the\s+)?$",
                        re.IGNORECASE)
_EN_AFTER = re.compile(r"^\s*at the latest", re.IGNORECASE)
_EN_PAST = re.compile(r"\b(?:last|ago|was|were|did|made|sent|paid|had|happened|went|called|told|\w{3,}ed)\b", re.IGNORECASE)


def find_times(text: str, language: str, ref: datetime) -> list[TimeMention]:
    """Every date, time and deadline in `text`, resolved against `ref` (the moment it was said,
    an aware datetime in the centre's zone)."""
    if ref.tzinfo is None:
        raise FactError("find_times needs an aware reference time (the call's start in the centre's zone)")
    norm = normalise_numbers(text, language)
    zh = language == "zh"
    patterns = ([("day", _ZH_DAY), ("week", _ZH_WEEK), ("part", _ZH_PART), ("clock", _ZH_CLOCK), ("duration", _ZH_DURATION)]
                if zh else
                [("day", _EN_DAY), ("week", _EN_WEEK), ("part", _EN_PART), ("clock", _EN_CLOCK), ("duration", _EN_DURATION)])
    spans: list[tuple[int, int, str, re.Match]] = []
    for kind, pattern in patterns:
        for m in pattern.finditer(norm):
            if not any(s < m.end() and m.start() < e for s, e, _, _ in spans):  # earlier kinds win overlaps
                spans.append((m.start(), m.end(), kind, m))
    spans.sort(key=lambda s: s[0])
    groups: list[list[tuple[int, int, str, re.Match]]] = []
    glue = re.compile(r"^(?:[\s,的]|at|on|in the|this)*$", re.IGNORECASE)
    for span in spans:
        last = groups[-1][-1] if groups else None
        kinds = {k for _, _, k, _ in groups[-1]} if groups else set()
        if (last and span[2] not in kinds and "duration" not in kinds | {span[2]}
                and glue.match(norm[last[1]:span[0]])):
            groups[-1].append(span)
        else:
            groups.append([span])
    past = not zh and bool(_EN_PAST.search(norm))
    out = []
    for group in groups:
        start, end = group[0][0], group[-1][1]
        before, after = norm[max(0, start - 20):start], norm[end:end + 6]
        if zh:
            # 必须/一定 right after the time ("今天一定给我回电话") makes it a limit too
            deadline = bool(_ZH_AFTER.match(after) or _ZH_BEFORE.search(before) or _ZH_URGENT.search(norm[end:end + 4]))
        else:
            deadline = bool(_EN_BEFORE.search(before) or _EN_AFTER.match(after))
        if zh and {k for _, _, k, _ in group} == {"clock"} and not _zh_clock_alone(group[0][3], after):
            continue  # "快一点" is "a bit faster", not one o'clock
        mention = _resolve({k: m for _, _, k, m in group}, norm[start:end], ref, zh, past, deadline)
        if mention:
            out.append(mention)
    return out


def _zh_clock_alone(m: re.Match, after: str) -> bool:
    """A bare "N点" is a time only with minutes, 整/钟, or a limit or range after it."""
    return bool(m.group("half") or m.group("q") or m.group("m") or m.group("sure")
                or re.match(r"^(?:之前|以前|前|左右|到|以后|之后)", after))


def _resolve(parts: dict[str, re.Match], text: str, ref: datetime, zh: bool, past: bool,
             deadline: bool) -> TimeMention | None:
    tz = ref.tzinfo
    if "duration" in parts:
        m = parts["duration"]
        n_raw, unit = m.group("n").lower(), m.group("unit").lower()
        n = 0.5 if n_raw.startswith("half") or n_raw == "半" else 1.0 if n_raw in ("a", "an") else float(n_raw)
        if "working" in unit or "business" in unit or unit == "工作日":
            at = _add_working_days(ref, int(n))
        else:
            hours = {"小时": 1, "钟头": 1, "分钟": 1 / 60, "天": 24, "周": 168, "星期": 168, "月": 720}.get(unit)
            if hours is None:
                hours = {"hour": 1, "minu": 1 / 60, "day": 24, "week": 168, "mont": 720}[unit[:4]]
            at = _add(ref, timedelta(hours=n * hours))
        within = zh or m.group("mark").lower() == "within" or "next" in m.group("mark").lower()
        return TimeMention(text, at, at, deadline or within)
    day_start = day_end = None
    if "day" in parts:
        d = _resolve_day(parts["day"], ref, zh, past, deadline)
        if d is None:
            return None
        day_start, day_end = _day_bounds(d, tz)
        word = parts["day"].group(0).lower()
        if word in ("明早", "今早"):
            parts.setdefault("part", re.match("早上", "早上"))
        elif word in ("明晚", "今晚", "昨晚", "tonight"):
            parts.setdefault("part", re.match("晚上", "晚上"))
    elif "week" in parts:
        day_start, day_end = _resolve_week(parts["week"], ref, zh)
    if day_start is None:
        day_start, day_end = _day_bounds(ref.date(), tz)
    elif abs((day_start.date() - ref.date()).days) > MAX_FACT_DAYS:
        return None
    if "clock" in parts:
        hm = _clock(parts["clock"], parts.get("part"), zh)
        if hm is None:
            return None
        at = datetime.combine(day_start.date(), time(*hm), tz) if hm != (24, 0) else day_end
        return TimeMention(text, at, at, deadline)
    if "part" in parts:
        lo, hi, _ = DAY_PARTS[parts["part"].group(0).lower()]
        s = datetime.combine(day_start.date(), time(lo), tz)
        e = datetime.combine(day_start.date(), time(hi), tz) if hi < 24 else day_end
        return TimeMention(text, s, e, deadline)
    if "day" in parts or "week" in parts:
        return TimeMention(text, day_start, day_end, deadline)
    return None


def _resolve_day(m: re.Match, ref: datetime, zh: bool, past: bool, deadline: bool) -> date | None:
    word, today = m.group(0).lower(), ref.date()
    g = m.groupdict()
    if zh and word in _ZH_OFFSETS:
        return today + timedelta(days=_ZH_OFFSETS[word])
    offsets = {"the day after tomorrow": 2, "today": 0, "tonight": 0, "tomorrow": 1, "yesterday": -1}
    if not zh and word in offsets:
        return today + timedelta(days=offsets[word])
    if g.get("wd"):
        wk = (g.get("wk") or "").lower().rstrip("个")
        offset = {"下下": 2, "下": 1, "next": 1, "上": -1, "last": -1, "这": 0, "本": 0, "this": 0}.get(wk)
        weekday = ZH_WEEKDAY[g["wd"]] if zh else EN_WEEKDAYS.index(g["wd"].lower())
        if wk == "coming":
            offset = None
        return _weekday_date(today, weekday, offset, past, deadline)
    try:
        if zh:
            day = int(g.get("d") or g.get("d2"))
            month = int(g["mo"]) if g.get("mo") else today.month
            year = int(g["y"]) if g.get("y") else None
        else:
            if g.get("iso"):
                return date.fromisoformat(g["iso"])
            day = int(g.get("d") or g.get("d2") or g.get("d3"))
            mon = g.get("mon") or g.get("mon2")
            month = EN_MONTHS.index(mon.lower()[:3]) + 1 if mon else today.month
            year = int(g.get("y") or g.get("y2")) if (g.get("y") or g.get("y2")) else None
        if year is None:  # the nearest such date: a deadline ahead, a past event behind
            candidates = [date(today.year + k, month, day) for k in (-1, 0, 1) if _valid(today.year + k, month, day)]
            ahead = [c for c in candidates if c >= today]
            behind = [c for c in candidates if c <= today]
            pick = (ahead[0] if ahead else None) if (deadline or not past) else (behind[-1] if behind else None)
            return pick or min(candidates, key=lambda c: abs((c - today).days))
        return date(year, month, day)
    except (TypeError, ValueError, IndexError):
        return None


def _valid(y: int, m: int, d: int) -> bool:
    try:
        date(y, m, d)
        return True
    except ValueError:
        return False


def _resolve_week(m: re.Match, ref: datetime, zh: bool) -> tuple[datetime, datetime]:
    tz, today = ref.tzinfo, ref.date()
    word = m.group(0).lower()
    monday = today - timedelta(days=today.weekday())
    if word in ("月底", "end of the month", "end of month") or m.groupdict().get("eo") == "month":
        nxt = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
        return _day_bounds(nxt - timedelta(days=1), tz)
    if word.startswith("下") and "月" in word or word == "next month":
        first = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
        nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        return _day_bounds(first, tz)[0], _day_bounds(nxt - timedelta(days=1), tz)[1]
    eo = m.groupdict().get("eo")
    if eo == "day":
        return _day_bounds(today, tz)
    if word in ("close of business", "cob", "eod"):
        at = datetime.combine(today, time(17), tz)
        return at, at
    wk = (m.groupdict().get("wk") or "").lower().rstrip("个")
    offset = {"下下": 2, "下": 1, "next": 1, "上": -1, "last": -1, "这": 0, "本": 0, "this": 0}.get(wk, 0)
    if eo == "week":
        offset = 0
    first = monday + timedelta(weeks=offset)
    return _day_bounds(first, tz)[0], _day_bounds(first + timedelta(days=6), tz)[1]


def _clock(m: re.Match, part: re.Match | None, zh: bool) -> tuple[int, int] | None:
    g = m.groupdict()
    if g.get("noon"):
        return (12, 0) if g["noon"].lower() in ("noon", "midday") else (24, 0)
    hour = int(g.get("h") or g.get("h2") or g.get("h3"))
    if zh:
        minute = 30 if g.get("half") else 15 * int(g["q"]) if g.get("q") else int(g["m"]) if g.get("m") else 0
    else:
        minute = int(g.get("m") or g.get("m2") or 0)
        ampm = (g.get("ampm") or "").lower()
        if ampm:
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if ampm == "p" else 0)
            part = None
    if part is not None:
        pm = DAY_PARTS[part.group(0).lower()][2]
        if (pm or (pm is None and hour < 6)) and hour < 12:
            hour += 12
        elif part.group(0) in ("凌晨", "半夜") and hour == 12:
            hour = 0
    elif hour < 7 and not g.get("h2") and not (not zh and g.get("ampm")):
        hour += 12  # no day part: a call centre's "5点" / "5 o'clock" is in the afternoon
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return hour, minute


# --- facts ----------------------------------------------------------------------------------

_AMOUNT_EN = re.compile(
    r"(?P<pre>£|\$|€|¥|\b(?:gbp|usd|eur|rmb|cny|hkd)\s?)(?P<n>\d[\d,]*(?:\.\d+)?)\s?(?P<mult>k\b|thousand|million)?"
    r"|(?P<n2>\d[\d,]*(?:\.\d+)?)\s?(?P<mult2>k\b|thousand|million)?\s?(?P<post>pounds?|quid|dollars?|euros?|yuan|rmb|gbp|usd|eur|hkd|kuai)\b",
    re.IGNORECASE)
_AMOUNT_ZH = re.compile(r"(?P<pre>人民币|美元|英镑|欧元|港币)?(?P<n>\d+(?:\.\d+)?)(?P<mult>万|千|百)?"
                        r"(?P<post>块钱|块|元|人民币|美元|美金|英镑|欧元|港币|港元)")
_MULT = {"k": 1e3, "thousand": 1e3, "million": 1e6, "万": 1e4, "千": 1e3, "百": 1e2}


def _currency(token: str) -> str | None:
    token = token.strip().lower()
    for code, names in lexicon()["currencies"].items():
        if token in names or token.rstrip("s") in names:
            return code
    return None


def find_amounts(text: str, language: str) -> list[dict]:
    norm = normalise_numbers(text, language)
    out = []
    for m in (_AMOUNT_ZH if language == "zh" else _AMOUNT_EN).finditer(norm):
        g = m.groupdict()
        raw, mult = g.get("n") or g.get("n2"), (g.get("mult") or g.get("mult2") or "").lower()
        currency = _currency(g.get("pre") or "") or _currency(g.get("post") or "")
        if not raw or not currency:
            continue
        value = _number(raw) * _MULT.get(mult, 1)
        amount = {"amount": int(value) if value.is_integer() else value, "currency": currency}
        payee = _payee(norm[m.end():m.end() + 30])
        if payee:
            amount["payee"] = payee
        out.append(amount)
    return out


_NEGATED = re.compile(r"(?:不要|不需要|不用|不想要|don't want|do not want|don't need|do not need|no)\W{0,2}(?:什么|any|a|the)?\W{0,2}$")


def _terms(text: str, table: str, negatable: bool = False) -> list[str]:
    """Lexicon ids whose terms occur in `text`; with `negatable`, a term only refused
    ("我不要什么理财", "I don't want a loan") does not count."""
    low = text.lower()
    found = []
    for key, terms in lexicon()[table].items():
        places = [m.start() for t in terms for m in re.finditer(re.escape(t), low)]
        if negatable:
            places = [i for i in places if not _NEGATED.search(low[max(0, i - 16):i])]
        if places:
            found.append(key)
    return found


def promise_channel(sentence: str) -> str | None:
    """The channel a promise names first ("发短信…推送到手机银行" is a text): lexicon "channels"."""
    low = sentence.lower()
    places = [(low.find(t), key) for key, terms in lexicon()["channels"].items() for t in terms if t in low]
    return min(places)[1] if places else None


def _payee(following: str) -> str | None:
    found = _terms(following, "payees")
    return found[0] if found else None


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[。！？!?；;])|(?<=[.])\s+", text)
    return [p.strip() for p in parts if p and p.strip()]


def stored_utterance(row: dict) -> Utterance:
    """An utterance from a stored turn row (role, start, text, language). The language is NULL on
    calls stored before turns kept one: then the call's language applies."""
    language = row.get("language")
    return Utterance(row["role"], float(row["start"]), row["text"] or "", language if isinstance(language, str) else None)


def extract_facts(call_id: str, utterances: Iterable[Utterance], language: str,
                  call_start: datetime | None) -> tuple[list[Fact], list[Deadline]]:
    """Facts and deadlines from the customer's turns; the agent's turns add only the deadlines
    they promised (role 'agent'). `call_start` is aware, in the centre's zone (None: unknown)."""
    facts: list[Fact] = []
    deadlines: list[Deadline] = []
    for u in utterances:
        for sentence in _sentences(u.text):
            said_at = _add(call_start, timedelta(seconds=u.start)) if call_start else None
            shown = redact(sentence)
            times = find_times(sentence, u.language or language, said_at) if said_at else []
            for t in times:
                if t.deadline:
                    channel = promise_channel(sentence) if u.role == Role.AGENT else None
                    deadlines.append(Deadline(shown, t.due, call_id, round(u.start, 2), u.role, channel))
            if u.role != Role.CUSTOMER:
                continue

            def add(kind: str, value: dict) -> None:
                facts.append(Fact(kind, shown, value, call_id, round(u.start, 2), said_at))

            for amount in find_amounts(sentence, u.language or language):
                add("amount", amount)
            when = next((t for t in times if not t.deadline), None)
            for t in times:
                add("deadline" if t.deadline else "date", {"start": t.start.isoformat(), "end": t.end.isoformat()})
            for consequence in _terms(sentence, "consequences"):
                value = {"id": consequence}
                if when:
                    value |= {"start": when.start.isoformat(), "end": when.end.isoformat()}
                add("consequence", value)
            for product in _terms(sentence, "products", negatable=True):
                add("product", {"id": product})
    return facts, deadlines


def fact_json(f: Fact) -> dict:
    out = asdict(f)
    out["said_at"] = f.said_at.isoformat() if f.said_at else None
    return out
