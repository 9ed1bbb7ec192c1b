"""Which authority or channel a threat names (the lexicon's source column): each authority's terms
found with the customer's words around them (masked), a mere mention or a denial is no threat, the
three threat flags unchanged; a bank's three-column lexicon still works; the manifest's `source`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.analysis.escalation import lexicon, lexicon_hits, score_call, threat_sources
from pipeline.config.datafiles import read_json
from pipeline.config.policy import parse_policy
from pipeline.intake.manifest import read_manifest
from pipeline.records import Role, TurnFeatures, VoiceFeatures

CALM = VoiceFeatures(loudness_db=60.0, pitch_st=5.0, pitch_range_st=2.0, rate=3.0)


def escalation_of(lines: list[tuple[str, str]], policy=None):
    """A call of (role, text) turns, five seconds each, roles certain; voice calm, so words decide."""
    features = []
    for i, (role, text) in enumerate(lines):
        hits = lexicon_hits(text, policy)
        features.append(TurnFeatures(turn_index=i, role=role, speaker="ch0" if role == Role.AGENT else "ch1",
                                     start=5.0 * i, end=5.0 * i + 4.5, text=text, voice=CALM,
                                     terms=tuple(h.term for h in hits),
                                     categories=tuple(sorted({h.category for h in hits}))))
    return score_call(features, 5.0 * len(lines), roles_certain=True, policy=policy)


def named(text: str) -> dict[str, str]:
    """source -> quote, for one customer turn after an agent's greeting."""
    esc = escalation_of([(Role.AGENT, "您好，请问有什么可以帮您"), (Role.CUSTOMER, text)])
    return {s.source: s.quote for s in esc.sources}


# Customers' words from the team's labelled conversations (tests/eval/callback_conversations.json) and the
# English lines of the escalation set, with the authority or channel each names.
SAID = [
    ("你保证？上次网点也说很快就好。再解决不了，我就打12363投诉你们，再去消协反映。", {"pboc_12363": "12363", "samr_12315": "消协"}),
    ("征信你们必须给我改，不然我就打12363，找人民银行投诉你们。", {"pboc_12363": "12363"}),
    ("光道歉有什么用？这个钱你们不赔，我就打12378找金融监管总局，还要找电视台曝光你们！",
     {"nfra_12378": "12378", "media": "电视台"}),
    ("我要投诉你们，我要打幺二三七八找金融监管总局！", {"nfra_12378": "金融监管总局"}),
    ("我已经打了12315了，那边说这个归银行管。你们再不回我，我就打12378。", {"samr_12315": "12315", "nfra_12378": "12378"}),
    ("你确定？明天到不了怎么办？再到不了我就去人民银行信访，还要找律师。",
     {"pboc_12363": "人民银行", "petition": "信访", "lawyer": "律师"}),
    ("不用说了！我已经在黑猫投诉上发帖了，你们就等着上微博热搜吧！", {"online_platform": "黑猫投诉"}),
    ("我明天就去法院起诉你们。", {"court": "法院"}),
    ("你们再拖着，我就报警。", {"police": "报警"}),
    ("我要把这个发到网上让大家看看。", {"online_platform": "发到网上"}),
    ("If it is not there by tomorrow I will complain to the ombudsman and talk to my lawyer.",
     {"ombudsman": "ombudsman", "lawyer": "lawyer"}),
    ("I will report you to the regulator and post this on social media.",
     {"regulator": "regulator", "online_platform": "social media"}),
    ("That's not good enough. I'm going to call the regulator, the 12378 hotline.", {"nfra_12378": "12378"}),
    ("If it's not back by Friday I'm posting about it on Weibo.", {"online_platform": "Weibo"}),
    ("Fine. And if I lose another day on this I'm going to the press.", {"media": "the press"}),
    ("I will write to the Financial Conduct Authority and to trading standards.",
     {"fca": "Financial Conduct Authority", "trading_standards": "trading standards"}),
    ("My solicitor will hear about this.", {"lawyer": "solicitor"}),
]


@pytest.mark.parametrize("text,expected", SAID)
def test_each_authority_and_channel_is_named_with_the_customers_words(text, expected):
    found = named(text)
    assert set(found) == set(expected), text
    for source, words in expected.items():
        assert words.lower() in found[source].lower(), (source, found[source])


def test_the_three_threat_flags_stay_and_sources_belong_to_them():
    esc = escalation_of([(Role.CUSTOMER, "再解决不了，我就打12363投诉你们，还要找律师，发到网上。")])
    assert set(esc.flags) >= {"regulator_threat", "legal_threat", "media_threat"}
    assert {s.source: s.category for s in esc.sources} == {
        "pboc_12363": "regulator_threat", "lawyer": "legal_threat", "online_platform": "media_threat"}
    assert all(s.role == Role.CUSTOMER and s.time == 0.0 for s in esc.sources)


@pytest.mark.parametrize("text", [
    "我在抖音上看到你们的广告",  # a mention of a platform
    "其实我本来想打12315投诉的，后来想想还是先找你们，就没打。",  # from the team's labelled calls: no threat
    "我不会去找媒体的，我就想把钱拿回来。",
    "我没钱请律师，你们就欺负老百姓。",
    "I won't go to the press, I just want my money back.",
    "I never called the regulator before.",
])
def test_a_mention_or_a_denial_is_no_threat(text):
    esc = escalation_of([(Role.CUSTOMER, text)])
    assert esc.sources == () and not {"regulator_threat", "media_threat", "legal_threat"} & set(esc.flags)


def test_a_denial_does_not_hide_a_threat_said_in_the_next_breath():
    assert set(named("我不想闹大，但是你们再不处理我就找媒体。")) == {"media"}
    assert set(named("没人管我就找律师")) == {"lawyer"}  # 没 belongs to 没人管, too far from the threat
    assert set(named("I don't want to do this, but I will call the ombudsman.")) == {"ombudsman"}


def test_the_agent_naming_a_hotline_is_not_the_customers_threat():
    esc = escalation_of([(Role.AGENT, "您如果对处理结果不满意，也可以拨打12378或者12363反映。"),
                         (Role.CUSTOMER, "好的，谢谢。")])
    assert esc.sources == () and "regulator_threat" not in esc.flags


def test_the_quote_is_masked_and_each_source_is_named_once_at_its_first_time():
    card = "6222 0210 1234 5678"
    esc = escalation_of([(Role.CUSTOMER, f"我的卡号是{card}，钱被扣了，不退我就打12363。"),
                         (Role.AGENT, "非常抱歉，我马上帮您查。"),
                         (Role.CUSTOMER, "我再说一遍，不退钱我就打12363，找人民银行。")])
    (pboc,) = esc.sources
    assert pboc.source == "pboc_12363" and pboc.time == 0.0 and "12363" in pboc.quote
    assert "0210" not in pboc.quote and "1234" not in pboc.quote and "6222" not in pboc.quote  # the last 4 may show


def test_every_threat_term_names_a_known_source_of_its_own_category():
    known = read_json("threat_sources.json")["sources"]
    threat_terms = [t for t in lexicon() if t.category in threat_sources()["generic"]]
    assert threat_terms and all(t.source in known and known[t.source]["category"] == t.category for t in threat_terms)
    assert all(t.source is None for t in lexicon() if t.category not in threat_sources()["generic"])


def test_every_source_has_a_chip_and_an_alert_label_in_both_languages():
    translations, rules = read_json("translations.json"), read_json("alert_rules.json")
    for source in read_json("threat_sources.json")["sources"]:
        assert set(translations[f"source.{source}"]) == {"zh", "en"}
        assert set(rules["sources"][source]["label"]) == {"zh", "en"}


def test_a_banks_three_column_lexicon_names_the_generic_source(tmp_path):
    policy_text = (Path(__file__).parents[2] / "pipeline/data/policy.toml").read_text(encoding="utf-8")
    (tmp_path / "bank.tsv").write_text("legal_threat\t40\tsmall claims court\nregulator_threat\t35\tbank ombudsman\n",
                                       encoding="utf-8")
    policy = parse_policy(policy_text.replace('escalation_lexicon = "escalation_lexicon.tsv"',
                                              'escalation_lexicon = "bank.tsv"'), folder=tmp_path)
    esc = escalation_of([(Role.CUSTOMER, "I will take you to small claims court and write to the bank ombudsman")],
                        policy)
    assert set(esc.flags) == {"legal_threat", "regulator_threat"}
    assert {s.source for s in esc.sources} == {"legal", "regulator"}


def test_the_manifest_source_refuses_a_bad_value_in_its_row_only(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("call_id,file,customer_id,source\n"
                        "k1,a.wav,C1,branch\n"
                        "k2,b.wav,C1,Regulator_Referral\n"
                        "k3,c.wav,C1,wechat\n"
                        "k4,d.wav,C1,\n", encoding="utf-8")
    read = read_manifest(manifest)
    assert {r.metadata.call_id: r.metadata.complaint_source for r in read.rows} == {
        "k1": "branch", "k2": "regulator_referral", "k4": None}
    (bad,) = read.rejected
    assert (bad.line, bad.field) == (4, "source") and "\n" not in str(bad) and "'wechat'" in str(bad)
    assert "phone, branch, online, regulator_referral, other" in str(bad)
    assert read.refused_files == [("c.wav", 4)]
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps([{"call_id": "k1", "file": "a.wav", "source": "online"},
                                    {"call_id": "k2", "file": "b.wav", "source": 12378}]), encoding="utf-8")
    read = read_manifest(manifest)
    assert [r.metadata.complaint_source for r in read.rows] == ["online"] and [r.field for r in read.rejected] == ["source"]
