"""`python -m evaluation.eval_callback_card`: agreement of the callback scorecard's prefill
(pipeline.outputs.callback_card) with the team's hand labels, per item and by half.

Labels: tests/eval/callback_conversations.json, 20 conversations the team wrote and labelled
before any callback rule existed (its labelling guide: /work/prep/callbacks/README.md, summed up
in the file's _doc). The card is scored on callback calls only, so agreement is over the 14
callbacks (the 6 inbound and outbound ones never get this card). The conversations are split by
a hash of the id, as evaluation/eval_direction.py splits them: the cues in
pipeline/data/qa_callback_scorecard.json were set looking at half "dev" (8 callbacks) only;
half "held-out" (6 callbacks) was only scored. Agreement is exact over the four answers (pass,
fail, n/a, no evidence): a "no evidence" is never taken for a pass or a fail.

Text only: turns are placed one after another at a speaking rate and masked as the pipeline masks
stored turns (pipeline.analysis.redact), so the quotes are the ones a reviewer would see.
The inbound card's agreement is `python -m evaluation.eval_qa` (make eval runs both).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from evaluation.eval_direction import half
from pipeline.analysis.redact import redact_turns
from pipeline.outputs.callback_card import callback_items, prefill_callback
from pipeline.records import Direction, Turn

ROOT = Path(__file__).resolve().parent.parent
CONVERSATIONS = ROOT / "tests" / "eval" / "callback_conversations.json"
RATE = {"zh": 4.0, "en": 2.5}  # characters (zh) or words (en) per second: where text-only turns fall


def timed_turns(call: dict) -> list[Turn]:
    """The call's turns, masked, placed one after another at a speaking rate."""
    turns, clock = [], 0.0
    for t in call["turns"]:
        size = len(t["text"]) if call["language"] == "zh" else len(t["text"].split())
        end = clock + size / RATE[call["language"]]
        turns.append(Turn(t["role"], t["role"], clock, end, t["text"]))
        clock = end + 0.5
    masked = redact_turns(turns)
    return [Turn(t.role, t.speaker, t.start, t.end, m or "") for t, m in zip(turns, masked)]


def label_of(item_id: str) -> str:
    """The hand labels' name of a card item: cb_next_step -> next_step."""
    return item_id.removeprefix("cb_")


def answer_of(label: str) -> str:
    return "no evidence" if label == "no_evidence" else label


def callbacks(path: Path = CONVERSATIONS) -> list[dict]:
    return [c for c in json.loads(path.read_text(encoding="utf-8"))["calls"] if c["direction"] == Direction.CALLBACK]


def judge(calls: list[dict]) -> list[dict]:
    """One row per call and item: the hand label, the prefill, its first quote."""
    rows = []
    for call in calls:
        card = {a["item"]: a for a in prefill_callback(timed_turns(call))}
        for item in callback_items():
            answer = card[item["id"]]
            rows.append({"id": call["id"], "half": half(call["id"]), "item": item["id"],
                         "truth": answer_of(call["labels"][label_of(item["id"])]["answer"]),
                         "prefill": answer["prefill"], "evidence": answer["evidence"]})
    return rows


def report(rows: list[dict], verbose: bool = False) -> None:
    halves = ("dev", "held-out", "all")
    n_calls = {h: len({r["id"] for r in rows if h == "all" or r["half"] == h}) for h in halves}
    print(f"Callback card prefill vs hand labels ({CONVERSATIONS.relative_to(ROOT)}, callbacks only; "
          f"dev {n_calls['dev']} calls: cues set on them; held-out {n_calls['held-out']}: only scored)")
    print(f"  {'item':24}" + "".join(f"{h:>14}" for h in halves) + "   disagreements")
    for item in [i["id"] for i in callback_items()] + ["all items"]:
        part = [r for r in rows if item == "all items" or r["item"] == item]
        cells = []
        for h in halves:
            sub = [r for r in part if h == "all" or r["half"] == h]
            agree = sum(r["truth"] == r["prefill"] for r in sub)
            cells.append(f"{agree}/{len(sub)} {agree / len(sub):4.0%}" if sub else "-")
        misses = "" if item == "all items" else "; ".join(
            f"{r['id']}[{r['half'][0]}]: {r['prefill']} vs {r['truth']}" for r in part if r["truth"] != r["prefill"])
        print(f"  {item:24}" + "".join(f"{c:>14}" for c in cells) + "   " + misses)
    passed_wrongly = [r for r in rows if r["prefill"] == "pass" and r["truth"] != "pass"]
    print(f"  prefilled pass where the label is not pass (the costly miss): {len(passed_wrongly)}"
          + (" (" + ", ".join(f"{r['id']} {r['item']} ({r['truth']})" for r in passed_wrongly) + ")"
             if passed_wrongly else ""))
    print(f"  a pass with no supporting quote: "
          f"{sum(1 for r in rows if r['prefill'] == 'pass' and not any(e['counts'] == 'for' for e in r['evidence']))}")
    if verbose:
        for r in rows:
            mark = "  " if r["truth"] == r["prefill"] else "✗ "
            quote = next((f"{e.get('time', 0):.0f}s “{e['quote']}” ({e['why']})" for e in r["evidence"]), "-")
            print(f"    {mark}{r['id']:<9} {r['item']:<22} {r['prefill']:<11} label {r['truth']:<11} {quote}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="every call and item with its first quote")
    parser.add_argument("--half", choices=("dev", "held-out"), help="only this half (dev while tuning the cues)")
    args = parser.parse_args(argv)
    calls = [c for c in callbacks() if not args.half or half(c["id"]) == args.half]
    report(judge(calls), args.verbose)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
