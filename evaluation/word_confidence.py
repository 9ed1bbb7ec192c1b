"""How often a word Whisper wrote is wrong, by the probability Whisper gave it: the measure behind
the pages' dotted "may be misheard" words (pipeline/analysis/uncertain.py UNSURE_BELOW).

Each utterance of ../shared/audio and tests/eval/zh_general (Whisper's cached runs of
`python -m evaluation.eval_asr`; run that first) is aligned with its reference, character by
character (edit distance, punctuation and spaces removed on both sides); a word is right when
every character of it is aligned to the same character of the reference. Words are binned by
probability, by half (the halves eval_asr reports: the service lines' hash, zh_general's own).

    python -m evaluation.word_confidence
"""
from __future__ import annotations

import argparse
import json

from evaluation.eval_asr import cache_dir, general_utterances, utterances
from evaluation.metrics import normalise_zh
from pipeline.analysis.uncertain import UNSURE_BELOW, UNSURE_SHARE
from pipeline.run.serial import transcript_from_dict
from pipeline.speech.asr import PRESETS

EDGES = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)


def aligned_right(reference: str, hypothesis: str) -> list[bool]:
    """For each character of `hypothesis`: aligned to an equal character of `reference` on a
    minimum-edit path (substitutions and insertions are wrong)."""
    n, m = len(reference), len(hypothesis)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            same = reference[i - 1] == hypothesis[j - 1]
            cost[i][j] = min(cost[i - 1][j - 1] + (0 if same else 1), cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    right = [False] * m
    i, j = n, m
    while i > 0 and j > 0:
        same = reference[i - 1] == hypothesis[j - 1]
        if cost[i][j] == cost[i - 1][j - 1] + (0 if same else 1):
            right[j - 1] = same
            i, j = i - 1, j - 1
        elif cost[i][j] == cost[i][j - 1] + 1:
            j -= 1
        else:
            i -= 1
    return right


def scored_words(items, folder) -> list[tuple[str, float, bool]]:
    """(half, probability, right) for every word of every cached utterance."""
    out = []
    for u in items:
        path = folder / f"{u.id}.json"
        if not path.exists():
            continue
        t = transcript_from_dict(json.loads(path.read_text(encoding="utf-8")))
        words = [(normalise_zh(w.text), w.probability) for s in t.segments for w in s.words]
        hyp = "".join(text for text, _ in words)
        right = aligned_right(normalise_zh(u.reference), hyp)
        k = 0
        for text, p in words:
            if text:
                out.append(("report" if u.held_out else "tune", p, all(right[k:k + len(text)])))
            k += len(text)
    return out


def table(words: list[tuple[str, float, bool]]) -> dict:
    out = {}
    for half in ("tune", "report"):
        rows = []
        for lo, hi in zip(EDGES, EDGES[1:]):
            inside = [r for h, p, r in words if h == half and lo <= p < hi]
            rows.append({"from": lo, "to": min(hi, 1.0), "words": len(inside),
                         "wrong": sum(not r for r in inside)})
        below = [r for h, p, r in words if h == half and p < UNSURE_BELOW]
        above = [r for h, p, r in words if h == half and p >= UNSURE_BELOW]
        out[half] = {"bins": rows, "marked": len(below), "marked_wrong": sum(not r for r in below),
                     "unmarked": len(above), "unmarked_wrong": sum(not r for r in above)}
    return out


def chosen_bar(bins: list[dict], share: float = UNSURE_SHARE) -> float:
    """The stated rule: the highest bin edge below which every bin had at least `share` of its words wrong."""
    bar = 0.0
    for b in bins:
        if not b["words"] or b["wrong"] / b["words"] < share:
            break
        bar = b["to"]
    return bar


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    folder = cache_dir("baseline", PRESETS["accurate"]) / "utterances"
    words = scored_words(utterances() + general_utterances(), folder)
    if not words:
        raise SystemExit(f"no cached Whisper runs in {folder}: run `python -m evaluation.eval_asr` first")
    report = table(words)
    for half, r in report.items():
        print(f"{half} half: Whisper's word probability against words wrong")
        for b in r["bins"]:
            share = f"{b['wrong'] / b['words']:.0%}" if b["words"] else "-"
            print(f"  {b['from']:.1f}-{b['to']:.1f}: {b['words']:5d} words, {b['wrong']:4d} wrong ({share})")
        print(f"  dotted below {UNSURE_BELOW}: {r['marked']} words, {r['marked_wrong']} wrong "
              f"({r['marked_wrong'] / max(r['marked'], 1):.0%}); not dotted: {r['unmarked']}, "
              f"{r['unmarked_wrong']} wrong ({r['unmarked_wrong'] / max(r['unmarked'], 1):.0%})")
    print(f"the rule (every bin below the bar at least {UNSURE_SHARE:.0%} wrong) on the tune half gives "
          f"{chosen_bar(report['tune']['bins']):.1f}; pipeline/analysis/uncertain.py uses {UNSURE_BELOW}")


if __name__ == "__main__":
    main()
