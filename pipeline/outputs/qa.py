"""QA sampling: a reproducible, stratified sample of calls with a prefilled scorecard.

Two scorecards: the inbound call's (pipeline/data/qa_scorecard.json), and the callback card
(pipeline.outputs.callback_card) for the bank's callbacks about a complaint (calls.direction =
'callback'), drawn apart after the inbound strata. Other calls the bank placed (outbound) are not
sampled. Each stored answer of a callback card names its card, and a review is validated against
the card of its call.

Strata, in the order they are drawn: every call with a regulator/media/legal flag (always in,
even past N); a quota per agent so every agent is reviewed each period; an over-sample of
high-escalation calls; a random baseline filling the rest up to N. A call sampled in any
earlier period is never drawn again. The seed and the plan are stored with the sample and
every row says why the call was drawn.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.analysis.escalation import lexicon_hits
from pipeline.analysis.redact import redact
from pipeline.analysis.summary import categories, summarise
from pipeline.config import keys
from pipeline.config.datafiles import read_json
from pipeline.config.policy import Policy, default_policy
from pipeline.outputs.callback_card import CARD_ID as CALLBACK_CARD
from pipeline.outputs.callback_card import callback_items, prefill_callback
from pipeline.outputs.spreadsheet import safe_frame
from pipeline.records import Direction, Flag, Role, Turn
from pipeline.store import Store, utcnow


@dataclass(frozen=True)
class SamplingPlan:
    n: int = 20
    seed: int = 0
    start: datetime | None = None  # calls started at or after
    end: datetime | None = None  # ...and before
    high_escalation_share: float = 0.3  # of N, drawn from calls at or above the threshold
    # From the policy (its review level and threat flags); the packaged one unless built with `for_policy`.
    high_escalation_threshold: float = field(default_factory=lambda: default_policy().levels.review)
    per_agent_quota: int = 1
    always_flags: tuple[Flag, ...] = field(default_factory=lambda: default_policy().threat_flags)
    callbacks: int = 5  # callback calls drawn at random beyond N, scored on the callback card

    @classmethod
    def for_policy(cls, policy: Policy, **values) -> "SamplingPlan":
        return cls(high_escalation_threshold=policy.levels.review, always_flags=policy.threat_flags, **values)


@dataclass(frozen=True)
class SampledCall:
    call_id: str
    agent_id: str | None
    stratum: str  # flagged | agent_quota | high_escalation | random | callback
    reason: str


@dataclass
class Sample:
    sample_id: str
    plan: SamplingPlan
    calls: list[SampledCall] = field(default_factory=list)
    n_candidates: int = 0


def draw_sample(store: Store, plan: SamplingPlan) -> Sample:
    """Draw (do not store) a sample; the same data, plan and seed always give the same sample."""
    rng = np.random.default_rng(plan.seed)
    pool = store.qa_candidates(plan.start, plan.end)
    # The suffix keeps two samples drawn in the same second apart (their exports would merge).
    sample_id = f"qa-{utcnow():%Y%m%dT%H%M%S}-s{plan.seed}-{uuid.uuid4().hex[:4]}"
    sample = Sample(sample_id=sample_id, plan=plan, n_candidates=len(pool))
    taken: set[str] = set()

    def take(call_id: str, agent, stratum: str, reason: str) -> None:
        taken.add(call_id)
        sample.calls.append(SampledCall(call_id, agent, stratum, reason))

    for row in pool.itertuples():
        hit = sorted(set(json.loads(row.flags)) & set(plan.always_flags))
        if hit:
            take(row.call_id, row.agent_id, "flagged", "flag: " + ", ".join(hit))
    for agent, group in pool.groupby("agent_id", sort=True):
        have = sum(1 for c in sample.calls if c.agent_id == agent)
        free = [r for r in group.itertuples() if r.call_id not in taken]
        for i in rng.permutation(len(free))[: max(0, plan.per_agent_quota - have)]:
            take(free[i].call_id, agent, "agent_quota", f"quota: agent {agent} reviewed every period")
    high = [r for r in pool.itertuples() if r.call_id not in taken and r.score >= plan.high_escalation_threshold]
    n_high = min(len(high), round(plan.n * plan.high_escalation_share))
    for i in sorted(rng.permutation(len(high))[:n_high]):
        take(high[i].call_id, high[i].agent_id, "high_escalation",
             f"escalation {high[i].score:.0f} >= {plan.high_escalation_threshold:.0f}")
    rest = [r for r in pool.itertuples() if r.call_id not in taken]
    for i in sorted(rng.permutation(len(rest))[: max(0, plan.n - len(sample.calls))]):
        take(rest[i].call_id, rest[i].agent_id, "random", "random baseline")
    # Callbacks from a stream of their own: the inbound draw above stays what it was without them.
    callbacks = list(store.qa_callback_candidates(plan.start, plan.end).itertuples())
    for i in sorted(np.random.default_rng([plan.seed, 1]).permutation(len(callbacks))[: max(0, plan.callbacks)]):
        take(callbacks[i].call_id, callbacks[i].agent_id, "callback", "callback call: scored on the callback card")
    sample.n_candidates += len(callbacks)
    return sample


def why_empty(store: Store, plan: SamplingPlan) -> str:
    """One line saying why a plan finds no candidate: no calls in the range, or all already sampled."""
    n_in_range, n_sampled, n_ok, first, last = store.qa_period_counts(plan.start, plan.end)
    left_out = store.qa_left_out(plan.start, plan.end)
    note = (f"; {left_out} outbound call(s) the bank placed for another purpose than a callback have no "
            "scorecard and are not sampled" if left_out else "")
    return _why_empty(n_in_range, n_sampled, n_ok, first, last, plan) + note


def _why_empty(n_in_range: int, n_sampled: int, n_ok: int, first, last, plan: SamplingPlan) -> str:
    fmt = lambda t: f"{t:%Y-%m-%d %H:%M}" if t else "?"  # noqa: E731
    asked = (f"from {fmt(plan.start)}" if plan.start else "") + (f" before {fmt(plan.end)}" if plan.end else "")
    asked = asked.strip() or "at any time"
    stored = f"stored processed calls: {n_ok}" + (f", started {fmt(first)} to {fmt(last)}" if n_ok else "")
    if n_in_range == 0:
        return f"no processed call started {asked} ({stored})"
    return (f"all {n_in_range} processed call(s) started {asked} were already sampled (a call is sampled once, "
            f"ever; {stored})" if n_sampled == n_in_range else
            f"{n_in_range - n_sampled} candidate(s) of {n_in_range} in range, {n_sampled} already sampled")


def store_sample(store: Store, sample: Sample, scorecards: dict[str, list[dict]]) -> None:
    rows = [{"sample_id": sample.sample_id, "call_id": c.call_id, "agent_id": c.agent_id, "stratum": c.stratum,
             "reason": c.reason, "seed": sample.plan.seed, "plan": json.dumps(asdict(sample.plan), default=str),
             "drawn_at": utcnow(), "scorecard": json.dumps(scorecards.get(c.call_id, []), ensure_ascii=False)}
            for c in sample.calls]
    store.store_qa_sample(rows)


# --- scorecard prefill -----------------------------------------------------------------
#
# Each item judges the agent's act in its context, never a word alone: who said it (agent
# turns only), when (the opening, the last turn, right after the customer's complaint) and
# about what (the call's problem topic, the customer's demand). Every answer carries the
# quotes and times it rests on, the candidates it rejected and why, and says "no evidence"
# when it found nothing to judge, instead of passing by default.

NO_EVIDENCE = "no evidence"


@lru_cache(maxsize=1)
def scorecard() -> dict:
    return read_json("qa_scorecard.json")


def scorecard_items() -> list[dict]:
    return scorecard()["items"]


INBOUND_CARD = "inbound"


def card_items(card: str = INBOUND_CARD) -> list[dict]:
    """The items of a scorecard by its id: the callback card's, or the inbound one's."""
    return callback_items() if card == CALLBACK_CARD else scorecard_items()


def card_of(stored) -> str:
    """The card a stored prefill (qa_samples.scorecard: JSON text or a list) or a sampled row was
    drawn on: its answers name it; older or empty ones are the inbound card."""
    if isinstance(stored, dict):
        stored = stored.get("scorecard")
    answers = json.loads(stored) if isinstance(stored, str) else stored
    cards = {a.get("card") for a in answers or [] if isinstance(a, dict)}
    return CALLBACK_CARD if CALLBACK_CARD in cards else INBOUND_CARD


def review_values() -> tuple[str, ...]:
    return tuple(scorecard()["values"])


@dataclass(frozen=True)
class TurnView:
    seq: int
    role: str
    start: float
    end: float
    text: str  # masked
    categories: tuple[str, ...]  # escalation lexicon categories of the turn


@dataclass(frozen=True)
class CallView:
    """What the prefill reads about one call."""
    call_id: str
    category: str | None
    turns: tuple[TurnView, ...]
    demands: tuple[dict, ...]  # summary quotes: time, role, text
    promises: tuple[dict, ...]
    deadline_promises: tuple[dict, ...]
    customer_share: float | None
    agent_interruptions: int | None

    @property
    def agent(self) -> list[TurnView]:
        return [t for t in self.turns if t.role == Role.AGENT]

    def topic_terms(self) -> list[str]:
        return next((c["keywords"] for c in categories()["categories"] if c["id"] == self.category), [])


def load_call_view(store: Store, call_id: str) -> CallView:
    turns, summ, dyn = store.qa_call_rows(call_id)
    share = interruptions = None
    if dyn:
        talk = (dyn["agent_talk_s"] or 0) + (dyn["customer_talk_s"] or 0)
        share = (dyn["customer_talk_s"] or 0) / talk if talk else None
        interruptions = int(dyn["agent_interruptions"] or 0)
    load = lambda key: tuple(json.loads(summ[key])) if summ.get(key) else ()  # noqa: E731
    return CallView(
        call_id=call_id, category=summ.get("category"),
        turns=tuple(TurnView(int(t["seq"]), t["role"] or "unknown", float(t["start"]), float(t["end"]),
                             t["redacted_text"] or "",
                             tuple(json.loads(t["signals"] or "{}").get("categories", []))) for t in turns),
        demands=load("demands"), promises=load("promises"), deadline_promises=load("deadline_promises"),
        customer_share=share, agent_interruptions=interruptions)


def view_from_turns(call_id: str, language: str, turns: list[tuple[str, float, float, str]]) -> CallView:
    """A CallView from a plain transcript (role, start, end, text): the summary and lexicon run as in
    production; talk share and interruptions come from the turn times. For text-only evaluation."""
    plain = tuple(Turn(role, role, float(start), float(end), text) for role, start, end, text in turns)
    summary = summarise(call_id, plain, language, None)
    talk = {r: sum(t.end - t.start for t in plain if t.role == r) for r in (Role.AGENT, Role.CUSTOMER)}
    interruptions = sum(1 for prev, t in zip(plain, plain[1:])
                        if t.role == Role.AGENT and prev.role == Role.CUSTOMER and t.start < prev.end)
    dump = lambda quotes: tuple(asdict(q) for q in quotes)  # noqa: E731
    return CallView(
        call_id=call_id, category=summary.category,
        turns=tuple(TurnView(i, t.role, t.start, t.end, redact(t.text),
                             tuple(sorted({h.category for h in lexicon_hits(t.text)}))) for i, t in enumerate(plain)),
        demands=dump(summary.demands), promises=dump(summary.promises),
        deadline_promises=dump(summary.deadline_promises),
        customer_share=talk[Role.CUSTOMER] / (talk[Role.AGENT] + talk[Role.CUSTOMER]) if any(talk.values()) else None,
        agent_interruptions=interruptions)


def _has(text: str, cues) -> list[str]:
    low = text.lower()
    return [c for c in cues if c in low]


def _ev(turn: TurnView, counts: str, why: str) -> dict:
    """counts: 'for' (supports the item), 'against', or 'no' (looked at and rejected)."""
    return {"time": round(turn.start, 2), "role": turn.role, "quote": turn.text, "counts": counts, "why": why}


def _verdict(evidence: list[dict], found_nothing: str) -> tuple[str, str]:
    if any(e["counts"] == "for" for e in evidence):
        return "pass", ""
    if evidence:
        return "fail", ""
    return NO_EVIDENCE, found_nothing


def _opening(view: CallView, item: dict):
    if not view.agent:
        return NO_EVIDENCE, [], "no agent turn"
    first = view.agent[0]
    found = _has(first.text, item["cues"])
    ev = [_ev(first, "for" if found else "against",
              f"agent's first turn greets ({', '.join(found)})" if found else "agent's first turn has no greeting")]
    return ("pass" if found else "fail"), ev, ""


def _verification(view: CallView, item: dict):
    ev = []
    for t in view.agent:
        asks, data = _has(t.text, item["ask"]), _has(t.text, item["identity"])
        if asks and data:
            ev.append(_ev(t, "for", f"asks the customer to confirm {', '.join(data)}"))
        elif asks:
            ev.append(_ev(t, "no", f"'{asks[0]}' but no identity data asked (e.g. contact details only)"))
    value, note = _verdict(ev, "no agent turn asks the customer to confirm identity data")
    return value, ev, note


def _listening(view: CallView, item: dict):
    ev = []
    agent_spoke = False
    for t in view.turns:
        if t.role == Role.AGENT:
            agent_spoke = True
        elif t.role == Role.CUSTOMER and agent_spoke:
            said = _has(t.text, item["not_heard"])
            if said:
                ev.append(_ev(t, "against", f"customer says they were not heard ({', '.join(said)})"))
    if view.customer_share is None:
        return (("fail", ev, "") if ev else (NO_EVIDENCE, ev, "no conversation dynamics stored"))
    share_ok = view.customer_share >= item["min_customer_share"]
    interrupt_ok = (view.agent_interruptions or 0) <= item["max_agent_interruptions"]
    # Measured over the whole call: no single moment, so no "time" (pages offer play only with one).
    # The numbers too, so a page says them in its reader's language (the quote is the exports' text).
    ev.append({"role": "both", "quote": f"customer talk share {view.customer_share:.0%}, agent "
               f"interruptions {view.agent_interruptions}", "customer_share": round(view.customer_share, 3),
               "agent_interruptions": view.agent_interruptions, "counts": "for" if share_ok and interrupt_ok else "against",
               "why": f"needs share >= {item['min_customer_share']:.0%} and <= {item['max_agent_interruptions']} interruptions"})
    value = "pass" if all(e["counts"] == "for" for e in ev) else "fail"
    return value, ev, ""


def _complaint_turns(view: CallView) -> list[TurnView]:
    """The customer's problem statement (first turn), demands, and turns with complaint words."""
    demand_times = {round(d["time"], 2) for d in view.demands if d.get("role") == Role.CUSTOMER}
    customer = [t for t in view.turns if t.role == Role.CUSTOMER]
    return [t for i, t in enumerate(customer) if i == 0 or t.categories or round(t.start, 2) in demand_times]


def _empathy(view: CallView, item: dict):
    complaints = _complaint_turns(view)
    ev = []
    for t in view.agent:
        found = _has(t.text, item["cues"])
        if not found:
            continue
        before = [c for c in complaints if c.start < t.start]
        # Near: the agent's first turn after a complaint, starting within max_gap_s of its end.
        near = bool(before) and t.start - before[-1].end <= item["max_gap_s"] and not any(
            before[-1].start < a.start < t.start for a in view.agent)
        refusal = _has(t.text, item["refusal"])
        if refusal and not _has(t.text, next(i for i in scorecard_items() if i["kind"] == "solution")["actions"]):
            ev.append(_ev(t, "no", f"'{found[0]}' used to refuse ({refusal[0]}), not to acknowledge the complaint"))
        elif not near:
            ev.append(_ev(t, "no", f"'{found[0]}' not in answer to a customer complaint"))
        else:
            ev.append(_ev(t, "for", f"answers the customer's complaint at {before[-1].start:.0f} s ({found[0]})"))
    value, note = _verdict(ev, "no agent apology or acknowledgement")
    return value, ev, note


def _explanation(view: CallView, item: dict):
    topic = view.topic_terms()
    ev = []
    for t in view.agent:
        found = _has(t.text, item["cues"])
        if not found:
            continue
        about = _has(t.text, topic)
        if about:
            ev.append(_ev(t, "for", f"gives a reason ({found[0]}) about the problem ({about[0]})"))
        else:
            ev.append(_ev(t, "no", f"'{found[0]}' but not about the customer's problem ({view.category or 'unknown'})"))
    if not topic and ev:  # the problem is not known: cannot tell a reason about it from any other
        return NO_EVIDENCE, ev, "the call's problem category is unknown: reviewer to judge"
    value, note = _verdict(ev, "no agent turn gives a reason for the customer's problem")
    return value, ev, note


def _promise(view: CallView, item: dict):
    deadline_times = {round(d["time"], 2) for d in view.deadline_promises}
    ev = [{"time": round(p["time"], 2), "role": p.get("role", Role.AGENT), "quote": p["text"],
           "counts": "against" if round(p["time"], 2) in deadline_times else "for",
           "why": "promises a specific deadline" if round(p["time"], 2) in deadline_times else "no specific deadline"}
          for p in view.promises if p.get("role", Role.AGENT) == Role.AGENT]
    ev += [{"time": round(d["time"], 2), "role": d.get("role", Role.AGENT), "quote": d["text"], "counts": "against",
            "why": "promises a specific deadline"} for d in view.deadline_promises
           if round(d["time"], 2) not in {e["time"] for e in ev}]
    if not ev:
        return "n/a", ev, "the agent promised nothing"
    return ("fail" if any(e["counts"] == "against" for e in ev) else "pass"), ev, ""


def _solution(view: CallView, item: dict):
    topic = view.topic_terms()
    ev = []
    for t in view.agent:
        offer, steps, acts = _has(t.text, item["unrelated_offers"]), _has(t.text, item["device_steps"]), _has(t.text, item["actions"])
        if offer:
            ev.append(_ev(t, "against", f"offers something the customer did not ask for ({offer[0]})"))
        elif steps and not _has(t.text, topic):
            ev.append(_ev(t, "against", f"device instruction, not an action on the demand ({steps[0]})"))
        elif acts:
            ev.append(_ev(t, "for", f"action on the customer's demand ({acts[0]})"))
    acts = [e for e in ev if e["counts"] != "no"]
    if not acts:
        return NO_EVIDENCE, ev, "no agent action or offer found"
    n_for = sum(e["counts"] == "for" for e in acts)
    # What the customer is left with: more actions than deflections, or a relevant step after the last one.
    ok = n_for > len(acts) - n_for or (n_for and acts[-1]["counts"] == "for")
    return ("pass" if ok else "fail"), ev, ""


def _closing(view: CallView, item: dict):
    if not view.agent:
        return NO_EVIDENCE, [], "no agent turn"
    last = view.agent[-1]
    found = _has(last.text, item["cues"])
    return ("pass" if found else "fail"), [_ev(last, "for" if found else "against",
                                               f"agent's last turn closes ({found[0]})" if found
                                               else "agent's last turn has no closing")], ""


JUDGES = {"opening": _opening, "verification": _verification, "listening": _listening, "empathy": _empathy,
          "explanation": _explanation, "promise": _promise, "solution": _solution, "closing": _closing}


def prefill_view(view: CallView) -> list[dict]:
    card = []
    for item in scorecard_items():
        value, evidence, note = JUDGES[item["kind"]](view, item)
        card.append({"item": item["id"], "label": item["label"], "prefill": value, "evidence": evidence, "note": note})
    return card


def prefill_scorecard(store: Store, call_id: str) -> list[dict]:
    """Each item: prefilled value (pass / fail / n/a / no evidence), the evidence behind it, a note;
    on the callback card for a callback call, on the inbound card for any other."""
    view = load_call_view(store, call_id)
    if store.qa_call_direction(call_id) == Direction.CALLBACK:
        return prefill_callback(view.turns)
    return prefill_view(view)


# --- export and reviews -------------------------------------------------------------------

class QAError(ValueError):
    """Bad input to a QA command: the message is one line for the user."""


def export_sample(store: Store, sample_id: str, folder: Path, files: str = "encrypted") -> tuple[Path, Path]:
    """The sample as CSV and Parquet: per call the prefill of each item (one column each, with its
    first quote), and one row per review with the reviewer's value for each item. `files` (the
    export_files setting): "encrypted" seals both with the database key (`<name>.enc`), "plain"
    writes them as they are, "none" refuses. Text a spreadsheet would run as a formula is quoted in
    the CSV (pipeline.outputs.spreadsheet)."""
    if files == "none":
        raise QAError("exports are off (export_files = \"none\"): read the sample in the web app")
    if not store.qa_sample_exists(sample_id):
        raise QAError(f"unknown sample {sample_id!r}")
    frame = store.qa_export_frame(sample_id)
    stored = frame.pop("scorecard")
    # The callback card's columns only when the sample holds a callback call.
    ids = [i["id"] for i in scorecard_items()] + (
        [i["id"] for i in callback_items()] if any(card_of(x) == CALLBACK_CARD for x in stored) else [])
    cards = stored.map(lambda x: {a["item"]: a for a in json.loads(x or "[]")})
    reviews = frame.pop("scores").map(lambda x: json.loads(x) if isinstance(x, str) else {})
    comments = frame.pop("comment")
    for item in ids:
        frame[f"prefill_{item}"] = cards.map(lambda c: c.get(item, {}).get("prefill", ""))
        frame[f"evidence_{item}"] = cards.map(lambda c: _first_quote(c.get(item)))
    for item in ids:
        frame[f"review_{item}"] = reviews.map(lambda r: r.get(item, ""))
    frame["review_comment"] = comments.fillna("")
    folder.mkdir(parents=True, exist_ok=True)
    csv = safe_frame(frame).to_csv(index=False)  # a comment "=..." must not run in a spreadsheet
    return (_write(folder / f"{sample_id}.csv", csv.encode("utf-8"), files),
            _write(folder / f"{sample_id}.parquet", frame.to_parquet(index=False), files))


def _write(path: Path, data: bytes, files: str) -> Path:
    """One export file, sealed or plain, written whole (a half file is never left)."""
    if files == "encrypted":
        try:
            return keys.write_sealed(path.with_name(path.name + ".enc"), data)
        except keys.KeyProblem as exc:
            raise QAError(str(exc)) from None
    return keys.write_file(path, data)


def _first_quote(answer: dict | None) -> str:
    for e in (answer or {}).get("evidence", []):
        if e["counts"] != "no":
            at = f"{e['time']:.1f} s " if e.get("time") is not None else ""
            return f"{at}{e['quote']}"
    return (answer or {}).get("note", "")


def item_values(item: dict) -> list[str]:
    """The answers a reviewer may give an item: its own list when the scorecard gives one."""
    return list(item.get("values") or review_values())


def validate_review(scores, card: str = INBOUND_CARD) -> dict[str, str]:
    """A reviewer's scores, checked against the scorecard: the one rule for the CLI, the web pages
    and the API. Every item answered (n/a where it does not apply), each with an allowed value;
    every value the prefill gives is one, so a prefilled card can be confirmed as it is."""
    if not isinstance(scores, dict) or not scores:
        raise QAError('scores must be a JSON object such as {"greeting": "pass"}')
    items = {i["id"]: i for i in card_items(card)}
    for key, value in scores.items():
        if key not in items:
            raise QAError(f"unknown scorecard item {key!r}; known: {', '.join(items)}")
        if value and value not in item_values(items[key]):  # an empty answer is a missing one
            raise QAError(f"{key}: {value!r} is not allowed; use one of {', '.join(item_values(items[key]))}")
    missing = [i for i in items if not scores.get(i)]
    if missing:
        raise QAError(f"answer every item (n/a where it does not apply); missing: {', '.join(missing)}")
    return dict(scores)


def _prefilled(scorecard) -> dict[str, str | None]:
    """item -> the answer the prefill gave (None: no evidence), from a stored scorecard (JSON or list)."""
    card = json.loads(scorecard) if isinstance(scorecard, str) else (scorecard or [])
    return {c["item"]: c.get("prefill") for c in card}


def review_against_prefill(scorecard, scores) -> dict[str, dict]:
    """Per item of one review: the prefill, the reviewer's answer, and whether they agree (None when
    the prefill found no evidence: there was nothing to agree with)."""
    prefill = _prefilled(scorecard)
    answers = json.loads(scores) if isinstance(scores, str) else (scores or {})
    out = {}
    for item in card_items(card_of(scorecard)):
        before, after = prefill.get(item["id"]), answers.get(item["id"])
        agree = None if before in (None, "no evidence") or not after else before == after
        out[item["id"]] = {"prefill": before, "review": after, "agree": agree}
    return out


def prefill_agreement(pairs: list[dict], period=None) -> dict[str, dict[str, dict]]:
    """How often reviewers kept the prefill, per item, overall ("all") and per period (`period`:
    a review's time -> a label such as an ISO week): {period: {item: {"agree", "n", "no_prefill"}}}.
    `pairs`: reviews beside their call's prefilled scorecard (scorecard, scores, reviewed_at)."""
    out: dict[str, dict[str, dict]] = {}
    for pair in pairs:
        keys = ["all"] + ([period(pair["reviewed_at"])] if period and pair.get("reviewed_at") else [])
        for item, r in review_against_prefill(pair["scorecard"], pair["scores"]).items():
            for key in keys:
                cell = out.setdefault(key, {}).setdefault(item, {"agree": 0, "n": 0, "no_prefill": 0})
                if r["agree"] is None:
                    cell["no_prefill"] += 1
                else:
                    cell["n"] += 1
                    cell["agree"] += r["agree"]
    return out


MAX_COMMENT = 2000  # characters of a reviewer's comment kept


def record_review(store: Store, sample_id: str, call_id: str, reviewer: str, scores: dict[str, str],
                  comment: str = "") -> bool:
    """Store a reviewer's scores; a second review of the same call by the same reviewer replaces the
    first. Returns True when it replaced one."""
    scores = validate_review(scores, card_of(store.qa_sampled(sample_id, call_id)))  # the card of that call
    if not reviewer.strip():
        raise QAError("reviewer must not be empty")
    if not store.qa_sample_exists(sample_id):
        raise QAError(f"unknown sample {sample_id!r}")
    if store.qa_sampled(sample_id, call_id) is None:
        raise QAError(f"call {call_id!r} is not in sample {sample_id}")
    return store.replace_qa_review(sample_id, call_id, reviewer, scores, comment[:MAX_COMMENT])


def sample_for_qa(store: Store, plan: SamplingPlan) -> Sample:
    """Draw a sample, prefill each call's scorecard and store it; an empty sample is not stored
    (`why_empty` says why)."""
    sample = draw_sample(store, plan)
    if sample.calls:
        store_sample(store, sample, {c.call_id: prefill_scorecard(store, c.call_id) for c in sample.calls})
    return sample


def sample_rows(sample: Sample) -> list[dict]:
    return [{"call_id": c.call_id, "agent_id": c.agent_id or "", "stratum": c.stratum, "reason": c.reason}
            for c in sample.calls]
