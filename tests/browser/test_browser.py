"""The web app in a real browser: Debian's headless Chromium driven by Selenium, against
`callbrief web` (uvicorn) on 127.0.0.1 serving a real DuckDB file of the replayed sample calls.
Screenshots go to data/out/screens/."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from evaluation.recognition import ROOT
from pipeline.store.connect import Database
from tests.webdb import PASSWORDS, make_web_db

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENS = ROOT / "data" / "out" / "screens"

pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                reason="needs Debian chromium and chromium-driver (make system)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> tuple[Path, list]:
    path = tmp_path_factory.mktemp("browser") / "callbrief.duckdb"
    return path, make_web_db(path)


@pytest.fixture(scope="module")
def db(replayed) -> Path:
    return replayed[0]


@pytest.fixture(scope="module")
def server(db):
    """`callbrief web` in its own process, as in production: the test's writer is another process."""
    port = free_port()
    env = {**os.environ, "CALLBRIEF_WEB_PORT": str(port), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "web", "--db", str(db)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"callbrief web exited: {proc.stdout.read()}")
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1440,1000",
                 "--autoplay-policy=no-user-gesture-required", "--mute-audio",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    # Every page records what its Content-Security-Policy blocked (this script is the browser's
    # own, from DevTools, so the policy does not block it).
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CSP_RECORDER})
    SCREENS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


CSP_RECORDER = """window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || '')));"""


def csp_violations(driver) -> list[str]:
    found = driver.execute_script("return window.__csp")
    assert found is not None, "the violation recorder did not run on this page"
    return found


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(SCREENS / f"{name}.png"))


def full_shot(driver, name: str) -> None:
    """The whole page, not just the window."""
    height = driver.execute_script("window.scrollTo(0, 0); return document.documentElement.scrollHeight")
    driver.set_window_size(1440, min(max(height + 40, 800), 4000))
    shot(driver, name)
    driver.set_window_size(1440, 1000)


def log_in(driver, server: str, username: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(server + "/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORDS[username][1])
    driver.find_element(By.ID, "login").click()
    # The click does not wait for the login's redirect: a page opened before it lands can be
    # overtaken by it (seen once: the QA start page instead of the page asked for).
    wait_for(lambda: "/login" not in driver.current_url and driver.get_cookie("cb_session"), what="logged in")


def wait_for(condition, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


PAGES = ["/worklist", "/customers/C1001", "/calls/zh-1001-b", "/search?q=test", "/qa", "/qa/rollup", "/dashboard",
         "/api/worklist", "/api/docs"]


def test_logged_out_every_page_sends_to_login(browser, server):
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    for path in PAGES:
        browser.get(server + path)
        if path.startswith("/api/") and path != "/api/docs":
            assert "log in first" in browser.find_element(By.TAG_NAME, "body").text, path
        else:
            assert browser.current_url.startswith(server + "/login"), path
            assert browser.find_element(By.ID, "password")
    browser.get(server + "/login")
    shot(browser, "01-login")


def test_handler_worklist_briefing_plot_and_play_from_the_right_second(browser, server):
    from selenium.webdriver.common.by import By

    log_in(browser, server, "hana")
    wait_for(lambda: browser.current_url.endswith("/worklist"), what="worklist")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.worklist tbody tr")
    assert rows and "C1001" in rows[0].text + rows[-1].text
    assert "扬言向金融监管总局(12378)投诉" in browser.page_source  # the threat by the authority named, in hana's language
    full_shot(browser, "02-worklist")

    browser.find_element(By.LINK_TEXT, "C1001").click()
    plot = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#plot svg.timeline"), what="plot")[0]
    assert plot.is_displayed() and plot.size["width"] > 400 and plot.size["height"] > 150
    # Flag labels on the plot do not overlap each other.
    boxes = browser.execute_script(
        "return Array.from(document.querySelectorAll('#plot svg text')).map(t => {const b = t.getBBox();"
        " return [b.x, b.y, b.width, b.height, t.textContent]})")
    flags = [b for b in boxes if b[4].startswith("⚑")]
    assert flags
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            overlap = a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]
            assert not overlap, (a[4], b[4])
    full_shot(browser, "03-briefing")

    button = browser.find_elements(By.CSS_SELECTOR, "button[data-play]")[0]
    start = float(button.get_attribute("data-t"))
    button.click()
    wait_for(lambda: browser.execute_script("const a = document.getElementById('player');"
                                            " return !a.paused && a.currentTime > arguments[0]", start),
             what="audio playing")
    playing = browser.execute_script("const a = document.getElementById('player');"
                                     " return [a.currentTime, a.paused, a.src]")
    assert start <= playing[0] < start + 3, playing  # from the moment's lead-in, not from 0
    assert playing[2].endswith("/calls/" + button.get_attribute("data-call") + "/audio")
    assert csp_violations(browser) == []  # the player and the plot work under the Content-Security-Policy
    shot(browser, "04-briefing-playing")
    browser.execute_script("document.getElementById('player').pause()")


def test_search_a_spoken_word_and_jump_to_the_turn(browser, server, db):
    from selenium.webdriver.common.by import By

    from web.search import tokens

    with Database(db, read_only=True).reading() as conn:
        seq, text = conn.execute("SELECT seq, redacted_text FROM turns WHERE call_id = 'zh-1001-a' AND role = 'customer' "
                                 "ORDER BY seq LIMIT 1").fetchone()
    word = max(tokens(text), key=len)  # a word said in the stored recognition of a sample call
    log_in(browser, server, "hana")
    browser.get(server + "/search")
    browser.find_element(By.ID, "q").send_keys(word)
    browser.find_element(By.ID, "search").click()
    links = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "a.hit-link"), what="search results")
    marked = browser.find_elements(By.CSS_SELECTOR, "li.hit .text mark.hit-word")
    assert marked and all(m.text.lower() in word for m in marked)  # the word highlighted, by a class
    assert marked[0].value_of_css_property("font-weight") in ("600", "bold")  # app.css applies under the CSP
    assert csp_violations(browser) == []
    full_shot(browser, "05-search")
    target = [a for a in links if "/calls/zh-1001-a?t=" in a.get_attribute("href")
              and a.get_attribute("href").endswith(f"#turn-{seq}")]
    assert target, word
    target[0].click()
    wait_for(lambda: f"#turn-{seq}" in browser.current_url, what="call view")
    turn = browser.find_element(By.ID, f"turn-{seq}")
    assert word in turn.text
    # Clicking a turn plays from its start.
    turn.click()
    t0 = float(turn.get_attribute("data-t"))
    wait_for(lambda: browser.execute_script("const a = document.getElementById('player');"
                                            " return !a.paused && a.currentTime >= arguments[0]", t0), what="turn playing")
    full_shot(browser, "06-call")
    browser.execute_script("document.getElementById('player').pause()")


def test_wrong_role_reaches_nothing_of_another_role(browser, server):
    from selenium.webdriver.common.by import By

    log_in(browser, server, "hana")  # a handler
    for path in ("/qa", "/qa/rollup", "/dashboard", "/api/dashboard", "/api/qa/queue"):
        browser.get(server + path)
        assert FORBIDDEN[path.startswith("/api/")] in browser.find_element(By.TAG_NAME, "body").text, path
        if path == "/dashboard":
            shot(browser, "07-forbidden")
    log_in(browser, server, "quinn")  # QA staff
    for path in ("/worklist", "/customers/C1001", "/dashboard", "/api/worklist"):
        browser.get(server + path)
        assert FORBIDDEN[path.startswith("/api/")] in browser.find_element(By.TAG_NAME, "body").text, path


FORBIDDEN = {True: "cannot open this page", False: "不能打开此页面"}  # the API says it in English, a page in the user's


def test_qa_review_submitted_shows_in_the_rollup(browser, server):
    from selenium.webdriver.common.by import By

    log_in(browser, server, "quinn")
    wait_for(lambda: browser.current_url.endswith("/qa"), what="qa queue")
    full_shot(browser, "08-qa-queue")
    link = browser.find_elements(By.CSS_SELECTOR, "table a[href^='/qa/qa-']")[0]
    link.click()
    form = wait_for(lambda: browser.find_elements(By.ID, "scorecard"), what="scorecard")[0]
    agent = browser.find_element(By.CSS_SELECTOR, "dl.key dd:nth-of-type(2)").text.strip()
    for name in browser.execute_script("return Array.from(new Set(Array.from(document.querySelectorAll("
                                       "'#scorecard input[type=radio]')).map(i => i.name)))"):
        browser.find_element(By.CSS_SELECTOR, f"#scorecard input[name='{name}'][value='pass']").click()
    browser.find_element(By.CSS_SELECTOR, "#scorecard input[name='closing'][value='fail']").click()
    form.find_element(By.NAME, "comment").send_keys("结束语不完整 · closing missed")
    full_shot(browser, "09-qa-review")
    browser.find_element(By.ID, "save-review").click()
    wait_for(lambda: "评审已保存" in browser.page_source, what="saved")
    browser.get(server + "/qa/rollup")
    row = browser.find_element(By.ID, f"agent-{agent}")
    assert row.find_element(By.CSS_SELECTOR, ".n-reviews").text == "1" and "0%" in row.text
    full_shot(browser, "10-qa-rollup")


def test_save_and_next_walks_a_whole_sample_by_keyboard(browser, server, db):
    """At 1366x768 the scorecard sits beside the transcript; j/k move between items, a digit picks
    an answer, s saves and opens the next call, until the sample is done; the dashboard then
    counts the reviews against the prefill."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from tests.dbfile import query

    log_in(browser, server, "lee")
    browser.set_window_size(1366, 768)
    try:
        browser.get(server + "/qa")
        first = browser.find_elements(By.CSS_SELECTOR, "table a[href^='/qa/qa-']")[0].get_attribute("href")
        sample_id = first.split("/qa/", 1)[1].split("/")[0]
        size = query(db, "SELECT count(*) FROM qa_samples WHERE sample_id = ?", [sample_id])[0][0]
        browser.get(first)
        visited = []
        while "/qa/" + sample_id + "/" in browser.current_url:
            url = browser.current_url
            visited.append(url.rsplit("/", 1)[-1])
            assert len(visited) <= size
            call, card = browser.find_element(By.CSS_SELECTOR, ".qa-call"), browser.find_element(By.CSS_SELECTOR, ".qa-card")
            assert card.rect["x"] >= call.rect["x"] + call.rect["width"] and card.rect["width"] >= 440  # side by side
            items = browser.find_elements(By.CSS_SELECTOR, "#scorecard fieldset.item")
            keys = ActionChains(browser)
            keys.send_keys("j").send_keys("k")  # down and back up: the first item is current again
            keys.perform()
            assert "current" in items[0].get_attribute("class")
            if len(visited) == 1:
                shot(browser, "09b-qa-review-side-by-side-1366x768")
            for _ in items:
                ActionChains(browser).send_keys("1").perform()  # the first answer, then on to the next item
            firsts = [f.find_elements(By.CSS_SELECTOR, "input[type=radio]")[0] for f in items]
            assert all(r.is_selected() for r in firsts)
            ActionChains(browser).send_keys("s").perform()
            wait_for(lambda: browser.current_url != url, what="the next call")
        assert browser.current_url.endswith("/qa") and len(visited) == size
        assert "本批次的通话你都已评审" in browser.find_element(By.CSS_SELECTOR, "p.ok").text
        assert query(db, "SELECT count(*) FROM qa_reviews WHERE reviewer = 'lee' AND sample_id = ?", [sample_id])[0][0] == size
        browser.get(server + "/dashboard")
        assert browser.find_elements(By.CSS_SELECTOR, "#qa-agreement tbody tr")
        full_shot(browser, "11b-dashboard-qa")
    finally:
        browser.set_window_size(1440, 1000)


def test_lead_dashboard_charts_link_to_the_numbers(browser, server):
    from selenium.webdriver.common.by import By

    log_in(browser, server, "lee")
    wait_for(lambda: browser.current_url.endswith("/dashboard"), what="dashboard")
    charts = browser.find_elements(By.CSS_SELECTOR, ".chart svg.bars")
    assert len(charts) == 6 and all(c.size["height"] > 40 for c in charts)
    full_shot(browser, "11-dashboard")
    browser.get(server + "/dashboard?group=agent")
    bar = browser.find_elements(By.CSS_SELECTOR, ".chart svg.bars a")[0]
    bar.click()
    wait_for(lambda: "/search?agent=" in browser.current_url, what="numbers behind a bar")
    assert browser.find_elements(By.CSS_SELECTOR, "a.hit-link")


def test_pages_keep_working_while_a_batch_writes(browser, server, replayed):
    """A thread in this process (the app runs in another) writes replayed calls in a loop, each
    one short transaction as the nightly run writes, with a pause standing for the next call's
    recognition (seconds in production); every page load meanwhile must succeed."""
    from selenium.webdriver.common.by import By

    from pipeline.run.execute import write_result
    from pipeline.store import Store

    db, results = replayed
    stop, writes, errors = threading.Event(), [], []

    def writer():
        while not stop.is_set():
            for result in results:
                try:
                    with Store(db) as store:
                        write_result(store, result)
                    writes.append(time.monotonic())
                    time.sleep(0.25)
                except duckdb.IOException as exc:  # the app holds the file for a moment: try again
                    if "lock" not in str(exc).lower():
                        errors.append(exc)
                    time.sleep(0.05)
                except Exception as exc:  # noqa: BLE001
                    errors.append(exc)

    log_in(browser, server, "lee")
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    loads = 0
    try:
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            for path in ("/worklist", "/customers/C1001", "/calls/zh-1001-b", "/search?q=卡", "/dashboard"):
                browser.get(server + path)
                title = browser.title
                assert not title.startswith(("5", "4")) and "Internal Server Error" not in browser.page_source, (path, title)
                assert browser.find_elements(By.CSS_SELECTOR, "main h1"), path
                loads += 1
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not errors, errors
    assert len(writes) >= 5 and loads >= 10, (len(writes), loads)
    shot(browser, "12-during-batch")


def test_pages_work_under_the_content_security_policy(browser, server, db):
    """Every page as the lead sees it: the policy is sent, nothing on the page is blocked by it, the
    score colours (classes, not style attributes) and the charts show; a script slipped into a
    page is blocked."""
    from selenium.webdriver.common.by import By

    with Database(db, read_only=True).reading() as conn:
        sample_id, call_id = conn.execute("SELECT sample_id, call_id FROM qa_samples ORDER BY call_id LIMIT 1").fetchone()
    log_in(browser, server, "lee")
    for path in ("/worklist", "/customers/C1001", "/calls/zh-1001-b", "/search?q=卡", "/qa", f"/qa/{sample_id}/{call_id}",
                 "/qa/rollup", "/dashboard", "/api/docs"):
        browser.get(server + path)
        assert browser.find_elements(By.CSS_SELECTOR, "main h1"), path
        policy = browser.execute_async_script(
            "const done = arguments[0]; fetch(location.href).then(r => done(r.headers.get('content-security-policy')))")
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, (path, policy)
        assert csp_violations(browser) == [], path
        for score in browser.find_elements(By.CSS_SELECTOR, "span.score")[:5]:
            colour = score.value_of_css_property("background-color")
            assert colour not in ("rgba(0, 0, 0, 0)", "transparent"), (path, colour)
    browser.get(server + "/dashboard")
    assert len(browser.find_elements(By.CSS_SELECTOR, ".chart svg.bars rect")) >= 6
    browser.get(server + "/calls/zh-1001-b")
    turn = browser.find_elements(By.CSS_SELECTOR, "li.turn")[1]
    turn.click()  # app.js, the only script, plays the turn
    wait_for(lambda: browser.execute_script("return !document.getElementById('player').paused"), what="playing")
    browser.execute_script("document.getElementById('player').pause()")
    full_shot(browser, "13-call-under-csp")
    browser.execute_script("const s = document.createElement('script'); s.textContent = 'window.__ran = 1';"
                           " document.body.appendChild(s)")
    assert browser.execute_script("return window.__ran") is None
    assert any(v.startswith("script-src") for v in wait_for(lambda: csp_violations(browser), what="violation"))


def test_the_briefings_first_screen_says_what_to_do_without_scrolling(browser, server):
    """On a 1366x768 laptop: who, the case, the calls, the callback clock, the flags once, the
    open deadlines, the demands one line each and the opening and approach, all in view."""
    from selenium.webdriver.common.by import By

    log_in(browser, server, "hana")
    try:
        for width, height in ((1366, 768), (1920, 1080)):
            browser.set_window_size(width, height)
            browser.get(server + "/customers/C1001")
            view = browser.execute_script("return window.innerHeight")
            first = browser.find_element(By.ID, "first-screen")
            assert browser.execute_script("return window.scrollY") == 0
            bottom = browser.execute_script("return arguments[0].getBoundingClientRect().bottom", first)
            assert bottom <= view, (width, bottom, view)  # the whole first screen in view, unscrolled
            text = first.text
            assert "C1001" in text and "K-2026-1101" in text and "2 次来电" in text
            assert "回访已超时" in browser.find_element(By.ID, "callback-clock").text
            flags = [f.text for f in first.find_elements(By.CSS_SELECTOR, ".flag")]
            assert flags and len(flags) == len(set(flags))  # each flag once
            demands = first.find_elements(By.CSS_SELECTOR, "#demands li")
            line = browser.execute_script("return parseFloat(getComputedStyle(arguments[0]).lineHeight)", demands[0])
            assert len(demands) >= 3 and all(d.size["height"] < 2 * line for d in demands)  # one line each
            steps = first.find_elements(By.CSS_SELECTOR, "#approach li")
            assert len(steps) >= 3 and "致歉" in text
            shot(browser, f"03a-briefing-first-screen-{width}x{height}")
        # Each quote once on the page: a demand is not listed again below.
        # (textContent: a one-line demand clips its end, and marked words there are not "displayed")
        said = [q.get_attribute("textContent").strip().strip("“”") for q in browser.find_elements(By.CSS_SELECTOR, ".quote")]
        demand_texts = [d.get_attribute("title") for d in first.find_elements(By.CSS_SELECTOR, "#demands li .quote")]
        assert all(said.count(t) == 1 for t in demand_texts), said
    finally:
        browser.set_window_size(1440, 1000)


def test_an_unsure_word_is_dotted_and_shows_what_it_may_have_been(browser, server, db):
    """The briefing and the call page mark the words Whisper was unsure of (dotted; on focus its
    note, with the vocabulary term it may have been) and the corrections (with what it heard);
    the moments listed say why in words, none from a calm call."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from tests.dbfile import query

    log_in(browser, server, "hana")
    browser.get(server + "/customers/C1001")
    unsure = browser.find_elements(By.CSS_SELECTOR, ".mark-unsure")
    assert unsure, "no word marked unsure in the briefing"
    style = browser.execute_script("return getComputedStyle(arguments[0]).textDecorationStyle", unsure[0])
    assert style == "dotted"
    named = [u for u in browser.find_elements(By.CSS_SELECTOR, ".mark-unsure[data-note*='可能是']")]
    assert named, "no unsure word names the term it may have been"
    ActionChains(browser).move_to_element(named[0]).perform()  # hover: the note appears beside it
    tip = wait_for(lambda: next((t for t in browser.find_elements(By.CSS_SELECTOR, ".note-tip") if t.is_displayed()), None),
                   what="the note of an unsure word")
    term = named[0].get_attribute("data-note").split("：")[-1]
    assert term in tip.text and term not in named[0].get_attribute("textContent")  # the alternative, not the word
    below, word = tip.rect, named[0].rect
    assert abs(below["y"] - (word["y"] + word["height"])) < 20  # next to the word
    shot(browser, "03c-briefing-unsure-word")
    corrected = browser.find_elements(By.CSS_SELECTOR, ".mark-corrected")
    assert corrected and all("原识别为" in c.get_attribute("data-note") for c in corrected)
    # Moments: each says why; none from a call calm throughout.
    calm = {r[0] for r in query(db, "SELECT call_id FROM escalation WHERE call_score < 40 AND flags = '[]'")}
    for m in browser.find_elements(By.CSS_SELECTOR, "#moments li"):
        if "sub" not in (m.get_attribute("class") or ""):
            assert m.find_element(By.TAG_NAME, "strong").text.strip()
            assert not any(c in m.text for c in calm)
    full_shot(browser, "03d-briefing-moments")
    browser.get(server + "/calls/zh-1001-b")
    shot(browser, "05b-call-marked-words")
    assert browser.find_elements(By.CSS_SELECTOR, "#turns .mark-unsure")
    assert browser.find_elements(By.CSS_SELECTOR, "#turns .mark-corrected")


def test_a_callback_needs_an_outcome_and_no_answer_keeps_the_customer_waiting(browser, server, db):
    """A hurried click records nothing: no outcome is chosen for the handler. An attempt that did
    not reach the customer keeps them on the worklist, the next attempt due."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    def callbacks() -> int:
        with Database(db, read_only=True).reading() as conn:
            return conn.execute("SELECT count(*) FROM callbacks WHERE customer_id = 'C1001'").fetchone()[0]

    log_in(browser, server, "hana")
    browser.get(server + "/customers/C1001#callback")
    before = callbacks()
    browser.find_element(By.ID, "callback-done").click()  # the browser refuses the form: no outcome
    outcome = browser.find_element(By.NAME, "outcome")
    assert browser.execute_script("return arguments[0].validity.valueMissing", outcome)
    assert browser.current_url.endswith("/customers/C1001#callback") and callbacks() == before
    Select(outcome).select_by_value("no_answer")
    browser.find_element(By.ID, "callback-done").click()
    wait_for(lambda: callbacks() == before + 1, what="the callback stored")
    browser.get(server + "/worklist")
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "table.worklist tbody tr") if "C1001" in r.text)
    assert "未接通" in row.text and "已尝试" in row.text  # still waiting, the attempt shown
    full_shot(browser, "02b-worklist-after-no-answer")


def test_the_audit_log_written_by_the_server_verifies(browser, server, db):
    """Everything the browser tests did through `callbrief web` (its threads writing audit rows
    while a batch wrote calls) left one unbroken chain; `callbrief audit verify`, another process
    beside the running server, says so."""
    log_in(browser, server, "hana")
    browser.get(server + "/calls/zh-1001-b")  # one more audited view, just before
    with Database(db, read_only=True).reading() as conn:  # the server lets go of the file between requests
        rows, hashed, actions = conn.execute("SELECT count(*), count(hash), list(DISTINCT action) FROM audit_log").fetchone()
    assert rows == hashed > 20 and {"login", "view_call", "view_briefing", "play_audio"} <= set(actions), actions
    done = subprocess.run([sys.executable, "-m", "flows.cli", "audit", "verify", "--db", str(db)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("audit log OK: "), done.stdout + done.stderr
    assert int(done.stdout.split()[3]) >= rows


# The one-language check. Not labels, so not checked: what was said (elements marked with the
# call's `lang`), identifiers (`translate="no"`: customer, call, case, agent, sample ids, user
# names, the time zone) and code (`<code>`: API paths). What is left must be in the user's
# language: on an English page no Chinese character; on a Chinese page no Latin word but these
# (the product's name, two abbreviations every team uses, a unit) and identifiers (a word with a
# digit, '_', '-', '/' or '.' inside: X-CSRF-Token, 2026-11-20).
ALLOWED_LATIN = {"callbrief", "API", "QA", "ms"}
SCREEN_NAMES = {"/worklist": "02-worklist", "/customers/C1001": "03-briefing", "/search": "05-search",
                "/calls/zh-1001-b": "06-call", "/qa": "08-qa-queue", "/qa/S/C": "09-qa-review", "/qa/rollup": "10-qa-rollup",
                "/dashboard": "11-dashboard", "/settings": "14-settings", "/api/docs": "15-api-docs",
                "/calls/no-such-call-1": "16-not-found"}
LABELS_JS = """
const skip = 'script,style,[lang]:not(html),[translate=no],code';
const out = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  const el = n.parentElement;
  if (!el || el.closest(skip) || !n.textContent.trim()) continue;
  if (el.closest('option') || el.getClientRects().length) out.push(n.textContent);
}
for (const el of document.querySelectorAll('[title],[placeholder],[aria-label]')) {
  if (el.closest(skip)) continue;
  for (const a of ['title', 'placeholder', 'aria-label']) if (el.getAttribute(a)) out.push(el.getAttribute(a));
}
return out.join('\\n');"""


def other_language(text: str, lang: str) -> list[str]:
    import re

    if lang == "en":
        return re.findall(r"[\u3400-\u9fff\uf900-\ufaff]+", text)
    words = re.findall(r"[A-Za-z][A-Za-z0-9_\-/.]*[A-Za-z0-9]|[A-Za-z]", text)
    return [w for w in words if w not in ALLOWED_LATIN and not re.search(r"[0-9_\-/.]", w)]


def test_every_page_is_in_the_users_language_only(browser, server, db):
    """For each role and each language: every page the role reaches (and an error page) holds
    no word of the other language outside what was said and identifiers; nav links do not wrap.
    Each page is kept as a 1366x768 screenshot (data/out/screens/NN-page-LANG-1366x768.png)."""
    from selenium.webdriver.common.by import By

    with Database(db, read_only=True).reading() as conn:
        sample_id, call_id = conn.execute("SELECT sample_id, call_id FROM qa_samples ORDER BY call_id LIMIT 1").fetchone()
    calls = ["/calls/zh-1001-b", "/search?q=卡", "/settings", "/api/docs", "/calls/no-such-call-1"]
    handling = ["/worklist", "/customers/C1001"]
    qa = ["/qa", f"/qa/{sample_id}/{call_id}", "/qa/rollup"]
    leads = ["/dashboard", "/dashboard?group=category"]
    pages = {"hana": handling + calls + ["/qa"], "quinn": qa + calls + ["/dashboard"], "lee": handling + qa + leads + calls,
             "ada": handling + qa + leads + calls}
    html_lang = {"zh": "zh-CN", "en": "en"}
    found, shots = {}, set()
    browser.set_window_size(1366, 768)
    try:
        browser.delete_all_cookies()
        browser.execute_cdp_cmd("Network.enable", {})
        for lang, asked in (("zh", "zh-CN,zh;q=0.9"), ("en", "en-GB,en;q=0.9"), ("zh", "fr-FR")):  # the browser's, else zh
            browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Accept-Language": asked}})
            browser.get(server + "/login")
            assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == html_lang[lang], asked
            found[("-", asked, "/login")] = other_language(browser.execute_script(LABELS_JS), lang)
            shot(browser, f"01-login-{lang}-1366x768")
            if os.environ.get("CALLBRIEF_WIDE_SCREENS"):
                browser.set_window_size(1920, 1080)
                shot(browser, f"01-login-{lang}-1920x1080")
                browser.set_window_size(1366, 768)
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})
        for user, paths in pages.items():
            log_in(browser, server, user)
            for lang in ("zh", "en"):
                if lang == "en":
                    set_language(browser, server, "en")
                for path in paths:
                    browser.get(server + path)
                    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == html_lang[lang], path
                    found[(user, lang, path)] = other_language(browser.execute_script(LABELS_JS), lang)
                    wrapped = browser.execute_script("return Array.from(document.querySelectorAll("
                                                     "'header.top nav a, .account a')).filter(a => a.getClientRects().length > 1)"
                                                     ".map(a => a.textContent)")
                    assert not wrapped, (user, lang, path, wrapped)
                    name = SCREEN_NAMES.get(path.split("?")[0].replace(sample_id, "S").replace(call_id, "C"))
                    if user in ("hana", "lee") and name and (lang, name) not in shots:  # each page once per language
                        shots.add((lang, name))
                        shot(browser, f"{name}-{lang}-1366x768")
                        if os.environ.get("CALLBRIEF_WIDE_SCREENS"):  # docs/screens at 1920x1080 too (not every run)
                            browser.set_window_size(1920, 1080)
                            shot(browser, f"{name}-{lang}-1920x1080")
                            browser.set_window_size(1366, 768)
            set_language(browser, server, "zh")  # as the other tests expect
    finally:
        browser.set_window_size(1440, 1000)
    leaks = {k: v for k, v in found.items() if v}
    assert not leaks, leaks
    assert len(found) > 80


def set_language(browser, server: str, lang: str) -> None:
    """The settings page, as a person uses it: choose, save, see it saved."""
    from selenium.webdriver.common.by import By

    browser.get(server + "/settings")
    browser.find_element(By.CSS_SELECTOR, f"#settings input[name='lang'][value='{lang}']").click()
    browser.find_element(By.ID, "save-settings").click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "p.ok[role=status]")
             and browser.find_element(By.TAG_NAME, "html").get_attribute("lang").startswith(lang), what=f"{lang} saved")
