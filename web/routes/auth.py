"""Logging in and out: a signed login form, password checks with back-off, session cookies."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from pipeline.analysis.i18n import text

from .. import auth
from ..context import CALLS, HOME, LOGIN_COOKIE, SESSION_COOKIE, Viewer, request_language, role, web

router = APIRouter(include_in_schema=False)


def safe_next(nxt: str | None) -> str | None:
    return nxt if nxt and nxt.startswith("/") and not nxt.startswith("//") else None


@router.get("/login")
def login_form(request: Request, next: str | None = None):
    return _login_page(request, next)


def _login_page(request: Request, next: str | None, problem: tuple[str, dict] | None = None):
    """`problem`: what the login just posted got (web.auth's fixed answers, a translation key and
    its values), never text from the URL."""
    ctx = web(request)
    token = ctx.sessions.login_token()
    error = text(problem[0], request_language(request), **problem[1]) if problem else None
    response = ctx.page(request, "login.html", None, csrf=token, next=safe_next(next) or "", error=error)
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                        secure=ctx.settings.web_cookie_secure)
    return response


@router.post("/login")
def login_submit(request: Request, username: str = Form(""), password: str = Form(""),
                 csrf_token: str = Form(""), next: str = Form("")):
    ctx = web(request)
    if not ctx.sessions.check_login_token(request.cookies.get(LOGIN_COOKIE), csrf_token):
        return _login_page(request, next, ("login.expired", {}))
    result = auth.login(ctx.store, username, password, ctx.client(request))
    ctx.user_cache.pop(username.strip(), None)
    if not result.user:
        ctx.audit(request, username[:40], None, "login_failed", username[:40], result.error or "")
        response = _login_page(request, next, result.problem)
        response.status_code = 401
        return response
    ctx.audit(request, result.user.username, result.user.role, "login", result.user.username)
    cookie, _ = ctx.sessions.issue(result.user)
    response = RedirectResponse(safe_next(next) or HOME[result.user.role], status_code=303)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=ctx.settings.web_session_minutes * 60, httponly=True,
                        samesite="strict", secure=ctx.settings.web_cookie_secure)
    response.delete_cookie(LOGIN_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, user: Viewer = Depends(role(*CALLS))):
    ctx = web(request)
    ctx.store.end_user_sessions(user.username)
    ctx.user_cache.pop(user.username, None)
    ctx.audit(request, user.username, user.role, "logout", user.username)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/")
def home(user: Viewer = Depends(role(*CALLS))):
    return RedirectResponse(HOME[user.role], status_code=303)
