"""The callback scorecard: the QA card of a call in which the bank calls a customer back about
their complaint (calls.direction = 'callback'), prefilled from the agent's turns.

Items and cues are data (pipeline/data/qa_callback_scorecard.json). Each item is judged on
sentences of the agent's turns in their place in the call (the opening, before any account
detail, the whole call), and every answer carries the quotes (masked turn text) and times it
rests on. The order of decisions follows the labelling guide the cues were set against:
n/a (the call did not reach the customer) → "no evidence" (the recording lacks the part where the
item is done) → fail (a violation, or absent in a complete call) → pass. An item never passes
without a quote that supports it.

The turns come in already masked (the store's redacted text, or pipeline.analysis.redact), so
a quote shows what the handler's call page shows.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, Sequence

from pipeline.config.datafiles import read_json
from pipeline.records import Role

CARD_ID = "callback"
NO_EVIDENCE = "no evidence"
# A sentence ends at 。！？; or at a full stop before a capital, not after a title ("Mr. Moore").
_SENTENCE = re.compile(r"(?<=[。！？；!?;])|(?<=[.])(?<!Mr\.)(?<!Ms\.)(?<!Mrs\.)(?<!Dr\.)\s+(?=[A-Z\"'])")
_CJK = re.compile(r"[\u4e00-\u9fff]")


class TurnLike(Protocol):
    role: str
    start: float
    text: str


@lru_cache(maxsize=1)
def callback_scorecard() -> dict:
    return read_json("qa_callback_scorecard.json")


def callback_items() -> list[dict]:
    return callback_scorecard()["items"]


@dataclass(frozen=True)
class Sentence:
    turn: int  # index in the call's turns
    role: str
    start: float  # the turn's start: the time a reviewer plays from
    text: str


@lru_cache(maxsize=None)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern, ...]:
    return tuple(re.compile(p, re.I) for p in patterns)


def _find(text: str, patterns) -> str | None:
    """The first pattern's match in the text, or None."""
    for rx in _compiled(tuple(patterns)):
        m = rx.search(text)
        if m:
            return m.group(0)
    return None


def _sentences(turns: Sequence[TurnLike]) -> list[Sentence]:
    out = []
    for i, t in enumerate(turns):
        for part in _SENTENCE.split(t.text or ""):
            if part and part.strip():
                out.append(Sentence(i, t.role, float(t.start), part.strip()))
    return out


def _ev(s: Sentence, counts: str, why: str) -> dict:
    """counts: 'for' (supports the item), 'against', or 'no' (looked at and set aside)."""
    return {"time": round(s.start, 2), "role": s.role, "quote": s.text, "counts": counts, "why": why}


def _turn_ev(turns: Sequence[TurnLike], i: int, counts: str, why: str) -> dict:
    t = turns[i]
    return {"time": round(float(t.start), 2), "role": t.role, "quote": t.text, "counts": counts, "why": why}


@dataclass(frozen=True)
class Call:
    """What every item reads: the turns, their sentences, and where the recording starts and ends."""
    turns: tuple
    sentences: tuple[Sentence, ...]
    mid_call_start: bool  # the opening is not in the recording
    cut_at: int | None  # the turn where the call was cut (hang-up, broken-off sentence), else None

    @property
    def agent(self) -> list[Sentence]:
        return [s for s in self.sentences if s.role == Role.AGENT]

    def agent_turn_indices(self) -> list[int]:
        return [i for i, t in enumerate(self.turns) if t.role == Role.AGENT]


def _read(turns: Sequence[TurnLike]) -> Call:
    card = callback_scorecard()
    sentences = _sentences(turns)
    agent = [i for i, t in enumerate(turns) if t.role == Role.AGENT]
    mid = bool(agent) and _find(turns[agent[0]].text, card["starts_mid_call"]) is not None and agent[0] <= 1
    cut = None
    if turns:
        last = len(turns) - 1
        if turns[last].role == Role.AGENT and _find(turns[last].text, card["cut_off"]["agent_ends"]):
            cut = last
        elif turns[last].role != Role.AGENT and _find(turns[last].text, card["cut_off"]["customer"]):
            cut = last
        elif (last >= 1 and turns[last].role != Role.AGENT and turns[last - 1].role == Role.AGENT
              and _find(turns[last - 1].text, card["cut_off"]["agent_ends"])):
            cut = last - 1
    return Call(tuple(turns), tuple(sentences), mid, cut)


def not_reached(turns: Sequence[TurnLike]) -> dict | None:
    """Evidence that the call did not reach the customer (a wrong number, someone else, asked to
    call later, nobody spoke), else None."""
    rule = callback_scorecard()["not_reached"]
    customer = [(i, t) for i, t in enumerate(turns) if t.role != Role.AGENT]
    spoken = "".join(t.text for _, t in customer)
    zh = bool(_CJK.search(spoken))
    size = len(re.sub(r"\W", "", spoken)) if zh else len(spoken.split())
    if size < rule["min_customer_chars"]["zh" if zh else "en"]:
        return {"role": Role.CUSTOMER, "quote": spoken, "counts": "no", "why": "the other side hardly spoke: nobody reached"}
    for i, t in customer:
        found = _find(t.text, rule["customer"])
        if found:
            return _turn_ev(turns, i, "no", f"the customer was not reached ({found})")
    return None


# --- the items ---------------------------------------------------------------------------


def _intro(call: Call, item: dict):
    opening = call.agent_turn_indices()[: item["opening_agent_turns"]]
    if call.mid_call_start:
        return NO_EVIDENCE, [_turn_ev(call.turns, opening[0], "no", "the recording starts mid-call")] if opening else [], \
            "the opening is not in the recording"
    if not opening:
        return NO_EVIDENCE, [], "no agent turn"
    found: dict[str, tuple[Sentence, str]] = {}
    for s in call.agent:
        if s.turn not in opening:
            continue
        for part in ("person", "organisation", "reason"):
            hit = _find(s.text, item[part])
            if hit and part not in found:
                found[part] = (s, hit)
    missing = [p for p in ("person", "organisation", "reason") if p not in found]
    ev = []
    for part, (s, hit) in found.items():
        if not any(e["quote"] == s.text for e in ev):
            ev.append(_ev(s, "for" if not missing else "no", f"{part} ({hit})"))
    if missing:
        ev.insert(0, _turn_ev(call.turns, opening[0], "against", f"the opening lacks: {', '.join(missing)}"))
        return "fail", ev, ""
    return "pass", ev, ""


def _verify(call: Call, item: dict):
    if call.mid_call_start:
        return NO_EVIDENCE, [], "the opening is not in the recording"
    turns, sentences = call.turns, call.sentences
    checked, ev = None, []  # index in sentences where the customer is confirmed
    detail = None  # (index, match) of the agent's first account detail, result or finding
    for k, s in enumerate(sentences):
        if s.role != Role.AGENT:
            continue
        asked, datum = _find(s.text, item["ask_person"]), _find(s.text, item["ask_datum"])
        if asked and checked is None:
            reply = next((j for j in range(k + 1, len(sentences)) if sentences[j].role != Role.AGENT), None)
            if reply is not None and _find(sentences[reply].text, item["confirms"]):
                ev += [_ev(s, "for", f"asks for the customer ({asked})"),
                       _ev(sentences[reply], "for", "the customer confirms")]
                checked = reply
        if datum:
            ev.append(_ev(s, "for", f"asks for an identity datum ({datum})"))
            checked = k if checked is None else checked
        elif detail is None and not asked:
            hit = _find(s.text, item["detail"])
            if hit:
                detail = (k, hit)
    if detail and (checked is None or detail[0] < checked):
        ev.append(_ev(sentences[detail[0]], "against", f"a detail before the customer is confirmed ({detail[1]})"))
        return "fail", ev, ""
    if checked is None:
        if call.cut_at is not None:
            return NO_EVIDENCE, [], "the call was cut before any check"
        first = call.agent_turn_indices()
        return "fail", ([_turn_ev(turns, first[0], "against", "never asks who is on the line")] if first else []), ""
    return "pass", ev, ""


def _result(call: Call, item: dict):
    ev = []
    for s in call.agent:
        done = _find(s.text, item["done"])
        if done:
            ev.append(_ev(s, "for", f"states what was done or found ({done})"))
        elif _find(s.text, item["bare_status"]):
            ev.append(_ev(s, "against", "only a bare status"))
    if any(e["counts"] == "for" for e in ev):
        return "pass", [e for e in ev if e["counts"] == "for"][:3], ""
    if call.cut_at is not None:
        return NO_EVIDENCE, ev + [_turn_ev(call.turns, call.cut_at, "no", "the call was cut here")], \
            "the call was cut before the result"
    if not ev:
        agent = call.agent_turn_indices()
        ev = [_turn_ev(call.turns, agent[-1], "against", "nothing done or found is stated")] if agent else []
    return "fail", ev, ""


def _next_step(call: Call, item: dict):
    ev = []
    for s in call.agent:
        if _find(s.text, item["this_call"]):  # "给您回个电话": this call, not the next contact
            continue
        channel, acts, when = (_find(s.text, item[k]) for k in ("channel", "bank_acts", "when"))
        if channel and acts and when:
            ev.append(_ev(s, "for", f"the bank's next contact: {channel}, {when}"))
        elif channel and acts:
            ev.append(_ev(s, "against", f"a contact ({channel}) with no bounded time"))
        elif acts and _find(s.text, item["vague_contact"]):
            ev.append(_ev(s, "against", "a contact promised with no channel" + (f" (time: {when})" if when else " or time")))
        elif _find(s.text, item["customer_only"]):
            ev.append(_ev(s, "against", "only the customer's own action"))
    if any(e["counts"] == "for" for e in ev):
        return "pass", [e for e in ev if e["counts"] == "for"], ""
    if call.cut_at is not None:
        return NO_EVIDENCE, ev, "the call was cut before any next step"
    agent_text = [s for s in call.agent]
    settled = [s for s in agent_text if _find(s.text, item["settled"])]
    if settled and not ev and not any(_find(s.text, item["pending"]) for s in agent_text):
        return "n/a", [_ev(settled[0], "no", "settled in the call: nothing left pending for the bank")], \
            "the matter was settled in the call"
    if not ev:
        agent = call.agent_turn_indices()
        ev = [_turn_ev(call.turns, agent[-1], "against", "no next contact from the bank")] if agent else []
    return "fail", ev, ""


def _no_blame(call: Call, item: dict):
    ev = []
    for s in call.agent:
        deflect = _find(s.text, item["deflect"])
        if deflect:
            ev.append(_ev(s, "against", f"disowns responsibility ({deflect})"))
            continue
        own = _find(s.text, item["own"])
        if own:
            ev.append(_ev(s, "for", f"apologises or owns it ({own})"))
    if any(e["counts"] == "against" for e in ev):
        return "fail", [e for e in ev if e["counts"] == "against"], ""
    if ev:
        return "pass", ev, ""
    return NO_EVIDENCE, [], "neither an apology nor a deflection"


def _deadline(call: Call, item: dict):
    next_item = next(i for i in callback_items() if i["kind"] == "next_step")
    ev = []
    for s in call.agent:
        when, outcome, sure = (_find(s.text, item[k]) for k in ("when", "outcome", "guarantee"))
        contact = _find(s.text, next_item["channel"]) and _find(s.text, next_item["bank_acts"])
        if sure and (when or outcome) and not (contact and not outcome):
            ev.append(_ev(s, "against", f"guarantees an outcome ({sure})"))
        elif when and outcome and not contact:
            hedge = _find(s.text, item["hedge"])
            ev.append(_ev(s, "for", f"outcome timing hedged ({hedge})") if hedge
                      else _ev(s, "against", f"outcome timing given flat ({when})"))
    if any(e["counts"] == "against" for e in ev):
        return "fail", [e for e in ev if e["counts"] == "against"], ""
    if ev:
        return "pass", ev, ""
    if call.cut_at is not None:
        asked = [s for s in call.sentences if s.role != Role.AGENT and _find(s.text, item["asks_when"])]
        if asked:
            return NO_EVIDENCE, [_ev(asked[-1], "no", "the customer asked when; the call ended before an answer")], \
                "the call was cut before the agent answered"
    return "n/a", [], "no outcome timing came up"


def _cue_item(call: Call, item: dict, what: str):
    ev = [_ev(s, "for", f"{what} ({hit})") for s in call.agent for hit in [_find(s.text, item["cues"])] if hit]
    if ev:
        return "pass", ev, ""
    if call.cut_at is not None:
        return NO_EVIDENCE, [_turn_ev(call.turns, call.cut_at, "no", "the call was cut here")], \
            "the call was cut before the closing"
    agent = call.agent_turn_indices()
    return "fail", ([_turn_ev(call.turns, agent[-1], "against", f"none: no {what}")] if agent else []), ""


JUDGES = {"intro": _intro, "verify": _verify, "result": _result, "next_step": _next_step, "no_blame": _no_blame,
          "deadline": _deadline,
          "thanks": lambda call, item: _cue_item(call, item, "thanks for the feedback or patience"),
          "confirm": lambda call, item: _cue_item(call, item, "asks about acceptance or other needs")}


def prefill_callback(turns: Sequence[TurnLike]) -> list[dict]:
    """The callback card of one call's turns (masked text, in time order): per item the value
    (pass / fail / n/a / no evidence), the evidence behind it and a note; each answer names its card."""
    turns = list(turns)
    away = not_reached(turns)
    call = _read(turns)
    card = []
    for item in callback_items():
        if away is not None:
            value, evidence, note = "n/a", [away], "the call did not reach the customer"
        else:
            value, evidence, note = JUDGES[item["kind"]](call, item)
        card.append({"item": item["id"], "label": item["label"], "prefill": value, "evidence": evidence,
                     "note": note, "card": CARD_ID})
    return card
