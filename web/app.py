"""The FastAPI app: login, roles, audit, and the pages for handlers, QA staff and leads.

`create_app(db_path, settings)` builds the app from the routers in web/routes (one per
audience); every request opens the database briefly (pipeline.store) and nothing holds it
between requests, so the nightly run can write in between.
"""
from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.analysis.i18n import text
from pipeline.config.settings import Settings
from pipeline.store import Store, StoreBusy

from . import auth, search
from .context import (
    HERE,
    SESSION_COOKIE,
    NotLoggedIn,
    Refused,
    WebContext,
    build_templates,
    named,
    request_language,
    signed_in,
    trusted_proxies,
)
from .routes import api, calls, handler, lead, qa
from .routes import auth as login_routes
from .routes import settings as settings_routes

BUSY_WAIT_SECONDS = 15.0
# Sent with every response (pages, static files, the API, errors, redirects). Scripts and styles
# only from the app's own files: no inline script, event-handler attribute or style attribute
# (templates use classes, web/static/app.js binds the events); no framing; no Referer sent on.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                           "media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
                           "frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def create_app(db_path: Path | str, settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    trusted_proxies(settings.web_trusted_proxies)  # a bad setting stops the start, in one line
    # Creates the schema (the pipeline's tables and the app's) on a new file. A page waits at most
    # this long for a batch that holds the file (it frees it between calls), then says "busy".
    store = Store(db_path, wait_seconds=BUSY_WAIT_SECONDS)
    secret_file = Path(settings.web_secret_file) if settings.web_secret_file else store.path.parent / "web-secret.key"
    ctx = WebContext(store, settings, auth.Sessions(auth.load_secret(secret_file), settings.web_session_minutes * 60),
                     build_templates(settings))
    # Words a batch added since the last start are indexed in the background, not on the first search.
    indexer = threading.Thread(target=search.refresh_index, args=(store, 30.0), daemon=True, name="search-index")
    indexer.start()

    app = FastAPI(title="callbrief", description="Call briefings, search, QA review and dashboards. "
                  "Every endpoint needs a logged-in session (log in at /login); POSTs need the "
                  "X-CSRF-Token header from /api/me.", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.web = ctx
    app.state.indexer = indexer
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (login_routes, handler, calls, qa, lead, settings_routes, api):
        app.include_router(module.router)

    @app.middleware("http")
    async def headers(request: Request, call_next):
        return secured(await call_next(request))

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/") and request.url.path != "/api/docs"  # docs is a page

    def error_page(request: Request, status: int, key: str, values: dict | None = None, headers: dict | None = None,
                   user=None) -> HTMLResponse:
        """The message is a translation key and its values: said in the viewer's language (the
        browser's before login)."""
        lang = user.lang if user else request_language(request)
        message = text(key, lang, **named(values or {}, lang))
        response = ctx.page(request, "error.html", user, status_code=status, status=status, message=message)
        response.headers.update(headers or {})
        return response

    @app.exception_handler(NotLoggedIn)
    async def not_logged_in(request: Request, exc: NotLoggedIn):
        if is_api(request):
            return JSONResponse({"detail": "log in first"}, status_code=401)
        nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(f"/login?next={quote(nxt)}", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.exception_handler(StarletteHTTPException)  # also unknown paths, not only our own raises
    async def http_error(request: Request, exc: HTTPException):
        if is_api(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        if isinstance(exc, Refused):
            return error_page(request, exc.status_code, exc.key, exc.values, user=signed_in(request))
        # Starlette's own (an unknown path, a method not allowed): its English detail is not shown.
        key = {404: "error.not_found", 405: "error.method"}.get(exc.status_code, "error.http")
        return error_page(request, exc.status_code, key, {"status": exc.status_code}, user=signed_in(request))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        fields = ", ".join(str(e.get("loc", ["?"])[-1]) for e in exc.errors())
        if is_api(request):
            return JSONResponse({"detail": text("error.fields", "en", fields=fields)}, status_code=422)
        return error_page(request, 422, "error.fields", {"fields": fields}, user=signed_in(request))

    @app.exception_handler(Exception)  # answered outside the middleware, so it adds the headers itself
    async def crashed(request: Request, exc: Exception):
        if is_api(request):
            return secured(JSONResponse({"detail": "internal error"}, status_code=500))
        return secured(error_page(request, 500, "error.server"))

    @app.exception_handler(StoreBusy)
    async def busy(request: Request, exc: StoreBusy):
        if is_api(request):
            return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})
        return error_page(request, 503, "error.busy", headers={"Retry-After": "5"})  # no user: the database is busy

    return app


def secured(response: Response) -> Response:
    """The security headers; a response that sets its own policy (the plot file) keeps it."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    return response
