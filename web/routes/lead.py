"""For team leads: the dashboard of calls, complaints, escalation, flags and callbacks in time,
per day, category or agent; every bar links to the calls behind it."""
from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Request

from .. import store as reads
from .. import views
from ..charts import bar_chart
from ..context import LEADS, Viewer, role, web

router = APIRouter(include_in_schema=False)
DASHBOARD_DAYS = 31


@router.get("/dashboard")
def dashboard_page(request: Request, group: str = "day", user: Viewer = Depends(role(*LEADS))):
    ctx = web(request)
    data = views.dashboard(ctx, group)
    if group == "day":
        data = data[-DASHBOARD_DAYS:]  # a chart stays readable; older days are in the API and search
    link = {"day": lambda g: f"/search?date_from={g}&date_to={g}", "category": lambda g: f"/search?category={quote(g)}",
            "agent": lambda g: f"/search?agent={quote(g)}"}[group]
    urgent = ctx.settings.policy.levels.urgent
    charts = []
    for key, title, unit in (("calls", "Calls · 来电", ""), ("complaints", "Complaint calls · 投诉来电", ""),
                             ("mean_escalation", "Mean escalation · 平均情绪升级", ""),
                             ("high_escalation", f"High escalation (≥{urgent:g}) · 高升级来电", ""),
                             ("flags", "Flags · 风险标记", ""),
                             ("callbacks_in_time", f"Complaints called back within {ctx.target} min · 按时回访", "")):
        bars = [(r["grp"], r[key], link(r["grp"]) + ("&min_escalation=" + f"{urgent:g}"
                                                     if key == "high_escalation" else "")) for r in data]
        charts.append(bar_chart(title, bars, unit))
    return ctx.page(request, "dashboard.html", user, group=group, data=data, charts=charts, groups=list(reads.GROUPS))
