"""Facts and deadlines (pipeline/analysis/facts.py): the time normaliser over many phrasings, zh and en,
relative to a call's start in the centre's zone; amounts with currency; consequences, products.
Pure text in, no model: these hold on any machine."""
import csv
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.analysis.facts import Deadline, FactError, Utterance, extract_facts, find_amounts, find_times
from pipeline.vocabulary.numbers import normalise_numbers

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Friday 2026-11-20 16:40 in Beijing, the start of sample call zh-1001-b.
CALL = datetime(2026, 11, 20, 16, 40, tzinfo=SHANGHAI)


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=SHANGHAI)


END = (23, 59, 59)

# (phrase, language, expected due, said as a deadline?)
PHRASES = [
    ("今天下午五点之前必须给我答复", "zh", at(20, 17), True),
    ("今天下午5点前给我回电话", "zh", at(20, 17), True),
    ("明天上午给我回个电话", "zh", at(21, 12), False),
    ("明天上午十点之前", "zh", at(21, 10), True),
    ("今晚八点半之前", "zh", at(20, 20, 30), True),
    ("明天中午十二点前", "zh", at(21, 12), True),
    ("后天下午三点一刻以前", "zh", at(22, 15, 15), True),
    ("二十四小时之内必须到账", "zh", at(21, 16, 40), True),
    ("三个工作日内处理好", "zh", at(25, 16, 40), True),  # Mon, Tue, Wed: the weekend does not count
    ("下周三之前", "zh", at(25, *END), True),
    ("周五之前给我办好", "zh", at(20, *END), True),  # said on a Friday: today
    ("11月25号之前", "zh", at(25, *END), True),
    ("最晚后天", "zh", at(22, *END), True),
    ("月底之前", "zh", at(30, *END), True),
    ("你们今天一定给我回个电话", "zh", at(20, *END), True),
    ("我昨天已经打过电话了", "zh", at(19, *END), False),
    ("下个星期要给孩子交学费", "zh", at(29, *END), False),
    ("上周五转了三千块钱", "zh", at(13, *END), False),
    ("within 24 hours", "en", at(21, 16, 40), True),
    ("within twenty four hours", "en", at(21, 16, 40), True),
    ("in the next two hours", "en", at(20, 18, 40), True),
    ("within 3 working days", "en", at(25, 16, 40), True),
    ("by Friday", "en", at(20, *END), True),
    ("If it is not there by tomorrow I will complain", "en", at(21, *END), True),
    ("by 5pm today", "en", at(20, 17), True),
    ("before 5:30 pm tomorrow", "en", at(21, 17, 30), True),
    ("no later than 17:00", "en", at(20, 17), True),
    ("by noon on Monday", "en", at(23, 12), True),
    ("by next Tuesday", "en", at(24, *END), True),
    ("by 25 November", "en", at(25, *END), True),
    ("by the end of the week", "en", at(22, *END), True),
    ("call me back tomorrow morning", "en", at(21, 12), False),
    ("by the twenty fifth of November", "en", at(25, *END), True),
    ("by the third of December", "en", at(3, *END, month=12), True),
    ("I made the transfer on Monday", "en", at(16, *END), False),  # told in the past: the Monday before
]


@pytest.mark.parametrize("phrase, language, due, deadline", PHRASES)
def test_time_phrases_resolve_against_the_call_start(phrase, language, due, deadline):
    (mention,) = find_times(phrase, language, CALL)
    assert mention.due == due, (phrase, mention)
    assert mention.deadline is deadline
    assert mention.due.utcoffset() == timedelta(hours=8)  # in the centre's zone


@pytest.mark.parametrize("phrase, language", [
    ("快一点处理", "zh"),  # "a bit faster", not one o'clock
    ("我一定要解冻这张卡", "zh"),
    ("我要打12378找金融监管总局", "zh"),
    ("Sure, it is the 4th of March 1986 and 12 Station Road.", "en"),  # a date of birth, not a case date
    ("it is the fourth of March, nineteen eighty six, and twelve Station Road.", "en"),
    ("I have called three times already", "en"),
])
def test_no_time_where_none_is_said(phrase, language):
    assert find_times(phrase, language, CALL) == []


def test_the_same_words_resolve_in_another_centre_zone():
    london = CALL.astimezone(ZoneInfo("Europe/London"))  # 08:40 the same day in London
    (mention,) = find_times("by 5pm today", "en", london)
    assert mention.due == datetime(2026, 11, 20, 17, tzinfo=ZoneInfo("Europe/London"))


def test_a_naive_reference_is_refused():
    with pytest.raises(FactError):
        find_times("by Friday", "en", datetime(2026, 11, 20, 16, 40))


@pytest.mark.parametrize("text, language, amount, currency", [
    ("I made a transfer of three thousand pounds to my landlord", "en", 3000, "GBP"),
    ("I was charged a £25 overdraft fee", "en", 25, "GBP"),
    ("they took $1,250.50 from my account", "en", 1250.5, "USD"),
    ("上周转了三千块钱给房东", "zh", 3000, "CNY"),
    ("扣了我五万元", "zh", 50000, "CNY"),
    ("汇了两千五美元", "zh", 2500, "USD"),
])
def test_amounts_with_currency(text, language, amount, currency):
    (found,) = find_amounts(text, language)
    assert found["amount"] == amount and found["currency"] == currency


def test_numbers_without_a_currency_are_not_amounts():
    assert find_amounts("my card ends 4111 and I called 3 times", "en") == []
    assert find_amounts("我已经说了三遍了，打12378", "zh") == []


def test_numerals_are_normalised_only_before_a_unit():
    assert normalise_numbers("今天下午五点之前给我三千块", "zh") == "今天下午5点之前给我3000块"
    assert normalise_numbers("我一定要一张卡", "zh") == "我一定要一张卡"
    assert normalise_numbers("within twenty four hours", "en") == "within 24 hours"
    assert normalise_numbers("the twenty first of December, not the first time", "en") == "the 21st of December, not the first time"


def test_facts_come_from_the_customer_and_promised_deadlines_from_the_agent():
    said = [Utterance("customer", 6.0, "I made a transfer of three thousand pounds to my landlord on Monday."),
            Utterance("customer", 19.0, "My rent is now late and my landlord is threatening to evict me."),
            Utterance("agent", 35.0, "I promise the money will be released within twenty four hours."),
            Utterance("agent", 40.0, "Is your credit card also affected?")]
    start = datetime(2026, 11, 20, 14, 30, tzinfo=SHANGHAI)
    facts, deadlines = extract_facts("en-x", said, "en", start)
    kinds = {(f.kind, f.value.get("id") or f.value.get("currency")) for f in facts}
    assert ("amount", "GBP") in kinds and ("consequence", "eviction") in kinds and ("consequence", "late_rent") in kinds
    assert ("product", "credit_card") not in kinds  # the agent's words are not the customer's facts
    amount = next(f for f in facts if f.kind == "amount")
    assert amount.value == {"amount": 3000, "currency": "GBP", "payee": "landlord"}
    assert amount.said_at == start + timedelta(seconds=6) and amount.call_id == "en-x"
    (promised,) = deadlines
    assert promised.role == "agent" and promised.due == datetime(2026, 11, 21, 14, 30, 35, tzinfo=SHANGHAI)


def test_deadline_status_at_the_moment_of_reading():
    due = datetime(2026, 11, 20, 17, tzinfo=SHANGHAI)
    d = Deadline("今天下午五点之前", due, "zh-1001-b", 35.8, "customer")
    assert d.status(datetime(2026, 11, 20, 14, 30, tzinfo=SHANGHAI)) == ("open", 2.5)
    assert d.status(datetime(2026, 11, 21, 9, tzinfo=SHANGHAI)) == ("passed", -16.0)
    assert Deadline("today", None, "x", 0, "customer").status(due) == ("unknown", None)


def test_a_refused_product_is_not_a_fact_and_a_call_without_start_has_no_times():
    said = [Utterance("customer", 11.0, "我不要什么理财团队，我就要解冻我的卡！下周要交学费，转了三千块钱。")]
    facts, deadlines = extract_facts("zh-x", said, "zh", None)
    products = {f.value["id"] for f in facts if f.kind == "product"}
    assert "wealth_management" not in products and "bank_card" in products
    assert {"amount": 3000, "currency": "CNY"} in [f.value for f in facts if f.kind == "amount"]
    assert "school_fees" in {f.value["id"] for f in facts if f.kind == "consequence"}
    assert not [f for f in facts if f.kind in ("date", "deadline")] and deadlines == [] and facts[0].said_at is None


# --- Hand-labelled facts of the sample calls: on their scripts, and on the stored recognition runs.

ROOT = Path(__file__).resolve().parents[2]


def _labels() -> dict:
    return {k: v for k, v in json.loads((ROOT / "tests" / "eval" / "facts_labels.json").read_text("utf-8")).items()
            if not k.startswith("_")}


def _call_starts() -> dict[str, datetime]:
    with open(ROOT / "data" / "samples" / "manifest.csv", encoding="utf-8") as f:
        return {r["call_id"]: datetime.fromisoformat(r["started_at"]).replace(tzinfo=SHANGHAI) for r in csv.DictReader(f)}


def score_call(call_id: str, utterances: list[Utterance], language: str) -> tuple[int, int, int]:
    """(labelled items found, labelled items, extracted items not labelled)."""
    facts, deadlines = extract_facts(call_id, utterances, language, _call_starts()[call_id])
    got = [(f.kind, f.value) for f in facts if f.kind != "deadline"]
    got_deadlines = [(d.role, d.due.isoformat()) for d in deadlines]
    label = _labels()[call_id]

    def fact_found(want: dict) -> bool:
        return any(kind == want["kind"] and all(str(value.get(k, "")).startswith(str(v)) for k, v in want["value"].items())
                   for kind, value in got)

    found = sum(fact_found(w) for w in label["facts"])
    found += sum(any(role == w["role"] and due.startswith(w["due"]) for role, due in got_deadlines) for w in label["deadlines"])
    total = len(label["facts"]) + len(label["deadlines"])
    distinct = {(k, json.dumps(v, sort_keys=True)) for k, v in got} | set(got_deadlines)
    return found, total, max(0, len(distinct) - found)


def test_labelled_facts_on_the_scripts():
    for call_id in _labels():
        truth = json.loads((ROOT / "data" / "samples" / "truth" / f"{call_id}.json").read_text("utf-8"))
        said = [Utterance(t["role"], t["start"], t["text"]) for t in truth["turns"]]
        found, total, extra = score_call(call_id, said, truth["language"])
        assert found == total, call_id  # every labelled fact of the script
        assert extra <= 1, call_id


def test_labelled_facts_on_stored_recognition(capsys):
    from evaluation.recognition import replay_call

    found = total = extra = 0
    for call_id in _labels():
        result = replay_call(call_id)
        said = [Utterance(t.role, t.start, t.text) for t in result.turns]
        f, t, e = score_call(call_id, said, result.transcript.language)
        found, total, extra = found + f, total + t, extra + e
        with capsys.disabled():
            print(f"\n{call_id}: {f}/{t} labelled facts and deadlines found on stored recognition, {e} unlabelled")
    with capsys.disabled():
        print(f"recognition: recall {found}/{total} = {found / total:.2f}, {extra} unlabelled")
    assert found / total >= 0.75  # Whisper base loses some words ("by tomorrow", "24 hours", 储蓄卡)
