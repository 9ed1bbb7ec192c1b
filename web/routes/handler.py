"""For handlers (and leads): the worklist, a customer's briefing, marking a callback done."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request

from pipeline.outputs.plots import escalation_svg

from .. import views
from ..context import HANDLING, Viewer, role, web

router = APIRouter(include_in_schema=False)
WORKLIST_ROWS = 200  # the most urgent; a longer list is not worked from one page


@router.get("/worklist")
def worklist_page(request: Request, user: Viewer = Depends(role(*HANDLING))):
    ctx = web(request)
    items = views.worklist(ctx)
    return ctx.page(request, "worklist.html", user, items=items[:WORKLIST_ROWS], n_items=len(items),
                    now=ctx.now_local())


@router.post("/customers/{customer_id}/callback")
def callback_submit(request: Request, customer_id: str, outcome: str = Form(...), note: str = Form(""),
                    user: Viewer = Depends(role(*HANDLING))):
    views.mark_callback(web(request), request, user, customer_id, outcome, note)  # raises unless recorded
    return web(request).redirect(user, f"/customers/{customer_id}", "callback_recorded")


@router.get("/customers/{customer_id}")
def briefing_page(request: Request, customer_id: str, user: Viewer = Depends(role(*HANDLING))):
    ctx = web(request)
    data = views.briefing(ctx, customer_id, user.lang)
    ctx.audit(request, user.username, user.role, "view_briefing", data["customer_id"])
    latest = data["latest"]
    plot = escalation_svg(data["turns"], latest["duration"] or 0, latest["call_id"], language=user.lang)
    return ctx.page(request, "briefing.html", user, plot=plot, now=ctx.now_local(), **data)
