"""What every route shares: the store, the settings, the session signer and the templates (one
`WebContext` per app, on `app.state.web`), and the dependencies that say who is asking and
whether their role may (`role`), with CSRF checked on every POST."""
from __future__ import annotations

import hmac
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from ipaddress import ip_address, ip_network
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup, escape

from pipeline.analysis.escalation import threat_sources
from pipeline.analysis.i18n import LANGUAGES, mmss, name, text
from pipeline.config.settings import Settings, SettingsError
from pipeline.outputs.briefing import facts_by_sentence
from pipeline.outputs.qa import item_values
from pipeline.store import CALLBACK_OUTCOMES, Store, StoreBusy

from . import auth
from .timefmt import call_time, utc_time

HERE = Path(__file__).resolve().parent
PLAY_LEAD_SECONDS = 3.0  # a play button starts this much before the moment, so the context is heard
SESSION_COOKIE, LOGIN_COOKIE, FLASH_COOKIE = "cb_session", "cb_login", "cb_flash"
# What a page says after a POST redirected to it: fixed texts (translations.json "flash.<key>"),
# picked by a key the server signed for that user and page (never text from the URL), shown once.
FLASHES = ("callback_recorded", "review_saved", "settings_saved", "sample_done")
DEFAULT_LANG = "zh"  # a Mandarin centre: pages without a user (login, errors) unless the browser asks for English
HTML_LANG = {"zh": "zh-CN", "en": "en"}
FLASH_SECONDS = 60
ID_SHOWN = re.compile(r"[A-Za-z0-9._-]{1,64}")
USER_TTL = 3.0  # seconds a user's role/epoch is trusted without asking the database again

# Who may open what. A handler calls customers back; QA reviews calls; a lead sees everything.
CALLS = ("handler", "qa", "lead", "admin")
HANDLING = ("handler", "lead", "admin")
QA = ("qa", "lead", "admin")
LEADS = ("lead", "admin")
HOME = {"handler": "/worklist", "qa": "/qa", "lead": "/dashboard", "admin": "/dashboard"}


class NotLoggedIn(Exception):
    pass


class Refused(HTTPException):
    """An HTTP error whose message is a translation ("error.<key>"): a page says it in the viewer's
    language, the JSON API in English. A value given as (group, code) is shown as that code's name."""

    def __init__(self, status: int, key: str, **values):
        self.key, self.values = f"error.{key}", values
        super().__init__(status, text(self.key, "en", **named(values, "en")))

    def message(self, lang: str) -> str:
        return text(self.key, lang, **named(self.values, lang))


def named(values: dict, lang: str) -> dict:
    return {k: name(*v, lang) if isinstance(v, tuple) else v for k, v in values.items()}


@dataclass(frozen=True)
class Viewer:
    username: str
    role: str
    csrf: str
    lang: str = DEFAULT_LANG  # the language every page is in for them (users.lang)


@dataclass
class WebContext:
    store: Store
    settings: Settings
    sessions: auth.Sessions
    templates: Jinja2Templates
    # Who a cookie's user is now (role, disabled, session epoch), kept a few seconds so a page does
    # not pay an extra database connection; logout here clears it at once, a `callbrief users`
    # change made elsewhere applies within USER_TTL.
    user_cache: dict[str, tuple[float, tuple | None]] = field(default_factory=dict)

    @property
    def tz(self):
        return self.settings.tz

    @property
    def target(self) -> int:
        return self.settings.callback_target_minutes

    @property
    def db_path(self) -> Path:
        return self.store.path

    def now_local(self) -> datetime:
        return datetime.now(timezone.utc).astimezone(self.tz)

    def user_state(self, username: str) -> tuple | None:
        hit = self.user_cache.get(username)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        found = self.store.user_session_state(username)
        self.user_cache[username] = (time.monotonic() + USER_TTL, found)
        return found

    @property
    def trusted_proxies(self) -> tuple:
        return trusted_proxies(self.settings.web_trusted_proxies)

    def client(self, request: Request) -> str | None:
        """The address of the person asking (see `client_address`)."""
        return client_address(request, self.trusted_proxies)

    def audit(self, request: Request, user: str | None, user_role: str | None, action: str, target_id: str,
              detail: str = "") -> None:
        self.store.audit(user, user_role, action, target_id, detail, self.client(request))

    def page(self, request: Request, template: str, user: Viewer | None, status_code: int = 200,
             **context) -> HTMLResponse:
        """A page in the viewer's language (`t`, `name` and the date filters are bound to it); with
        the one-time message (FLASHES) a POST left for this user and this page."""
        key = self.sessions.read_flash(request.cookies.get(FLASH_COOKIE), user.username, request.url.path,
                                       FLASH_SECONDS) if user else None
        lang = user.lang if user else request_language(request)
        words = {"lang": lang, "html_lang": HTML_LANG[lang], "t": lambda k, **v: text(k, lang, **v),
                 "name": lambda group, code: name(group, code, lang),
                 "flash": text(f"flash.{key}", lang) if key in FLASHES else None}
        response = self.templates.TemplateResponse(request, template, {"user": user, **words, **context},
                                                   status_code=status_code)
        if FLASH_COOKIE in request.cookies:
            response.delete_cookie(FLASH_COOKIE)
        return response

    def redirect(self, user: Viewer, path: str, flash: str) -> RedirectResponse:
        """303 to `path` (a decoded path), whose page then says FLASHES[flash] once."""
        response = RedirectResponse(quote(path), status_code=303)
        response.set_cookie(FLASH_COOKIE, self.sessions.flash(flash, user.username, path), max_age=FLASH_SECONDS,
                            httponly=True, samesite="strict", secure=self.settings.web_cookie_secure)
        return response


def threat_chips(flags: list[str], sources: list[str] | None) -> list[tuple[str, str]]:
    """Each flag once: a threat flag whose authority or channel is known is shown by those (扬言向
    金融监管总局(12378)投诉, not also 扬言向监管投诉); other flags as they are. (group, code) pairs."""
    category = {k: v["category"] for k, v in threat_sources()["sources"].items()}
    sources = list(dict.fromkeys(sources or []))
    named = {category.get(s) for s in sources}
    out = [("flag", f) for f in flags if f not in named]
    return out + [("source", s) for s in sources]


def request_language(request: Request) -> str:
    """The language of a page without a user: the first supported one the browser's Accept-Language
    names, else DEFAULT_LANG."""
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower().split("-")[0]
        if tag in LANGUAGES:
            return tag
    return DEFAULT_LANG


@lru_cache(maxsize=8)
def trusted_proxies(setting: str) -> tuple:
    """The `web_trusted_proxies` setting: comma-separated addresses or networks (10.0.0.5, 10.0.0.0/24)."""
    try:
        return tuple(ip_network(p.strip(), strict=False) for p in setting.split(",") if p.strip())
    except ValueError as exc:
        raise SettingsError(f"setting web_trusted_proxies: {exc} (use addresses or networks, comma-separated)") from None


def client_address(request: Request, proxies: tuple) -> str | None:
    """Who is asking: the address that connected, unless it is one of our reverse proxies
    (`web_trusted_proxies`); then the right-most address in X-Forwarded-For that is not one of
    them. Each proxy appends the address it got the request from, so that one is the client's;
    addresses to its left were sent by the client and may be made up. With no proxy configured
    the header is ignored (anyone can send it)."""
    address = request.client.host if request.client else None
    if not proxies or not _among(address, proxies):
        return address
    hops = [a.strip() for header in request.headers.getlist("x-forwarded-for") for a in header.split(",") if a.strip()]
    for hop in reversed(hops):
        try:
            ip_address(hop)
        except ValueError:
            return address  # a malformed entry: stop at the last address we can trust
        address = hop
        if not _among(hop, proxies):
            break
    return address


def _among(address: str | None, networks: tuple) -> bool:
    try:
        return address is not None and any(ip_address(address) in n for n in networks)
    except ValueError:
        return False


def build_templates(settings: Settings) -> Jinja2Templates:
    tz = settings.tz
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(mmss=mmss, clock=clock, target=settings.callback_target_minutes,
                                 tzname=settings.timezone, lead=PLAY_LEAD_SECONDS, outcomes=CALLBACK_OUTCOMES,
                                 item_values=item_values, told=facts_by_sentence)
    # Dates and spans in the page's language (the `lang` every page has, see WebContext.page).
    templates.env.filters["local"] = pass_context(lambda c, v: clock(c, utc_time(v, tz)))
    templates.env.filters["calltime"] = pass_context(lambda c, v: clock(c, call_time(v, tz)))
    templates.env.filters["highlight"] = highlight
    templates.env.filters["span"] = pass_context(lambda c, v: span(v, c.get("lang")))
    templates.env.filters["band"] = band
    templates.env.filters["chips"] = threat_chips
    templates.env.filters["tojson_pretty"] = lambda v: json.dumps(v, ensure_ascii=False, indent=1, default=str)
    return templates


def web(request: Request) -> WebContext:
    return request.app.state.web


def viewer(request: Request) -> Viewer:
    ctx = web(request)
    data = ctx.sessions.read(request.cookies.get(SESSION_COOKIE))
    if not data:
        raise NotLoggedIn()
    found = ctx.user_state(data["u"])
    if not found or found[1] or found[2] != data["e"]:
        raise NotLoggedIn()
    return Viewer(data["u"], found[0], data["c"], found[3])


def signed_in(request: Request) -> Viewer | None:
    """The viewer if the request carries a valid session: error pages keep the navigation bar."""
    try:
        return viewer(request)
    except (NotLoggedIn, StoreBusy):
        return None


def role(*allowed: str):
    """A dependency: the logged-in viewer, if their role is one of `allowed`; on a POST, the form's
    or header's CSRF token must be theirs."""
    async def check(request: Request, v: Viewer = Depends(viewer)) -> Viewer:
        if v.role not in allowed:
            raise Refused(403, "role", role=("user_role", v.role))
        if request.method == "POST":
            sent = request.headers.get("x-csrf-token")
            if not sent and request.headers.get("content-type", "").startswith(
                    ("application/x-www-form-urlencoded", "multipart/form-data")):
                sent = (await request.form()).get("csrf_token")  # Starlette caches the parsed form
            if not sent or not hmac.compare_digest(str(sent), v.csrf):
                raise Refused(403, "csrf")
        return v
    return check


def shown(value: str) -> str | tuple[str, str]:
    """An id from the URL, as a message may repeat it: only when it looks like an id, so a link
    cannot put sentences of its own into the page's message box (else "(not a valid id)", a
    translation: see `named`)."""
    value = str(value).strip()
    return value if ID_SHOWN.fullmatch(value) else ("web", "invalid_id")


@pass_context
def clock(context, value: datetime | None) -> str:
    """A local time in the page's language's format (translations.json "format.datetime")."""
    return value.strftime(text("format.datetime", context.get("lang"))) if value else "—"


def span(minutes: float, lang: str | None = None) -> str:
    """75 -> '1 h 15 min' (zh '1 小时 15 分钟'), 4935 -> '3 d 10 h'."""
    m = int(round(abs(minutes)))
    if m < 120:
        return text("format.minutes", lang, m=m)
    if m < 48 * 60:
        return text("format.hours", lang, h=m // 60, m=m % 60)
    return text("format.days", lang, d=m // 1440, h=m % 1440 // 60)


def band(score: float | None) -> str:
    """The CSS class of a 0-100 score's colour, by bands of ten ('s0'..'s10'): a class, since the
    Content-Security-Policy allows no style attribute."""
    return f"s{round(min(max(float(score or 0), 0.0), 100.0) / 10)}"


def highlight(text: str | None, words: list[str]) -> Markup:
    """Escaped text with the searched words marked (`<mark class="hit-word">`: a class, since the
    Content-Security-Policy allows no style attribute). A Latin word is marked where it stands as a
    word ("card", not inside "discard", nor inside an HTML entity); a Chinese word wherever it
    appears, as jieba indexed it."""
    escaped = str(escape(text or ""))
    patterns = []
    for word in sorted((w for w in words if w), key=len, reverse=True):
        pattern = re.escape(str(escape(word)))
        patterns.append(rf"(?<![a-z0-9&#]){pattern}(?![a-z0-9])" if word[0].isascii() else pattern)
    if patterns:
        escaped = re.sub("|".join(patterns), lambda m: f'<mark class="hit-word">{m.group(0)}</mark>', escaped,
                         flags=re.IGNORECASE)
    return Markup(escaped)


def jsonable(value):
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))
