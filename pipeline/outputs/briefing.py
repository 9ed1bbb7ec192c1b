"""Pre-callback briefing: one customer across all their calls, so they never repeat themselves.

Built from what the store holds (calls, turns, summaries, escalation); written in one language
(the customer's latest call's, or the one asked for) from the translation table, as Markdown and
JSON. Every time is shown in the centre's zone (`Settings.timezone`): manifest times without a
zone are read in it. Every quoted text is masked.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from pipeline.analysis.facts import Deadline, Fact, extract_facts, fact_json, stored_utterance
from pipeline.analysis.i18n import language_of, mmss, name, text
from pipeline.analysis.redact import redact
from pipeline.analysis.summary import category_info
from pipeline.analysis.tokens import letters
from pipeline.config.settings import Settings
from pipeline.records import Direction, Flag, Role, Trend
from pipeline.store import REACHED_SECONDS, Store

APPROACH = ("approach.acknowledge", "approach.apologise", "approach.no_deadline", "approach.explain")
SHOWN = "%Y-%m-%d %H:%M"  # how a handler sees a time (always in the centre's zone)


@dataclass
class Briefing:
    customer_id: str
    language: str
    generated_at: str  # ISO, centre zone: the moment the briefing was read (passed/left is as of this)
    timezone: str
    n_calls: int
    n_complaints: int
    case_ids: list[str]
    agents: list[str]
    first_contact: str | None  # ISO with offset, centre zone
    last_contact: str | None
    minutes_since_last_complaint: float | None
    callback_target_minutes: int
    callback_overdue: bool | None
    escalation_level: float | None
    escalation_trend: str | None  # across calls; None with a single call
    latest_call_trend: str | None  # within the latest call
    flags: list[str]
    facts: list[dict]  # {kind, text, value, call_id, time, said_at, label}
    deadlines: list[dict]  # {text, due, status, hours_left, call_id, time}
    demands: list[dict]  # merged across calls, newest first, de-duplicated
    promises: list[dict]
    calls: list[dict]
    moments: list[dict]
    latest_plot: str | None  # relative to the database's folder
    approach: list[str] = field(default_factory=list)
    approach_steps: list[dict] = field(default_factory=list)  # {key, values[, category][, quote]}: `approach_text`
    # The authorities and channels the customer's threats named (threat_sources.json ids), first said first.
    sources: list[str] = field(default_factory=list)
    pending_calls: int = 0  # the customer's newer calls a running batch is processing now (not in here yet)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1, default=str)


class NoCalls(LookupError):
    pass


def customer_key(customer_id: str) -> str:
    """Customer ids match case-insensitively and trimmed: `brief c1001 ` finds C1001."""
    return customer_id.strip().casefold()


def _same(a: str, b: str) -> bool:
    """Near-duplicate demands (the same thing said again) by character/word overlap."""
    ta, tb = letters(a), letters(b)
    return bool(ta and tb) and len(ta & tb) / min(len(ta), len(tb)) >= 0.7


def centre_time(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    """A stored time in the centre's zone: naive times (the manifest's, without a zone) are
    already centre time; aware ones are converted."""
    if value is None or value != value:  # None or NaT
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)


def reading_time(now: datetime | None, tz: ZoneInfo) -> datetime:
    """When the briefing is read, in the centre's zone; a naive `now` is UTC (like store.utcnow)."""
    if now is None:
        return datetime.now(tz)
    return (now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now).astimezone(tz)


def deadline_json(d: Deadline, now: datetime, tz: ZoneInfo) -> dict:
    status, hours = d.status(now)
    return {"text": d.text, "due": d.due.astimezone(tz).isoformat() if d.due else None, "status": status,
            "hours_left": hours, "call_id": d.call_id, "time": d.time, "role": d.role}


def _keep_facts(facts: list[Fact]) -> list[Fact]:
    """One fact per amount, consequence, product or date across the calls (the first said,
    except that a consequence with a date replaces one without)."""
    kept: dict[tuple, Fact] = {}
    for f in facts:
        v = f.value
        key = (f.kind, v.get("amount"), v.get("currency"), v.get("id"), None if f.kind == "consequence" else v.get("start"))
        if key not in kept or (f.kind == "consequence" and "start" in v and "start" not in kept[key].value):
            kept[key] = f
    return list(kept.values())


def facts_by_sentence(facts: list[dict]) -> list[dict]:
    """The "told us" list: each sentence the customer said once, with every fact found in it
    ("amount: 5,000 CNY; date: 3 Mar"), in the order first said. Deadlines have their own list."""
    grouped: dict[tuple, dict] = {}
    for f in facts:
        if f["kind"] == "deadline":
            continue
        key = (f["call_id"], f["time"], f["text"])
        row = grouped.setdefault(key, {"text": f["text"], "call_id": f["call_id"], "time": f["time"],
                                       "said_at": f.get("said_at"), "facts": []})
        row["facts"].append({"kind": f["kind"], "label": f["label"]})
    return list(grouped.values())


def plot_link(plot_path: str | None, db_folder: Path) -> str | None:
    """The plot relative to the database's folder (the store writes it to <db folder>/plots/)."""
    if not plot_path:
        return None
    path, folder = Path(plot_path).resolve(), db_folder.resolve()
    if path.is_relative_to(folder):
        return path.relative_to(folder).as_posix()
    return f"plots/{path.name}"  # a database copied elsewhere: its plots sit beside it


def evidence_bits(signals: dict | None, language: str) -> str:
    """What raised a turn's score, in the briefing's language, from its stored signals
    (turns.signals): "pitch +2.4 SD (+4.3 semitones); words: ombudsman"; "" when nothing did."""
    s = signals or {}
    bits = []
    if s.get("z_pitch", 0) >= 1:
        bits.append(text("evidence.pitch", language, z=f"{s['z_pitch']:+.1f}", st=f"{s.get('pitch_delta_st', 0):+.1f}"))
    if s.get("z_loudness", 0) >= 1:
        bits.append(text("evidence.loudness", language, db=f"{s.get('loudness_delta_db', 0):+.0f}", z=f"{s['z_loudness']:+.1f}"))
    if s.get("z_tilt", 0) >= 1:
        bits.append(text("evidence.tilt", language, z=f"{s['z_tilt']:+.1f}"))
    if s.get("z_rate", 0) >= 1:
        bits.append(text("evidence.rate", language, z=f"{s['z_rate']:+.1f}"))
    if s.get("terms"):
        bits.append(text("evidence.words", language, terms=text("punct.comma", language).join(s["terms"])))
    if s.get("interrupted"):
        bits.append(text("evidence.interrupted", language))
    if s.get("repeat_of") is not None:
        bits.append(text("evidence.repeat", language))
    return text("evidence.separator", language).join(bits)


def turn_at(turns: list[dict], time: float, role: str) -> dict | None:
    """The turn of `role` that holds `time` (its start to its end, 10 ms of slack)."""
    return next((t for t in turns if t["role"] == role and t["start"] - 0.01 <= time <= t["end"] + 0.01), None)


MOMENTS_SHOWN = 5
SHOWN_SIGNALS = ("z_pitch", "pitch_delta_st", "z_loudness", "loudness_delta_db", "z_tilt", "z_rate", "interrupted", "repeat_of")


def choose_moments(rows: list[dict], by_call: dict[str, list[dict]], policy, language: str) -> list[dict]:
    """The customer's moments worth hearing, across their calls: a turn of the party the call was
    scored on (its evidence's role) that raised a reported flag (a threat first), rose by the
    policy's within-call trend rule over the party's previous turn (by `call_change`, to at least
    `call_level`), repeated a demand, or was the call's peak at complaint level; and that scored
    above the call's own calm level (the lower quartile of the party's turns): so a calm opening
    is never "worth hearing", and what a moment says matches its score.
    Each carries its reasons (codes, for the pages' own language) and a headline and detail in
    the briefing's language."""
    out = []
    for r in rows:
        party = {ev["role"] for ev in json.loads(r["evidence"] or "[]")} or {Role.CUSTOMER}
        mine = [t for t in by_call.get(r["call_id"], []) if t["role"] in party and t.get("score") is not None]
        if not mine:
            continue
        calm = float(np.percentile([t["score"] for t in mine], 25))
        peak = max(mine, key=lambda t: t["score"])
        previous = None
        for t in mine:
            sig = json.loads(t["signals"]) if t.get("signals") else {}
            reasons = [str(f) for f in policy.reported_flags if f in sig.get("categories", [])]
            if (previous is not None and t["score"] - previous >= policy.trend.call_change
                    and t["score"] >= policy.trend.call_level):
                reasons.append("rise")
            if sig.get("repeat_of") is not None:
                reasons.append("repeat")
            if t is peak and t["score"] >= policy.levels.complaint:
                reasons.append("peak")
            previous = t["score"]
            if not reasons or t["score"] <= calm:
                continue
            out.append({"call_id": r["call_id"], "time": round(t["start"], 2), "end": round(t["end"], 2),
                        "at": mmss(t["start"]), "score": t["score"], "calm": round(calm, 1), "role": t["role"],
                        "reasons": reasons, "quote": redact(t["text"]),
                        "headline": text("evidence.separator", language).join(text(f"moment.{x}", language) for x in reasons),
                        "detail": redact(evidence_bits(sig, language)),
                        # for readers of another language: the voice evidence as numbers, the words said apart
                        "signals": {k: v for k, v in sig.items() if k in SHOWN_SIGNALS}, "terms": sig.get("terms", [])})
    flagged = {str(f) for f in policy.reported_flags}
    out.sort(key=lambda m: (-sum(x in flagged for x in m["reasons"]), -m["score"]))
    return out[:MOMENTS_SHOWN]


def build_briefing(store: Store, customer_id: str, now: datetime | None = None, settings: Settings | None = None,
                   language: str | None = None, pending: int = 0) -> Briefing:
    """`pending`: the customer's newer calls a running batch is processing now (said in the briefing)."""
    settings = settings or Settings()
    tz = settings.tz
    now = reading_time(now, tz)
    rows = store.customer_history(customer_key(customer_id))
    if not rows:
        raise NoCalls(f"no processed calls for customer {customer_id.strip()!r}")
    for r in rows:
        r["started_at"] = centre_time(r["started_at"], tz)
    latest = rows[-1]
    language = language_of(language or latest["language"])
    scores = [r["call_score"] for r in rows if r["call_score"] is not None]
    # A complaint call: escalated to the policy's complaint level, or flagged at all; never the bank's
    # callback (as on the worklist, pipeline/store/callbacks.py). A repeat: more than one complaint
    # call, or a complaint and another call the customer made (not one the bank placed).
    complaint_level = settings.policy.levels.complaint
    complaints = [r for r in rows if r["direction"] != Direction.CALLBACK
                  and ((r["call_score"] or 0) >= complaint_level or json.loads(r["flags"] or "[]"))]
    customer_made = [r for r in rows if (r["direction"] or Direction.INBOUND) == Direction.INBOUND]
    flags = sorted({f for r in rows for f in json.loads(r["flags"] or "[]")})
    if len(complaints) > 1 or (complaints and len(customer_made) > 1):
        flags.append(Flag.REPEAT_COMPLAINT)
    sources = list(dict.fromkeys(s["source"] for r in rows for s in json.loads(r["sources"] or "[]")))
    last_complaint = max((r["started_at"] for r in complaints if r["started_at"] is not None), default=None)
    since = (now - last_complaint).total_seconds() / 60 if last_complaint is not None else None
    called_back = last_complaint is not None and any(_answers(r, complaints[-1], last_complaint) for r in rows)
    trend = None  # a trend across calls needs more than one call
    if len(scores) > 1:
        change, rule = scores[-1] - scores[0], settings.policy.trend.across_calls_change
        trend = Trend.RISING if change > rule else Trend.FALLING if change < -rule else Trend.FLAT

    turns = store.masked_turns([r["call_id"] for r in rows])
    by_call: dict[str, list[dict]] = {}
    for t in turns:
        by_call.setdefault(t["call_id"], []).append(t)
    facts: list[Fact] = []
    deadlines: list[Deadline] = []
    for r in rows:
        said = [stored_utterance(t) for t in by_call.get(r["call_id"], [])]
        f, d = extract_facts(r["call_id"], said, r["language"] or language, r["started_at"])
        facts += f
        deadlines += d

    demands: list[dict] = []
    for r in reversed(rows):  # newest call first
        for d in sorted(json.loads(r["demands"] or "[]"), key=lambda q: -q["time"]):
            if not any(_same(d["text"], kept["text"]) for kept in demands):
                demands.append({"call_id": r["call_id"], "time": d["time"], "text": redact(d["text"])})
    promises = []
    later_unhappy = {r["call_id"]: any(Flag.REPEAT_DEMAND in json.loads(x["flags"] or "[]") or (x["call_score"] or 0) >= complaint_level
                                       for x in rows[i + 1:]) for i, r in enumerate(rows)}
    for r in rows:
        promised = [d for d in deadlines if d.call_id == r["call_id"] and d.role == Role.AGENT]
        for p in json.loads(r["promises"] or "[]"):
            match = next((d for d in promised if abs(d.time - p["time"]) < 0.5), None)
            due = deadline_json(match, now, tz) if match else None
            promises.append({"call_id": r["call_id"], "time": p["time"], "text": redact(p["text"]),
                             "status": "not_kept" if later_unhappy[r["call_id"]] else "unknown",
                             "deadline": any(abs(p["time"] - d["time"]) < 1e-6 for d in json.loads(r["deadline_promises"] or "[]")),
                             "due": due["due"] if due else None, "due_status": due["status"] if due else None,
                             "channel": match.channel if match else None})
        # A follow-up promised by a channel and a time is a promise even where the summary missed it.
        for d in promised:
            if d.channel and not any(abs(d.time - p["time"]) < 0.5 for p in json.loads(r["promises"] or "[]")):
                due = deadline_json(d, now, tz)
                promises.append({"call_id": r["call_id"], "time": d.time, "text": d.text,
                                 "status": "not_kept" if later_unhappy[r["call_id"]] else "unknown", "deadline": False,
                                 "due": due["due"], "due_status": due["status"], "channel": d.channel})
    moments = choose_moments(rows, by_call, settings.policy, language)

    customer_deadlines = sorted({(d.due, d.call_id, d.time): d for d in deadlines if d.role == Role.CUSTOMER}.values(),
                                key=lambda d: (d.due is None, d.due or now))
    deadline_rows = [deadline_json(d, now, tz) for d in customer_deadlines]
    fact_rows = []
    for f in _keep_facts(facts):
        row = fact_json(f)
        row["label"] = fact_label(row, language, tz)
        fact_rows.append(row)

    # The approach as steps (a translation key and its values) for readers of another language
    # (the web app says them in each reader's), and as sentences in the briefing's language.
    steps = [{"key": key, "values": {"n": len(rows)}, "category": latest["category"] or "other"} for key in APPROACH]
    for d in deadline_rows:
        if d["due"]:
            due = datetime.fromisoformat(d["due"]).strftime(SHOWN)
            steps.append({"key": "approach.deadline_passed", "values": {"due": due}} if d["status"] == "passed"
                         else {"key": "approach.deadline_open", "values": {"due": due, "hours": d["hours_left"]}})
    for p in promises:
        if p["deadline"]:
            steps.append({"key": "label.deadline_warning", "values": {"quote": f"{p['call_id']} {mmss(p['time'])}"},
                          "quote": p["text"]})
    approach = [approach_text(step, language, with_quote=True) for step in steps]
    call_list = [{"call_id": r["call_id"], "started_at": _iso(r["started_at"]), "agent_id": r["agent_id"],
                  "case_id": r["case_id"], "direction": r["direction"], "complaint_source": r["complaint_source"],
                  "category": r["category"], "outcome": r["outcome"],
                  "escalation": r["call_score"], "summary": redact(r["summary"])} for r in reversed(rows)]
    return Briefing(
        customer_id=latest["customer_id"], language=language, generated_at=now.isoformat(), timezone=settings.timezone,
        n_calls=len(rows), n_complaints=len(complaints),
        case_ids=sorted({r["case_id"] for r in rows if r["case_id"]}),
        agents=sorted({r["agent_id"] for r in rows if r["agent_id"]}),
        first_contact=_iso(rows[0]["started_at"]), last_contact=_iso(latest["started_at"]),
        minutes_since_last_complaint=round(since, 1) if since is not None else None,
        callback_target_minutes=settings.callback_target_minutes,
        callback_overdue=since > settings.callback_target_minutes and not called_back if since is not None else None,
        escalation_level=latest["call_score"], escalation_trend=trend, latest_call_trend=latest["trend"],
        flags=flags, facts=fact_rows, deadlines=deadline_rows, demands=demands, promises=promises, calls=call_list,
        moments=moments, latest_plot=plot_link(latest["plot_path"], store.path.parent), approach=approach,
        approach_steps=steps,
        sources=sources, pending_calls=pending,
    )


def _answers(call: dict, complaint: dict, at: datetime) -> bool:
    """A recorded callback call after the complaint, of its case (or either unknown), that reached
    the customer (they spoke in it, as the worklist counts it): the callback clock is closed."""
    same_case = not call["case_id"] or not complaint["case_id"] or call["case_id"] == complaint["case_id"]
    return (call["direction"] == Direction.CALLBACK and same_case and call["started_at"] is not None
            and call["started_at"] >= at and (call["customer_talk_s"] or 0) >= REACHED_SECONDS)


def approach_text(step: dict, language: str, with_quote: bool = False) -> str:
    """One step of the approach in `language`: its translation, the category's prepared explanation
    filled in; `with_quote`: the promise it warns about quoted inside (else shown beside it)."""
    values = dict(step.get("values") or {})
    if "category" in step:
        values["explain"] = category_info(step["category"])["explain"][language_of(language)]
    if with_quote and step.get("quote"):
        values["quote"] = f"{values.get('quote', '')} {step['quote']}".strip()
    return text(step["key"], language, **values)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _shown(iso: str | None, tz: ZoneInfo) -> str:
    return datetime.fromisoformat(iso).astimezone(tz).strftime(SHOWN) if iso else "?"


def fact_label(fact: dict, language: str, tz: ZoneInfo) -> str:
    """What a fact says, in the briefing's language: "3000 GBP to the landlord", "eviction"."""
    v = fact["value"]
    if fact["kind"] == "amount":
        amount = f"{v['amount']:,}" if isinstance(v["amount"], int) else str(v["amount"])
        currency = name("currency", v["currency"], language)
        if v.get("payee"):
            return text("fact_text.amount_to", language, amount=amount, currency=currency,
                        payee=name("payee", v["payee"], language))
        return text("fact_text.amount", language, amount=amount, currency=currency)
    if fact["kind"] in ("consequence", "product"):
        label = name(fact["kind"], v["id"], language)
        return label + text("punct.paren", language, inner=_period(v, language, tz)) if v.get("start") else label
    return _period(v, language, tz)


def _period(v: dict, language: str, tz: ZoneInfo) -> str:
    start, end = _shown(v.get("start"), tz), _shown(v.get("end"), tz)
    if start == end:
        return start
    if start.endswith("00:00") and end.endswith("23:59"):  # whole days
        if start[:10] == end[:10]:
            return start[:10]
        start, end = start[:10], end[:10]
    return text("fact_text.period", language, start=start, end=end)


def to_markdown(b: Briefing) -> str:
    lang = b.language
    tz = ZoneInfo(b.timezone)
    none = text("label.none", lang)
    colon, sep, comma = text("punct.colon", lang), text("punct.sep", lang), text("punct.comma", lang)

    def par(inner: str) -> str:
        return text("punct.paren", lang, inner=inner)

    def where(call_id: str, at: float, said_at: str | None = None) -> str:
        return f"{call_id} {mmss(at)}" + (f"{comma}{_shown(said_at, tz)}" if said_at else "")

    if b.minutes_since_last_complaint is None:
        since = none
    else:
        state = text("label.overdue" if b.callback_overdue else "label.within", lang)
        since = (text("label.minutes", lang, n=f"{b.minutes_since_last_complaint:.0f}")
                 + par(f"{text('label.target', lang, n=b.callback_target_minutes)}{colon}{state}"))
    trend = name("trend", b.escalation_trend, lang) if b.escalation_trend else text("label.single_call", lang)
    level = b.escalation_level if b.escalation_level is not None else none
    lines = [f"# {text('label.title', lang)}{colon}{text('label.customer', lang)} {b.customer_id}", "",
             f"- {text('label.case', lang)}{colon}{comma.join(b.case_ids) or none}{sep}"
             f"{text('label.agents', lang)}{colon}{comma.join(b.agents) or none}",
             f"- {text('label.calls', lang)}{colon}{b.n_calls}{sep}{text('label.complaints', lang)}{colon}{b.n_complaints}"
             + (f"{sep}{text('label.pending', lang, n=b.pending_calls)}" if b.pending_calls else ""),
             f"- {text('label.first', lang)}{colon}{_shown(b.first_contact, tz)}{sep}"
             f"{text('label.last', lang)}{colon}{_shown(b.last_contact, tz)}{par(b.timezone)}",
             f"- {text('label.since', lang)}{colon}{since}",
             f"- {text('label.level', lang)}{colon}{level}/100{sep}{text('label.trend', lang)}{colon}{trend}{sep}"
             f"{text('label.call_trend', lang)}{colon}{name('trend', b.latest_call_trend, lang)}",
             f"- {text('label.flags', lang)}{colon}{comma.join(name('flag', f, lang) for f in b.flags) or none}",
             *([f"- {text('label.sources', lang)}{colon}{comma.join(name('source', x, lang) for x in b.sources)}"]
               if b.sources else []),
             f"- {text('label.read_at', lang, now=_shown(b.generated_at, tz))}", "",
             f"## {text('label.told', lang)}", "", f"### {text('label.deadlines', lang)}"]
    for d in b.deadlines:
        if d["status"] == "unknown":
            state = text("status.unknown", lang)
        else:
            hours = f"{abs(d['hours_left']):.1f}"
            state = text(f"status.{d['status']}", lang) + comma + text(
                "status.ago" if d["status"] == "passed" else "status.left", lang, h=hours)
        lines.append(f"- **{text('label.due', lang, due=_shown(d['due'], tz))}**{par(state)}{colon}"
                     f"{d['text']}{par(where(d['call_id'], d['time']))}")
    if not b.deadlines:
        lines.append(f"- {none}")
    lines += ["", f"### {text('label.facts', lang)}"]
    lines += [f"- {sep.join(name('fact', x['kind'], lang) + colon + x['label'] for x in s['facts'])}{colon}{s['text']}"
              f"{par(where(s['call_id'], s['time'], s['said_at']))}"
              for s in facts_by_sentence(b.facts)] or [f"- {none}"]
    lines += ["", f"### {text('label.demands', lang)}"]
    lines += [f"- {d['text']}{par(where(d['call_id'], d['time']))}" for d in b.demands] or [f"- {none}"]
    lines += ["", f"## {text('label.promises', lang)}"]
    for p in b.promises:
        notes = [where(p["call_id"], p["time"]),
                 text("label.kept", lang) if p["status"] == "not_kept" else text("label.unknown", lang)]
        if p["deadline"]:
            notes.append(text("label.deadline", lang))
        if p.get("due"):
            notes.append(text("label.due", lang, due=_shown(p["due"], tz)) + par(text("status." + p["due_status"], lang)))
        lines.append(f"- {p['text']}{par(sep.join(notes))}")
    if not b.promises:
        lines.append(f"- {none}")
    lines += ["", f"## {text('label.approach', lang)}"]
    lines += [f"{i}. {a}" for i, a in enumerate(b.approach, 1)]
    lines += ["", f"## {text('label.moments', lang)}"]
    lines += [f"- {m['call_id']} @ {m['at']}{par(format(m['score'], '.0f') + '/100')}{colon}{m['headline']}{colon}"
              f"{m['quote']}{par(m['detail']) if m['detail'] else ''}"
              for m in b.moments] or [f"- {none}"]
    if b.latest_plot:
        lines += ["", f"[{text('label.plot', lang)}]({b.latest_plot})"]
    lines += ["", f"## {text('label.history', lang)}"]
    for c in b.calls:
        bank_called = [name("direction", c["direction"], lang)] if c.get("direction") not in (None, Direction.INBOUND) else []
        about = comma.join([*bank_called, f"{text('label.case', lang)} {c['case_id'] or none}",
                            f"{name('role', 'agent', lang)} {c['agent_id'] or none}",
                            name("category", c["category"], lang), name("outcome", c["outcome"], lang),
                            f"{c['escalation']}/100"])
        lines.append(f"- **{c['call_id']}** {_shown(c['started_at'], tz)}{par(about)}{colon}{c['summary']}")
    return "\n".join(lines) + "\n"


def write_briefing(store: Store, customer_id: str, now: datetime | None = None,
                   settings: Settings | None = None, language: str | None = None, pending: int = 0) -> tuple[Briefing, str]:
    """Build, render and store one customer's briefing; returns (briefing, markdown)."""
    with store.session():  # one connection for the reads and the write: each open costs ~15 ms
        briefing = build_briefing(store, customer_id, now, settings, language, pending)
        markdown = to_markdown(briefing)
        store.write_briefing(briefing.customer_id, briefing.language, briefing.n_calls, markdown, briefing.to_json())
    return briefing, markdown
