"""For QA reviewers (and leads): the queue of sampled calls, a call's review beside its scorecard,
the CSV export of a sample, the roll-up per agent."""
from __future__ import annotations

import csv
import io

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from pipeline.analysis.i18n import name, text
from pipeline.outputs.callback_card import callback_items
from pipeline.outputs.plots import escalation_svg
from pipeline.outputs.qa import scorecard_items
from pipeline.outputs.spreadsheet import safe_cell

from .. import store as reads
from .. import views
from ..context import QA, Viewer, role, web

router = APIRouter(include_in_schema=False)


@router.get("/qa")
def qa_page(request: Request, user: Viewer = Depends(role(*QA))):
    ctx = web(request)
    with ctx.store.reading() as conn:
        queue = reads.qa_queue(conn, user.username)
    return ctx.page(request, "qa_queue.html", user, queue=queue)


@router.get("/qa/rollup")
def rollup_page(request: Request, user: Viewer = Depends(role(*QA))):
    ctx = web(request)
    return ctx.page(request, "qa_rollup.html", user, agents=views.rollup(ctx), items=scorecard_items())


@router.get("/qa/export/{sample_id}.csv")
def qa_export(request: Request, sample_id: str, user: Viewer = Depends(role(*QA))):
    ctx = web(request)
    found = views.qa_export_rows(ctx, sample_id)
    # The callback card's columns only when the sample holds callback calls (drawn for that card).
    items = [i["id"] for i in scorecard_items() + (callback_items() if any(r["stratum"] == "callback" for r in found)
                                                   else [])]
    out = io.StringIO()
    writer = csv.writer(out)
    head = ["sample_id", "call_id", "agent_id", "customer_id", "started_at", "stratum", "reason", "escalation",
            "reviewer", "reviewed_at", "comment"]
    writer.writerow(head + items)
    for r in found:
        scores = reads.parse_json(r["scores"], {})
        # Text a spreadsheet would run as a formula (a comment "=HYPERLINK(...)") is quoted.
        writer.writerow([safe_cell(v) for v in [
            r["sample_id"], r["call_id"], r["agent_id"], r["customer_id"], r["started_at"], r["stratum"], r["reason"],
            r["call_score"], r["reviewer"], r["reviewed_at"], r["comment"]] + [scores.get(i, "") for i in items]])
    ctx.audit(request, user.username, user.role, "qa_export", sample_id)
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",  # BOM: Excel reads UTF-8
                    headers={"Content-Disposition": f'attachment; filename="{sample_id}.csv"'})


def _review_page(request: Request, user: Viewer, sample_id: str, call_id: str, card: dict, error: str | None,
                 status_code: int = 200):
    """`error`: the validator's answer to the form just posted (never text from the URL)."""
    ctx = web(request)
    call = views.call(ctx, call_id)
    return ctx.page(request, "qa_review.html", user, status_code=status_code, call=call, start_at=None, error=error,
                    plot=escalation_svg(call["turns"], call["duration"] or 0, call_id, language=user.lang),
                    **card)


@router.get("/qa/{sample_id}/{call_id}")
def qa_review_page(request: Request, sample_id: str, call_id: str, user: Viewer = Depends(role(*QA))):
    ctx = web(request)
    card = views.qa_card(ctx, sample_id, call_id, user.username)
    response = _review_page(request, user, sample_id, call_id, card, None)
    ctx.audit(request, user.username, user.role, "view_call", call_id, f"qa {sample_id}")
    return response


@router.post("/qa/{sample_id}/{call_id}")
async def qa_review_submit(request: Request, sample_id: str, call_id: str, user: Viewer = Depends(role(*QA))):
    ctx = web(request)
    form = await request.form()
    items = await run_in_threadpool(views.qa_card_items, ctx, sample_id, call_id)  # the card of that call
    scores = {i["id"]: str(form.get(i["id"], "")) for i in items or scorecard_items()}
    try:  # database work off the event loop
        await run_in_threadpool(views.store_review, ctx, request, user, sample_id, call_id, scores,
                                str(form.get("comment", "")))
    except ValueError as exc:  # the validator's reason, said in the reviewer's language
        missing = [name("qa_item", i, user.lang) for i, v in scores.items() if not v]
        error = (text("error.review_missing", user.lang, items=text("punct.comma", user.lang).join(missing))
                 if missing else text("error.review_invalid", user.lang, reason=str(exc)))
        card = await run_in_threadpool(views.qa_card, ctx, sample_id, call_id, user.username)
        for item in card["items"]:
            item["answer"] = scores.get(item["id"]) or item["answer"]
        return await run_in_threadpool(_review_page, request, user, sample_id, call_id, card, error, 422)
    return ctx.redirect(user, f"/qa/{sample_id}/{call_id}", "review_saved")
