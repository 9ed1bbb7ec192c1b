"""`python -m evaluation.eval_qa`: agreement of the QA prefill with hand labels, per scorecard item.

Labels: tests/eval/qa_labels.json (written from the call scripts). The prefill runs through the
real pipeline after recognition (`analyse_call` on the real audio, into a real DuckDB file):
- `recognised`: on the stored Whisper runs (tests/recognition), as in production, CPU-independent;
- `script`: on the script's own words placed on the same speakers (recognition errors removed),
  which shows how much of any disagreement is the transcript's and how much the rule's.
"no evidence" counts as not passing (a reviewer must look), i.e. as "fail".
`--db PATH` scores an existing database (e.g. after a live run) instead.

The rules were written looking at the sample calls, so agreement on them is in-sample. The
held-out set (tests/eval/qa_heldout.json, text only, written and labelled after the rules were
fixed and not used to change them) is reported apart: that is the figure to trust.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABELS = ROOT / "tests" / "eval" / "qa_labels.json"
HELDOUT = ROOT / "tests" / "eval" / "qa_heldout.json"
RECOGNITION = ROOT / "tests" / "recognition"
SAMPLES = ROOT / "data" / "samples"


def load_labels(path: Path = LABELS) -> dict[str, dict[str, str]]:
    return {call: entry["labels"] for call, entry in json.loads(path.read_text(encoding="utf-8"))["calls"].items()}


def _script_transcript(call_id: str, transcript, diarization):
    """The script's turns as a transcript, each on the stored speaker that spoke most in its span."""
    from pipeline.records import Segment, Word, join_words, label_channel

    truth = json.loads((SAMPLES / "truth" / f"{call_id}.json").read_text(encoding="utf-8"))
    segments = []
    for turn in truth["turns"]:
        overlap: dict[str, float] = {}
        for s in diarization.segments:
            overlap[s.speaker] = overlap.get(s.speaker, 0) + max(0.0, min(s.end, turn["end"]) - max(s.start, turn["start"]))
        speaker = max(overlap, key=overlap.get)
        tokens = list(turn["text"]) if truth["language"] == "zh" else turn["text"].split()
        step = (turn["end"] - turn["start"]) / max(1, len(tokens))
        words = tuple(Word(tok, turn["start"] + i * step, turn["start"] + (i + 1) * step, 1.0) for i, tok in enumerate(tokens))
        segments.append(Segment(turn["start"], turn["end"], join_words(tokens), words, speaker=speaker,
                                channel=label_channel(speaker)))
    return replace(transcript, segments=tuple(segments), language=truth["language"])


def build_db(db_path: Path, source: str, call_ids: list[str]) -> Path:
    from pipeline.intake.audio import decode
    from pipeline.intake.ingest import discover
    from pipeline.run.execute import refresh_briefings, write_result
    from pipeline.run.serial import load_recognition
    from pipeline.run.stages import analyse_call
    from pipeline.store import Store

    recordings = {r.call_id: r for r in discover(SAMPLES).recordings}
    results = []
    for call_id in call_ids:
        rec = recordings[call_id]
        audio = decode(rec.path)
        transcript, diarization = load_recognition(RECOGNITION / f"{call_id}.json")
        if source == "script":
            transcript = _script_transcript(call_id, transcript, diarization)
        results.append(analyse_call(replace(rec, duration=audio.duration), audio, diarization, transcript))
    with Store(db_path) as store:
        for result in results:
            write_result(store, result)
        refresh_briefings(store, results)
    return db_path


def prefills(db_path: Path, call_ids: list[str]) -> dict[str, dict[str, dict]]:
    from pipeline.outputs.qa import prefill_scorecard
    from pipeline.store import Store

    with Store(db_path, read_only=True) as store:
        return {c: {a["item"]: a for a in prefill_scorecard(store, c)} for c in call_ids}


def as_label(prefill: str) -> str:
    return "fail" if prefill == "no evidence" else prefill


def agreement(labels: dict[str, dict[str, str]], cards: dict[str, dict[str, dict]]) -> dict[str, tuple[int, int, list[str]]]:
    """item -> (agreeing, labelled, disagreements as 'call: prefill vs label')."""
    from pipeline.outputs.qa import scorecard_items

    out = {}
    for item in [i["id"] for i in scorecard_items()]:
        agree, n, misses = 0, 0, []
        for call, call_labels in labels.items():
            if item not in call_labels or call not in cards:
                continue
            n += 1
            got = cards[call][item]["prefill"]
            if as_label(got) == call_labels[item]:
                agree += 1
            else:
                misses.append(f"{call}: {got} vs {call_labels[item]}")
        out[item] = (agree, n, misses)
    return out


def heldout(path: Path = HELDOUT) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, dict]]]:
    """(labels, prefilled cards) of the held-out text calls."""
    from pipeline.outputs.qa import prefill_view, view_from_turns

    calls = json.loads(path.read_text(encoding="utf-8"))["calls"]
    cards = {cid: {a["item"]: a for a in prefill_view(view_from_turns(cid, c["language"], c["turns"]))}
             for cid, c in calls.items()}
    return {cid: c["labels"] for cid, c in calls.items()}, cards


def _table(title: str, runs: dict[str, dict]) -> None:
    print(title)
    print(f"{'item':24}" + "".join(f"{name:>14}" for name in runs) + "   disagreements")
    totals = {name: [0, 0] for name in runs}
    for item in next(iter(runs.values())):
        cells, misses = [], []
        for name, result in runs.items():
            agree, n, miss = result[item]
            totals[name][0] += agree
            totals[name][1] += n
            cells.append(f"{agree}/{n} {agree / n:4.0%}" if n else "-")
            misses += [f"[{name}] {m}" for m in miss]
        print(f"{item:24}" + "".join(f"{c:>14}" for c in cells) + "   " + "; ".join(misses))
    print(f"{'all items':24}" + "".join(f"{a}/{n} {a / n:4.0%}".rjust(14) for a, n in totals.values()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="score this database instead of replaying the sample calls")
    parser.add_argument("--labels", default=str(LABELS))
    args = parser.parse_args(argv)
    labels = load_labels(Path(args.labels))
    calls = sorted(labels)
    runs: dict[str, dict] = {}
    if args.db:
        runs["db"] = agreement(labels, prefills(Path(args.db), [c for c in calls]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            for source in ("recognised", "script"):
                db = build_db(Path(tmp) / f"{source}.duckdb", source, calls)
                runs[source] = agreement(labels, prefills(db, calls))
    _table(f"QA prefill vs hand labels, sample calls ({', '.join(calls)}; in-sample: the rules were written on "
           f"them); 'no evidence' counted as fail", runs)
    if not args.db:
        held_labels, held_cards = heldout()
        print()
        _table(f"held-out text calls ({len(held_labels)}: {', '.join(sorted(held_labels))}; not used to write the rules)",
               {"held-out": agreement(held_labels, held_cards)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
