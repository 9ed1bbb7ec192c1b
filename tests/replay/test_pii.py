"""No planted number reaches anything a handler or QA reviewer sees.

Every check looks for the planted digit sequence itself in the output, after mapping spoken
English and Chinese digits to digits and removing every other character (`recover_digits`,
written independently of the masker), never with the masker's own `find()`.

- property tests: cards, phones, resident IDs and account numbers rendered in every way a
  recogniser writes them (groupings, separators, spoken English/Chinese, full-width, mixes),
  embedded in sentences; amounts, dates and times are kept;
- corpus test: numbers planted into customer turns of the stored recognition runs, run through
  everything after Whisper into a real DuckDB file, briefings and QA prefill scanned;
- one live test: an espeak-ng call read through Whisper (no exact-text assertion).
"""
from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline.analysis.redact import redact
from tests.pii import _EN, _FULL, _leaks, handler_texts, recover_digits, recover_numbers


def test_recover_digits_reads_every_script():
    assert recover_digits("Four one double oh, 幺三八 ４５ triple 9") == "410013845999"
    assert recover_digits("[CARD ****1234] 二〇二六") == "12342026"
    assert recover_numbers("at 10:37, the CVV is seven three seven.") == ["1037", "737"]


# --- numbers to plant --------------------------------------------------------------------------

def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


@st.composite
def cards(draw):
    """(digits, secret): Luhn-valid or not, 13-19 digits; the last 4 may be kept."""
    prefix = draw(st.sampled_from(["4", "51", "55", "62", "37", "6011", "35"]))
    n = draw(st.sampled_from([16, 16, 16, 13, 15, 19]))
    body = prefix + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=n - 1 - len(prefix),
                                          max_size=n - 1 - len(prefix))))
    last = _luhn_digit(body) if draw(st.booleans()) else draw(st.sampled_from("0123456789"))
    digits = body + last
    return digits, digits[:-4]


@st.composite
def phones(draw):
    kind = draw(st.sampled_from(["uk", "us", "cn"]))
    rest = lambda k: "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=k, max_size=k)))  # noqa: E731
    if kind == "uk":
        digits = "07" + rest(9)
    elif kind == "us":
        digits = draw(st.sampled_from("23456789")) + rest(2) + draw(st.sampled_from("23456789")) + rest(6)
    else:
        digits = "1" + draw(st.sampled_from("3456789")) + rest(9)
    if draw(st.booleans()):  # with the country code, as "+44 7700 ..."
        digits = {"uk": "44" + digits[1:], "us": "1" + digits, "cn": "86" + digits}[kind]
    return digits, digits


@st.composite
def resident_ids(draw):
    """GB 11643 resident ID: region, birth date, sequence, ISO 7064 MOD 11-2 check character."""
    region = str(draw(st.integers(110000, 659999)))
    born = draw(st.dates(min_value=date(1930, 1, 1), max_value=date(2019, 12, 31))).strftime("%Y%m%d")
    body = region + born + f"{draw(st.integers(0, 999)):03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]
    return body + check, body  # the check character may be X: the 17 digits are the secret


@st.composite
def accounts(draw):
    n = draw(st.sampled_from([8, 9, 10, 12, 16, 17, 18, 19]))
    digits = "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=n, max_size=n)))
    return digits, digits


_ZH_RENDER = {"0": "零〇", "1": "一幺壹", "2": "二两贰", "3": "三叁", "4": "四肆", "5": "五伍", "6": "六陆",
              "7": "七柒", "8": "八捌", "9": "九玖"}
_EN_RENDER = {"0": ["zero", "oh", "O"], **{d: [w] for w, d in _EN.items() if w not in ("zero", "oh", "o", "nought")}}
# Between digit groups, as recognisers write them (issue 9 lists the ones seen).
_SEPARATORS = [" ", "  ", ", ", ",", " ,", ". ", ".", " - ", "-", " -", "/", " / ", "，", "、", "。", "．",
               "－", "／", "　", "; ", "—", " (", ") ", ", um, ", " uh ", "，嗯，", "呃"]


@st.composite
def rendered(draw, number):
    """Render a digit string (or with a trailing X) in a random recogniser style."""
    digits = number
    sizes, left = [], len(digits)
    while left:
        k = min(left, draw(st.sampled_from([1, 2, 3, 3, 4, 4, 4, 5, 6])))
        sizes.append(k)
        left -= k
    if draw(st.booleans()):  # the common tidy groupings
        sizes = [4] * (len(digits) // 4) + ([len(digits) % 4] if len(digits) % 4 else [])
    groups, i = [], 0
    for k in sizes:
        groups.append(digits[i:i + k])
        i += k
    out = []
    for gi, group in enumerate(groups):
        style = draw(st.sampled_from(["ascii", "full", "zh", "en", "mix"]))
        pieces = []
        j = 0
        while j < len(group):
            d = group[j]
            s = style if style != "mix" else draw(st.sampled_from(["ascii", "full", "zh", "en"]))
            if d in "Xx":
                pieces.append(("ascii", draw(st.sampled_from(["X", "x"]))))
            elif s == "ascii":
                pieces.append((s, d))
            elif s == "full":
                pieces.append((s, chr(ord(d) + 0xFEE0)))
            elif s == "zh":
                pieces.append((s, draw(st.sampled_from(_ZH_RENDER[d]))))
            else:
                run = 1
                while j + run < len(group) and group[j + run] == d and run < 3:
                    run += 1
                if run > 1 and draw(st.booleans()):
                    word = draw(st.sampled_from(_EN_RENDER[d]))
                    pieces.append((s, ("double " if run == 2 else "triple ") + word))
                    j += run
                    continue
                word = draw(st.sampled_from(_EN_RENDER[d]))
                pieces.append((s, word.capitalize() if draw(st.booleans()) else word))
            j += 1
        text = pieces[0][1]
        for (s0, _), (s1, p) in zip(pieces, pieces[1:]):
            text += (draw(st.sampled_from([" ", ", ", "-"])) if "en" in (s0, s1) else "") + p
        if gi:
            out.append(draw(st.sampled_from(_SEPARATORS)))
        out.append(text)
    rendering = "".join(out)
    if number[:2] in ("44", "86") and draw(st.booleans()):
        rendering = "+" + rendering
    return rendering


_TEMPLATES = ["My card number is {}.", "It's {}, and I want it unblocked.", "{}", "you can reach me on {} after lunch",
              "the account is {} please check", "卡号是{}，谢谢", "我的手机号码是{}。", "{}，就这个", "身份证号{}对吧",
              "嗯{}嗯", "ok so {} right"]


def _is_date_shaped(text: str) -> bool:
    """A number written exactly as a date or a year range is a date (kept by design); not a leak."""
    text = text.translate(_FULL).strip()
    return (re.fullmatch(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}", text) is not None
            or re.fullmatch(r"(19|20)\d\d\s?[-—/,]\s?(19|20)\d\d", text) is not None)


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(data=st.data(), kind=st.sampled_from(["card", "phone", "id", "account"]))
def test_planted_numbers_cannot_be_recovered(data, kind):
    number, secret = data.draw({"card": cards(), "phone": phones(), "id": resident_ids(), "account": accounts()}[kind])
    rendering = data.draw(rendered(number))
    assume(not _is_date_shaped(rendering))
    sentence = data.draw(st.sampled_from(_TEMPLATES)).format(rendering)
    masked = redact(sentence)
    assert secret not in recover_digits(masked), (sentence, masked)
    assert redact(masked) == masked


# A currency word or sign right after (or before) a card or ID number does not make it an amount.
_CURRENCY_TEMPLATES = ["卡号{}元", "card {} dollars", "${}", "身份证{}块", "{} dollars", "我的卡{}块钱", "£{} please",
                       "卡号是{}人民币", "{} yuan", "USD {}"]


@PROPERTY
@given(data=st.data(), kind=st.sampled_from(["card", "id"]))
def test_card_and_id_numbers_beside_a_currency_word_are_masked(data, kind):
    number, secret = data.draw({"card": cards(), "id": resident_ids()}[kind])
    rendering = data.draw(rendered(number))
    assume(not _is_date_shaped(rendering))
    sentence = data.draw(st.sampled_from(_CURRENCY_TEMPLATES)).format(rendering)
    masked = redact(sentence)
    assert secret not in recover_digits(masked), (sentence, masked)


@pytest.mark.parametrize("sentence, secret", [
    ("卡号6222021012345678元", "62220210123"), ("card 4111111111111111 dollars", "41111111111"),
    ("$4111111111111111", "41111111111"), ("身份证110105194912310021块", "110105194912"),
    ("4,111,111,111,111,111 dollars", "41111111111"), ("手机13812345678元", "13812345678"),
    ("account 123456789012 dollars", "123456789012"), ("我的卡号是62220210123456789元", "62220210123456789")])
def test_the_issue_23_forms_are_masked(sentence, secret):
    assert secret not in recover_digits(redact(sentence))


@pytest.mark.parametrize("sentence", ["我要退1500元", "$1,200.50 please", "转了12345678元", "3000 dollars", "500块钱"])
def test_amounts_stay_as_they_were_said(sentence):
    assert redact(sentence) == sentence


@settings(PROPERTY, max_examples=100)
@given(data=st.data())
def test_two_numbers_in_one_sentence(data):
    (a, sa), (b, sb) = data.draw(cards()), data.draw(phones())
    sentence = f"card {data.draw(rendered(a))} and phone {data.draw(rendered(b))} thanks"
    masked = redact(sentence)
    got = recover_digits(masked)
    assert sa not in got and sb not in got, (sentence, masked)


# --- kept: amounts, dates, times -----------------------------------------------------------------

@st.composite
def amounts(draw):
    value = draw(st.integers(1, 9_999_999))
    cents = draw(st.sampled_from(["", ".00", ".50", ".99"]))
    grouped = f"{value:,}"
    style = draw(st.sampled_from(["en_unit", "symbol", "zh_unit", "zh_numeral", "percent"]))
    if style == "en_unit":
        return f"{draw(st.sampled_from([grouped, str(value)]))}{cents} {draw(st.sampled_from(['dollars', 'pounds', 'yuan', 'euros', 'USD']))}"
    if style == "symbol":
        return f"{draw(st.sampled_from(['$', '£', '€', '¥', '￥', 'RMB ']))}{draw(st.sampled_from([grouped, str(value)]))}{cents}"
    if style == "zh_unit":
        return f"{draw(st.sampled_from([grouped, str(value)]))}{draw(st.sampled_from(['元', '块', '块钱', '美元', '万元']))}"
    if style == "zh_numeral":
        import cn2an

        return cn2an.an2cn(str(value)) + draw(st.sampled_from(["元", "块", "块钱"]))
    return f"{draw(st.integers(0, 99))}.{draw(st.integers(0, 99)):02d}{draw(st.sampled_from(['%', ' percent']))}"


@st.composite
def dates_and_times(draw):
    d = draw(st.dates(min_value=date(1950, 1, 1), max_value=date(2049, 12, 31)))
    h, m, s = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    return draw(st.sampled_from([
        d.isoformat(), f"{d:%d/%m/%Y}", f"{d:%m/%d/%Y}", f"{d:%Y/%m/%d}", f"{d:%d.%m.%Y}", f"{d.year}年{d.month}月{d.day}日",
        f"{d.month}月{d.day}号", f"{h:02d}:{m:02d}", f"{h}:{m:02d}:{s:02d}", f"{d.isoformat()} {h:02d}:{m:02d}:{s:02d}",
        f"{d:%d/%m/%Y} {h:02d}:{m:02d}", f"{(h % 12) + 1} pm", f"{h}点{m}分"]))


@PROPERTY
@given(value=st.one_of(amounts(), dates_and_times()),
       template=st.sampled_from(["I paid {} last week", "转了{}给他", "{}", "on {} I called", "退款{}，谢谢"]))
def test_amounts_dates_and_times_are_kept(value, template):
    text = template.format(value)
    assert redact(text) == text


# --- corpus: planted into stored recognition runs, through every later stage ----------------------

PLANTS = {  # call -> sentences appended to customer segments (cycled), and the secrets they carry
    "en-2001": ["I want my card 4111 1111 1111 1111 unblocked.", "My mobile is 07700 -900 -1123.",
                "The account is eight, two, four, seven, six, five, three, nine, one.",
                "Four five five six, seven three seven five, eight six eight nine, nine eight five five.",
                "I need a refund to 6011. 5734. 8826. 9421.", "Email anna dot smith at gmail dot com, the CVV is 737.",
                "I paid 1,465.00 dollars on 2026-11-19 at 10:12."],
    "en-2002": ["Put me through, my number is (0770) 900 4567.", "I want it on card 459 -1488 -0343 -6467 now.",
                "I need the supervisor, sort code 40-47-84, account 31926819."],
    "zh-1001-a": ["我要解冻卡号是六二二二，零二一零，一二三四，五六七八", "我的手机138，1234，5678",
                  "身份证号110105199003078765", "验证码是八二九一六四我要马上处理", "我想用幺三九 八七六五 四三二一联系"],
    "zh-1001-b": ["我要投诉，卡号６２２５　８８０１　２３４５　６７８９", "我的邮箱是幺零九零二七九零九幺at QQ点com",
                  "安全码是三七三，我要求你们马上处理"],
}
SECRETS = {"en-2001": ["411111111111", "077009001123", "824765391", "455673758689", "601157348826", "737"],
           "en-2002": ["07709004567", "459148803436467", "404784", "31926819"],
           "zh-1001-a": ["622202101234", "13812345678", "11010519900307876", "829164", "13987654321"],
           "zh-1001-b": ["622588012345", "10902790911", "373"]}
WORD_SECRETS = ["anna", "smith", "gmail", "qq"]
# One number read across two customer turns with an agent turn between: each half alone is short.
SPLITS = {"en-2001": ("So let me say it again, it is oh seven seven oh oh", "900 765 okay.", "07700900765"),
          "zh-1001-a": ("好的好的那我再慢慢地说一遍吧就是幺三七零零", "九八七六五四", "13700987654")}


def _planted_transcript(call_id: str, agent_channel: int | None):
    from evaluation.recognition import RECOGNITION
    from pipeline.run.serial import load_recognition
    from pipeline.speakers.roles import infer_roles

    transcript, diarization = load_recognition(RECOGNITION / f"{call_id}.json")
    texts: dict[str, list[str]] = {}
    for seg in transcript.segments:  # the customer as analyse_call will find them, on the clean text
        texts.setdefault(seg.speaker or "", []).append(seg.text)
    roles = infer_roles(diarization, {k: " ".join(v) for k, v in texts.items()}, agent_channel)
    customer_speakers = {s for s, role in roles.items() if role == "customer"}
    plants, k, segments = PLANTS[call_id], 0, []
    sep = "" if transcript.language == "zh" else " "
    for seg in transcript.segments:
        if seg.speaker in customer_speakers and seg.words:
            extra = plants[k % len(plants)]
            k += 1
            last = replace(seg.words[-1], text=seg.words[-1].text + sep + extra)
            seg = replace(seg, text=seg.text + sep + extra, words=seg.words[:-1] + (last,))
        segments.append(seg)
    assert k >= len(plants), f"{call_id}: only {k} customer segments"
    if call_id in SPLITS:  # the first customer segment followed by an agent one, and the next customer one
        head, tail, _ = SPLITS[call_id]
        order = sorted(range(len(segments)), key=lambda i: segments[i].start)
        roles = [segments[i].speaker in customer_speakers for i in order]
        at = next(n for n in range(len(order) - 2) if roles[n] and not roles[n + 1])
        i, j = order[at], order[next(m for m in range(at + 1, len(order)) if roles[m])]
        a, b = segments[i], segments[j]
        segments[i] = replace(a, text=a.text + sep + head,
                              words=a.words[:-1] + (replace(a.words[-1], text=a.words[-1].text + sep + head),))
        segments[j] = replace(b, text=tail + sep + b.text,
                              words=(replace(b.words[0], text=tail + sep + b.words[0].text),) + b.words[1:])
    return replace(transcript, segments=tuple(segments)), diarization


def _planted_result(call_id: str):
    from evaluation.recognition import SAMPLES
    from pipeline.intake.audio import decode
    from pipeline.intake.ingest import discover
    from pipeline.run.stages import analyse_call

    (rec,) = [r for r in discover(SAMPLES).recordings if r.call_id == call_id]
    transcript, diarization = _planted_transcript(call_id, rec.metadata.agent_channel)
    audio = decode(rec.path)
    result = analyse_call(replace(rec, duration=audio.duration), audio, diarization, transcript)
    planted = {t.speaker for t in result.turns if any(p in t.text for p in PLANTS[call_id])}
    assert planted and all(result.roles.get(s) == "customer" for s in planted), (call_id, result.roles)
    return result








@pytest.fixture(scope="module")
def planted_db(tmp_path_factory):
    from pipeline.run.execute import refresh_briefings, write_result
    from pipeline.store import Store

    results = [_planted_result(c) for c in PLANTS]
    path = tmp_path_factory.mktemp("pii") / "planted.duckdb"
    with Store(path) as store:
        for r in results:
            assert r.status == "ok", r.error
            write_result(store, r)
        refresh_briefings(store, results)
    return path, results


def test_no_planted_number_is_on_disk_in_the_database_file(planted_db):
    """`strings` on the database finds nothing: the raw turns and words hold every planted number
    (the test below reads them back), and the encrypted file holds none of them."""
    path, _ = planted_db
    data = b"".join(p.read_bytes() for p in (path, path.with_name(path.name + ".wal")) if p.exists())
    found = b"".join(re.findall(rb"[\x20-\x7e]{6,}", data)).decode()  # what `strings -n 6` prints
    numbers = [s for c in SECRETS.values() for s in c if len(s) >= 6] + [s for *_, s in SPLITS.values()]
    assert len(data) > 100_000 and not [n for n in numbers if n in found.replace(" ", "")]
    assert not [n for n in numbers if n.encode() in data]


def test_planted_numbers_reach_no_handler_field(planted_db):
    from pipeline.store import Store

    path, results = planted_db
    all_secrets = [s for c in SECRETS.values() for s in c] + [s for *_, s in SPLITS.values()] + WORD_SECRETS
    with Store(path) as store:
        texts = handler_texts(store, [r.call_id for r in results])
        raw = " ".join(r[0] for r in store.query("SELECT text FROM turns ORDER BY call_id, seq").itertuples(index=False))
        # The split numbers really sit in two customer turns with another turn between.
        for call_id, (head, tail, _) in SPLITS.items():
            rows = list(store.query("SELECT seq, role, text FROM turns WHERE call_id = ? ORDER BY seq", [call_id])
                        .itertuples(index=False))
            first = next(r[0] for r in rows if r[2].endswith(head))
            second = next(r[0] for r in rows if r[2].startswith(tail))
            assert second > first + 1 and rows[first][1] == rows[second][1] == "customer", rows
    # The plants are really in the stored raw transcript (so this test can fail)...
    raw_digits = recover_digits(raw)
    assert all(s in raw_digits for s in all_secrets if s.isdigit()), "planting failed"
    # ...they reach the handler-visible fields, masked...
    joined = " ".join(texts.values())
    assert "[CARD ****" in joined and "[PHONE]" in joined and "[EMAIL]" in joined and "[CODE]" in joined
    assert any("[CARD ****" in v or "[PHONE]" in v or "[NUMBER]" in v for k, v in texts.items() if k.startswith("summaries"))
    assert any("[" in v for k, v in texts.items() if k.startswith("escalation.evidence"))
    assert any("[" in v for k, v in texts.items() if k.startswith("briefings.markdown"))
    # ...amounts, dates and times stay readable: the briefing still finds the planted amount...
    payload = json.loads(texts["briefings.json C2001"])
    assert any(f["kind"] == "amount" and f["value"].get("amount") == 1465 for f in payload["facts"]), payload["facts"]
    assert "1,465.00 dollars on 2026-11-19 at 10:12" in texts["turns.redacted_text en-2001 (whole call)"]
    # ...and no planted sequence can be read back from any of them...
    assert not _leaks(texts, all_secrets), _leaks(texts, all_secrets)[:5]
    # ...nor a group of the card read out with dots, which sentence splitting used to cut off alone.
    groups = {"6011", "5734", "8826"}  # never an mm:ss time (those appear beside every quote)
    cut = [(k, n) for k, v in texts.items() for n in recover_numbers(v) if n in groups]
    assert not cut, cut[:5]


def test_unplanted_sample_calls_have_no_false_secret(tmp_path):
    """The scan's control: the secrets are not in the untouched calls' handler texts by chance."""
    from evaluation.recognition import replay_db
    from pipeline.store import Store

    path = replay_db(tmp_path / "clean.duckdb")
    with Store(path) as store:
        texts = handler_texts(store, list(PLANTS))
    assert not _leaks(texts, [s for c in SECRETS.values() for s in c])


def test_qa_export_carries_no_planted_number(planted_db, tmp_path):
    import pandas as pd

    from pipeline.outputs.qa import SamplingPlan, draw_sample, export_sample, prefill_scorecard, store_sample
    from pipeline.store import Store

    path, results = planted_db
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(path.read_bytes())
    with Store(copy) as store:
        sample = draw_sample(store, SamplingPlan(n=4, seed=1))
        assert sample.calls
        store_sample(store, sample, {c.call_id: prefill_scorecard(store, c.call_id) for c in sample.calls})
        csv_path, _ = export_sample(store, sample.sample_id, tmp_path / "export", files="plain")
    exported = csv_path.read_text(encoding="utf-8")
    assert not _leaks({"export": exported}, [s for c in SECRETS.values() for s in c if len(s) >= 8])
    assert len(pd.read_csv(csv_path)) == len(sample.calls)


# --- live: one real call through Whisper -----------------------------------------------------------



