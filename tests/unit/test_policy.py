"""The centre's policy file: loaded with the settings, validated with one-line errors, and
passed to the stages that read it (summary outcome, QA sampling, escalation lexicon), with its
result-changing part in the results fingerprint."""
import re
from importlib import resources

import pytest

from pipeline.analysis.escalation import lexicon_hits
from pipeline.analysis.summary import summarise
from pipeline.config.policy import PolicyError, default_policy, load_policy
from pipeline.config.settings import SettingsError, load_settings, results_fingerprint
from pipeline.outputs.qa import SamplingPlan
from pipeline.records import Escalation, Flag, Role, Trend, Turn, channel_label, label_channel

PACKAGED = resources.files("pipeline").joinpath("data", "policy.toml").read_text(encoding="utf-8")


def _policy_file(tmp_path, **changes) -> str:
    """A bank's copy of the packaged policy with some `key = value` lines changed."""
    text = PACKAGED
    for key, value in changes.items():
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.M)
        assert n == 1, key
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _settings(tmp_path, policy_path: str, extra: str = ""):
    toml = tmp_path / "callbrief.toml"
    toml.write_text(f'policy_file = "{policy_path}"\n{extra}', encoding="utf-8")
    return load_settings(toml, environ={})


def test_packaged_policy_keeps_the_levels_and_flags_the_stages_used_before():
    p = default_policy()
    assert (p.levels.complaint, p.levels.review, p.levels.urgent) == (40, 50, 60)
    assert set(p.threat_flags) == {Flag.REGULATOR_THREAT, Flag.MEDIA_THREAT, Flag.LEGAL_THREAT}
    assert set(p.urgent_flags) == set(p.threat_flags) | {Flag.SUPERVISOR_REQUEST}
    assert p.callback_target_minutes == 30 and p.timezone == "Asia/Shanghai"
    settings = load_settings(environ={"CALLBRIEF_SETTINGS": ""})
    assert settings.timezone == p.timezone and settings.callback_target_minutes == 30


def test_a_banks_policy_file_is_read_through_the_settings(tmp_path):
    settings = _settings(tmp_path, _policy_file(tmp_path, complaint=70, callback_target_minutes=15,
                                                timezone='"Europe/Paris"'))
    assert settings.policy.levels.complaint == 70
    assert settings.callback_target_minutes == 15 and settings.timezone == "Europe/Paris"
    # The settings' own zone wins over the policy's default.
    assert _settings(tmp_path, _policy_file(tmp_path), 'timezone = "Asia/Tokyo"\n').timezone == "Asia/Tokyo"


@pytest.mark.parametrize("changes, says", [
    ({"complaint": 140}, "complaint = 140"),
    ({"threats": '["regulator_threat", "media_treat"]'}, "media_treat"),
    ({"call_change": '"ten"'}, "must be a number"),
    ({"escalation_lexicon": '"nowhere.tsv"'}, "nowhere.tsv"),
    ({"callback_target_minutes": 0}, "callback_target_minutes"),
])
def test_a_bad_policy_file_is_one_clear_line(tmp_path, changes, says):
    with pytest.raises(SettingsError) as caught:
        _settings(tmp_path, _policy_file(tmp_path, **changes))
    message = str(caught.value)
    assert says in message and "policy.toml" in message and "\n" not in message


def test_unreadable_or_unknown_keys_are_refused(tmp_path):
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.toml")
    path = tmp_path / "p.toml"
    path.write_text("escalated = 45\n" + PACKAGED, encoding="utf-8")
    with pytest.raises(PolicyError, match="unknown policy key 'escalated'"):
        load_policy(path)


def test_only_result_changing_policy_enters_the_fingerprint(tmp_path):
    base = results_fingerprint(default_policy().results_part())
    later = {k: load_policy(_policy_file(tmp_path, **{k: v})) for k, v in
             [("complaint", 45), ("review", 55), ("callback_target_minutes", 20), ("urgent", 65), ("call_level", 30)]}
    # Read after storing (briefings, QA, dashboard): no reprocessing.
    for key in ("complaint", "review", "callback_target_minutes"):
        assert results_fingerprint(later[key].results_part()) == base, key
    # Stored with each call (outcome, trend): reprocess.
    for key in ("urgent", "call_level"):
        assert results_fingerprint(later[key].results_part()) != base, key


def _escalation(score: float) -> Escalation:
    return Escalation(call_score=score, trend=Trend.FLAT, quarter_scores=(None,) * 4, peak_time=None,
                      flags=(), evidence=(), turns=())


def test_the_call_outcome_follows_the_policys_urgent_level(tmp_path):
    turns = (Turn(Role.AGENT, channel_label(0), 0.0, 2.0, "Hello, how can I help?"),
             Turn(Role.CUSTOMER, channel_label(1), 2.0, 5.0, "My card payment failed twice today."))
    lower = load_policy(_policy_file(tmp_path, urgent=50))
    assert summarise("c1", turns, "en", _escalation(55.0)).outcome != "escalated"
    assert summarise("c1", turns, "en", _escalation(55.0), lower).outcome == "escalated"
    assert summarise("c1", turns, "en", _escalation(65.0)).outcome == "escalated"


def test_qa_sampling_reads_the_review_level_and_threat_flags(tmp_path):
    policy = load_policy(_policy_file(tmp_path, review=70, threats='["legal_threat"]'))
    plan = SamplingPlan.for_policy(policy, n=5)
    assert plan.high_escalation_threshold == 70 and plan.always_flags == (Flag.LEGAL_THREAT,)
    assert SamplingPlan(n=5).high_escalation_threshold == default_policy().levels.review


def test_a_banks_own_lexicon_file_beside_its_policy(tmp_path):
    (tmp_path / "bank_lexicon.tsv").write_text("# category\tweight\tterm\nlegal_threat\t40\tsmall claims court\n",
                                               encoding="utf-8")
    policy = load_policy(_policy_file(tmp_path, escalation_lexicon='"bank_lexicon.tsv"'))
    text = "I will take you to small claims court"
    assert [h.category for h in lexicon_hits(text, policy)] == ["legal_threat"]
    assert "legal_threat" not in {h.category for h in lexicon_hits(text)}


def test_enums_are_their_strings_and_channel_labels_round_trip():
    assert Role.CUSTOMER == "customer" and f"{Trend.RISING}" == "rising"
    assert __import__("json").dumps([Flag.MEDIA_THREAT]) == '["media_threat"]'
    assert [label_channel(channel_label(i)) for i in range(3)] == [0, 1, 2]
    assert label_channel("spk0") is None and label_channel(None) is None and label_channel("chx") is None


def test_a_dask_run_refuses_a_bad_settings_file_before_starting_a_cluster(tmp_path, capsys):
    from flows.cli import main

    toml = tmp_path / "callbrief.toml"
    toml.write_text(f'policy_file = "{_policy_file(tmp_path, complaint=140)}"\n', encoding="utf-8")
    code = main(["run", "--dask-workers", "2", "--settings", str(toml), "--input", str(tmp_path),
                 "--db", str(tmp_path / "x.duckdb")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "complaint = 140" in err and "\n" not in err
    assert not (tmp_path / "x.duckdb").exists()  # nothing ran


def test_a_banks_own_vocabulary_named_in_its_policy_drives_the_correction(tmp_path):
    """The policy names the Mandarin vocabulary; a bank's copy with a term of its own corrects
    to that term (and changes the results fingerprint); a bad row is one clear line."""
    from pipeline.records import Segment, Transcript, Word
    from pipeline.vocabulary.correct import correct_transcript

    packaged = resources.files("pipeline").joinpath("data", "vocabulary_zh.tsv").read_text(encoding="utf-8")
    (tmp_path / "vocab.tsv").write_text(packaged + "product\t安心宝\n", encoding="utf-8")
    settings = _settings(tmp_path, _policy_file(tmp_path, vocabulary='"vocab.tsv"'))
    assert "安心宝" in settings.policy.vocabulary
    assert results_fingerprint(settings.policy.results_part()) != results_fingerprint(default_policy().results_part())

    # Whisper wrote 安心包 (an, xin, bao: one tone off) where the customer named the product.
    words = tuple(Word(c, i * 0.2, i * 0.2 + 0.2, 0.4) for i, c in enumerate("我买的安心包理财"))
    transcript = Transcript("zh", 1.0, (Segment(0.0, 1.6, "我买的安心包理财", words),), 1.6, "test", "test")
    assert "安心宝" in correct_transcript(transcript, settings.policy.vocabulary)[0].text
    assert "安心宝" not in correct_transcript(transcript)[0].text  # not a packaged term

    (tmp_path / "bad.tsv").write_text("product安心宝\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="bad.tsv") as caught:
        _settings(tmp_path, _policy_file(tmp_path, vocabulary='"bad.tsv"'))
    assert "\n" not in str(caught.value)
