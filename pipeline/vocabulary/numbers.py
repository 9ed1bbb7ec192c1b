"""Numbers as digits: the one reading of spoken and written numbers that every stage uses (the
vocabulary and the escalation lexicon match 12378 however it was said; facts read amounts, times
and deadlines; the recognition eval compares texts).

Mandarin (`zh_numbers`):
- a run of 3+ spoken digits is read digit by digit: 幺二三七八 / 一二三七八 -> 12378 (phone
  numbers, hotlines, card and account numbers);
- 百分之五 -> 5%;
- a numeral with place values is read as a value when a unit follows it (三百二十块 -> 320块,
  下午五点 -> 下午5点, 两个工作日 -> 2个工作日, 3千块 -> 3000块); without a unit it stays
  (十分抱歉 is "very sorry", 一下 is "a moment", 万一 is "in case"), as does a weekday (星期五);
- a lone 一 only before a unit of time or count that it can only mean one of (一个小时, 一天,
  一块), and before 点 as a clock time (下午一点, 星期五一点之前), not as "a bit" (快一点,
  好一点, 一点儿);
- minutes and quarters after a clock hour: 三点十分 -> 3点10分, 三点一刻 -> 3点1刻.
English (`en_numbers`): number words as digits ("twenty four hours" -> "24 hours").
Every rule writes only digits, so reading a text twice changes nothing more.
"""
from __future__ import annotations

import re
from functools import lru_cache

import cn2an

from pipeline.config.datafiles import read_json

# Spoken digits as Arabic ones, one character each (so positions in a text hold).
SPOKEN_DIGITS = {"零": "0", "〇": "0", "幺": "1", "一": "1", "二": "2", "两": "2", "三": "3", "四": "4", "五": "5",
                 "六": "6", "七": "7", "八": "8", "九": "9"}
_DIGIT_RUN = re.compile(r"(?<![期周拜])[0-9零〇幺一二三四五六七八九]{3,}")  # 星期二 is a day, not a digit
_PERCENT = re.compile(r"百分之([零一二三四五六七八九十百点]+)")
_NUMERAL = "零〇一二三四五六七八九十百千两"
_UNIT = (r"(?:万|亿)?(?:[元块天个次笔张期岁倍周遍份家位条时刻镑美欧港]|小时|钟头|分钟|点|号|日|月|年|星期|礼拜"
         r"|号码|工作日|%)")
# Not after another numeral or digit (part of a longer number), nor after 期/周/拜 (星期五 is a day).
_PLACE_NUMERAL = re.compile(
    rf"(?<![0-9{_NUMERAL}万亿幺期周拜])([{_NUMERAL}]+(?:[万亿][{_NUMERAL}]*)*)(?={_UNIT})")
# A clock hour right after a weekday (星期五一点, 周一十点).
_WEEKDAY_CLOCK = re.compile(r"(?<=[期周拜][一二三四五六日天])([一二两三四五六七八九十]+)(?=[点时])")
_MIXED = re.compile(rf"(?<![0-9.{_NUMERAL}万亿幺])(\d+(?:\.\d+)?)([十百千万亿]+)(?={_UNIT})")
# What a lone 一 before a unit can only mean "one" of.
_ONE_UNITS = re.compile(r"个|天|周|小时|钟头|分钟|星期|礼拜|月|年|号|日|块|元|笔|次|工作日")
# 一点 is "a bit" after these (快一点, 好一点) and before 儿 or another 点 (一点儿, 一点点).
_A_BIT_BEFORE = re.compile(r"(?:快|慢|好|多|少|大|小|高|低|轻|重|近|远|便宜|贵|清楚|仔细|耐心|注意|简单|方便|有)$")
_MINUTES = re.compile(rf"(?<=\d[点时])([{_NUMERAL}]+)(?=分)|(?<=\d[点时])([一三])(?=刻)")


def _value(numeral: str) -> str | None:
    try:
        value = cn2an.cn2an(numeral.replace("两", "二").replace("〇", "零"), "smart")
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return str(int(value)) if float(value).is_integer() else str(value)


def _place(m: re.Match) -> str:
    numeral, text, end = m.group(1), m.string, m.end(1)
    if numeral == "一":
        after = text[end:]
        if after.startswith("点"):
            if _A_BIT_BEFORE.search(text[:m.start(1)]) or re.match(r"点(?:儿|点)", after):
                return numeral
        elif not _ONE_UNITS.match(after):
            return numeral
    return _value(numeral) or numeral


def _mixed(m: re.Match) -> str:
    value = _value(m.group(1) + m.group(2))
    return value if value is not None else m.group(0)


def zh_numbers(text: str) -> str:
    """Chinese numerals and spoken digits as Arabic digits; everything else unchanged (see the
    module's rules)."""
    text = _PERCENT.sub(lambda m: (_value(m.group(1)) or m.group(1)) + "%", text)
    text = _DIGIT_RUN.sub(lambda m: "".join(SPOKEN_DIGITS.get(c, c) for c in m.group(0)), text)
    text = _MIXED.sub(_mixed, text)
    text = _PLACE_NUMERAL.sub(_place, text)
    text = _WEEKDAY_CLOCK.sub(lambda m: _value(m.group(1)) or m.group(1), text)
    return _MINUTES.sub(lambda m: _value(m.group(1)) or m.group(1) if m.group(1) else SPOKEN_DIGITS[m.group(2)], text)


@lru_cache(maxsize=1)
def _en_words() -> tuple[dict, dict, re.Pattern]:
    lexicon = read_json("facts_lexicon.json")
    cardinals, ordinals = lexicon["en_number_words"], lexicon["en_ordinal_words"]
    card = "|".join(sorted(cardinals, key=len, reverse=True))
    ords = "|".join(ordinals)
    month = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*"
    # an ordinal counts after a cardinal ("twenty fifth") or before a month ("fifth of May"), not in "the first time"
    pattern = re.compile(rf"\b(?:(?:(?:{card})[\s-]+(?:and[\s-]+)?)+(?:{ords})\b|(?:{ords})(?=\s+(?:of\s+)?{month})"
                         rf"|(?:(?:{card})(?:[\s-]+(?:and[\s-]+)?)?)*(?:{card})\b)", re.IGNORECASE)
    return cardinals, ordinals, pattern


def en_numbers(text: str) -> str:
    """English number words as digits: 'twenty four hours' -> '24 hours', 'three thousand' -> '3000',
    'the twenty fifth' -> 'the 25th'. 'first' alone stays a word ("the first time")."""
    cardinals, ordinals, pattern = _en_words()
    words = {**cardinals, **ordinals}

    def convert(m: re.Match) -> str:
        raw = m.group(0)
        tokens = [t for t in re.split(r"[\s-]+", raw.strip().lower()) if t and t != "and"]
        values = [words[t] for t in tokens]
        if len(values) >= 2 and 11 <= values[0] <= 19 and values[1] >= 20 and max(values) < 100:
            return str(values[0] * 100 + sum(values[1:])) + raw[len(raw.rstrip()):]  # a year: "nineteen eighty six"
        total = current = 0
        for tok in tokens:
            v = words[tok]
            if v == 100:
                current = max(current, 1) * 100
            elif v >= 1000:
                total += max(current, 1) * v
                current = 0
            else:
                current += v
        trail = raw[len(raw.rstrip()):]
        n = total + current
        suffix = ({1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th") if n % 100 not in (11, 12, 13) else "th") if tokens[-1] in ordinals else ""
        return str(n) + suffix + trail

    return pattern.sub(convert, text)


def normalise_numbers(text: str, language: str | None = None) -> str:
    """Numbers in `text` as digits: Chinese numerals and spoken digits for Mandarin (and text of
    unknown language, None), English number words for any other language."""
    return zh_numbers(text) if language in (None, "zh") else en_numbers(text)
