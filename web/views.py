"""What a page and its API twin show, gathered once: each function reads through web.store on
one read-only connection (or writes through pipeline.store) and returns plain data."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from fastapi import Request

from pipeline.analysis.i18n import text as translated
from pipeline.outputs.briefing import approach_text, evidence_bits, fact_label, facts_by_sentence
from pipeline.outputs.callback_card import callback_items
from pipeline.outputs.qa import (
    QAError,
    card_items,
    card_of,
    prefill_agreement,
    record_review,
    review_against_prefill,
    scorecard_items,
)
from pipeline.outputs.redacted_audio import CannotRedact, NoSuchCall, cache_folder, redacted_audio

from . import search
from . import store as reads
from .context import CALLBACK_OUTCOMES, Refused, Viewer, WebContext, shown
from .marks import Marker


def worklist(ctx: WebContext) -> list[dict]:
    with ctx.store.reading() as conn:
        return reads.worklist(conn, ctx.tz, ctx.target, ctx.now_local(), ctx.settings.policy.levels)


def briefing(ctx: WebContext, customer_id: str, lang: str | None = None) -> dict:
    """`lang`: the reader's language, for a page: the facts' and moments' names, and each quote
    marked (unsure words, corrections); the stored briefing's sentences stay in the language it was
    written in. None keeps everything as stored (the API)."""
    with ctx.store.reading() as conn:
        calls = reads.customer_calls(conn, customer_id)
        if not calls:
            raise Refused(404, "no_customer_calls", customer=shown(customer_id))
        cid = reads.stored_customer_id(conn, calls[0]["call_id"])
        brief = reads.latest_briefings(conn, [cid]).get(cid)
        latest = calls[0]
        turns = reads.latest_call_turns(conn, latest["call_id"])
        callbacks = reads.callbacks_of(conn, cid)
        waiting = reads.worklist(conn, ctx.tz, ctx.target, ctx.now_local(), ctx.settings.policy.levels, cid)
        marking = reads.marking_rows(conn, [c["call_id"] for c in calls]) if lang else None
    for t in turns:
        t["flags"] = [c for c in reads.parse_json(t.pop("signals"), {}).get("categories", [])
                      if c in ctx.settings.policy.reported_flags]
    for c in calls:
        c["flags"] = reads.parse_json(c["flags"], [])
    deadlines = reads.deadlines_view(brief or {}, ctx.tz, ctx.now_local())
    if brief and lang:
        brief = {**brief, "facts": [relabelled(f, lang, ctx) for f in brief.get("facts") or []]}
    said = said_by_sentence(brief or {}, deadlines, [c["call_id"] for c in reversed(calls)])
    moments = moments_view(said, (brief or {}).get("moments") or [], lang)
    # The approach in the reader's language where the briefing stored its steps (else as written).
    stored = (brief or {}).get("approach") or []
    steps = (brief or {}).get("approach_steps")
    approach = ([{"text": approach_text(step, lang), "quote": step.get("quote")} for step in steps] if steps and lang
                else [{"text": a, "written_in": (brief or {}).get("language")} for a in stored])
    if marking is not None:
        marker = Marker(*marking, {c["call_id"]: c.get("language") for c in calls}, lang)
        for r in said + deadlines:
            r["marked"] = marker.quote(r.get("call_id"), r.get("time"), r["text"])
        for m in moments:
            m["marked"] = marker.quote(m["call_id"], m["time"], m["quote"])
    return {"moments": moments, "approach": approach, "customer_id": cid, "briefing": brief, "calls": calls, "latest": latest, "turns": turns,
            "callbacks": callbacks, "deadlines": deadlines, "waiting": waiting[0] if waiting else None,
            "demands": [r for r in said if r["demand"]], "told": [r for r in said if not r["demand"]]}


def moments_view(said: list[dict], moments: list[dict], lang: str | None) -> list[dict]:
    """The briefing's moments worth hearing, each quote once: a moment whose turn holds a sentence
    already listed (a demand, a deadline, something told) tags that sentence with its reasons and
    is listed without its quote (`quoted_above`). Reasons are named in the reader's
    language. Moments of a briefing stored before they had reasons are left out (the nightly
    refresh rewrites it)."""
    kept = []
    for m in moments:
        if "reasons" not in m:
            continue
        m = {**m, "headline": translated("evidence.separator", lang).join(
            translated(f"moment.{x}", lang) for x in m["reasons"]) if lang else m["headline"]}
        if lang and "signals" in m:  # the evidence in the reader's language, the words said shown apart
            m["detail"], m["detail_in"] = evidence_bits(m["signals"], lang), lang
        holding = [r for r in said if r["call_id"] == m["call_id"] and r["text"] and r["text"] in m["quote"]
                   and m["time"] - 0.5 <= (r["time"] or 0) <= m["end"] + 0.5]
        for r in holding:
            r.setdefault("moments", []).extend(translated(f"moment.{x}", lang) if lang else x for x in m["reasons"])
        kept.append({**m, "quoted_above": bool(holding)})
    return kept


def relabelled(fact: dict, lang: str, ctx: WebContext) -> dict:
    """A stored fact named in `lang` ("3000 GBP to the landlord" / "3000 英镑，付给房东"), from its
    value; as stored when the briefing predates fact values."""
    try:
        return {**fact, "label": fact_label(fact, lang, ctx.tz)}
    except (KeyError, TypeError):
        return fact


def said_by_sentence(brief: dict, deadlines: list[dict], call_order: list[str]) -> list[dict]:
    """Each customer sentence the briefing quotes, once, with every reason it matters: a demand,
    a deadline (its time, passed or open), the facts found in it. Demands in the briefing's order
    (most pressing first), the rest in the order said."""
    rows: dict[tuple, dict] = {}

    def row(call_id: str | None, time: float | None, text: str) -> dict:
        return rows.setdefault((call_id, text), {"call_id": call_id, "time": time or 0.0, "text": text,
                                                 "demand": None, "deadline": None, "facts": []})
    for rank, d in enumerate(brief.get("demands") or []):
        row(d["call_id"], d["time"], d["text"])["demand"] = rank + 1
    for d in deadlines:
        row(d.get("call_id"), d.get("time"), d["text"])["deadline"] = d
    for s in facts_by_sentence(brief.get("facts") or []):
        row(s["call_id"], s["time"], s["text"])["facts"] += s["facts"]
    said = {c: k for k, c in enumerate(call_order)}
    return sorted(rows.values(), key=lambda r: (r["demand"] or 10**6, said.get(r["call_id"], -1), r["time"]))


def call(ctx: WebContext, call_id: str, lang: str | None = None) -> dict:
    """`lang`: the reader's language, for a page: each turn's text is marked (unsure words, corrections)."""
    with ctx.store.reading() as conn:
        found = reads.call_detail(conn, call_id, ctx.settings.policy.reported_flags)
        marking = reads.marking_rows(conn, [call_id]) if found and lang else None
    if not found:
        raise Refused(404, "no_call", call=shown(call_id))
    if marking is not None:
        marker = Marker(*marking, {call_id: found.get("language")}, lang)
        for k, t in enumerate(found["turns"]):
            t["marked"] = marker.turn(call_id, k)
    return found


def search_params(request: Request) -> dict:
    q = request.query_params
    parse = lambda v: datetime.fromisoformat(v) if v else None  # noqa: E731
    try:
        date_from, date_to = parse(q.get("date_from")), parse(q.get("date_to"))
        if date_to and len(q.get("date_to", "")) <= 10:
            date_to += timedelta(days=1)  # a date "to" includes that whole day
        min_esc = float(q["min_escalation"]) if q.get("min_escalation") else None
    except ValueError:  # the message names the fields, never repeats what was typed
        raise Refused(422, "search_filter") from None
    return {"words": q.get("q", ""), "customer": q.get("customer", ""), "agent": q.get("agent", ""),
            "case": q.get("case", ""), "flag": q.get("flag", ""), "category": q.get("category", ""),
            "date_from": date_from, "date_to": date_to, "min_escalation": min_esc}


def search_hits(ctx: WebContext, params: dict) -> list[dict]:
    if params["words"].strip():
        search.refresh_index(ctx.store)
    with ctx.store.reading() as conn:
        hits = reads.search(conn, **params)
    for h in hits:
        h["flags"] = reads.parse_json(h["flags"], [])
    return hits


def categories(ctx: WebContext) -> list[str]:
    with ctx.store.reading() as conn:
        return reads.categories(conn)


def qa_card(ctx: WebContext, sample_id: str, call_id: str, reviewer: str) -> dict:
    sampled = ctx.store.qa_sampled(sample_id, call_id)
    if sampled is None:
        raise Refused(404, "not_in_sample", call=shown(call_id), sample=shown(sample_id))
    review = ctx.store.qa_review_of(sample_id, call_id, reviewer)
    prefill = {c["item"]: c for c in reads.parse_json(sampled["scorecard"], [])}
    answers = reads.parse_json(review["scores"], {}) if review else {}
    card = card_of(sampled)  # a callback call is reviewed on the callback card it was prefilled on
    items = [{**i, "prefill": prefill.get(i["id"], {}).get("prefill"),
              "evidence": prefill.get(i["id"], {}).get("evidence", []),
              "answer": answers.get(i["id"]) or prefill.get(i["id"], {}).get("prefill")} for i in card_items(card)]
    return {"sample": sampled, "items": items, "review": review, "card": card}


def qa_card_items(ctx: WebContext, sample_id: str, call_id: str) -> list[dict]:
    """The items of the card a sampled call is reviewed on (none when it is not in the sample)."""
    sampled = ctx.store.qa_sampled(sample_id, call_id)
    return card_items(card_of(sampled)) if sampled else []


def store_review(ctx: WebContext, request: Request, user: Viewer, sample_id: str, call_id: str, scores: dict,
                 comment: str) -> None:
    """One review per reviewer per call: a second submission replaces the first. The scorecard's
    one validator (pipeline.outputs.qa) refuses what the CLI refuses, as a ValueError."""
    if ctx.store.qa_sampled(sample_id, call_id) is None:
        raise Refused(404, "not_in_sample", call=shown(call_id), sample=shown(sample_id))
    try:
        record_review(ctx.store, sample_id, call_id, user.username, scores, comment)
    except QAError as exc:
        raise ValueError(str(exc)) from None
    ctx.audit(request, user.username, user.role, "qa_review", call_id, sample_id)


def qa_next(ctx: WebContext, sample_id: str, reviewer: str, after: str) -> str | None:
    with ctx.store.reading() as conn:
        return reads.qa_next(conn, sample_id, reviewer, after)


def qa_progress(ctx: WebContext, sample_id: str, reviewer: str, call_id: str) -> dict:
    """Where the reviewer is in the sample: this call's place, how many calls, how many they reviewed."""
    with ctx.store.reading() as conn:
        return reads.qa_progress(conn, sample_id, reviewer, call_id)


def qa_overview(ctx: WebContext, lang: str, weeks: int = 8) -> dict:
    """The dashboard's QA part: the backlog per sample (waiting, overdue after the policy's review
    days), and how often reviewers kept the prefill, per item, overall and per ISO week (the last
    `weeks` weeks with reviews)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with ctx.store.reading() as conn:
        backlog = reads.qa_backlog(conn, now, ctx.settings.policy.qa_review_days)
        pairs = reads.qa_pairs(conn)

    def week(at: datetime) -> str:
        year, number, _ = at.replace(tzinfo=timezone.utc).astimezone(ctx.tz).isocalendar()
        return f"{year}-W{number:02d}"
    agreement = prefill_agreement(pairs, week)
    periods = sorted(k for k in agreement if k != "all")[-weeks:]
    items = [i["id"] for i in scorecard_items() + callback_items() if i["id"] in agreement.get("all", {})]
    return {"backlog": backlog, "review_days": ctx.settings.policy.qa_review_days, "agreement": agreement,
            "weeks": periods, "item_ids": items, "waiting": sum(b["waiting"] for b in backlog),
            "overdue": sum(b["overdue"] for b in backlog)}


def rollup(ctx: WebContext) -> list[dict]:
    with ctx.store.reading() as conn:
        return reads.qa_rollup(conn, scorecard_items())


def dashboard(ctx: WebContext, group: str) -> list[dict]:
    if group not in reads.GROUPS:
        raise Refused(422, "group", groups=", ".join(reads.GROUPS))
    with ctx.store.reading() as conn:
        return reads.dashboard(conn, group, ctx.tz, ctx.target, levels=ctx.settings.policy.levels)


def mark_callback(ctx: WebContext, request: Request, user: Viewer, customer_id: str, outcome: str, note: str) -> None:
    if outcome not in CALLBACK_OUTCOMES:
        raise Refused(422, "outcome", outcomes=", ".join(CALLBACK_OUTCOMES))
    if ctx.store.record_callback(customer_id, user.username, outcome, note[:2000]) is None:
        raise Refused(404, "no_customer", customer=shown(customer_id))
    ctx.audit(request, user.username, user.role, "callback_done", customer_id, outcome)


def audio_path(ctx: WebContext, call_id: str) -> Path:
    with ctx.store.reading() as conn:
        found = reads.recording_paths(conn, call_id)
        purged = reads.audio_purged_at(conn, call_id) if not found else None
    if purged is not None:
        raise Refused(410, "purged", call=shown(call_id), date=f"{purged:%Y-%m-%d}")
    if not found:
        raise Refused(404, "no_recording", call=shown(call_id))
    paths = [p if p.is_absolute() else ctx.db_path.parent / p for p in map(Path, found)]
    for path in paths:  # the file may have been renamed or moved since: any name of the same audio
        if path.is_file():
            return path
    raise Refused(404, "recording_moved", call=shown(call_id), file=paths[0].name)


def redacted(ctx: WebContext, call_id: str) -> bytes:
    """The call's audio as people hear it: every masked number a tone (made on first play, then
    reused). A call that cannot be redacted is not played: 409 with the reason."""
    try:
        data, _ = redacted_audio(ctx.store, call_id, cache_folder(ctx.db_path, ctx.settings.redacted_audio_dir))
    except NoSuchCall:
        raise Refused(404, "no_recording", call=shown(call_id)) from None
    except CannotRedact as exc:
        with ctx.store.reading() as conn:
            purged = reads.audio_purged_at(conn, call_id)
        if purged is not None:  # and no redacted copy was kept
            raise Refused(410, "purged", call=shown(call_id), date=f"{purged:%Y-%m-%d}") from None
        raise Refused(409, "not_redacted", call=shown(call_id), reason=str(exc)) from None
    return data


def audio_blocked(ctx: WebContext, call_id: str, lang: str) -> str | None:
    """Why the call's audio is not played, in `lang` (None: it is, redacted)."""
    try:
        redacted(ctx, call_id)
    except Refused as exc:
        return exc.message(lang)
    return None


def may_play_original(ctx: WebContext, user: Viewer) -> bool:
    return user.role in {r.strip() for r in ctx.settings.original_audio_roles.split(",") if r.strip()}


def plot_file(ctx: WebContext, call_id: str) -> Path:
    with ctx.store.reading() as conn:
        found = reads.plot_path(conn, call_id)
    path = Path(found) if found else None
    if path is not None and not path.is_absolute():
        path = ctx.db_path.parent / path
    if path is None or not path.is_file():
        raise Refused(404, "no_plot", call=shown(call_id))
    return path


def qa_export_rows(ctx: WebContext, sample_id: str) -> list[dict]:
    """One row per sampled call and review, each with every item's prefill, answer and agreement."""
    with ctx.store.reading() as conn:
        found = reads.qa_export_rows(conn, sample_id)
    for r in found:
        r["items"] = review_against_prefill(r["scorecard"], r["scores"]) if r["scores"] else {
            k: {**v, "review": None, "agree": None} for k, v in review_against_prefill(r["scorecard"], {}).items()}
    if not found:
        raise Refused(404, "no_sample", sample=shown(sample_id))
    return found
