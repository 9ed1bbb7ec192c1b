"""The JSON API: what the pages show, for other tools; the same roles and CSRF rules."""
from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from .. import store as reads
from .. import views
from ..context import CALLS, HANDLING, LEADS, QA, Viewer, jsonable, role, web

router = APIRouter(prefix="/api")


@router.get("/me", tags=["session"])
def api_me(user: Viewer = Depends(role(*CALLS))) -> dict:
    """Who is logged in, and the CSRF token to send as X-CSRF-Token on POSTs."""
    return {"username": user.username, "role": user.role, "csrf_token": user.csrf}


@router.get("/worklist", tags=["handlers"])
def api_worklist(request: Request, user: Viewer = Depends(role(*HANDLING))) -> list[dict]:
    """Customers waiting for a callback, most urgent first (times in the centre's time zone)."""
    return jsonable(views.worklist(web(request)))


@router.get("/customers/{customer_id}", tags=["handlers"])
def api_briefing(request: Request, customer_id: str, user: Viewer = Depends(role(*HANDLING))) -> dict:
    """The customer's newest briefing, their calls and callbacks."""
    ctx = web(request)
    data = views.briefing(ctx, customer_id)
    ctx.audit(request, user.username, user.role, "view_briefing", data["customer_id"], "api")
    data.pop("turns")
    return jsonable(data)


@router.post("/customers/{customer_id}/callback", tags=["handlers"])
def api_callback(request: Request, customer_id: str, body: dict, user: Viewer = Depends(role(*HANDLING))) -> dict:
    """Mark a callback done: {"outcome": "resolved|follow_up|no_answer|escalated", "note": "..."}."""
    views.mark_callback(web(request), request, user, customer_id, str(body.get("outcome", "")), str(body.get("note", "")))
    return {"ok": True}


@router.get("/calls/{call_id}", tags=["calls"])
def api_call(request: Request, call_id: str, user: Viewer = Depends(role(*CALLS))) -> dict:
    """One call: masked turns with roles, times and scores; flags, summary, corrections."""
    ctx = web(request)
    call = views.call(ctx, call_id)
    ctx.audit(request, user.username, user.role, "view_call", call_id, "api")
    return jsonable(call)


@router.get("/search", tags=["calls"])
def api_search(request: Request, user: Viewer = Depends(role(*CALLS))) -> list[dict]:
    """Search turns: q (words, zh/en), customer, agent, case, flag, category, date_from, date_to, min_escalation."""
    return jsonable(views.search_hits(web(request), views.search_params(request)))


@router.get("/qa/queue", tags=["qa"])
def api_qa_queue(request: Request, user: Viewer = Depends(role(*QA))) -> list[dict]:
    """Sampled calls, the ones you have not reviewed first."""
    with web(request).store.reading() as conn:
        return jsonable(reads.qa_queue(conn, user.username))


@router.get("/qa/rollup", tags=["qa"])
def api_rollup(request: Request, user: Viewer = Depends(role(*QA))) -> list[dict]:
    """Per agent: number of reviews and pass rate per scorecard item."""
    return jsonable(views.rollup(web(request)))


@router.get("/qa/{sample_id}/{call_id}", tags=["qa"])
def api_qa_card(request: Request, sample_id: str, call_id: str, user: Viewer = Depends(role(*QA))) -> dict:
    """The scorecard with prefilled answers and evidence, and your review if any."""
    return jsonable(views.qa_card(web(request), sample_id, call_id, user.username))


@router.post("/qa/{sample_id}/{call_id}", tags=["qa"])
def api_qa_review(request: Request, sample_id: str, call_id: str, body: dict,
                  user: Viewer = Depends(role(*QA))) -> dict:
    """Store your review: {"scores": {item: value}, "comment": "..."} (replaces your earlier one)."""
    scores = body.get("scores")
    if not isinstance(scores, dict):
        raise HTTPException(422, 'send {"scores": {"item": "pass|fail|n/a", ...}}')
    try:
        views.store_review(web(request), request, user, sample_id, call_id,
                           {str(k): str(v) for k, v in scores.items()}, str(body.get("comment", "")))
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"ok": True}


@router.get("/dashboard", tags=["leads"])
def api_dashboard(request: Request, group: str = "day", user: Viewer = Depends(role(*LEADS))) -> list[dict]:
    """Per day, category or agent: calls, complaints, mean/high escalation, flags, callbacks in time."""
    return jsonable(views.dashboard(web(request), group))


@router.get("/openapi.json", include_in_schema=False)
def api_schema(request: Request, user: Viewer = Depends(role(*CALLS))):
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False)
def api_docs(request: Request, user: Viewer = Depends(role(*CALLS))):
    # FastAPI's Swagger page loads its script from a CDN, which is not reachable offline:
    # the same OpenAPI document is rendered here as a plain page.
    # Each endpoint is described from the translations ("api.<function name>") in the reader's
    # language: FastAPI's operation id is the function's name, then the path ("api_me_api_me_get").
    schema = request.app.openapi()  # FastAPI's cached document: read, never changed here
    keys = {op["operationId"]: "api." + op["operationId"].split("_api_")[0]
            for ops in schema["paths"].values() for op in ops.values()}
    return web(request).page(request, "api_docs.html", user, schema=schema, keys=keys)
