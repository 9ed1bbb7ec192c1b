"""Escalation scores on the sample calls, the lexicon, speaker-relative voice, and the eval set."""
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.analysis.escalation import RuleScorer, lexicon_hits, turn_features
from pipeline.intake.audio import decode
from pipeline.records import Turn

ESCALATING, CALM = ("zh-1001-b", "en-2002"), ("zh-1001-a", "en-2001")


def _escalation(conn):
    rows = conn.execute("SELECT call_id, call_score, trend, flags, evidence, peak_time, plot_path, de_escalation "
                        "FROM escalation").fetchall()
    return {r[0]: {"score": r[1], "trend": r[2], "flags": json.loads(r[3]), "evidence": json.loads(r[4]),
                   "peak": r[5], "plot": r[6], "de_escalation": json.loads(r[7])} for r in rows}


def test_escalating_calls_score_clearly_above_calm_ones(read_db):
    esc = _escalation(read_db)
    # Measured (stored recognition, evaluation/recognition.py): 43.9 and 60.2 against 5.8 and 10.7.
    assert min(esc[c]["score"] for c in ESCALATING) >= max(esc[c]["score"] for c in CALM) + 25
    for c in ESCALATING:
        assert esc[c]["trend"] == "rising"
    for c in CALM:
        assert esc[c]["trend"] == "flat" and esc[c]["flags"] == []


def test_customer_turn_scores_rise_across_the_escalating_part(read_db):
    for call_id in ESCALATING:
        scores = [r[0] for r in read_db.execute(
            "SELECT score FROM turns WHERE call_id = ? AND role = 'customer' ORDER BY start", [call_id]).fetchall()]
        half = len(scores) // 2
        assert max(scores[half:]) > max(scores[:half]) + 20, (call_id, scores)
        assert np.mean(scores[half:]) > np.mean(scores[:half]), (call_id, scores)


def test_flags_match_what_the_customer_said(read_db):
    esc = _escalation(read_db)
    assert {"supervisor_request", "legal_threat", "regulator_threat"} <= set(esc["en-2002"]["flags"])
    assert "regulator_threat" in esc["zh-1001-b"]["flags"]  # 12378 / 金融监管总局


def test_evidence_has_times_quotes_and_measured_deltas(read_db):
    esc = _escalation(read_db)["en-2002"]
    assert 1 <= len(esc["evidence"]) <= 3
    peak = max(esc["evidence"], key=lambda e: e["score"])
    assert abs(peak["time"] - esc["peak"]) < 1e-6
    assert "dB" in peak["detail"] and "SD" in peak["detail"]
    assert peak["quote"][:20] in peak["detail"]
    mm, ss = peak["detail"].split(" at ")[-1][:5].split(":")
    assert int(mm) * 60 + int(ss) == int(peak["time"])


def test_agent_apologies_are_found_with_the_customer_response(read_db):
    de = _escalation(read_db)["en-2002"]["de_escalation"]
    phrases = {p for d in de for p in d["phrases"]}
    assert phrases & {"i am sorry", "i am really sorry", "sorry to hear"} and "i understand" in phrases
    assert all("customer_before" in d and "calmed" in d for d in de)


def test_plot_is_written_per_call(read_db):
    for call_id, e in _escalation(read_db).items():
        svg = Path(e["plot"]).read_text(encoding="utf-8")
        assert svg.startswith("<svg") and "polyline" in svg and call_id in svg


def test_lexicon_matches_words_not_fragments():
    assert lexicon_hits("hello, how can I help") == []
    assert lexicon_hits("请帮我操作一下") == []
    categories = {h.category for h in lexicon_hits("I will call my LAWYER and the Ombudsman")}
    assert categories == {"legal_threat", "regulator_threat"}
    assert {h.category for h in lexicon_hits("我要投诉你们，打12378")} == {"complaint", "regulator_threat"}
    # The channels customers use beyond the banking regulator: the central bank's and the market
    # regulator's hotlines, the consumer association, petitions; complaint platforms and posting online.
    for said in ("我要打12363", "我去打12315", "我去消协告你们", "我要去信访", "我去找消费者协会"):
        assert "regulator_threat" in {h.category for h in lexicon_hits(said)}, said
    for said in ("我去黑猫投诉", "我要发抖音让大家看看", "我把这个发到网上"):
        assert "media_threat" in {h.category for h in lexicon_hits(said)}, said
    assert "legal_threat" in {h.category for h in lexicon_hits("我们去仲裁")}
    assert lexicon_hits("我在抖音上看到你们的广告") == []  # a mention is no threat


def test_a_naturally_loud_voice_is_not_angry(tmp_path):
    """Loud from the first word to the last: no change against the speaker's own baseline."""
    def speak(text, name):
        path = tmp_path / name
        subprocess.run(["espeak-ng", "-v", "en-us+m1", "-a", "190", "-p", "65", "-s", "170", "-w", str(path), text],
                       check=True)
        return decode(path).mono()

    first = speak("Hello, I am calling about my account and a question I have.", "a.wav")
    second = speak("Could you tell me when the transfer to my landlord will arrive?", "b.wav")
    audio = np.concatenate([first, np.zeros(8000, np.float32), second])
    t1 = len(first) / 16000
    turns = (Turn("customer", "s", 0, t1, "a"), Turn("customer", "s", t1 + 0.5, t1 + 0.5 + len(second) / 16000, "b"))
    target = turn_features(turns, {None: audio}, "en")[1]
    assert RuleScorer().voice_score(target) < 15


def test_eval_set_auc():
    """The labelled set in tests/eval: combined score separates escalated from calm."""
    from evaluation.evaluation import evaluate

    report = evaluate(use_asr=False)
    assert report["n_items"] == 60
    assert report["auc"]["combined"] >= 0.9  # measured 1.000
    # Each signal alone sees only its half of the set: informative, but not enough.
    assert 0.6 < report["auc"]["voice_only"] < 0.95 and 0.6 < report["auc"]["words_only"] < 0.95


@pytest.mark.parametrize("early, late, trend", [
    ([10.8, 18.1], [74.1, 19.1], "rising"),  # a calmer closing turn does not undo the escalation
    ([3.7, 4.3], [7.4, 16.5], "flat"),  # drift at a calm level is no trend
    ([60, 70], [20, 10], "falling"),
    ([], [50], "flat"),
    ([0, 0, 0, 0], [0, 40, 0, 40], "rising"),  # angry stretches between calm ones (or another voice)
])
def test_trend_compares_late_and_early_halves(early, late, trend):
    from pipeline.analysis.escalation import _trend

    assert _trend(early, late) == trend


# --- real voices through a telephone channel (../shared/dev) --------------------------------

DEV = Path(__file__).resolve().parents[3] / "shared" / "dev"
needs_dev = pytest.mark.skipif(not (DEV / "calls_zh").is_dir(), reason="../shared/dev is not present")


@pytest.fixture(scope="module")
def dev_reports():
    from evaluation.eval_escalation import dev_call, dev_names

    names = dev_names()
    assert names == ["liuchanhg", "wangzhe"]
    return {name: dev_call(name) for name in names}


@needs_dev
def test_angry_customer_turns_outscore_neutral_ones_through_the_whole_pipeline(dev_reports):
    """Stored recognition of the telephone calls, everything after Whisper run for real; truth
    turns matched to scored stretches by time. Measured 0.89 and 1.00 (before: undefined / 0.79)."""
    for name, r in dev_reports.items():
        assert r.missed == 0, name
        assert r.turn_auc >= 0.85, (name, r.turn_auc)
        assert r.turn_auc_voice >= 0.85, (name, r.turn_auc_voice)  # not carried by repeated sentences


@needs_dev
def test_a_call_that_turns_angry_is_rising_and_scores_double_its_first_half(dev_reports):
    """First half = the customer's first-half stretches as the call scored them (measured 2.3x
    and 3.7x). Re-scored as a call of its own the first half reads higher (its own calm
    reference is all neutral): 1.95x and 1.96x, reported by the eval, not asserted here."""
    for name, r in dev_reports.items():
        assert r.trend == "rising", (name, r.quarters)
        assert r.call_score >= 2 * r.first_half_score, (name, r.call_score, r.first_half_score)


@needs_dev
def test_the_angry_speaker_is_followed_even_when_the_roles_are_wrong(dev_reports):
    """The stored runs' diarization of liuchanhg gives most of the customer's speech the agent's
    label (the speaker stage now gets both calls' roles right, so the old wangzhe swap no longer
    shows here). The call score follows the customer's voice either way."""
    for name, r in dev_reports.items():
        assert r.customer_time_in_party >= 0.75, (name, r.customer_time_in_party)


@needs_dev
def test_band_limited_measures_hold_on_telephone_audio(dev_reports):
    """On the truth customer turns of the 8 kHz calls: pitch in the telephone band separates
    angry from neutral better than the old yin measure did."""
    for name, r in dev_reports.items():
        m = r.measure_auc
        assert m["pitch_st"] >= 0.85 and m["pitch_st"] > m["old_pitch"], (name, m)  # measured 0.86, 1.00
        assert m["loudness_db"] >= 0.8, (name, m)


def _swap_halves(audio, transcript, diarization, cut: float):
    """The same real call with its second part played first (cut in a pause between turns)."""
    from dataclasses import replace as dc_replace

    from pipeline.intake.audio import SAMPLE_RATE, Audio

    n = int(cut * SAMPLE_RATE)
    rest = audio.duration - cut
    move = lambda t: t - cut if t >= cut else t + rest  # noqa: E731
    samples = np.concatenate([audio.samples[:, n:], audio.samples[:, :n]], axis=1)
    segments = []
    for seg in transcript.segments:
        words = tuple(dc_replace(w, start=move(w.start), end=move(w.start) + (w.end - w.start)) for w in seg.words)
        start = min((w.start for w in words), default=move(seg.start))
        segments.append(dc_replace(seg, start=start, end=start + (seg.end - seg.start), words=words))
    speakers = tuple(dc_replace(s, start=move(s.start), end=move(s.start) + (s.end - s.start)) for s in diarization.segments)
    return (Audio(samples, audio.sample_rate),
            dc_replace(transcript, segments=tuple(sorted(segments, key=lambda s: s.start))),
            dc_replace(diarization, segments=tuple(sorted(speakers, key=lambda s: s.start))))


@needs_dev
def test_a_call_that_calms_down_is_falling():
    """wangzhe with its angry half played first: the calm reference is the speaker's own lower
    half, not the first turns, so the later neutral turns read as calm and the trend as falling."""
    import json as json_

    from evaluation.eval_escalation import CALLS, _replay
    from pipeline.run.stages import analyse_call

    result, audio, transcript, diarization, _ = _replay("wangzhe")
    truth = json_.loads((CALLS / "wangzhe.json").read_text(encoding="utf-8"))["turns"]
    first_angry = min(t["start"] for t in truth if t.get("emotion") == "angry")
    before = max(t["end"] for t in truth if t["end"] < first_angry)
    audio2, transcript2, diarization2 = _swap_halves(audio, transcript, diarization, (before + first_angry) / 2)
    swapped = analyse_call(result.recording, audio2, diarization2, transcript2).escalation
    assert swapped.trend == "falling", swapped.quarter_scores
    assert result.escalation.trend == "rising"


def test_the_call_follows_the_customer_when_the_roles_are_certain():
    from pipeline.analysis.escalation import score_call
    from pipeline.records import TurnFeatures, VoiceFeatures

    nan = float("nan")
    voice = VoiceFeatures(nan, nan, nan, 1.0)
    feats = [TurnFeatures(i, role, spk, 10.0 * i, 10.0 * i + 5, "", voice, z_pitch=z, z_loudness=z)
             for i, (role, spk, z) in enumerate([("agent", "a", 0), ("customer", "c", 0.5), ("agent", "a", 3),
                                                  ("customer", "c", 1.5), ("agent", "a", 3), ("customer", "c", 2)])]
    assert score_call(feats, 60.0, roles_certain=True).party == "c"
    # Guessed roles: the most escalated speaker, whatever their label.
    assert score_call(feats, 60.0).party == "a"


@needs_dev
@pytest.mark.parametrize("telephone", [False, True], ids=["clean-16k", "telephone-8k-mulaw"])
def test_voice_only_auc_on_mandarin_emotional_speech(telephone):
    """CASIA: the same speaker and sentence, angry vs neutral; no words. Measured 0.98 clean and
    0.95 through the telephone channel (fixed weights; not fitted to this set)."""
    from evaluation.eval_escalation import emotion_set

    report = emotion_set(telephone)
    assert report["n"] == 32
    assert report["voice_auc"] >= 0.85, report
    assert min(report["per_speaker"].values()) >= 0.8, report


def _harmonic(f0: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 20) if k * f0 < 7500).astype(np.float32) * 0.2


@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_pitch_is_found_when_the_telephone_band_removes_the_fundamental(tmp_path, f0):
    import soundfile as sf

    from evaluation.common import telephone
    from pipeline.analysis.prosody import measure

    sf.write(tmp_path / "tone.wav", _harmonic(f0), 16000)
    phone = decode(telephone(tmp_path / "tone.wav", tmp_path / "phone.wav", normalise=True)).mono()
    for clip in (_harmonic(f0), phone):
        p = measure(clip)
        assert abs(p.pitch_st - 12 * np.log2(f0 / 100)) < 0.3, p
        assert p.voiced_share > 0.9 and p.hnr_db > 10, p
    noise = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    assert measure(noise).voiced_share < 0.1
