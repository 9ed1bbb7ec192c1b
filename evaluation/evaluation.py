"""`make eval`: how well the escalation score tells escalated from calm, on a labelled set.

The set (tests/eval/escalation_set.json) is synthesised with espeak-ng: the same lines calm
and escalated, by voice only, by words only, and both. Reported: AUC of the voice-only,
words-only and combined scores over the whole set. With `--asr` the words come from Whisper's
transcript of each rendition (as in production); without, from the script (scorer alone).

What synthetic voices can show: that the score reads loudness, pitch and rate relative to the
speaker's own baseline, and the lexicon. What they cannot: espeak-ng's "anger" is only faster,
higher and louder, with none of the voice quality (tension, breathiness) of real anger, and it
never speaks angry words calmly by accident as people do; AUCs here are an upper bound.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.analysis.escalation import RuleScorer, turn_features
from pipeline.intake.audio import SAMPLE_RATE, decode
from pipeline.records import Turn

SET_PATH = Path(__file__).resolve().parent.parent / "tests" / "eval" / "escalation_set.json"


@dataclass(frozen=True)
class EvalItem:
    condition: str  # voice | words | both
    escalated: bool
    voice: str
    baseline_text: str
    target_text: str
    target_style: str  # calm | escalated


def build_items(spec: dict) -> list[EvalItem]:
    items = []
    voices = spec["voices"]
    for i, (neutral, angry) in enumerate(zip(spec["neutral"], spec["angry"])):
        voice = voices[i % len(voices)]
        for condition, text_esc, style_esc, text_calm in (
            ("voice", neutral, "escalated", neutral),
            ("words", angry, "calm", neutral),
            ("both", angry, "escalated", neutral),
        ):
            items.append(EvalItem(condition, True, voice, spec["baseline"], text_esc, style_esc))
            items.append(EvalItem(condition, False, voice, spec["baseline"], text_calm, "calm"))
    return items


def _speak(text: str, voice: str, style: dict, path: Path) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(style["speed"]), "-p", str(style["pitch"]),
                    "-a", str(style["amplitude"]), "-w", str(path), text], check=True)
    return decode(path).mono()


def render(item: EvalItem, spec: dict, work: Path) -> tuple[np.ndarray, tuple[Turn, Turn]]:
    """The two-turn recording and its turns (script text; times from the rendering)."""
    base = _speak(item.baseline_text, item.voice, spec["calm"], work / "base.wav")
    target = _speak(item.target_text, item.voice, spec[item.target_style], work / "target.wav")
    pause = np.zeros(int(0.5 * SAMPLE_RATE), np.float32)
    audio = np.concatenate([base, pause, target])
    t1 = len(base) / SAMPLE_RATE
    t2 = t1 + 0.5
    return audio, (Turn("customer", "spk0", 0.0, t1, item.baseline_text),
                   Turn("customer", "spk0", t2, t2 + len(target) / SAMPLE_RATE, item.target_text))


def evaluate(spec_path: Path = SET_PATH, use_asr: bool = False) -> dict:
    from sklearn.metrics import roc_auc_score

    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    items = build_items(spec)
    scorer = RuleScorer()
    engine = None
    if use_asr:
        from pipeline.speech.asr import EngineSpec, TranscribeOptions
        from pipeline.speech.transcribe import load_engine

        engine, options = load_engine(EngineSpec()), TranscribeOptions(language="en")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for item in items:
            audio, turns = render(item, spec, Path(tmp))
            if engine is not None:
                texts = [engine.transcribe(audio[int(t.start * SAMPLE_RATE): int(t.end * SAMPLE_RATE)], options).text
                         for t in turns]
                turns = tuple(Turn(t.role, t.speaker, t.start, t.end, text) for t, text in zip(turns, texts))
            target = turn_features(turns, {None: audio}, "en")[1]
            total, _ = scorer.score(target)
            rows.append({"condition": item.condition, "escalated": item.escalated, "voice_score": scorer.voice_score(target),
                         "words_score": scorer.words_score(target), "score": total})
    labels = np.array([r["escalated"] for r in rows])
    report = {"n_items": len(rows), "asr": use_asr,
              "auc": {name: float(roc_auc_score(labels, [r[key] for r in rows]))
                      for name, key in (("voice_only", "voice_score"), ("words_only", "words_score"), ("combined", "score"))},
              "by_condition": {}}
    for condition in ("voice", "words", "both"):
        sub = [r for r in rows if r["condition"] == condition]
        report["by_condition"][condition] = {
            "auc_combined": float(roc_auc_score([r["escalated"] for r in sub], [r["score"] for r in sub])),
            "mean_escalated": float(np.mean([r["score"] for r in sub if r["escalated"]])),
            "mean_calm": float(np.mean([r["score"] for r in sub if not r["escalated"]]))}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="callbrief eval", description=__doc__.splitlines()[0])
    parser.add_argument("--asr", action="store_true", help="words from Whisper, not the script")
    args = parser.parse_args(argv)
    for use_asr in ([False, True] if args.asr else [False]):
        report = evaluate(use_asr=use_asr)
        source = "Whisper transcripts" if use_asr else "script text"
        print(f"escalation eval: {report['n_items']} items, words from {source}")
        for name, auc in report["auc"].items():
            print(f"  AUC {name:10} {auc:.3f}")
        for condition, r in report["by_condition"].items():
            print(f"  {condition:6} combined AUC {r['auc_combined']:.3f}; mean score escalated {r['mean_escalated']:.1f} "
                  f"vs calm {r['mean_calm']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
