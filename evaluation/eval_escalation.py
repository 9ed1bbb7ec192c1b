"""Escalation on real voices through a telephone channel: where the signal goes, stage by stage.

`python -m evaluation.eval_escalation` reports
- per dev call (`../shared/dev/calls_zh`, real voices, 8 kHz mu-law, truth per turn), replayed
  from its stored recognition run (tests/recognition/calls_zh-*.json): segmentation (truth
  customer turns that are a stretch of their own, merged, or missed), roles (customer speech
  labelled customer; followed as the call's party), the calm reference (what it is made of),
  the voice measures on the truth turns (old 16 kHz measures vs telephone-band ones), the turn
  AUC angry vs neutral customer turns through the whole pipeline (truth turns matched to scored
  stretches by time), the call's trend, score and the score of its own first half, and the
  escalation stage's time (with `--transcribe`, against Whisper's on the same call);
- the voice-only AUC angry vs neutral on the Mandarin emotional set (`../shared/dev/emotion_zh`),
  clean 16 kHz and through a simulated telephone channel (sox: 300-3400 Hz, peak-normalised,
  8 kHz mu-law, as calls_zh was built), with a leave-one-speaker-out check of learned weights;
- the synthetic sample calls (stored recognition) and the espeak-ng set (pipeline.evaluation).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from evaluation.common import telephone
from pipeline.analysis.escalation import RuleScorer, turn_features
from pipeline.engines import Engines
from pipeline.intake.audio import SAMPLE_RATE, decode
from pipeline.records import Turn

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "dev"
CALLS = DEV / "calls_zh"
EMOTION = DEV / "emotion_zh" / "casia"
RECOGNITION = ROOT / "tests" / "recognition"
SAMPLE_CALLS = ("zh-1001-a", "zh-1001-b", "en-2001", "en-2002")


def auc(positive: list[float], negative: list[float]) -> float:
    """Probability that a positive outscores a negative (ties count half): the ROC AUC."""
    if not positive or not negative:
        return float("nan")
    p, n = np.asarray(positive, float)[:, None], np.asarray(negative, float)[None, :]
    return float(((p > n) + 0.5 * (p == n)).mean())


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


# --- dev calls ----------------------------------------------------------------------------

@dataclass(frozen=True)
class CallReport:
    name: str
    n_customer_truth: int
    own_turn: int  # truth customer turns that are a pipeline turn of their own
    merged_turn: int  # ...that share a pipeline turn with other truth turns
    own_stretch: int  # ...that are a scored stretch of their own after the cut at pauses
    missed: int  # ...with no scored speech at all
    customer_time_labelled_customer: float  # share of truth customer speech time
    customer_time_in_party: float  # share followed by the call score (the party's speaker)
    calm_reference_neutral: float  # share of the party's calm reference that is neutral customer speech
    old_baseline: str  # what the first two turns of the labelled customer were (the old baseline)
    measure_auc: dict  # per voice measure, on the truth turns: old 16 kHz measures and telephone-band ones
    turn_auc: float  # angry vs neutral customer truth turns, scores through the whole pipeline
    turn_auc_voice: float  # the same with the voice part of the score only (no words, repetitions)
    trend: str
    call_score: float
    first_half_score: float  # the party's stretches in the first half, scored within the call
    first_half_alone: float  # the first half re-scored as a call of its own (its own calm reference)
    quarters: tuple
    escalation_s: float
    transcribe_s: float | None
    duration: float


def _legacy_voice(samples: np.ndarray, start: float, end: float) -> dict:
    """The measures escalation used before (yin 70-500 Hz, frames within 25 dB of the peak)."""
    import librosa

    clip = samples[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)]
    rms = librosa.feature.rms(y=clip, frame_length=1024, hop_length=256)[0]
    db = 20 * np.log10(np.maximum(rms, 1e-6))
    voiced = db > (db.max() - 25)
    f0 = librosa.yin(clip, fmin=70, fmax=500, sr=SAMPLE_RATE, frame_length=1024, hop_length=256)
    n = min(len(f0), len(voiced))
    f0v = f0[:n][voiced[:n]]
    f0v = f0v[(f0v > 72) & (f0v < 495)]
    return {"old_loudness": float(np.median(db[voiced])),
            "old_pitch": float(np.median(12 * np.log2(f0v / 100))) if f0v.size else float("nan"),
            "old_voiced_share": f0v.size / max(int(voiced.sum()), 1)}


def _replay(name: str):
    from pipeline.intake.ingest import discover
    from pipeline.run.serial import load_recognition
    from pipeline.run.stages import analyse_call

    path = CALLS / f"{name}.wav"
    (rec,) = [r for r in discover(CALLS).recordings if r.path.stem == name]  # no manifest: ids are derived
    audio = decode(path)
    transcript, diarization = load_recognition(RECOGNITION / f"calls_zh-{name}.json")
    clock = time.perf_counter()
    result = analyse_call(replace(rec, duration=audio.duration), audio, diarization, transcript)
    return result, audio, transcript, diarization, time.perf_counter() - clock


def first_half_in_call(esc, duration: float) -> float:
    """The call score of the party's first-half stretches, as scored within the whole call."""
    from pipeline.analysis.escalation import call_score_of

    first = [s.score for s in esc.utterances if s.features.speaker == esc.party and (s.start + s.end) / 2 < duration / 2]
    return call_score_of(first) if first else 0.0


def first_half_score(result, audio) -> float:
    """The call score the same call would have had, had it ended at half time (re-scored alone)."""
    from pipeline.analysis.escalation import assess_escalation
    from pipeline.records import Diarization

    half = audio.duration / 2
    turns = tuple(t for t in result.turns if (t.start + t.end) / 2 < half)
    d = result.diarization
    segs = tuple(s for s in d.segments if (s.start + s.end) / 2 < half)
    cut = replace(audio, samples=audio.samples[:, : int(half * SAMPLE_RATE)])
    return assess_escalation(cut, turns, result.transcript.language, Diarization(segs, d.method, d.n_speakers)).call_score


# The eval script's loaded models, shared by its calls (a script entry point, like a flow's registry).
_ENGINES = Engines()


def dev_call(name: str, transcribe: bool = False) -> CallReport:
    result, audio, transcript, diarization, _ = _replay(name)
    truth = json.loads((CALLS / f"{name}.json").read_text(encoding="utf-8"))["turns"]
    cust = [t for t in truth if t["role"] == "customer"]
    esc = result.escalation
    stretches = esc.utterances

    def best(items, t):
        scored = [(_overlap(t["start"], t["end"], s.start, s.end), s) for s in items]
        ov, s = max(scored, key=lambda x: x[0], default=(0.0, None))
        return s if ov > 0 else None

    def own(start, end, t):  # the item is mostly this truth turn and covers most of it
        ov = _overlap(t["start"], t["end"], start, end)
        return ov >= 0.5 * (t["end"] - t["start"]) and ov >= 0.5 * (end - start)

    own_turn = sum(any(own(p.start, p.end, t) for p in result.turns) for t in cust)
    merged = sum(any(_overlap(t["start"], t["end"], p.start, p.end) > 0 and not own(p.start, p.end, t)
                     and sum(_overlap(u["start"], u["end"], p.start, p.end) > 0.2 for u in truth) > 1
                     for p in result.turns) for t in cust)
    own_stretch = sum(any(own(s.start, s.end, t) for s in stretches) for t in cust)
    missed = sum(best(stretches, t) is None for t in cust)
    total = sum(t["end"] - t["start"] for t in cust)
    labelled = sum(_overlap(t["start"], t["end"], p.start, p.end) for t in cust for p in result.turns if p.role == "customer")
    party = [s for s in stretches if s.features.speaker == esc.party]
    in_party = sum(_overlap(t["start"], t["end"], s.start, s.end) for t in cust for s in party)
    # The calm reference of the party: the lower half of its stretches by pitch (the main measure).
    by_pitch = sorted((s for s in party if np.isfinite(s.features.voice.pitch_st)), key=lambda s: s.features.voice.pitch_st)
    calm = by_pitch[: max(1, (len(by_pitch) + 1) // 2)]
    calm_neutral = sum(any(t.get("emotion") == "neutral" and own(s.start, s.end, t) for t in cust) for s in calm)
    labelled_customer = [p for p in result.turns if p.role == "customer"][:2]
    old_base = ", ".join(
        "+".join(f"{u['role'][0]}{u.get('emotion', '')[:1]}" for u in truth if _overlap(u["start"], u["end"], p.start, p.end) > 0.2)
        or "-" for p in labelled_customer)
    # Voice measures on the truth customer turns (oracle segmentation): what the channel leaves.
    mono = audio.mono()
    oracle = tuple(Turn("customer", "c", t["start"], t["end"], t["text"]) for t in cust)
    feats = turn_features(oracle, {None: mono}, "zh")
    angry = [i for i, t in enumerate(cust) if t["emotion"] == "angry"]
    neutral = [i for i, t in enumerate(cust) if t["emotion"] == "neutral"]
    measures = {}
    legacy = [_legacy_voice(mono, t["start"], t["end"]) for t in cust]
    for key in ("old_loudness", "old_pitch", "old_voiced_share"):
        measures[key] = auc([legacy[i][key] for i in angry], [legacy[i][key] for i in neutral])
    for key in ("loudness_db", "pitch_st", "high_band_db", "hnr_db", "rate"):
        measures[key] = auc([getattr(feats[i].voice, key) for i in angry], [getattr(feats[i].voice, key) for i in neutral])
    measures["voice_score_oracle_turns"] = auc([RuleScorer().voice_score(feats[i]) for i in angry],
                                               [RuleScorer().voice_score(feats[i]) for i in neutral])
    score_of = [(best(stretches, t).score if best(stretches, t) else 0.0) for t in cust]
    voice_of = [(best(stretches, t).parts["voice"] if best(stretches, t) else 0.0) for t in cust]
    transcribe_s = None
    if transcribe:
        from pipeline.speech.asr import EngineSpec, TranscribeOptions
        from pipeline.speech.transcribe import load_engine, transcribe_call

        load_engine(EngineSpec(), _ENGINES)  # loaded before the clock starts: the time is decoding only
        clock = time.perf_counter()
        transcribe_call(audio, diarization, EngineSpec(), TranscribeOptions(), engines=_ENGINES)
        transcribe_s = time.perf_counter() - clock
    from pipeline.analysis.escalation import assess_escalation

    clock = time.perf_counter()  # warm: the first call of a process also loads jieba and scipy
    assess_escalation(audio, result.turns, transcript.language, diarization)
    escalation_s = time.perf_counter() - clock
    return CallReport(
        name=name, n_customer_truth=len(cust), own_turn=own_turn, merged_turn=merged, own_stretch=own_stretch, missed=missed,
        customer_time_labelled_customer=labelled / total, customer_time_in_party=in_party / total,
        calm_reference_neutral=calm_neutral / max(len(calm), 1), old_baseline=old_base, measure_auc=measures,
        turn_auc=auc([score_of[i] for i in angry], [score_of[i] for i in neutral]),
        turn_auc_voice=auc([voice_of[i] for i in angry], [voice_of[i] for i in neutral]),
        trend=esc.trend, call_score=esc.call_score, first_half_score=first_half_in_call(esc, audio.duration),
        first_half_alone=first_half_score(result, audio),
        quarters=esc.quarter_scores, escalation_s=escalation_s, transcribe_s=transcribe_s,
        duration=audio.duration)


def dev_names() -> list[str]:
    return sorted(p.stem.removeprefix("calls_zh-") for p in RECOGNITION.glob("calls_zh-*.json")
                  if (CALLS / f"{p.stem.removeprefix('calls_zh-')}.wav").exists())


# --- the emotional set --------------------------------------------------------------------

def _clips(channel: bool, work: Path) -> list[tuple[str, str, np.ndarray]]:
    clips = []
    for path in sorted(EMOTION.glob("*/*/*.wav")):
        speaker, emotion = path.parts[-3], path.parts[-2]
        if channel:
            path = telephone(path, work / f"{speaker}-{emotion}-{path.name}", normalise=True)
        clips.append((speaker, emotion, decode(path).mono()))
    return clips


def clip_features(clips) -> list[tuple[str, str, object]]:
    """Each speaker's clips laid end to end as one recording of that speaker (0.5 s apart), every
    clip one turn: the calm reference is the speaker's own, as in a call. No words (voice only)."""
    out = []
    for speaker in sorted({c[0] for c in clips}):
        mine = [c for c in clips if c[0] == speaker]
        pieces, turns, t = [], [], 0.0
        gap = np.zeros(SAMPLE_RATE // 2, np.float32)
        for _, emotion, samples in mine:
            turns.append(Turn("customer", speaker, t, t + len(samples) / SAMPLE_RATE, ""))
            pieces += [samples, gap]
            t += (len(samples) + len(gap)) / SAMPLE_RATE
        feats = turn_features(tuple(turns), {None: np.concatenate(pieces)}, "zh")
        out += [(speaker, emotion, f) for (_, emotion, _), f in zip(mine, feats)]
    return out


Z_NAMES = ("z_pitch", "z_loudness", "z_tilt", "z_rate")


def emotion_set(channel: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        rows = clip_features(_clips(channel, Path(tmp)))
    scorer = RuleScorer()
    angry = [f for _, e, f in rows if e == "angry"]
    neutral = [f for _, e, f in rows if e == "neutral"]
    report = {"n": len(rows), "voice_auc": auc([scorer.voice_score(f) for f in angry], [scorer.voice_score(f) for f in neutral]),
              "per_speaker": {}, "per_measure": {}}
    for speaker in sorted({s for s, _, _ in rows}):
        report["per_speaker"][speaker] = auc([scorer.voice_score(f) for s, e, f in rows if s == speaker and e == "angry"],
                                             [scorer.voice_score(f) for s, e, f in rows if s == speaker and e == "neutral"])
    for name in Z_NAMES:
        report["per_measure"][name] = auc([getattr(f, name) for f in angry], [getattr(f, name) for f in neutral])
    report["hnr_db"] = auc([f.voice.hnr_db for f in angry], [f.voice.hnr_db for f in neutral])
    report["loso_logistic"] = _leave_one_speaker_out(rows)
    return report


def _leave_one_speaker_out(rows) -> float:
    """AUC of a logistic regression on the z-scores, trained on the other speakers only."""
    from sklearn.linear_model import LogisticRegression

    speakers = sorted({s for s, _, _ in rows})
    pos, neg = [], []
    for held in speakers:
        train = [(f, e) for s, e, f in rows if s != held]
        test = [(f, e) for s, e, f in rows if s == held]
        x = lambda items: np.array([[getattr(f, n) for n in Z_NAMES] for f, _ in items])  # noqa: E731
        model = LogisticRegression().fit(x(train), [e == "angry" for _, e in train])
        p = model.predict_proba(x(test))[:, 1]
        pos += [v for v, (_, e) in zip(p, test) if e == "angry"]
        neg += [v for v, (_, e) in zip(p, test) if e == "neutral"]
    return auc(pos, neg)


def folder_clips(folder: Path, channel: bool, work: Path) -> tuple[list, dict]:
    """Clips of an acted-emotion set laid out as /work/devset/emotion is (manifest.json: path,
    corpus, speaker, emotion angry|neutral, half), and each speaker's half."""
    rows = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    clips, halves = [], {}
    for r in rows:
        if r["emotion"] not in ("angry", "neutral"):
            continue
        speaker = f"{r['corpus']}-{r['speaker']}"
        path = folder / r["path"]
        if channel:
            path = telephone(path, work / f"{r['id']}.wav", normalise=True)
        clips.append((speaker, r["emotion"], decode(path).mono()))
        halves[speaker] = r.get("half", "report")
    return clips, halves


def folder_report(folder: Path, channel: bool) -> dict:
    """Voice-only AUC angry vs neutral on another acted set: pooled by half, per speaker, and a
    logistic regression on the z-scores trained leave-one-speaker-out."""
    with tempfile.TemporaryDirectory() as tmp:
        clips, halves = folder_clips(folder, channel, Path(tmp))
        rows = clip_features(clips)
    scorer = RuleScorer()
    score = {id(f): scorer.voice_score(f) for _, _, f in rows}
    out = {"n": len(rows), "speakers": len(halves), "by_half": {}, "per_speaker": {}}
    for half in ("tune", "report"):
        part = [(e, f) for s, e, f in rows if halves[s] == half]
        out["by_half"][half] = auc([score[id(f)] for e, f in part if e == "angry"],
                                   [score[id(f)] for e, f in part if e == "neutral"])
    for speaker in sorted(halves):
        out["per_speaker"][speaker] = auc([score[id(f)] for s, e, f in rows if s == speaker and e == "angry"],
                                          [score[id(f)] for s, e, f in rows if s == speaker and e == "neutral"])
    out["loso_logistic"] = _leave_one_speaker_out(rows)
    out["transfer"] = _fitted_weights_transfer(rows, halves, channel)
    return out


def _fitted_weights_transfer(rows, halves: dict, channel: bool) -> dict:
    """Would weights fitted on this set carry over? A logistic regression on the z-scores of the
    set's tune half, its AUC on the set's report half and on the Mandarin CASIA speakers, beside
    the policy's fixed weights on the same clips; and each measure's AUC on both."""
    from sklearn.linear_model import LogisticRegression

    with tempfile.TemporaryDirectory() as tmp:
        casia = clip_features(_clips(channel, Path(tmp)))
    x = lambda part: np.array([[getattr(f, n) for n in Z_NAMES] for _, _, f in part])  # noqa: E731
    y = lambda part: np.array([e == "angry" for _, e, _ in part])  # noqa: E731

    def area(values, part) -> float:
        truth = y(part)
        return auc(list(np.asarray(values)[truth]), list(np.asarray(values)[~truth]))
    tune = [r for r in rows if halves[r[0]] == "tune"]
    model = LogisticRegression().fit(x(tune), y(tune))
    scorer = RuleScorer()
    out = {"coefficients": dict(zip(Z_NAMES, np.round(model.coef_[0], 3).tolist()))}
    for name, part in (("report half", [r for r in rows if halves[r[0]] == "report"]), ("casia zh", casia)):
        out[name] = {"fitted": area(x(part) @ model.coef_[0], part),
                     "policy": area([scorer.voice_score(f) for _, _, f in part], part),
                     "per_measure": {n: round(area(x(part)[:, k], part), 2) for k, n in enumerate(Z_NAMES)}}
    return out


# --- synthetic samples --------------------------------------------------------------------

def sample_calls() -> dict:
    import sys

    sys.path.insert(0, str(ROOT))
    from evaluation.recognition import replay_call

    return {c: (r.escalation.call_score, r.escalation.trend) for c in SAMPLE_CALLS for r in [replay_call(c)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.eval_escalation", description=__doc__.splitlines()[0])
    parser.add_argument("--transcribe", action="store_true", help="also run Whisper on each dev call to time it")
    parser.add_argument("--skip-espeak", action="store_true", help="leave out the espeak-ng set")
    parser.add_argument("--emotion-dir", type=Path, metavar="DIR",
                        help="only: voice-only AUC on another acted-emotion set (manifest.json as in /work/devset/emotion)")
    args = parser.parse_args(argv)
    if args.emotion_dir:
        for channel in (False, True):
            rep = folder_report(args.emotion_dir, channel)
            label = "telephone (300-3400 Hz, 8 kHz mu-law)" if channel else "clean 16 kHz"
            print(f"{args.emotion_dir} {label}: {rep['n']} clips, {rep['speakers']} speakers; voice-only AUC "
                  + ", ".join(f"{h} half {v:.3f}" for h, v in rep["by_half"].items())
                  + f"; logistic regression leave-one-speaker-out {rep['loso_logistic']:.3f}")
            print("    per speaker: " + ", ".join(f"{k} {v:.2f}" for k, v in rep["per_speaker"].items()))
            t = rep["transfer"]
            print(f"    weights fitted on its tune half {t['coefficients']}: " + "; ".join(
                f"{name} fitted {r['fitted']:.3f} vs policy {r['policy']:.3f} (per measure {r['per_measure']})"
                for name, r in t.items() if name != "coefficients"))
        return 0
    print("dev calls (calls_zh, real voices, telephone channel; stored recognition)")
    for name in dev_names():
        r = dev_call(name, args.transcribe)
        print(f"  {name}: {r.n_customer_truth} customer turns: own pipeline turn {r.own_turn}, merged {r.merged_turn}, "
              f"own scored stretch {r.own_stretch}, missed {r.missed}")
        print(f"    roles: customer speech labelled customer {r.customer_time_labelled_customer:.0%}; "
              f"followed by the call score {r.customer_time_in_party:.0%}")
        print(f"    calm reference: {r.calm_reference_neutral:.0%} neutral customer stretches; "
              f"old baseline (first 2 customer-labelled turns): {r.old_baseline}")
        print("    measure AUC on truth turns: " + ", ".join(f"{k} {v:.2f}" for k, v in r.measure_auc.items()))
        ratio = lambda x: r.call_score / x if x > 0 else float("inf")  # noqa: E731
        print(f"    turn AUC angry vs neutral (whole pipeline) {r.turn_auc:.3f} (voice part alone {r.turn_auc_voice:.3f}); "
              f"trend {r.trend}; call score "
              f"{r.call_score:.1f} vs its first half {r.first_half_score:.1f} ({ratio(r.first_half_score):.2f}x), "
              f"first half re-scored alone {r.first_half_alone:.1f} ({ratio(r.first_half_alone):.2f}x); quarters {r.quarters}")
        share = f", transcription {r.transcribe_s:.1f} s ({r.escalation_s / r.transcribe_s:.1%})" if r.transcribe_s else ""
        print(f"    escalation stage {r.escalation_s:.2f} s for {r.duration:.0f} s of audio "
              f"({r.duration / r.escalation_s:.0f}x realtime){share}")
    for channel in (False, True):
        rep = emotion_set(channel)
        label = "telephone (300-3400 Hz, 8 kHz mu-law)" if channel else "clean 16 kHz"
        print(f"emotion_zh/casia {label}: {rep['n']} clips, voice-only AUC {rep['voice_auc']:.3f} "
              f"(per speaker " + ", ".join(f"{k} {v:.3f}" for k, v in rep["per_speaker"].items()) + ")")
        print("    per measure: " + ", ".join(f"{k} {v:.2f}" for k, v in rep["per_measure"].items())
              + f", hnr {rep['hnr_db']:.2f}; logistic regression leave-one-speaker-out {rep['loso_logistic']:.3f}")
    print("synthetic sample calls (stored recognition): "
          + ", ".join(f"{c} {s:.1f} {t}" for c, (s, t) in sample_calls().items()))
    if not args.skip_espeak:
        from evaluation.evaluation import evaluate

        rep = evaluate(use_asr=False)
        print("espeak-ng set (script text): " + ", ".join(f"{k} {v:.3f}" for k, v in rep["auc"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
