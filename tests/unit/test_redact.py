"""PII masking: cards (last 4 kept), resident IDs, phones, accounts, announced codes, e-mails, in
any digit script and any grouping. Planted-digit property tests are in tests/replay/test_pii.py."""
import pytest

from pipeline.analysis.redact import find, redact


@pytest.mark.parametrize("text, expected", [
    ("我的卡号是6222 0210 0112 3456 789", "我的卡号是[CARD ****6789]"),
    ("卡号六二二二零二一零零一一二三四五六七八九", "卡号[CARD ****6789]"),
    ("card number 4111-1111-1111-1111 please", "card number [CARD ****1111] please"),
    ("身份证号110105199003078765", "身份证号[ID]"),
    ("身份证一一零一零五一九九零零三零七八七六X", "身份证[ID]"),
    ("手机13812345678", "手机[PHONE]"),
    ("电话幺三八 一二三四 五六七八", "电话[PHONE]"),  # spoken digits split across words
    ("号码是1三8一2345六七8", "号码是[PHONE]"),  # mixed scripts
    ("call me on 07700 900123", "call me on [PHONE]"),
    ("是幺零九零二七九零九幺at QQ点com是吗", "是[EMAIL]是吗"),
    ("10902790911atQQ点com", "[EMAIL]"),
    ("it is anna at gmail dot com", "it is [EMAIL]"),
    ("email john.smith@example.co.uk", "email [EMAIL]"),
    ("anna dot smith at gmail dot com", "[EMAIL]"),  # no "anna dot [EMAIL]" leftover
    ("write to anna one two at one six three dot com", "write to [EMAIL]"),
    ("call me on (0770) 900123", "call me on [PHONE]"),  # no "(0770) [PHONE]" leftover
    ("+44 7700 900123 is my mobile", "[PHONE] is my mobile"),
    ("my security code is 123", "my security code is [CODE]"),
    ("The CVV is seven three one.", "The CVV is [CODE]."),
    ("sort code 20-00-00, account 12345678", "sort code [CODE], account [NUMBER]"),
    ("卡背面后三位是四五六", "卡背面后三位是[CODE]"),
    ("验证码是８８２９１６", "验证码是[CODE]"),
    ("my PIN is 4321", "my PIN is [CODE]"),
    ("It's double oh seven, seven double oh, nine oh oh one two three.", "It's [PHONE]."),
    ("身份证号一一零一零五一九九零零三零七八七六叉", "身份证号[ID]"),
    ("the reference is 48213", "the reference is [NUMBER]"),  # announced: 5+ digits
    ("oh seven seven oh oh, um, nine oh oh, uh, one two three", "[PHONE]"),  # fillers between groups
    ("幺三八，嗯，一二三四，呃，五六七八", "[PHONE]"),
    ("07700 900123 pounds", "[PHONE] pounds"),  # amounts have no leading zero
    ("13812345678点", "[PHONE]点"),  # a count or clock unit keeps only short numbers
])
def test_masks(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "I was charged 25 pounds in 1986", "转了三千块钱", "我的尾号是八八六六", "我要打12378找金融监管总局",
    "that is a great dot com idea", "hello, I can see the fee at the account", "一二三四五六",
    "first contact 2026-11-19 10:12:00; last 2026-11-20 16:40:00.123", "the rate is 3.85 percent",
    "I paid 1,500.00 dollars on 2026-11-19 at 10:12", "转了三千元，还有3000元和￥２,０００",
    "$1,200 and £3000 and 1,500,000 yuan", "20/11/2026 09:00 and 16:40:00.123", "I was spinning 12345 plates",
    "the one I want is two weeks old", "oh, I see", "double check it", "我想问一下，两个月前的事", "十一月十九号下午三点",
    "open 09:00-17:30 every day", "from 2019-2020 and in 2019, 2020", "10:12 2026-11-19",
    "[CARD ****1234] and [PHONE]",  # masking twice changes nothing
])
def test_leaves_ordinary_text_alone(text):
    assert redact(text) == text and find(text) == []


# Every leak listed in issue 9, as Whisper wrote it on one CPU or another.
ISSUE_9_LEAKS = [
    ("4 ,111 ,111 ,111 ,111 ,111 ,111 ,111", "4111111111111111111111"), ("4 ,111 ,111 ,111 ,111", "4111111111111"),
    ("4,111,111,111,111", "4111111111111"), ("4111, 1111, 1111, 1111", "411111111111"),
    ("4111. 1111. 1111. 1111.", "411111111111"), ("4111 - 1111 - 1111 - 1111", "411111111111"),
    ("459 -1488 -0343 -6467", "459148803436467"), ("07700 -900 -1123", "077009001123"),
    ("07 -7 -0 -0 -9 -0 -0 -1123", "077009001123"),
    ("eight, two, four, seven, six, five, three, nine, one", "824765391"),
    ("Four one one one, one one one one, one one one one, one one one one.", "411111111111"),
    ("824,765,391", "824765391"), ("卡号是六二二二，零二一零，一二三四，五六七八", "622202101234"),
    ("138，1234，5678", "13812345678"), ("the CVV is 737", "737"), ("my sort code is 40-47-84", "404784"),
    ("安全码是三七三", "373"),
]


@pytest.mark.parametrize("text, secret", ISSUE_9_LEAKS)
def test_issue_9_leaks_are_masked(text, secret):
    from tests.pii import recover_digits

    masked = redact(text)
    assert secret not in recover_digits(masked), masked
    assert redact(masked) == masked


@pytest.mark.parametrize("text, masked", [
    ("My email is anna dot smith at gmail dot com.", "My email is [EMAIL]."),
    ("it's (0770) 900 1123", "it's [PHONE]"),
])
def test_no_partial_leftovers(text, masked):
    assert redact(text) == masked


def test_a_number_read_across_two_turns_is_masked_in_both():
    from pipeline.analysis.redact import redact_turns
    from pipeline.records import Turn

    turns = [Turn("customer", "c", 0, 2, "so it is oh seven seven oh oh"), Turn("agent", "a", 2, 3, "mm-hmm"),
             Turn("customer", "c", 3, 5, "900 123, and the card 4111 1111"), Turn("customer", "c", 5.5, 7, "1111 1111 thanks"),
             Turn("customer", "c", 60, 62, "in 1999"), Turn("customer", "c", 80, 81, "2000 was better")]
    # Turns of one speaker more than TURN_JOIN_SECONDS apart are read apart.
    assert redact_turns(turns) == ["so it is [PHONE]", "mm-hmm", "[PHONE], and the card [CARD ****1111]",
                                   "[CARD ****1111] thanks", "in 1999", "2000 was better"]
