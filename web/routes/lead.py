"""For team leads: the dashboard of calls, complaints, escalation, flags and callbacks in time,
per day, category or agent; every bar links to the calls behind it."""
from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Request

from pipeline.analysis.i18n import name, text

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
    shown = (lambda g: name("category", g, user.lang)) if group == "category" else str  # a category by its name
    charts = []
    for key, title in (("calls", text("web.dash.chart.calls", user.lang)),
                       ("complaints", text("web.dash.chart.complaints", user.lang)),
                       ("mean_escalation", text("web.dash.chart.mean", user.lang)),
                       ("high_escalation", text("web.dash.chart.high", user.lang, n=f"{urgent:g}")),
                       ("flags", text("web.dash.chart.flags", user.lang)),
                       ("callbacks_in_time", text("web.dash.chart.in_time", user.lang, n=ctx.target))):
        bars = [(shown(r["grp"]), r[key], link(r["grp"]) + ("&min_escalation=" + f"{urgent:g}"
                                                            if key == "high_escalation" else "")) for r in data]
        charts.append(bar_chart(title, bars))
    return ctx.page(request, "dashboard.html", user, group=group, data=data, charts=charts, groups=list(reads.GROUPS))
