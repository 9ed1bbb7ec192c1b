"""For every role: a call's page, its recording (range requests, so the player seeks), its plot
file, and search across calls."""
from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from pipeline.outputs.plots import escalation_svg

from .. import search, views
from ..context import CALLS, Refused, Viewer, role, web

router = APIRouter(include_in_schema=False)
AUDIO_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
               ".m4a": "audio/mp4", ".opus": "audio/ogg"}


@router.get("/calls/{call_id}")
def call_page(request: Request, call_id: str, t: float | None = None, user: Viewer = Depends(role(*CALLS))):
    ctx = web(request)
    call = views.call(ctx, call_id)
    ctx.audit(request, user.username, user.role, "view_call", call_id)
    return ctx.page(request, "call.html", user, call=call, start_at=t, audio_blocked=views.audio_blocked(ctx, call_id, user.lang),
                    original_allowed=views.may_play_original(ctx, user),
                    plot=escalation_svg(call["turns"], call["duration"] or 0, call_id, language=user.lang))


@router.get("/calls/{call_id}/audio")
def call_audio(request: Request, call_id: str, user: Viewer = Depends(role(*CALLS))):
    """The redacted copy (never the original), with Range requests answered so the player seeks."""
    ctx = web(request)
    data = views.redacted(ctx, call_id)
    ctx.audit(request, user.username, user.role, "play_audio", call_id, request.headers.get("range", "")[:60])
    headers = {"Cache-Control": "private, no-store", "Accept-Ranges": "bytes"}
    wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", request.headers.get("range", "").strip())
    if wanted and (wanted.group(1) or wanted.group(2)):
        first, last = wanted.groups()
        start = int(first) if first else max(len(data) - int(last), 0)
        end = min(int(last), len(data) - 1) if first and last else len(data) - 1
        if start >= len(data) or start > end:
            return Response(status_code=416, headers=headers | {"Content-Range": f"bytes */{len(data)}"})
        return Response(data[start:end + 1], status_code=206, media_type="audio/flac",
                        headers=headers | {"Content-Range": f"bytes {start}-{end}/{len(data)}"})
    return Response(data, media_type="audio/flac", headers=headers)


@router.post("/calls/{call_id}/audio/original")
async def call_original_audio(request: Request, call_id: str, user: Viewer = Depends(role(*CALLS))):
    """The original recording, for the roles the original_audio_roles setting names, each play
    audited with the reason the user typed."""
    ctx = web(request)
    if not views.may_play_original(ctx, user):
        raise Refused(403, "original_role", role=("user_role", user.role))
    reason = " ".join(str((await request.form()).get("reason", "")).split())
    if len(reason) < 10:
        raise Refused(422, "original_reason")
    path = await run_in_threadpool(views.audio_path, ctx, call_id)
    await run_in_threadpool(ctx.audit, request, user.username, user.role, "play_original_audio", call_id, reason[:500])
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
