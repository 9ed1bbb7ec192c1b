from evaluation.metrics import cer, edit_distance, wer


def test_edit_distance():
    assert edit_distance(list("kitten"), list("sitting")) == 3
    assert edit_distance([], list("abc")) == 3


def test_cer_ignores_punctuation_script_and_digit_form():
    assert cer("我要打幺二三七八找金融监管总局！", "我要打12378找金融監管總局") == 0
    assert abs(cer("我的卡被冻结了", "我的卡被动结了") - 1 / 7) < 1e-9


def test_wer_normalises_numbers_and_case():
    assert wer("I was charged twenty five pounds.", "i was charged 25 pounds") == 0
    assert wer("the money will be released", "the money will released") == 0.2
