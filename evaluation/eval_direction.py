"""`python -m evaluation.eval_direction`: call direction detected from the opening of a call
(pipeline.analysis.direction) against hand labels, by half.

Two sets, each split by a hash of the call id: half "dev" (looked at while choosing the cues and
their likelihoods in pipeline/data/direction_cues.json), half "held-out" (only reported):
- tests/eval/direction_labels.json: short openings written for this (zh and en; inbound,
  callback, outbound), with times;
- tests/eval/callback_conversations.json: 20 whole conversations the team wrote and labelled
  before any rule existed (text only: turns are placed at a speaking rate).
Reports accuracy, the confusion, inbound calls taken for callbacks (the costly mistake: a callback
closes the complaint's clock), and how well the confidence matches how often it is right.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from pipeline.analysis.direction import detect_direction
from pipeline.records import Direction, Turn

ROOT = Path(__file__).resolve().parent.parent
OPENINGS = ROOT / "tests" / "eval" / "direction_labels.json"
CONVERSATIONS = ROOT / "tests" / "eval" / "callback_conversations.json"
RATE = {"zh": 4.0, "en": 2.5}  # characters (zh) or words (en) per second: where text-only turns fall


def half(call_id: str) -> str:
    return "dev" if int(hashlib.sha256(call_id.encode()).hexdigest(), 16) % 2 == 0 else "held-out"


def _timed(call: dict) -> list[Turn]:
    """The call's turns; text-only turns are placed one after another at a speaking rate."""
    turns, clock = [], 0.0
    for t in call["turns"]:
        start = t.get("start", clock)
        size = len(t["text"]) if call["language"] == "zh" else len(t["text"].split())
        clock = start + size / RATE[call["language"]] + 0.5
        turns.append(Turn(t["role"], None, start, clock - 0.5, t["text"]))
    return turns


def load(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["calls"]


def judge(calls: list[dict]) -> list[dict]:
    out = []
    for call in calls:
        found = detect_direction(_timed(call))
        out.append({"id": call["id"], "half": half(call["id"]), "truth": call["direction"],
                    "detected": found.direction, "confidence": found.confidence, "cues": found.cues})
    return out


def report(title: str, results: list[dict], verbose: bool = False) -> None:
    print(f"\n{title}")
    print(f"  {'half':<9} {'right':>7} {'accuracy':>9} {'mean conf.':>10} {'inbound→callback':>17}")
    for name in ("dev", "held-out", "all"):
        part = [r for r in results if name == "all" or r["half"] == name]
        if not part:
            continue
        right = sum(r["truth"] == r["detected"] for r in part)
        inbound = [r for r in part if r["truth"] == Direction.INBOUND]
        wrong_cb = sum(r["detected"] == Direction.CALLBACK for r in inbound)
        conf = sum(r["confidence"] for r in part) / len(part)
        print(f"  {name:<9} {right:>3}/{len(part):<3} {right / len(part):>9.0%} {conf:>10.2f} "
              f"{wrong_cb:>9}/{len(inbound)}")
    labels = list(Direction)
    print("  confusion (rows: truth; columns: detected " + ", ".join(labels) + ")")
    for truth in labels:
        counts = [sum(r["truth"] == truth and r["detected"] == d for r in results) for d in labels]
        print(f"    {truth:<9} " + " ".join(f"{c:>4}" for c in counts))
    for r in results:
        if verbose or r["truth"] != r["detected"]:
            mark = "  " if r["truth"] == r["detected"] else "✗ "
            print(f"    {mark}{r['id']:<12} {r['half']:<8} truth {r['truth']:<8} detected {r['detected']:<8} "
                  f"{r['confidence']:.2f} {','.join(r['cues']) or '(no cue)'}")


def calibration(results: list[dict]) -> None:
    """Accuracy per band of confidence: a confidence means something when the two agree."""
    print("\nconfidence vs accuracy (both sets)")
    for low, high in ((0.0, 0.6), (0.6, 0.8), (0.8, 0.95), (0.95, 1.01)):
        band = [r for r in results if low <= r["confidence"] < high]
        if band:
            right = sum(r["truth"] == r["detected"] for r in band)
            print(f"  {low:.2f}-{min(high, 1.0):.2f}: {len(band):>2} calls, mean confidence "
                  f"{sum(r['confidence'] for r in band) / len(band):.2f}, right {right / len(band):.0%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="every call, not only the misses")
    args = parser.parse_args(argv)
    openings, conversations = judge(load(OPENINGS)), judge(load(CONVERSATIONS))
    report(f"Call direction, hand-written openings ({OPENINGS.relative_to(ROOT)})", openings, args.verbose)
    report(f"Call direction, the team's conversations ({CONVERSATIONS.relative_to(ROOT)})", conversations, args.verbose)
    calibration(openings + conversations)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
