"""Pre-callback briefing: one customer across all their calls, so they never repeat themselves.

Built from what the store holds (calls, summaries, escalation); written in the language of the
customer's latest call, as Markdown and JSON. Every quoted text is already masked.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime

from .escalation import mmss
from .redact import redact
from .store import Store, utcnow
from .summary import ROLE_LABELS, category_info

CALLBACK_TARGET_MIN = 30
COMPLAINT_SCORE = 40  # a call at or above this escalation score counts as a complaint call
THREAT_FLAGS = {"regulator_threat", "media_threat", "legal_threat"}

LABELS = {
    "zh": {"title": "回访前简报", "customer": "客户", "calls": "来电次数", "complaints": "投诉来电", "first": "首次来电",
           "last": "最近来电", "since": "距最近投诉来电", "target": "回访目标 30 分钟", "overdue": "已超时",
           "within": "仍在时限内", "level": "当前情绪升级", "trend": "跨来电趋势", "flags": "风险标记",
           "told": "客户已经告诉我们的（不要再问）", "agents": "已接触的坐席", "promises": "已作出的承诺",
           "kept": "客户反映未兑现", "unknown": "未知", "approach": "建议沟通方式", "moments": "值得回听的片段",
           "plot": "最近一次来电的情绪曲线", "history": "来电记录", "none": "无", "repeat": "重复投诉",
           "trend_names": {"rising": "上升", "falling": "下降", "flat": "平稳"},
           "approach_lines": ["开场先确认客户已来电 {n} 次，并简述已知情况，不要让客户重复。",
                              "真诚致歉：“非常理解您的心情，给您带来不便深表歉意。”",
                              "不要承诺具体时限，除非已与相关部门确认。",
                              "可准备的解释：{explain}"],
           "deadline_warning": "注意：之前的来电中坐席承诺过具体时限：{quote}"},
    "en": {"title": "Pre-callback briefing", "customer": "Customer", "calls": "Calls", "complaints": "Complaint calls",
           "first": "First contact", "last": "Last contact", "since": "Since last complaint call",
           "target": "callback target 30 min", "overdue": "OVERDUE", "within": "within target",
           "level": "Current escalation", "trend": "Trend across calls", "flags": "Flags",
           "told": "What the customer has already told us (do not ask again)", "agents": "Agents they spoke with",
           "promises": "Promises made", "kept": "customer says not kept", "unknown": "unknown",
           "approach": "Suggested approach", "moments": "Moments worth listening to",
           "plot": "Escalation plot of the latest call", "history": "Call history", "none": "none",
           "repeat": "repeat complaint", "trend_names": {"rising": "rising", "falling": "falling", "flat": "flat"},
           "approach_lines": ["Open by acknowledging the {n} earlier call(s) and what you already know; do not make them repeat it.",
                              "Apologise sincerely: \"I'm sorry for the trouble this has caused you.\"",
                              "Do not promise a specific deadline unless it has been confirmed.",
                              "Prepared explanation: {explain}"],
           "deadline_warning": "Caution: an earlier call promised a specific deadline: {quote}"},
}


@dataclass
class Briefing:
    customer_id: str
    language: str
    generated_at: str
    n_calls: int
    n_complaints: int
    first_contact: str | None
    last_contact: str | None
    minutes_since_last_complaint: float | None
    callback_overdue: bool | None
    escalation_level: float | None
    escalation_trend: str
    flags: list[str]
    demands: list[dict]  # merged across calls, newest first, de-duplicated
    agents: list[str]
    promises: list[dict]
    calls: list[dict]
    moments: list[dict]
    latest_plot: str | None
    approach: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1, default=str)


class NoCalls(LookupError):
    pass


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+|[\u4e00-\u9fff]", text.lower()))


def _same(a: str, b: str) -> bool:
    """Near-duplicate demands (the same thing said again) by character/word overlap."""
    ta, tb = _tokens(a), _tokens(b)
    return bool(ta and tb) and len(ta & tb) / min(len(ta), len(tb)) >= 0.7


def build_briefing(store: Store, customer_id: str, now: datetime | None = None) -> Briefing:
    now = now or utcnow()
    calls = store.query(
        "SELECT c.call_id, c.started_at, c.agent_id, c.case_id, c.language, c.duration, e.call_score, e.trend, "
        "e.flags, e.evidence, e.plot_path, s.category, s.outcome, s.demands, s.promises, s.deadline_promises, "
        "s.summary FROM calls c LEFT JOIN escalation e USING (call_id) LEFT JOIN summaries s USING (call_id) "
        "WHERE c.customer_id = ? AND c.status = 'ok' ORDER BY c.started_at NULLS FIRST, c.call_id", [customer_id])
    if calls.empty:
        raise NoCalls(f"no processed calls for customer {customer_id}")
    rows = calls.to_dict("records")
    latest = rows[-1]
    language = latest["language"] if latest["language"] in LABELS else "en"
    L = LABELS[language]
    scores = [r["call_score"] for r in rows if r["call_score"] is not None]
    complaints = [r for r in rows if (r["call_score"] or 0) >= COMPLAINT_SCORE or json.loads(r["flags"] or "[]")]
    flags = sorted({f for r in rows for f in json.loads(r["flags"] or "[]")})
    if len(complaints) > 1 or (complaints and len(rows) > 1):
        flags.append("repeat_complaint")
    last_complaint = max((r["started_at"] for r in complaints if r["started_at"] is not None), default=None)
    since = (now - last_complaint).total_seconds() / 60 if last_complaint is not None else None
    trend = "flat"
    if len(scores) > 1:
        trend = "rising" if scores[-1] - scores[0] > 10 else "falling" if scores[-1] - scores[0] < -10 else "flat"
    elif rows[-1]["trend"]:
        trend = rows[-1]["trend"]

    demands: list[dict] = []
    for r in reversed(rows):  # newest call first
        for d in sorted(json.loads(r["demands"] or "[]"), key=lambda q: -q["time"]):
            if not any(_same(d["text"], kept["text"]) for kept in demands):
                demands.append({"call_id": r["call_id"], "time": d["time"], "text": redact(d["text"])})
    promises = []
    later_unhappy = {r["call_id"]: any("repeat_demand" in json.loads(x["flags"] or "[]") or (x["call_score"] or 0) >= COMPLAINT_SCORE
                                       for x in rows[i + 1:]) for i, r in enumerate(rows)}
    for r in rows:
        for p in json.loads(r["promises"] or "[]"):
            promises.append({"call_id": r["call_id"], "time": p["time"], "text": redact(p["text"]),
                             "status": "not_kept" if later_unhappy[r["call_id"]] else "unknown",
                             "deadline": any(abs(p["time"] - d["time"]) < 1e-6 for d in json.loads(r["deadline_promises"] or "[]"))})
    moments = []
    for r in reversed(rows):
        for ev in json.loads(r["evidence"] or "[]"):
            moments.append({"call_id": r["call_id"], "time": ev["time"], "at": mmss(ev["time"]), "score": ev["score"],
                            "detail": redact(ev["detail"])})
    moments = sorted(moments, key=lambda m: -m["score"])[:5]
    info = category_info(latest["category"] or "other")
    approach = [line.format(n=len(rows), explain=info["explain"][language]) for line in L["approach_lines"]]
    for p in promises:
        if p["deadline"]:
            approach.append(L["deadline_warning"].format(quote=f"{p['call_id']} {mmss(p['time'])} {p['text']}"))
    call_list = [{"call_id": r["call_id"], "started_at": str(r["started_at"]), "agent_id": r["agent_id"],
                  "case_id": r["case_id"], "category": r["category"], "outcome": r["outcome"],
                  "escalation": r["call_score"], "summary": redact(r["summary"])} for r in reversed(rows)]
    return Briefing(
        customer_id=customer_id, language=language, generated_at=str(now), n_calls=len(rows),
        n_complaints=len(complaints), first_contact=str(rows[0]["started_at"]), last_contact=str(latest["started_at"]),
        minutes_since_last_complaint=round(since, 1) if since is not None else None,
        callback_overdue=since > CALLBACK_TARGET_MIN if since is not None else None,
        escalation_level=latest["call_score"], escalation_trend=trend, flags=flags, demands=demands,
        agents=sorted({r["agent_id"] for r in rows if r["agent_id"]}), promises=promises, calls=call_list,
        moments=moments, latest_plot=latest["plot_path"], approach=approach,
    )


def to_markdown(b: Briefing) -> str:
    L = LABELS[b.language]
    roles = ROLE_LABELS[b.language]
    none = L["none"]
    if b.minutes_since_last_complaint is None:
        since = none
    else:
        state = L["overdue"] if b.callback_overdue else L["within"]
        since = f"{b.minutes_since_last_complaint:.0f} min ({L['target']}: {state})"
    lines = [f"# {L['title']}: {L['customer']} {b.customer_id}", "",
             f"- {L['calls']}: {b.n_calls}; {L['complaints']}: {b.n_complaints}",
             f"- {L['first']}: {b.first_contact}; {L['last']}: {b.last_contact}",
             f"- {L['since']}: {since}",
             f"- {L['level']}: {b.escalation_level if b.escalation_level is not None else none}/100; "
             f"{L['trend']}: {L['trend_names'].get(b.escalation_trend, b.escalation_trend)}",
             f"- {L['flags']}: {', '.join(b.flags) or none}", "",
             f"## {L['told']}"]
    lines += [f"- {d['text']} ({d['call_id']} {mmss(d['time'])})" for d in b.demands] or [f"- {none}"]
    lines += ["", f"## {L['promises']}"]
    lines += [f"- {p['text']} ({p['call_id']} {mmss(p['time'])}; "
              f"{L['kept'] if p['status'] == 'not_kept' else L['unknown']}{'; deadline' if p['deadline'] else ''})"
              for p in b.promises] or [f"- {none}"]
    lines += ["", f"## {L['agents']}", f"- {', '.join(b.agents) or none}", "", f"## {L['approach']}"]
    lines += [f"{i}. {a}" for i, a in enumerate(b.approach, 1)]
    lines += ["", f"## {L['moments']}"]
    lines += [f"- {m['call_id']} @ {m['at']} ({m['score']:.0f}/100): {m['detail']}" for m in b.moments] or [f"- {none}"]
    if b.latest_plot:
        lines += ["", f"{L['plot']}: {b.latest_plot}"]
    lines += ["", f"## {L['history']}"]
    for c in b.calls:
        lines.append(f"- **{c['call_id']}** {c['started_at']} ({roles['agent']} {c['agent_id']}, {c['category']}, "
                     f"{c['outcome']}, {c['escalation']}/100): {c['summary']}")
    return "\n".join(lines) + "\n"


def write_briefing(store: Store, customer_id: str, now: datetime | None = None) -> tuple[Briefing, str]:
    """Build, render and store one customer's briefing; returns (briefing, markdown)."""
    briefing = build_briefing(store, customer_id, now)
    markdown = to_markdown(briefing)
    store.write_briefing(customer_id, briefing.language, briefing.n_calls, markdown, briefing.to_json())
    return briefing, markdown
