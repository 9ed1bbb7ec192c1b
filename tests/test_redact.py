"""PII masking: cards (last 4 kept), resident IDs, phones, e-mails, in any digit script."""
import pytest

from pipeline.redact import find, redact


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
])
def test_masks(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "I was charged 25 pounds in 1986", "转了三千块钱", "我的尾号是八八六六", "我要打12378找金融监管总局",
    "that is a great dot com idea", "hello, I can see the fee at the account", "一二三四五六",
    "first contact 2026-11-19 10:12:00; last 2026-11-20 16:40:00.123", '{"time": 18.700000000000003}',
])
def test_leaves_ordinary_text_alone(text):
    assert redact(text) == text and find(text) == []
