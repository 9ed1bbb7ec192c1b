"""`python -m evaluation.eval_sources`: which authority or channel a threat named
(pipeline.analysis.escalation.named_sources) against hand labels.

Sets:
- tests/eval/callback_conversations.json: 20 conversations the team wrote and labelled before this
  rule existed; each call's `threats` name the kind (regulator_12363, consumer_association, ...).
  The lexicon's new terms were chosen with these lines in view: read these figures as dev figures.
- the sample calls' reference transcripts (data/samples/truth), labelled here: zh-1001-b names the
  banking regulator (12378, 金融监管总局) and the press; en-2002 the ombudsman and a lawyer.
- tests/eval/escalation_set.json's English target lines, labelled here (four name a source).
Each call is scored as the pipeline scores it (the customer's turns, roles certain, voice left out:
words decide). Reports labelled sources found, missed, sources found that no label names, and
calls with a threat flag but no labelled threat.
"""
from __future__ import annotations

import json
from pathlib import Path

from pipeline.analysis.escalation import lexicon_hits, score_call
from pipeline.records import Role, TurnFeatures, VoiceFeatures

ROOT = Path(__file__).resolve().parent.parent
CONVERSATIONS = ROOT / "tests" / "eval" / "callback_conversations.json"
ESCALATION_SET = ROOT / "tests" / "eval" / "escalation_set.json"
TRUTH = ROOT / "data" / "samples" / "truth"
THREATS = ("regulator_threat", "media_threat", "legal_threat")
# The team's threat kinds as source ids (pipeline/data/threat_sources.json).
KINDS = {"regulator_12363": "pboc_12363", "regulator_12378": "nfra_12378", "consumer_12315": "samr_12315",
         "consumer_association": "samr_12315", "petition_xinfang": "petition", "media": "media",
         "social_media_weibo": "online_platform", "complaint_platform_heimao": "online_platform",
         "legal_lawyer": "lawyer"}
SAMPLE_LABELS = {"zh-1001-b": {"nfra_12378", "media"}, "en-2002": {"ombudsman", "lawyer"}}
LINE_LABELS = {"If this is not fixed today I will complain to the ombudsman.": {"ombudsman"},
               "I am going to talk to my lawyer about this, it is outrageous.": {"lawyer"},
               "I will report you to the regulator and post this on social media.": {"regulator", "online_platform"},
               "How dare you charge me this, I will take legal action.": {"legal"}}
CALM = VoiceFeatures(loudness_db=60.0, pitch_st=5.0, pitch_range_st=2.0, rate=3.0)


def found(turns: list[tuple[str, str]]) -> tuple[set[str], set[str]]:
    """(sources named, threat flags) of a call of (role, text) turns."""
    features = []
    for i, (role, text) in enumerate(turns):
        hits = lexicon_hits(text)
        features.append(TurnFeatures(i, role, "ch0" if role == Role.AGENT else "ch1", 5.0 * i, 5.0 * i + 4.5, text,
                                     CALM, terms=tuple(h.term for h in hits),
                                     categories=tuple(sorted({h.category for h in hits}))))
    esc = score_call(features, 5.0 * len(turns), roles_certain=True)
    return {s.source for s in esc.sources}, {f for f in esc.flags if f in THREATS}


def labelled_calls() -> list[tuple[str, str, list[tuple[str, str]], set[str]]]:
    """(set, call id, turns, labelled sources)."""
    out = []
    for call in json.loads(CONVERSATIONS.read_text(encoding="utf-8"))["calls"]:
        out.append(("conversations", call["id"], [(t["role"], t["text"]) for t in call["turns"]],
                    {KINDS[t["kind"]] for t in call["threats"]}))
    for path in sorted(TRUTH.glob("*.json")):
        truth = json.loads(path.read_text(encoding="utf-8"))
        out.append(("samples", truth["call_id"], [(t["role"], t["text"]) for t in truth["turns"]],
                    SAMPLE_LABELS.get(truth["call_id"], set())))
    data = json.loads(ESCALATION_SET.read_text(encoding="utf-8"))
    for group in ("neutral", "angry"):
        for i, line in enumerate(data[group]):
            out.append(("escalation_set", f"{group}-{i}", [(Role.CUSTOMER, data["baseline"]), (Role.CUSTOMER, line)],
                        LINE_LABELS.get(line, set())))
    return out


def main() -> int:
    totals: dict[str, list[int]] = {}
    print(f"{'set':<15} {'call':<14} {'labelled':<40} {'found':<40}")
    for name, call_id, turns, labels in labelled_calls():
        sources, flags = found(turns)
        t = totals.setdefault(name, [0, 0, 0, 0, 0, 0])  # labelled, found right, missed, extra, calls, false-flag calls
        t[0] += len(labels)
        t[1] += len(labels & sources)
        t[2] += len(labels - sources)
        t[3] += len(sources - labels)
        t[4] += 1
        t[5] += bool(flags and not labels)
        if labels or sources:
            print(f"{name:<15} {call_id:<14} {', '.join(sorted(labels)) or '-':<40} {', '.join(sorted(sources)) or '-':<40}"
                  + ("" if labels == sources else "  <- differs"))
    print()
    print(f"{'set':<15} {'calls':>5} {'labelled':>8} {'found':>5} {'missed':>6} {'extra':>5} {'false-flag calls':>16}")
    for name, (n_labels, right, missed, extra, n_calls, false_calls) in totals.items():
        print(f"{name:<15} {n_calls:>5} {n_labels:>8} {right:>5} {missed:>6} {extra:>5} {false_calls:>16}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
