"""For every role: a call's page, its recording (range requests, so the player seeks), its plot
file, and search across calls."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from pipeline.outputs.plots import escalation_svg

from .. import search, views
from ..context import CALLS, Viewer, role, web
from ..labels import label

router = APIRouter(include_in_schema=False)
AUDIO_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
               ".m4a": "audio/mp4", ".opus": "audio/ogg"}


@router.get("/calls/{call_id}")
def call_page(request: Request, call_id: str, t: float | None = None, user: Viewer = Depends(role(*CALLS))):
    ctx = web(request)
    call = views.call(ctx, call_id)
    ctx.audit(request, user.username, user.role, "view_call", call_id)
    return ctx.page(request, "call.html", user, call=call, start_at=t,
                    plot=escalation_svg(call["turns"], call["duration"] or 0, call_id, label=label))


@router.get("/calls/{call_id}/audio")
def call_audio(request: Request, call_id: str, user: Viewer = Depends(role(*CALLS))):
    ctx = web(request)
    path = views.audio_path(ctx, call_id)
    ctx.audit(request, user.username, user.role, "play_audio", call_id, request.headers.get("range", "")[:60])
    # Starlette answers Range requests (206 + Content-Range), which is what lets the player seek.
    return FileResponse(path, media_type=AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream"),
                        headers={"Cache-Control": "private, no-store"})


@router.get("/calls/{call_id}/plot.svg")
def call_plot(request: Request, call_id: str, user: Viewer = Depends(role(*CALLS))):
    """The pipeline's own plot file (briefings link it relative to the database's folder)."""
    return FileResponse(views.plot_file(web(request), call_id), media_type="image/svg+xml",
                        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                                 "frame-ancestors 'none'"})


@router.get("/search")
def search_page(request: Request, user: Viewer = Depends(role(*CALLS))):
    ctx = web(request)
    params = views.search_params(request)
    searched = any(v not in (None, "") for v in params.values())
    hits = views.search_hits(ctx, params) if searched else []
    return ctx.page(request, "search.html", user, hits=hits, searched=searched, q=request.query_params,
                    categories=views.categories(ctx), highlight=search.query_tokens(params["words"]))
