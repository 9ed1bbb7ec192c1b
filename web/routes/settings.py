"""For every role: their own settings (the language the pages are in)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request

from pipeline.analysis.i18n import LANGUAGES, text

from ..context import CALLS, Refused, Viewer, role, web

router = APIRouter(include_in_schema=False)


@router.get("/settings")
def settings_page(request: Request, user: Viewer = Depends(role(*CALLS))):
    # Each language is also named in itself, so a person who cannot read the page still finds theirs.
    return web(request).page(request, "settings.html", user, languages=LANGUAGES,
                             own_name=lambda lang: text(f"lang.{lang}", lang))


@router.post("/settings")
def settings_submit(request: Request, lang: str = Form(""), user: Viewer = Depends(role(*CALLS))):
    ctx = web(request)
    if lang not in LANGUAGES:
        raise Refused(422, "language", languages=", ".join(LANGUAGES))
    ctx.store.set_user_lang(user.username, lang)
    ctx.user_cache.pop(user.username, None)  # the next page is in the new language at once
    ctx.audit(request, user.username, user.role, "settings", user.username, f"lang={lang}")
    return ctx.redirect(user, "/settings", "settings_saved")
