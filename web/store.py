"""The web app's reads: what each page shows, from the pipeline's tables and the app's own, on
one read-only connection (pipeline.store.Store.reading). Every write goes through pipeline.store.

Tables other stages add later (alerts, corrections) and briefing keys not written yet
(deadlines, facts) are shown when present and skipped when not.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pipeline.analysis.redact import redact
from pipeline.config.policy import ScoreLevels, default_policy
from pipeline.records import Flag
from pipeline.store import (
    CLOSING_OUTCOMES,
    REACHED_OUTCOMES,
    SEARCH_FTS,
    attempts_sql,
    complaint_sql,
    has_search_index,
    has_table,
    outcomes_sql,
    rows,
)

from .search import query_tokens
from .timefmt import call_time, parse_iso, utc_time


def parse_json(value, default):
    """A JSON column's value as Python (already parsed, or `default` when missing or unreadable)."""
    if value is None:
        return default
    if isinstance(value, (list, dict)):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return default


def latest_briefings(conn, customer_ids: list[str]) -> dict[str, dict]:
    if not customer_ids:
        return {}
    found = conn.execute(
        "SELECT customer_id, arg_max(json, created_at), max(created_at) FROM briefings "
        "WHERE customer_id IN (SELECT unnest(?)) GROUP BY customer_id", [customer_ids]).fetchall()
    return {c: {**parse_json(j, {}), "_stored_at": at} for c, j, at in found}


def deadlines_view(briefing: dict, tz: ZoneInfo, now: datetime) -> list[dict]:
    """The customer's own deadlines as clock times, passed or open at this moment."""
    out = []
    for d in briefing.get("deadlines") or []:
        due = parse_iso(d.get("due"), tz)
        hours_left = (due - now).total_seconds() / 3600 if due else None
        out.append({**d, "due_local": due, "passed": hours_left is not None and hours_left < 0,
                    "hours_left": hours_left})
    return out


def alerts_by_customer(conn) -> dict[str, list[dict]]:
    if not has_table(conn, "alerts"):
        return {}
    cols = {r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns "
                                       "WHERE table_name = 'alerts' AND table_catalog = current_database()").fetchall()}
    kind = "kind" if "kind" in cols else "reason" if "reason" in cols else None
    channel = "contact_channel" if "contact_channel" in cols else "NULL"  # a promise alert's channel
    if "customer_id" in cols:
        sql = f"SELECT customer_id, call_id, {kind or 'NULL'} AS kind, {channel} AS channel FROM alerts" if "call_id" in cols else \
              f"SELECT customer_id, NULL AS call_id, {kind or 'NULL'} AS kind, {channel} AS channel FROM alerts"
    elif "call_id" in cols:
        sql = f"SELECT c.customer_id, a.call_id, {('a.' + kind) if kind else 'NULL'} AS kind FROM alerts a JOIN calls c USING (call_id)"
    else:
        return {}
    out: dict[str, list[dict]] = {}
    for r in rows(conn, sql):
        out.setdefault(r["customer_id"], []).append(r)
    return out


def worklist(conn, tz: ZoneInfo, target_minutes: int, now: datetime, levels: ScoreLevels | None = None,
             customer_id: str | None = None) -> list[dict]:
    """Customers with a complaint call no callback has closed since, most urgent first (the
    callback target counted from the call, whatever was tried). A complaint call, as in
    pipeline.outputs.briefing: not a callback call, at or above the policy's complaint level, or
    flagged. A callback is one recorded through the form or a recorded callback call answering the
    latest complaint's case (or either case unknown): one the customer spoke in reached them, and
    closes the case when it was found resolved (pipeline/store/callbacks.py). After an attempt that
    closed nothing (no answer, a follow-up still owed) the next attempt is due a callback target
    after it. `customer_id`: that customer only."""
    complaint = complaint_sql((levels or default_policy().levels).complaint)
    closing = outcomes_sql(CLOSING_OUTCOMES)
    found = rows(conn, f"""
        WITH complaint AS (
            SELECT c.customer_id, c.call_id, c.started_at, c.processed_at, c.case_id, c.agent_id,
                   e.call_score, coalesce(e.flags, '[]') AS flags, coalesce(e.sources, '[]') AS sources, s.category
            FROM calls c LEFT JOIN escalation e USING (call_id) LEFT JOIN summaries s USING (call_id)
            WHERE c.status = 'ok' AND c.customer_id IS NOT NULL{" AND c.customer_id = ?" if customer_id else ""}
              AND {complaint}),
        per_customer AS (
            SELECT customer_id, count(*) AS n_complaints, max(started_at) AS last_complaint,
                   arg_max(call_id, started_at) AS last_call, arg_max(call_score, started_at) AS escalation,
                   max(call_score) AS max_escalation, arg_max(case_id, started_at) AS case_id,
                   arg_max(category, started_at) AS category, arg_max(processed_at, started_at) AS processed_at,
                   list(flags) AS flag_lists, list(sources ORDER BY started_at) AS source_lists
            FROM complaint GROUP BY customer_id),
        done AS (
            SELECT a.customer_id, max(a.done_at) FILTER (a.outcome IN ({closing})) AS done_at,
                   max(a.done_at) AS attempt_at, arg_max(a.outcome, a.done_at) AS attempt_outcome
            FROM {attempts_sql("?", has_table(conn, "callbacks"))} a JOIN per_customer p USING (customer_id)
            WHERE a.case_id IS NULL OR p.case_id IS NULL OR a.case_id = p.case_id
            GROUP BY a.customer_id),
        -- n_inbound: the calls the customer made (a callback or another call the bank placed is no repeat).
        n_calls AS (SELECT customer_id, count(*) AS n_calls,
                           count(*) FILTER (coalesce(direction, 'inbound') = 'inbound') AS n_inbound
                    FROM calls WHERE status = 'ok' GROUP BY customer_id)
        SELECT p.*, n.n_calls, n.n_inbound, d.done_at,
               CASE WHEN timezone('UTC', d.attempt_at) >= timezone(?, p.last_complaint) THEN d.attempt_at END AS attempt_at,
               CASE WHEN timezone('UTC', d.attempt_at) >= timezone(?, p.last_complaint) THEN d.attempt_outcome END
                   AS attempt_outcome
        FROM per_customer p JOIN n_calls n USING (customer_id)
        LEFT JOIN done d USING (customer_id)
        WHERE d.done_at IS NULL OR timezone('UTC', d.done_at) < timezone(?, p.last_complaint)""",
        ([customer_id] if customer_id else []) + [tz.key] * 4)
    briefs = latest_briefings(conn, [r["customer_id"] for r in found])
    alerts = alerts_by_customer(conn)
    items = []
    for r in found:
        started = call_time(r["last_complaint"], tz)
        attempt = utc_time(r["attempt_at"], tz)
        due = started + timedelta(minutes=target_minutes) if started else None
        next_attempt = attempt + timedelta(minutes=target_minutes) if attempt else None
        flags = sorted({f for fl in r["flag_lists"] for f in parse_json(fl, [])})
        if r["n_complaints"] > 1 or r["n_inbound"] > 1:  # as in the briefing
            flags.append("repeat_complaint")
        # The authorities and channels named, first said first (the chip says which regulator, not just "regulator").
        sources = list(dict.fromkeys(x["source"] for sl in r.pop("source_lists") for x in parse_json(sl, [])))
        brief = briefs.get(r["customer_id"], {})
        items.append({**r, "flags": flags, "sources": sources, "started_local": started, "due_local": due, "attempt_local": attempt,
                      "next_attempt_local": next_attempt,
                      "minutes_left": (due - now).total_seconds() / 60 if due else None,
                      "deadlines": deadlines_view(brief, tz, now), "alerts": alerts.get(r["customer_id"], []),
                      "agents": brief.get("agents") or [],
                      "language": brief.get("language")})  # what the quoted deadlines are in
    items.sort(key=lambda i: (i["minutes_left"] is None, i["minutes_left"] if i["minutes_left"] is not None else 0,
                              -(i["escalation"] or 0)))
    return items


def customer_calls(conn, customer_id: str) -> list[dict]:
    return rows(conn, "SELECT c.call_id, c.started_at, c.agent_id, c.case_id, c.language, c.duration, "
                      "e.call_score, e.flags, s.category, s.outcome, s.summary FROM calls c "
                      "LEFT JOIN escalation e USING (call_id) LEFT JOIN summaries s USING (call_id) "
                      "WHERE lower(c.customer_id) = lower(?) AND c.status = 'ok' ORDER BY c.started_at DESC NULLS LAST",
                [customer_id.strip()])


def callbacks_of(conn, customer_id: str) -> list[dict]:
    if not has_table(conn, "callbacks"):
        return []
    return rows(conn, "SELECT * FROM callbacks WHERE lower(customer_id) = lower(?) ORDER BY done_at DESC",
                [customer_id.strip()])


def call_detail(conn, call_id: str, reported_flags: tuple[Flag, ...] | None = None) -> dict | None:
    """`reported_flags`: the lexicon categories shown as a turn's flags (the policy's)."""
    reported = set(reported_flags if reported_flags is not None else default_policy().reported_flags)
    found = rows(conn, "SELECT c.*, e.call_score, e.trend, e.peak_time, e.flags, e.sources AS threat_sources, "
                       "e.evidence, e.de_escalation, "
                       "s.category, s.outcome, s.summary, s.demands, s.promises, s.key_quotes, s.language AS summary_language "
                       "FROM calls c LEFT JOIN escalation e USING (call_id) LEFT JOIN summaries s USING (call_id) "
                       "WHERE c.call_id = ?", [call_id])
    if not found:
        return None
    call = found[0]
    call["flags"] = parse_json(call["flags"], [])
    call["threat_sources"] = parse_json(call["threat_sources"], [])  # {source, category, term, time, role, quote}
    call["evidence"] = parse_json(call["evidence"], [])
    call["direction_evidence"] = parse_json(call.get("direction_evidence"), None)
    call["turns"] = rows(conn, 'SELECT seq, role, speaker, start, "end", redacted_text AS text, score, signals '
                               "FROM turns WHERE call_id = ? ORDER BY seq", [call_id])
    for t in call["turns"]:
        signals = parse_json(t.pop("signals"), {})
        t["flags"] = [c for c in signals.get("categories", []) if c in reported]
        t["terms"] = signals.get("terms", [])
    call["corrections"] = []
    if has_table(conn, "corrections"):
        # Recognised text may hold the digits the masking hides.
        call["corrections"] = [{**c, "original": redact(c.get("original")), "corrected": redact(c.get("corrected"))}
                               for c in rows(conn, 'SELECT * FROM corrections WHERE call_id = ? ORDER BY start', [call_id])]
    return call


# --- QA ------------------------------------------------------------------------------------

def qa_queue(conn, reviewer: str) -> list[dict]:
    return rows(conn, "SELECT q.sample_id, q.call_id, q.agent_id, q.stratum, q.reason, q.drawn_at, c.customer_id, "
                      "c.started_at, e.call_score, r.reviewed_at AS my_review, "
                      "(SELECT count(*) FROM qa_reviews x WHERE x.call_id = q.call_id) AS n_reviews "
                      "FROM qa_samples q JOIN calls c USING (call_id) LEFT JOIN escalation e USING (call_id) "
                      "LEFT JOIN (SELECT call_id, sample_id, max(reviewed_at) AS reviewed_at FROM qa_reviews "
                      "WHERE reviewer = ? GROUP BY ALL) r USING (call_id, sample_id) "
                      "ORDER BY r.reviewed_at IS NOT NULL, q.drawn_at DESC, q.stratum, q.call_id", [reviewer])


def qa_rollup(conn, items: list[dict]) -> list[dict]:
    """Per agent: reviews and the share of each scorecard item marked pass (of those scored pass/fail)."""
    reviews = rows(conn, "SELECT coalesce(c.agent_id, q.agent_id) AS agent_id, r.scores FROM qa_reviews r "
                         "JOIN qa_samples q USING (sample_id, call_id) LEFT JOIN calls c USING (call_id)")
    agents: dict[str, dict] = {}
    for r in reviews:
        a = agents.setdefault(r["agent_id"] or "—", {"agent_id": r["agent_id"] or "—", "n_reviews": 0,
                                                     "items": {i["id"]: [0, 0] for i in items}})
        a["n_reviews"] += 1
        for key, value in parse_json(r["scores"], {}).items():
            if key in a["items"] and value in ("pass", "fail"):
                a["items"][key][1] += 1
                a["items"][key][0] += value == "pass"
    out = []
    for a in sorted(agents.values(), key=lambda a: a["agent_id"]):
        scored = [p / n for p, n in a["items"].values() if n]
        out.append({**a, "pass_rate": {k: (p / n if n else None) for k, (p, n) in a["items"].items()},
                    "overall": sum(scored) / len(scored) if scored else None})
    return out


def qa_next(conn, sample_id: str, reviewer: str, after: str) -> str | None:
    """The reviewer's next call of the sample: the first one after `after` (in the sample's order,
    stratum then call) they have not reviewed, else the first such before it; None when done."""
    todo = [r["call_id"] for r in rows(
        conn, "SELECT q.call_id FROM qa_samples q WHERE q.sample_id = ? AND NOT EXISTS (SELECT 1 FROM qa_reviews r "
              "WHERE r.call_id = q.call_id AND r.sample_id = q.sample_id AND r.reviewer = ?) "
              "ORDER BY q.stratum, q.call_id", [sample_id, reviewer])]
    order = [r["call_id"] for r in rows(conn, "SELECT call_id FROM qa_samples WHERE sample_id = ? "
                                              "ORDER BY stratum, call_id", [sample_id])]
    here = order.index(after) if after in order else -1
    later = [c for c in todo if order.index(c) > here]
    return (later or todo or [None])[0]


def qa_progress(conn, sample_id: str, reviewer: str, call_id: str) -> dict:
    """The call's place in the sample's order (1-based), the sample's size and the reviewer's reviews of it."""
    order = [r["call_id"] for r in rows(conn, "SELECT call_id FROM qa_samples WHERE sample_id = ? "
                                              "ORDER BY stratum, call_id", [sample_id])]
    done = rows(conn, "SELECT count(*) AS n FROM qa_reviews WHERE sample_id = ? AND reviewer = ?",
                [sample_id, reviewer])[0]["n"]
    return {"at": order.index(call_id) + 1 if call_id in order else None, "of": len(order), "done": done}


def qa_backlog(conn, now_utc: datetime, review_days: int) -> list[dict]:
    """Per sample: calls drawn, calls reviewed by anyone, calls still waiting, and of those the ones
    waiting longer than `review_days` since the sample was drawn (overdue)."""
    return rows(conn, """
        SELECT q.sample_id, min(q.drawn_at) AS drawn_at, count(*) AS calls,
               count(*) FILTER (r.call_id IS NOT NULL) AS reviewed,
               count(*) FILTER (r.call_id IS NULL) AS waiting,
               count(*) FILTER (r.call_id IS NULL AND q.drawn_at < ?::TIMESTAMP - to_days(?)) AS overdue
        FROM qa_samples q LEFT JOIN (SELECT DISTINCT sample_id, call_id FROM qa_reviews) r USING (sample_id, call_id)
        GROUP BY q.sample_id ORDER BY drawn_at DESC, q.sample_id""", [now_utc, int(review_days)])


def qa_pairs(conn, sample_id: str | None = None) -> list[dict]:
    """Every review beside the prefill of its call (for agreement): sample, call, agent, reviewer,
    review time, the prefilled scorecard (JSON list) and the review's answers (JSON object)."""
    where = "WHERE q.sample_id = ? " if sample_id else ""
    return rows(conn, "SELECT q.sample_id, q.call_id, coalesce(c.agent_id, q.agent_id) AS agent_id, r.reviewer, "
                      "r.reviewed_at, q.scorecard, r.scores FROM qa_reviews r JOIN qa_samples q USING (sample_id, call_id) "
                      f"LEFT JOIN calls c USING (call_id) {where}ORDER BY r.reviewed_at",
                [sample_id] if sample_id else [])


# --- dashboard -----------------------------------------------------------------------------

GROUPS = {"day": "CAST(c.started_at AS DATE)", "category": "coalesce(s.category, 'other')",
          "agent": "coalesce(c.agent_id, '—')"}


def dashboard(conn, group: str, tz: ZoneInfo, target_minutes: int, since: datetime | None = None,
              levels: ScoreLevels | None = None) -> list[dict]:
    levels = levels or default_policy().levels
    urgent = float(levels.urgent)  # a validated number, safe in SQL
    key = GROUPS[group]
    # A complaint call counts as called back in time when a callback reached its customer within
    # the target after the call started (start times are centre-local, done_at UTC): one recorded
    # through the form or a recorded callback call the customer spoke in, of the same case or
    # either case unknown; a call that rang out unanswered is not a callback made.
    start = "timezone($tz, c.started_at)"
    reached = outcomes_sql(REACHED_OUTCOMES)
    callback_sql = f"""EXISTS (SELECT 1 FROM {attempts_sql("$tz", has_table(conn, "callbacks"))} b
                        WHERE b.customer_id = c.customer_id AND b.outcome IN ({reached})
                        AND (b.case_id IS NULL OR c.case_id IS NULL OR b.case_id = c.case_id)
                        AND timezone('UTC', b.done_at) BETWEEN {start}
                        AND {start} + INTERVAL {int(target_minutes)} MINUTE)"""
    where = "c.status = 'ok'" + (" AND c.started_at >= $since" if since else "")
    return rows(conn, f"""
        WITH base AS (
            SELECT {key} AS grp, c.call_id, e.call_score, {complaint_sql(levels.complaint)} AS complaint,
                   json_array_length(coalesce(e.flags, '[]')) AS n_flags, {callback_sql} AS in_time
            FROM calls c LEFT JOIN escalation e USING (call_id) LEFT JOIN summaries s USING (call_id) WHERE {where})
        SELECT CAST(grp AS VARCHAR) AS grp, count(*) AS calls, count(*) FILTER (complaint) AS complaints,
               round(avg(call_score), 1) AS mean_escalation,
               count(*) FILTER (call_score >= {urgent}) AS high_escalation,
               sum(n_flags) AS flags, count(*) FILTER (complaint AND in_time) AS callbacks_in_time
        FROM base GROUP BY grp ORDER BY grp""", {"tz": tz.key, **({"since": since} if since else {})})

# --- single reads of the pages ----------------------------------------------------------------

def stored_customer_id(conn, call_id: str) -> str:
    return conn.execute("SELECT customer_id FROM calls WHERE call_id = ?", [call_id]).fetchone()[0]


def marking_rows(conn, call_ids: list[str]) -> tuple[dict, dict, dict]:
    """What marks a shown text, per call: its turns (masked text), its stored words (text,
    probability; none once retention removed them) and its corrections."""
    turns, words, corrections = {}, {}, {}
    for r in rows(conn, 'SELECT call_id, role, start, "end", redacted_text AS text FROM turns '
                        "WHERE call_id IN (SELECT unnest(?)) ORDER BY call_id, seq", [call_ids]):
        turns.setdefault(r["call_id"], []).append(r)
    for r in rows(conn, 'SELECT call_id, role, start, "end", text, probability FROM words '
                        "WHERE call_id IN (SELECT unnest(?)) ORDER BY call_id, seq", [call_ids]):
        words.setdefault(r["call_id"], []).append(r)
    if has_table(conn, "corrections"):
        for r in rows(conn, "SELECT call_id, original, corrected FROM corrections "
                            "WHERE call_id IN (SELECT unnest(?)) ORDER BY call_id, seq", [call_ids]):
            corrections.setdefault(r["call_id"], []).append(r)
    return turns, words, corrections


def latest_call_turns(conn, call_id: str) -> list[dict]:
    return rows(conn, 'SELECT seq, role, start, "end", score, signals FROM turns WHERE call_id = ? ORDER BY seq', [call_id])


def categories(conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT DISTINCT category FROM summaries WHERE category IS NOT NULL "
                                       "ORDER BY 1").fetchall()]


def plot_path(conn, call_id: str) -> str | None:
    found = conn.execute("SELECT plot_path FROM escalation WHERE call_id = ?", [call_id]).fetchone()
    return found[0] if found else None


def recording_paths(conn, call_id: str) -> list[str]:
    """Where the call's audio was found: its path, then its other paths with the same audio (a
    copy, or the new name of a renamed file)."""
    return [r[0] for r in conn.execute(
        "SELECT path FROM (SELECT path, 0 AS k, NULL AS seen_at FROM calls WHERE call_id = ? AND path IS NOT NULL "
        "UNION ALL "
        "SELECT p.path, 1, p.seen_at FROM call_paths p JOIN calls c USING (call_id, sha256) WHERE c.call_id = ?) "
        "ORDER BY k, seen_at DESC", [call_id, call_id]).fetchall()]


def audio_purged_at(conn, call_id: str):
    """When retention forgot the call's recording paths (pipeline/run/retention.py); None if it has not."""
    cols = {r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'calls' "
                                       "AND table_catalog = current_database()").fetchall()}
    if "audio_purged_at" not in cols:  # a database from before retention
        return None
    found = conn.execute("SELECT audio_purged_at FROM calls WHERE call_id = ?", [call_id]).fetchone()
    return found[0] if found else None


def qa_export_rows(conn, sample_id: str) -> list[dict]:
    return rows(conn, "SELECT q.sample_id, q.call_id, q.agent_id, c.customer_id, c.started_at, q.stratum, "
                      "q.reason, e.call_score, q.scorecard, r.reviewer, r.reviewed_at, r.scores, r.comment "
                      "FROM qa_samples q JOIN calls c USING (call_id) LEFT JOIN escalation e USING (call_id) "
                      "LEFT JOIN qa_reviews r USING (sample_id, call_id) WHERE q.sample_id = ? "
                      "ORDER BY q.call_id, r.reviewer", [sample_id])


# --- search -----------------------------------------------------------------------------------

def search(conn, words: str = "", customer: str = "", agent: str = "", case: str = "", flag: str = "",
           category: str = "", date_from=None, date_to=None, min_escalation: float | None = None,
           limit: int = 200) -> list[dict]:
    """Matching turns, those holding every word first, then by BM25 score (or calls, when no words
    are given, newest first)."""
    where, params = ["c.status = 'ok'"], []
    for column, value in (("c.customer_id", customer), ("c.agent_id", agent), ("c.case_id", case)):
        if value.strip():
            where.append(f"lower({column}) = lower(?)")
            params.append(value.strip())
    if category.strip():
        where.append("s.category = ?")
        params.append(category.strip())
    if flag.strip():
        where.append("list_contains(CAST(coalesce(e.flags, '[]') AS VARCHAR[]), ?)")
        params.append(flag.strip())
    if date_from:
        where.append("c.started_at >= ?")
        params.append(date_from)
    if date_to:
        where.append("c.started_at < ?")
        params.append(date_to)
    if min_escalation is not None:
        where.append("e.call_score >= ?")
        params.append(min_escalation)
    wanted = query_tokens(words)
    base = ("FROM calls c LEFT JOIN escalation e USING (call_id) LEFT JOIN summaries s USING (call_id) "
            f"WHERE {' AND '.join(where)}")
    if not wanted:
        return rows(conn, "SELECT c.call_id, c.customer_id, c.agent_id, c.case_id, c.started_at, c.language, s.category, "
                          f"e.call_score, e.flags, NULL AS seq, NULL AS start, NULL AS role, s.summary AS text {base} "
                          "ORDER BY c.started_at DESC NULLS LAST, c.call_id LIMIT ?", params + [limit])
    if not has_search_index(conn):
        return []
    # BM25 over every turn (fts's match_bm25, any query word), then the turns holding every query
    # word first: BM25 alone may rank a short turn repeating one rare word above a turn with all.
    hits = (f"SELECT call_id, seq, score, len(list_intersect(string_split(tokens, ' '), ?::VARCHAR[])) AS matched "
            f"FROM (SELECT call_id, seq, tokens, {SEARCH_FTS}.match_bm25(doc, ?) AS score FROM search_docs) "
            "WHERE score IS NOT NULL")
    return rows(conn, f"WITH hits AS ({hits}) SELECT c.call_id, c.customer_id, c.agent_id, c.case_id, c.started_at, "
                      "c.language, s.category, e.call_score, e.flags, t.seq, t.start, t.role, t.redacted_text AS text, "
                      "h.score, h.matched "
                      f"FROM hits h JOIN turns t USING (call_id, seq) JOIN (SELECT c.*, e.call_score AS _s {base}) c "
                      "USING (call_id) LEFT JOIN escalation e USING (call_id) LEFT JOIN summaries s USING (call_id) "
                      "ORDER BY h.matched DESC, h.score DESC, c.started_at DESC NULLS LAST, c.call_id, t.seq LIMIT ?",
                [wanted, " ".join(wanted)] + params + [limit])
