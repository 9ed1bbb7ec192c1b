"""The FastAPI app: login, roles, audit, and the pages for handlers, QA staff and leads.

`create_app(db_path, settings)` builds the app; every request opens the database briefly
(web.db) and nothing holds it between requests, so the nightly run can write in between.
"""
from __future__ import annotations

import csv
import hmac
import io
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.outputs.briefing import facts_by_sentence
from pipeline.config.settings import Settings

from . import auth, queries, search
from .charts import bar_chart, escalation_svg
from .db import DatabaseBusy, reading, rows, writing
from .labels import label
from .schema import CALLBACK_OUTCOMES
from .timefmt import call_time, clock, mmss, utc_time

HERE = Path(__file__).resolve().parent
PLAY_LEAD_SECONDS = 3.0  # a play button starts this much before the moment, so the context is heard
SESSION_COOKIE, LOGIN_COOKIE = "cb_session", "cb_login"
DASHBOARD_DAYS = 31
WORKLIST_ROWS = 200  # the most urgent; a longer list is not worked from one page
USER_TTL = 3.0  # seconds a user's role/epoch is trusted without asking the database again
AUDIO_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
               ".m4a": "audio/mp4", ".opus": "audio/ogg"}

# Who may open what. A handler calls customers back; QA reviews calls; a lead sees everything.
CALLS = ("handler", "qa", "lead", "admin")
HANDLING = ("handler", "lead", "admin")
QA = ("qa", "lead", "admin")
LEADS = ("lead", "admin")
HOME = {"handler": "/worklist", "qa": "/qa", "lead": "/dashboard", "admin": "/dashboard"}


class NotLoggedIn(Exception):
    pass


@dataclass(frozen=True)
class Viewer:
    username: str
    role: str
    csrf: str


@lru_cache(maxsize=1)
def scorecard() -> list[dict]:
    from pipeline.config.datafiles import read_json

    return read_json("qa_scorecard.json")["items"]


def item_values(item: dict) -> list[str]:
    """Allowed answers of a scorecard item: its own list when the definition has one."""
    return list(item.get("values") or ["pass", "fail", "n/a"])


def validate_scores(scores: dict[str, str]) -> dict[str, str]:
    items = {i["id"]: i for i in scorecard()}
    unknown = sorted(set(scores) - set(items))
    if unknown:
        raise ValueError(f"unknown scorecard item(s) {', '.join(unknown)}")
    missing = [i for i in items if not scores.get(i)]
    if missing:
        raise ValueError(f"answer every item; missing: {', '.join(missing)}")
    for key, value in scores.items():
        if value not in item_values(items[key]):
            raise ValueError(f"{key}: {value!r} is not one of {', '.join(item_values(items[key]))}")
    return scores


def create_app(db_path: Path | str, settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    db_path = Path(db_path).resolve()
    tz = settings.tz
    auth.ensure_schema(db_path)
    secret_file = Path(settings.web_secret_file) if settings.web_secret_file else db_path.parent / "web-secret.key"
    sessions = auth.Sessions(auth.load_secret(secret_file), settings.web_session_minutes * 60)
    target = settings.callback_target_minutes
    # Words a batch added since the last start are indexed in the background, not on the first search.
    indexer = threading.Thread(target=search.refresh_index, args=(db_path, 30.0), daemon=True, name="search-index")
    indexer.start()

    app = FastAPI(title="callbrief", description="Call briefings, search, QA review and dashboards. "
                  "Every endpoint needs a logged-in session (log in at /login); POSTs need the "
                  "X-CSRF-Token header from /api/me.", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.indexer = indexer
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(label=label, mmss=mmss, clock=clock, target=target, tzname=settings.timezone,
                                 lead=PLAY_LEAD_SECONDS, outcomes=CALLBACK_OUTCOMES, item_values=item_values,
                                 told=facts_by_sentence)
    templates.env.filters["local"] = lambda v: clock(utc_time(v, tz))
    templates.env.filters["calltime"] = lambda v: clock(call_time(v, tz))
    templates.env.filters["highlight"] = highlight
    templates.env.filters["span"] = span
    templates.env.filters["tojson_pretty"] = lambda v: json.dumps(v, ensure_ascii=False, indent=1, default=str)

    def now_local() -> datetime:
        return datetime.now(timezone.utc).astimezone(tz)

    # --- auth ----------------------------------------------------------------------------

    # Who a cookie's user is now (role, disabled, session epoch), kept a few seconds so a page does
    # not pay an extra database connection; logout here clears it at once, a `callbrief users`
    # change made elsewhere applies within USER_TTL.
    user_cache: dict[str, tuple[float, tuple | None]] = {}

    def user_state(username: str) -> tuple | None:
        hit = user_cache.get(username)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        with reading(db_path) as conn:
            found = conn.execute("SELECT role, disabled, session_epoch FROM users WHERE username = ?",
                                 [username]).fetchone()
        user_cache[username] = (time.monotonic() + USER_TTL, found)
        return found

    def viewer(request: Request) -> Viewer:
        data = sessions.read(request.cookies.get(SESSION_COOKIE))
        if not data:
            raise NotLoggedIn()
        found = user_state(data["u"])
        if not found or found[1] or found[2] != data["e"]:
            raise NotLoggedIn()
        return Viewer(data["u"], found[0], data["c"])

    def role(*allowed: str):
        async def check(request: Request, v: Viewer = Depends(viewer)) -> Viewer:
            if v.role not in allowed:
                raise HTTPException(403, f"your role ({v.role}) cannot open this page; it is for: {', '.join(allowed)}")
            if request.method == "POST":
                sent = request.headers.get("x-csrf-token")
                if not sent and request.headers.get("content-type", "").startswith(
                        ("application/x-www-form-urlencoded", "multipart/form-data")):
                    sent = (await request.form()).get("csrf_token")  # Starlette caches the parsed form
                if not sent or not hmac.compare_digest(str(sent), v.csrf):
                    raise HTTPException(403, "the form has expired or did not come from this site (CSRF check); reload the page")
            return v
        return check

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def audit(request: Request, user: str | None, user_role: str | None, action: str, target_id: str,
              detail: str = "") -> None:
        with writing(db_path) as conn:
            conn.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [auth.now(), user, user_role, action, target_id, detail,
                          request.client.host if request.client else None])

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/") and request.url.path != "/api/docs"  # docs is a page

    @app.exception_handler(NotLoggedIn)
    async def not_logged_in(request: Request, exc: NotLoggedIn):
        if is_api(request):
            return JSONResponse({"detail": "log in first"}, status_code=401)
        nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(f"/login?next={quote(nxt)}", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    def signed_in(request: Request) -> Viewer | None:
        """The viewer if the request carries a valid session: error pages keep the navigation bar."""
        try:
            return viewer(request)
        except (NotLoggedIn, DatabaseBusy):
            return None

    def error_page(request: Request, status: int, message: str, headers: dict | None = None) -> HTMLResponse:
        return templates.TemplateResponse(request, "error.html", {"status": status, "message": message,
                                                                  "user": signed_in(request)},
                                          status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)  # also unknown paths, not only our own raises
    async def http_error(request: Request, exc: HTTPException):
        if is_api(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return error_page(request, exc.status_code, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        fields = ", ".join(str(e.get("loc", ["?"])[-1]) for e in exc.errors())
        message = f"missing or invalid field(s): {fields}"
        if is_api(request):
            return JSONResponse({"detail": message}, status_code=422)
        return error_page(request, 422, message)

    @app.exception_handler(DatabaseBusy)
    async def busy(request: Request, exc: DatabaseBusy):
        if is_api(request):
            return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})
        return error_page(request, 503, str(exc), {"Retry-After": "5"})

    def page(request: Request, name: str, user: Viewer, **context) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"user": user, **context})

    # --- login ---------------------------------------------------------------------------

    def safe_next(nxt: str | None) -> str | None:
        return nxt if nxt and nxt.startswith("/") and not nxt.startswith("//") else None

    @app.get("/login", include_in_schema=False)
    def login_form(request: Request, next: str | None = None, error: str | None = None):
        token = sessions.login_token()
        response = templates.TemplateResponse(request, "login.html", {"user": None, "csrf": token,
                                                                      "next": safe_next(next) or "", "error": error})
        response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                            secure=settings.web_cookie_secure)
        return response

    @app.post("/login", include_in_schema=False)
    def login_submit(request: Request, username: str = Form(""), password: str = Form(""),
                     csrf_token: str = Form(""), next: str = Form("")):
        if not sessions.check_login_token(request.cookies.get(LOGIN_COOKIE), csrf_token):
            return login_form(request, next, "The login form expired; please try again.")
        result = auth.login(db_path, username, password)
        user_cache.pop(username.strip(), None)
        if not result.user:
            audit(request, username[:40], None, "login_failed", username[:40], result.error or "")
            response = login_form(request, next, result.error)
            response.status_code = 401
            return response
        audit(request, result.user.username, result.user.role, "login", result.user.username)
        cookie, _ = sessions.issue(result.user)
        response = RedirectResponse(safe_next(next) or HOME[result.user.role], status_code=303)
        response.set_cookie(SESSION_COOKIE, cookie, max_age=settings.web_session_minutes * 60, httponly=True,
                            samesite="strict", secure=settings.web_cookie_secure)
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, user: Viewer = Depends(role(*CALLS))):
        auth.end_sessions(db_path, user.username)
        user_cache.pop(user.username, None)
        audit(request, user.username, user.role, "logout", user.username)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/", include_in_schema=False)
    def home(user: Viewer = Depends(role(*CALLS))):
        return RedirectResponse(HOME[user.role], status_code=303)

    # --- data shared by pages and the API ---------------------------------------------------

    def worklist_data() -> list[dict]:
        with reading(db_path) as conn:
            return queries.worklist(conn, tz, target, now_local(), settings.policy.levels)

    def briefing_data(customer_id: str) -> dict:
        with reading(db_path) as conn:
            calls = queries.customer_calls(conn, customer_id)
            if not calls:
                raise HTTPException(404, f"no processed calls for customer {customer_id.strip()}")
            cid = rows(conn, "SELECT customer_id FROM calls WHERE call_id = ?", [calls[0]["call_id"]])[0]["customer_id"]
            brief = queries.latest_briefings(conn, [cid]).get(cid)
            latest = calls[0]
            turns = rows(conn, 'SELECT seq, role, start, "end", score, signals FROM turns WHERE call_id = ? '
                               "ORDER BY seq", [latest["call_id"]])
            callbacks = queries.callbacks_of(conn, cid)
        for t in turns:
            t["flags"] = [c for c in queries._json(t.pop("signals"), {}).get("categories", [])
                          if c in settings.policy.reported_flags]
        for c in calls:
            c["flags"] = queries._json(c["flags"], [])
        return {"customer_id": cid, "briefing": brief, "calls": calls, "latest": latest, "turns": turns,
                "callbacks": callbacks, "deadlines": queries.deadlines_view(brief or {}, tz, now_local())}

    def call_data(call_id: str) -> dict:
        with reading(db_path) as conn:
            call = queries.call_detail(conn, call_id, settings.policy.reported_flags)
        if not call:
            raise HTTPException(404, f"no call {call_id}")
        return call

    def search_params(request: Request) -> dict:
        q = request.query_params
        parse = lambda v: datetime.fromisoformat(v) if v else None  # noqa: E731
        try:
            date_from, date_to = parse(q.get("date_from")), parse(q.get("date_to"))
            if date_to and len(q.get("date_to", "")) <= 10:
                date_to += timedelta(days=1)  # a date "to" includes that whole day
            min_esc = float(q["min_escalation"]) if q.get("min_escalation") else None
        except ValueError as exc:
            raise HTTPException(422, f"bad search filter: {exc}") from None
        return {"words": q.get("q", ""), "customer": q.get("customer", ""), "agent": q.get("agent", ""),
                "case": q.get("case", ""), "flag": q.get("flag", ""), "category": q.get("category", ""),
                "date_from": date_from, "date_to": date_to, "min_escalation": min_esc}

    def search_data(params: dict) -> list[dict]:
        if params["words"].strip():
            search.refresh_index(db_path)
        with reading(db_path) as conn:
            hits = search.search(conn, **params)
        for h in hits:
            h["flags"] = queries._json(h["flags"], [])
        return hits

    def qa_card(sample_id: str, call_id: str, reviewer: str) -> dict:
        with reading(db_path) as conn:
            found = rows(conn, "SELECT * FROM qa_samples WHERE sample_id = ? AND call_id = ?", [sample_id, call_id])
            if not found:
                raise HTTPException(404, f"call {call_id} is not in QA sample {sample_id}")
            mine = rows(conn, "SELECT scores, comment, reviewed_at FROM qa_reviews WHERE sample_id = ? AND call_id = ? "
                              "AND reviewer = ? ORDER BY reviewed_at DESC LIMIT 1", [sample_id, call_id, reviewer])
        prefill = {c["item"]: c for c in queries._json(found[0]["scorecard"], [])}
        review = mine[0] if mine else None
        answers = queries._json(review["scores"], {}) if review else {}
        items = [{**i, "prefill": prefill.get(i["id"], {}).get("prefill"),
                  "evidence": prefill.get(i["id"], {}).get("evidence", []),
                  "answer": answers.get(i["id"]) or prefill.get(i["id"], {}).get("prefill")} for i in scorecard()]
        return {"sample": found[0], "items": items, "review": review}

    def store_review(request: Request, user: Viewer, sample_id: str, call_id: str, scores: dict, comment: str) -> None:
        """One review per reviewer per call: a second submission replaces the first."""
        validate_scores(scores)
        with writing(db_path) as conn:
            if not conn.execute("SELECT 1 FROM qa_samples WHERE sample_id = ? AND call_id = ?",
                                [sample_id, call_id]).fetchone():
                raise HTTPException(404, f"call {call_id} is not in QA sample {sample_id}")
            conn.execute("DELETE FROM qa_reviews WHERE sample_id = ? AND call_id = ? AND reviewer = ?",
                         [sample_id, call_id, user.username])
            conn.execute("INSERT INTO qa_reviews (sample_id, call_id, reviewer, reviewed_at, scores, comment) "
                         "VALUES (?, ?, ?, ?, ?, ?)", [sample_id, call_id, user.username, auth.now(),
                                                       json.dumps(scores), comment[:2000]])
        audit(request, user.username, user.role, "qa_review", call_id, sample_id)

    def rollup_data() -> list[dict]:
        with reading(db_path) as conn:
            return queries.qa_rollup(conn, scorecard())

    def dashboard_data(group: str) -> list[dict]:
        if group not in queries.GROUPS:
            raise HTTPException(422, f"group by one of {', '.join(queries.GROUPS)}")
        with reading(db_path) as conn:
            return queries.dashboard(conn, group, tz, target, levels=settings.policy.levels)

    def mark_callback(request: Request, user: Viewer, customer_id: str, outcome: str, note: str) -> None:
        if outcome not in CALLBACK_OUTCOMES:
            raise HTTPException(422, f"outcome must be one of {', '.join(CALLBACK_OUTCOMES)}")
        with writing(db_path) as conn:
            found = conn.execute("SELECT customer_id FROM calls WHERE lower(customer_id) = lower(?) LIMIT 1",
                                 [customer_id.strip()]).fetchone()
            if not found:
                raise HTTPException(404, f"no customer {customer_id}")
            conn.execute("INSERT INTO callbacks VALUES (?, ?, ?, ?, ?)",
                         [found[0], auth.now(), user.username, outcome, note[:2000]])
        audit(request, user.username, user.role, "callback_done", customer_id, outcome)

    def audio_path(call_id: str) -> Path:
        with reading(db_path) as conn:
            found = conn.execute("SELECT path FROM calls WHERE call_id = ?", [call_id]).fetchone()
        if not found or not found[0]:
            raise HTTPException(404, f"no recording for call {call_id}")
        path = Path(found[0])
        path = path if path.is_absolute() else db_path.parent / path
        if not path.is_file():
            raise HTTPException(404, f"the recording of {call_id} is no longer at {path.name}")
        return path

    # --- pages ---------------------------------------------------------------------------

    @app.get("/worklist", include_in_schema=False)
    def worklist_page(request: Request, user: Viewer = Depends(role(*HANDLING))):
        items = worklist_data()
        return page(request, "worklist.html", user, items=items[:WORKLIST_ROWS], n_items=len(items), now=now_local())

    @app.post("/customers/{customer_id}/callback", include_in_schema=False)
    def callback_submit(request: Request, customer_id: str, outcome: str = Form(...), note: str = Form(""),
                        user: Viewer = Depends(role(*HANDLING))):
        mark_callback(request, user, customer_id, outcome, note)
        return RedirectResponse(f"/customers/{quote(customer_id)}?done=1", status_code=303)

    @app.get("/customers/{customer_id}", include_in_schema=False)
    def briefing_page(request: Request, customer_id: str, user: Viewer = Depends(role(*HANDLING))):
        data = briefing_data(customer_id)
        audit(request, user.username, user.role, "view_briefing", data["customer_id"])
        latest = data["latest"]
        plot = escalation_svg(data["turns"], latest["duration"] or 0, latest["call_id"])
        return page(request, "briefing.html", user, plot=plot, now=now_local(), **data)

    @app.get("/calls/{call_id}", include_in_schema=False)
    def call_page(request: Request, call_id: str, t: float | None = None, user: Viewer = Depends(role(*CALLS))):
        call = call_data(call_id)
        audit(request, user.username, user.role, "view_call", call_id)
        return page(request, "call.html", user, call=call, start_at=t,
                    plot=escalation_svg(call["turns"], call["duration"] or 0, call_id))

    @app.get("/calls/{call_id}/audio", include_in_schema=False)
    def call_audio(request: Request, call_id: str, user: Viewer = Depends(role(*CALLS))):
        path = audio_path(call_id)
        audit(request, user.username, user.role, "play_audio", call_id, request.headers.get("range", "")[:60])
        # Starlette answers Range requests (206 + Content-Range), which is what lets the player seek.
        return FileResponse(path, media_type=AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream"),
                            headers={"Cache-Control": "private, no-store"})

    @app.get("/calls/{call_id}/plot.svg", include_in_schema=False)
    def call_plot(call_id: str, user: Viewer = Depends(role(*CALLS))):
        """The pipeline's own plot file (briefings link it relative to the database's folder)."""
        with reading(db_path) as conn:
            found = conn.execute("SELECT plot_path FROM escalation WHERE call_id = ?", [call_id]).fetchone()
        path = Path(found[0]) if found and found[0] else None
        if path is not None and not path.is_absolute():
            path = db_path.parent / path
        if path is None or not path.is_file():
            raise HTTPException(404, f"no escalation plot for call {call_id}")
        return FileResponse(path, media_type="image/svg+xml",
                            headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})

    @app.get("/search", include_in_schema=False)
    def search_page(request: Request, user: Viewer = Depends(role(*CALLS))):
        params = search_params(request)
        searched = any(v not in (None, "") for v in params.values())
        hits = search_data(params) if searched else []
        with reading(db_path) as conn:
            categories = [r[0] for r in conn.execute("SELECT DISTINCT category FROM summaries WHERE category IS NOT NULL "
                                                     "ORDER BY 1").fetchall()]
        return page(request, "search.html", user, hits=hits, searched=searched, q=request.query_params,
                    categories=categories, highlight=search.query_tokens(params["words"]))

    @app.get("/qa", include_in_schema=False)
    def qa_page(request: Request, user: Viewer = Depends(role(*QA))):
        with reading(db_path) as conn:
            queue = queries.qa_queue(conn, user.username)
        return page(request, "qa_queue.html", user, queue=queue)

    @app.get("/qa/rollup", include_in_schema=False)
    def rollup_page(request: Request, user: Viewer = Depends(role(*QA))):
        return page(request, "qa_rollup.html", user, agents=rollup_data(), items=scorecard())

    @app.get("/qa/export/{sample_id}.csv", include_in_schema=False)
    def qa_export(request: Request, sample_id: str, user: Viewer = Depends(role(*QA))):
        items = [i["id"] for i in scorecard()]
        with reading(db_path) as conn:
            found = rows(conn, "SELECT q.sample_id, q.call_id, q.agent_id, c.customer_id, c.started_at, q.stratum, "
                               "q.reason, e.call_score, r.reviewer, r.reviewed_at, r.scores, r.comment "
                               "FROM qa_samples q JOIN calls c USING (call_id) LEFT JOIN escalation e USING (call_id) "
                               "LEFT JOIN qa_reviews r USING (sample_id, call_id) WHERE q.sample_id = ? "
                               "ORDER BY q.call_id, r.reviewer", [sample_id])
        if not found:
            raise HTTPException(404, f"no QA sample {sample_id}")
        out = io.StringIO()
        writer = csv.writer(out)
        head = ["sample_id", "call_id", "agent_id", "customer_id", "started_at", "stratum", "reason", "escalation",
                "reviewer", "reviewed_at", "comment"]
        writer.writerow(head + items)
        for r in found:
            scores = queries._json(r["scores"], {})
            writer.writerow([r["sample_id"], r["call_id"], r["agent_id"], r["customer_id"], r["started_at"],
                             r["stratum"], r["reason"], r["call_score"], r["reviewer"], r["reviewed_at"],
                             r["comment"]] + [scores.get(i, "") for i in items])
        audit(request, user.username, user.role, "qa_export", sample_id)
        return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",  # BOM: Excel reads UTF-8
                        headers={"Content-Disposition": f'attachment; filename="{sample_id}.csv"'})

    @app.get("/qa/{sample_id}/{call_id}", include_in_schema=False)
    def qa_review_page(request: Request, sample_id: str, call_id: str, error: str | None = None,
                       saved: int = 0, user: Viewer = Depends(role(*QA))):
        card = qa_card(sample_id, call_id, user.username)
        call = call_data(call_id)
        audit(request, user.username, user.role, "view_call", call_id, f"qa {sample_id}")
        return page(request, "qa_review.html", user, call=call, start_at=None, error=error, saved=saved,
                    plot=escalation_svg(call["turns"], call["duration"] or 0, call_id), **card)

    @app.post("/qa/{sample_id}/{call_id}", include_in_schema=False)
    async def qa_review_submit(request: Request, sample_id: str, call_id: str, user: Viewer = Depends(role(*QA))):
        form = await request.form()
        scores = {i["id"]: str(form.get(i["id"], "")) for i in scorecard()}
        try:  # database work off the event loop
            await run_in_threadpool(store_review, request, user, sample_id, call_id, scores, str(form.get("comment", "")))
        except ValueError as exc:
            card = await run_in_threadpool(qa_card, sample_id, call_id, user.username)
            for item in card["items"]:
                item["answer"] = scores.get(item["id"]) or item["answer"]
            call = await run_in_threadpool(call_data, call_id)
            return templates.TemplateResponse(
                request, "qa_review.html", {"user": user, "call": call, "start_at": None, "error": str(exc),
                                            "saved": 0, "plot": escalation_svg(call["turns"], call["duration"] or 0, call_id),
                                            **card}, status_code=422)
        return RedirectResponse(f"/qa/{quote(sample_id)}/{quote(call_id)}?saved=1", status_code=303)

    @app.get("/dashboard", include_in_schema=False)
    def dashboard_page(request: Request, group: str = "day", user: Viewer = Depends(role(*LEADS))):
        data = dashboard_data(group)
        if group == "day":
            data = data[-DASHBOARD_DAYS:]  # a chart stays readable; older days are in the API and search
        link = {"day": lambda g: f"/search?date_from={g}&date_to={g}", "category": lambda g: f"/search?category={quote(g)}",
                "agent": lambda g: f"/search?agent={quote(g)}"}[group]
        charts = []
        for key, title, unit in (("calls", "Calls · 来电", ""), ("complaints", "Complaint calls · 投诉来电", ""),
                                 ("mean_escalation", "Mean escalation · 平均情绪升级", ""),
                                 ("high_escalation", f"High escalation (≥{settings.policy.levels.urgent:g}) · 高升级来电", ""),
                                 ("flags", "Flags · 风险标记", ""),
                                 ("callbacks_in_time", f"Complaints called back within {target} min · 按时回访", "")):
            bars = [(r["grp"], r[key], link(r["grp"]) + ("&min_escalation=" + f"{settings.policy.levels.urgent:g}"
                                                         if key == "high_escalation" else "")) for r in data]
            charts.append(bar_chart(title, bars, unit))
        return page(request, "dashboard.html", user, group=group, data=data, charts=charts, groups=list(queries.GROUPS))

    # --- JSON API ------------------------------------------------------------------------

    @app.get("/api/me", tags=["session"])
    def api_me(user: Viewer = Depends(role(*CALLS))) -> dict:
        """Who is logged in, and the CSRF token to send as X-CSRF-Token on POSTs."""
        return {"username": user.username, "role": user.role, "csrf_token": user.csrf}

    @app.get("/api/worklist", tags=["handlers"])
    def api_worklist(user: Viewer = Depends(role(*HANDLING))) -> list[dict]:
        """Customers waiting for a callback, most urgent first (times in the centre's time zone)."""
        return jsonable(worklist_data())

    @app.get("/api/customers/{customer_id}", tags=["handlers"])
    def api_briefing(request: Request, customer_id: str, user: Viewer = Depends(role(*HANDLING))) -> dict:
        """The customer's newest briefing, their calls and callbacks."""
        data = briefing_data(customer_id)
        audit(request, user.username, user.role, "view_briefing", data["customer_id"], "api")
        data.pop("turns")
        return jsonable(data)

    @app.post("/api/customers/{customer_id}/callback", tags=["handlers"])
    def api_callback(request: Request, customer_id: str, body: dict, user: Viewer = Depends(role(*HANDLING))) -> dict:
        """Mark a callback done: {"outcome": "resolved|follow_up|no_answer|escalated", "note": "..."}."""
        mark_callback(request, user, customer_id, str(body.get("outcome", "")), str(body.get("note", "")))
        return {"ok": True}

    @app.get("/api/calls/{call_id}", tags=["calls"])
    def api_call(request: Request, call_id: str, user: Viewer = Depends(role(*CALLS))) -> dict:
        """One call: masked turns with roles, times and scores; flags, summary, corrections."""
        call = call_data(call_id)
        audit(request, user.username, user.role, "view_call", call_id, "api")
        return jsonable(call)

    @app.get("/api/search", tags=["calls"])
    def api_search(request: Request, user: Viewer = Depends(role(*CALLS))) -> list[dict]:
        """Search turns: q (words, zh/en), customer, agent, case, flag, category, date_from, date_to, min_escalation."""
        return jsonable(search_data(search_params(request)))

    @app.get("/api/qa/queue", tags=["qa"])
    def api_qa_queue(user: Viewer = Depends(role(*QA))) -> list[dict]:
        """Sampled calls, the ones you have not reviewed first."""
        with reading(db_path) as conn:
            return jsonable(queries.qa_queue(conn, user.username))

    @app.get("/api/qa/{sample_id}/{call_id}", tags=["qa"])
    def api_qa_card(sample_id: str, call_id: str, user: Viewer = Depends(role(*QA))) -> dict:
        """The scorecard with prefilled answers and evidence, and your review if any."""
        return jsonable(qa_card(sample_id, call_id, user.username))

    @app.post("/api/qa/{sample_id}/{call_id}", tags=["qa"])
    def api_qa_review(request: Request, sample_id: str, call_id: str, body: dict,
                      user: Viewer = Depends(role(*QA))) -> dict:
        """Store your review: {"scores": {item: value}, "comment": "..."} (replaces your earlier one)."""
        scores = body.get("scores")
        if not isinstance(scores, dict):
            raise HTTPException(422, 'send {"scores": {"item": "pass|fail|n/a", ...}}')
        try:
            store_review(request, user, sample_id, call_id, {str(k): str(v) for k, v in scores.items()},
                         str(body.get("comment", "")))
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"ok": True}

    @app.get("/api/qa/rollup", tags=["qa"])
    def api_rollup(user: Viewer = Depends(role(*QA))) -> list[dict]:
        """Per agent: number of reviews and pass rate per scorecard item."""
        return jsonable(rollup_data())

    @app.get("/api/dashboard", tags=["leads"])
    def api_dashboard(group: str = "day", user: Viewer = Depends(role(*LEADS))) -> list[dict]:
        """Per day, category or agent: calls, complaints, mean/high escalation, flags, callbacks in time."""
        return jsonable(dashboard_data(group))

    @app.get("/api/openapi.json", include_in_schema=False)
    def api_schema(user: Viewer = Depends(role(*CALLS))):
        return JSONResponse(app.openapi())

    @app.get("/api/docs", include_in_schema=False)
    def api_docs(request: Request, user: Viewer = Depends(role(*CALLS))):
        # FastAPI's Swagger page loads its script from a CDN, which is not reachable offline:
        # the same OpenAPI document is rendered here as a plain page.
        return page(request, "api_docs.html", user, schema=app.openapi())

    return app


def span(minutes: float) -> str:
    """75 -> '1 h 15 min', 4935 -> '3 d 10 h'."""
    m = int(round(abs(minutes)))
    if m < 120:
        return f"{m} min"
    if m < 48 * 60:
        return f"{m // 60} h {m % 60} min"
    return f"{m // 1440} d {m % 1440 // 60} h"


def highlight(text: str | None, words: list[str]) -> Markup:
    """Escaped text with the searched words marked."""
    escaped = str(escape(text or ""))
    words = [str(escape(w)) for w in sorted(words, key=len, reverse=True) if w]
    if words:
        escaped = re.sub("|".join(re.escape(w) for w in words), lambda m: f"<mark>{m.group(0)}</mark>", escaped,
                         flags=re.IGNORECASE)
    return Markup(escaped)


def jsonable(value):
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))
