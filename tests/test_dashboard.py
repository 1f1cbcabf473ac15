"""The dashboard in a real browser: Debian's chromium-headless-shell driven by Playwright
(`executable_path`; never `playwright install`), on uvicorn serving a store whose nights the
analysis service analysed. Screenshots at phone (360x740) and desktop (1280x800) widths go to
out/test-artifacts/dashboard/ (kept by CI as artefacts).

Accessibility basics, checked on every page: each control has an accessible name (Chromium's
accessibility tree over CDP); text contrast from computed styles meets WCAG AA (4.5:1, 3:1
for large text); and 200 % zoom of a 360 px phone works, checked as the layout viewport that
zoom gives (180 CSS px wide): no horizontal scrolling of the page (wide tables scroll inside
their own box)."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import uvicorn
from dashboard_world import DashboardWorld, build_dashboard_world
from playwright.sync_api import BrowserContext, Page, Playwright, expect, sync_playwright

from api.app import create_app
from api.auth import make_token
from api.context import Settings
from limbwatch.recording import Side
from limbwatch.report import parse_iso
from limbwatch.store.records import SensorStatus
from limbwatch.store.sqlite import SqliteSampleStore
from limbwatch.store.sqlite_records import SqliteRecordStore

ARTIFACTS = Path(__file__).resolve().parents[1] / "out" / "test-artifacts" / "dashboard"
CHROMIUM_PATHS = ("/usr/bin/chromium-headless-shell", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
ZOOM_200 = {"width": 180, "height": 370}  # a 360x740 phone at 200 % zoom
CONTROL_ROLES = {"button", "checkbox", "combobox", "link", "listbox", "menuitem", "radio",
                 "searchbox", "slider", "spinbutton", "switch", "tab", "textbox"}


def chromium() -> str:
    found = os.environ.get("LIMBWATCH_CHROMIUM") or next(
        (p for p in CHROMIUM_PATHS if Path(p).exists()), None)
    if found is None:
        pytest.fail("no Chromium: apt-get install chromium-headless-shell (or set "
                    "LIMBWATCH_CHROMIUM); never `playwright install`")
    return found


@dataclass
class Served:
    url: str
    world: DashboardWorld
    records: SqliteRecordStore  # the test's own connection to the served store
    now: float  # the served app's clock: the morning after the demo-like night
    artifacts: Path = ARTIFACTS


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> DashboardWorld:
    return build_dashboard_world(tmp_path_factory.mktemp("dash") / "limbwatch.db")


@pytest.fixture(scope="module")
def served(world: DashboardWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app under uvicorn on a free loopback port, in a thread, on a copy of the world."""
    path = tmp_path_factory.mktemp("served") / "limbwatch.db"
    shutil.copy(world.path, path)
    samples, records, mine = (SqliteSampleStore(path), SqliteRecordStore(path),
                              SqliteRecordStore(path))
    now = world.night_end + 1800.0
    app = create_app(samples, records, now=lambda: now, settings=Settings(live_poll_s=0.1))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield Served(f"http://127.0.0.1:{port}", world, mine, now)
    server.should_exit = True
    thread.join(5)
    for store in (samples, records, mine):
        store.close()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@dataclass
class Browser:
    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def browser(playwright: Playwright) -> Iterator[Browser]:
    """A fresh Chromium profile (--user-data-dir in a new folder) at phone size, collecting
    console errors and uncaught exceptions."""
    with tempfile.TemporaryDirectory(prefix="limbwatch-chromium-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=chromium(), headless=True, args=CHROMIUM_ARGS,
            viewport=PHONE, locale="en-GB")
        page = context.pages[0] if context.pages else context.new_page()
        got = Browser(context, page)
        page.on("console", lambda m: got.errors.append(f"console: {m.text} {m.location}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: got.errors.append(f"pageerror: {e}"))
        yield got
        context.close()


def log_in(page: Page, served: Served, who: str, path: str = "/") -> None:
    page.goto(served.url + path)
    assert urlparse(page.url).path == "/login"
    page.get_by_label("Access token").fill(served.world.tokens[who])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(served.url + path)
    ready(page)


def ready(page: Page) -> None:
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=15_000)


def shoot(page: Page, name: str) -> None:
    """Screenshots of the page as it is, at phone and desktop widths, then back to phone."""
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        page.wait_for_timeout(300)  # the charts redraw at the new width
        page.screenshot(path=ARTIFACTS / f"{name}-{label}.png", full_page=True)
    page.set_viewport_size(PHONE)


def put(served: Served, serial: str, side: Side, t: float, *, connected: bool = True,
        battery: float = 80.0, last_packet: float | None = None,
        on_ankle: bool | None = True) -> None:
    packet = t - 1.0 if last_packet is None else last_packet
    served.records.put_status([SensorStatus(serial, "kid", side, t, connected, battery, packet,
                                            on_ankle, t - 30.0)])


def test_caregiver_morning_journal_live_signal_and_log_out(served: Served,
                                                           browser: Browser) -> None:
    page = browser.page
    log_in(page, served, "caregiver")

    # the morning view: the sentence, the flags with what to do, the timeline
    summary = page.locator("#summary").inner_text()
    assert summary.startswith("Sam fell asleep ") and "repeating leg movements per hour" in summary
    codes = page.locator("li.flag").evaluate_all("(cards) => cards.map((c) => c.dataset.code)")
    assert "PLMI_ELEVATED" in codes
    plmi = page.locator("li.flag[data-code='PLMI_ELEVATED']")
    assert plmi.locator(".tier").inner_text() == "Mention it at the next visit"
    assert page.locator("#limits-short").inner_text().startswith("This is not a diagnosis.")
    assert "call a doctor if shaking lasts minutes" in page.locator("#red-flags").inner_text()
    timeline = page.locator("#timeline svg")
    for kind in ("sleep-S", "sleep-W", "lm", "plm", "plm_series", "jerk", "gap"):
        assert timeline.locator(f"[data-kind='{kind}']").count() > 0, kind
    assert page.locator("#trend-plm [data-kind='night']").count() == 13
    assert page.locator("#trend-plm [data-kind='night-current']").count() == 1
    assert page.locator("#imi [data-kind='imi-bar']").count() > 5

    # the journal: two taps (a kind, Save), on the timeline at once
    assert timeline.locator("[data-kind='journal']").count() == 0
    page.get_by_role("button", name="Shaking seen").click()
    page.get_by_label("Details (optional)").fill("left leg, stopped when I held it")
    page.get_by_role("button", name="Save: Shaking seen").click()
    page.wait_for_selector("#timeline svg [data-kind='journal']")
    expect(page.locator("#note-status")).to_contain_text("on the timeline")
    assert "left leg, stopped when I held it" in page.locator("#notes").inner_text()
    shoot(page, "morning")

    # the live view: a sensor changes state, a device alert comes and is resolved; the other,
    # last heard from 2 h ago while connected (the gateway gone too), is away and lost
    now = served.now
    put(served, "LW0001L", "left", now - 5)
    put(served, "LW0002R", "right", now - 7200, battery=64.0)
    page.get_by_role("link", name="Live").click()
    ready(page)
    left = page.locator("article.sensor[data-serial='LW0001L']")
    left.and_(page.locator("[data-connected='true']")).wait_for()
    right = page.locator("article.sensor[data-serial='LW0002R']")
    right.and_(page.locator("[data-connected='false']")).wait_for()
    assert "Away: last seen 02:59, 2 h ago" in right.inner_text()
    assert "Connected" not in right.inner_text() and "Flowing" not in right.inner_text()
    gone = page.locator("li.alert-device[data-alert='lost'][data-serial='LW0002R']")
    assert "The right sensor has not been heard from since 02:59: check" in gone.inner_text()
    put(served, "LW0001L", "left", now + 10, connected=False, last_packet=now - 200)
    left.and_(page.locator("[data-connected='false']")).wait_for()
    alert = page.locator("li.alert-device[data-alert='lost'][data-serial='LW0001L']")
    alert.wait_for()
    assert "The left sensor has not been heard from since 04:56: check" in alert.inner_text()
    shoot(page, "live")
    put(served, "LW0001L", "left", now + 20)
    page.locator("li.alert-device.resolved[data-alert='lost'][data-serial='LW0001L']").wait_for()
    assert "Connected" in left.inner_text()

    # the specialist view: the signal zooms by asking for a narrower window
    page.get_by_role("link", name="Specialist").click()
    ready(page)
    page.wait_for_function("() => document.querySelector('#signal').dataset.window > 0")
    whole = float(page.locator("#signal").get_attribute("data-window") or 0)
    assert whole > 8 * 3600
    page.set_viewport_size(DESKTOP)
    page.wait_for_timeout(300)
    page.locator("#signal").scroll_into_view_if_needed()
    over = page.locator("#signal .u-over").bounding_box()
    assert over is not None
    with page.expect_request(lambda r: "/signal?" in r.url) as asked:
        page.mouse.move(over["x"] + over["width"] * 0.40, over["y"] + over["height"] / 2)
        page.mouse.down()
        page.mouse.move(over["x"] + over["width"] * 0.45, over["y"] + over["height"] / 2,
                        steps=5)
        page.mouse.up()
    query = parse_qs(urlparse(asked.value.url).query)
    window = parse_iso(query["end"][0]) - parse_iso(query["start"][0])
    assert 0 < window < 0.1 * whole
    page.wait_for_function("(most) => document.querySelector('#signal').dataset.window < most",
                           arg=whole / 5)
    with page.expect_request(lambda r: "/signal?" in r.url) as closer:
        page.get_by_role("button", name="Zoom in").click()
    query = parse_qs(urlparse(closer.value.url).query)
    assert parse_iso(query["end"][0]) - parse_iso(query["start"][0]) < window
    page.wait_for_timeout(300)
    page.locator("#signal-h").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "signal-desktop.png")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(300)
    page.locator("#signal-h").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "signal-phone.png")
    shoot(page, "specialist")

    # log out: back to the log-in page, and the pages need logging in again
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{served.url}/login")
    page.goto(served.url + "/live")
    assert urlparse(page.url).path == "/login"
    assert browser.errors == []


# WCAG 2 contrast of every visible text element against the backgrounds it sits on (composited
# from the root down; SVG text by its fill); disabled controls are exempt (WCAG 1.4.3)
CONTRAST_JS = """() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (fg, bg) => [0, 1, 2].map((i) => fg[i] * fg[3] + bg[i] * (1 - fg[3]));
  const lum = (rgb) => {
    const [r, g, b] = rgb.map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const backdrop = (node) => {
    const chain = [];
    for (let n = node; n && n.nodeType === 1; n = n.parentElement) chain.unshift(n);
    let bg = [255, 255, 255];
    for (const n of chain) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c[3] > 0) bg = over(c, bg);
    }
    return bg;
  };
  const failures = [];
  let checked = 0;
  for (const node of document.querySelectorAll("body *")) {
    if (["SCRIPT", "STYLE", "OPTION", "title"].includes(node.tagName)) continue;
    const own = [...node.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim());
    if (!own || node.getClientRects().length === 0 || node.closest(":disabled")) continue;
    const style = getComputedStyle(node);
    if (style.visibility === "hidden") continue;
    const svg = node instanceof SVGElement;
    const fg = parse(svg ? style.fill : style.color);
    if (!fg) continue;
    const bg = backdrop(svg ? node.closest("svg").parentElement : node);
    const a = lum(over(fg, bg)) + 0.05;
    const b = lum(bg) + 0.05;
    const ratio = Math.max(a, b) / Math.min(a, b);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    checked += 1;
    if (ratio < (large ? 3 : 4.5)) {
      const words = node.textContent.trim().slice(0, 40);
      failures.push(`${node.tagName} "${words}" ${ratio.toFixed(2)}`);
    }
  }
  return { checked, failures };
}"""


def unnamed_controls(page: Page) -> list[str]:
    """Controls in Chromium's accessibility tree without an accessible name."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    return [f"{n['role']['value']} {n.get('backendDOMNodeId')}" for n in nodes
            if not n.get("ignored") and n.get("role", {}).get("value") in CONTROL_ROLES
            and not (n.get("name", {}).get("value") or "").strip()]


def check_accessibility(page: Page, name: str) -> None:
    assert unnamed_controls(page) == [], name
    contrast = page.evaluate(CONTRAST_JS)
    assert contrast["checked"] > 3 and contrast["failures"] == [], name
    page.set_viewport_size(ZOOM_200)
    page.wait_for_timeout(300)
    wide = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    page.screenshot(path=ARTIFACTS / f"{name}-zoom200.png", full_page=True)
    page.set_viewport_size(PHONE)
    assert wide[0] <= wide[1], f"{name}: {wide[0]} px wide at 200 % zoom ({wide[1]} px)"


def test_every_page_has_named_controls_contrast_and_works_at_200_percent(
    served: Served, browser: Browser,
) -> None:
    page = browser.page
    page.goto(served.url + "/login")
    check_accessibility(page, "login")
    log_in(page, served, "admin")  # the admin sees every control: pickers, journal, sharing
    for path, name in (("/", "morning"), ("/live", "live"), ("/specialist", "specialist")):
        page.goto(served.url + path)
        ready(page)
        page.wait_for_timeout(300)
        check_accessibility(page, name)
    assert browser.errors == []


def test_clinician_reads_only_and_an_admin_picks_any_child(served: Served,
                                                           browser: Browser) -> None:
    page = browser.page
    log_in(page, served, "dr-lee")
    assert page.locator("#subject option").all_inner_texts() == ["Sam"]  # shared with dr-lee
    assert page.locator("#journal").is_hidden()  # read-only: no journal form
    page.get_by_role("link", name="Specialist").click()
    ready(page)
    assert page.locator("#sharing").is_hidden()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{served.url}/login")

    log_in(page, served, "admin")
    assert sorted(page.locator("#subject option").all_inner_texts()) == ["Ada", "Sam"]
    page.get_by_label("Child", exact=True).select_option(label="Ada")
    page.wait_for_url(f"{served.url}/?subject=baby")
    ready(page)
    normal = page.locator("#normal")
    assert normal.is_visible() and "Startles" in normal.inner_text()
    assert "brief jerks or startles" in normal.inner_text()
    assert browser.errors == []


def test_caregiver_shares_the_child_with_a_clinician_and_stops(served: Served,
                                                              browser: Browser) -> None:
    _, token = make_token("dr-new", "clinician", None, served.now)
    served.records.put_token(token)
    page = browser.page
    log_in(page, served, "caregiver", "/specialist")
    shares = page.locator("#shares")
    assert "dr-lee" in shares.inner_text() and "dr-new" not in shares.inner_text()
    page.get_by_label("Clinician's token name").fill("dr-new")
    page.get_by_role("button", name="Share this child").click()
    page.get_by_role("button", name="Stop sharing with dr-new").wait_for()
    assert served.records.shared_subjects("dr-new") == {"kid"}
    page.get_by_role("button", name="Stop sharing with dr-new").click()
    page.get_by_role("button", name="Stop sharing with dr-new").wait_for(state="detached")
    assert served.records.shared_subjects("dr-new") == set()
    expect(page.locator("#share-status")).to_contain_text("can no longer see Sam")
    assert browser.errors == []


def test_a_revoked_session_goes_back_to_log_in(served: Served, browser: Browser) -> None:
    secret, token = make_token("soon-revoked", "caregiver", "kid", served.now)
    served.records.put_token(token)
    served.world.tokens["soon-revoked"] = secret
    page = browser.page
    log_in(page, served, "soon-revoked")
    served.records.revoke_token("soon-revoked", served.now)
    page.get_by_role("button", name="Fever").click()
    page.get_by_role("button", name="Save: Fever").click()  # the API answers 401
    page.wait_for_url(f"{served.url}/login?next=%2F")
    page.get_by_label("Access token").fill("not a token")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#login-error")).to_contain_text("not valid")


def test_wording_never_diagnoses_and_says_what_to_do(served: Served, browser: Browser) -> None:
    page = browser.page
    page.goto(served.url + "/login")
    got = page.evaluate("""async () => {
      const w = await import("/static/js/words.js");
      const tier = (code, severity) => w.action({ code, severity })[0];
      const report = (sleep, tremor) => ({
        recording: { start: "2026-11-20T19:30:00.000Z", end: "2026-11-21T04:30:00.000Z" },
        sleep: { total_sleep_min: sleep, onset: "2026-11-20T19:50:00.000Z",
                 offset: "2026-11-21T04:20:00.000Z", awakenings: 1 },
        plm: { index: 2.25 }, tremor_episodes: tremor, brief_jerks: 1 });
      const spell = { start: "2026-11-20T22:00:00.000Z", end: "2026-11-20T22:03:30.000Z" };
      return {
        tiers: [tier("PLMI_ELEVATED", "warning"), tier("PROLONGED_TREMOR", "warning"),
                tier("PROLONGED_TREMOR", "urgent"), tier("ASYMMETRIC_MOVEMENT", "urgent"),
                tier("ASYMMETRIC_MOVEMENT", "warning"), tier("NONWEAR", "info"),
                tier("LOW_COVERAGE", "warning"), tier("FRAGMENTED_SLEEP", "info"),
                tier("SOMETHING_NEW", "warning")],
        sentences: [w.nightSentence(report(480, []), "Sam", "Europe/London"),
                    w.nightSentence(report(0, [spell]), "Sam", "Europe/London"),
                    w.nightSentence({ ...report(480, []), settling: {
                      latency_from: "lights_out", sleep_onset_latency_min: 34.4,
                      first: { kicking_min: 22.2 } } }, "Sam", "Europe/London"),
                    w.nightSentence({ ...report(480, []), settling: {
                      latency_from: "first_worn_epoch", sleep_onset_latency_min: 12,
                      first: { kicking_min: 0 } } }, "Sam", "Europe/London")],
        text: [...Object.values(w.TIERS), w.LIMITS_SHORT, ...w.LIMITS, w.RED_FLAGS,
               ...w.NORMAL_YOUNG, w.jerksLine({ brief_jerks: 1 }),
               ...["lost", "off_ankle", "low_battery"].map(
                 (alert) => w.deviceAlert({ alert, side: "left" }, "04:56", 12)),
               ...["PLMI_ELEVATED", "PROLONGED_TREMOR", "ASYMMETRIC_MOVEMENT", "LOW_COVERAGE",
                   "NONWEAR", "FRAGMENTED_SLEEP"].map(
                     (code) => w.action({ code, severity: "warning" })[1])],
      };
    }""")
    assert got["tiers"] == ["visit", "today", "urgent", "urgent", "visit", "watch", "watch",
                            "watch", "visit"]
    assert got["sentences"] == [
        "Sam slept 8 h between 19:50 and 04:20, woke once, had 2.3 repeating leg movements per "
        "hour of sleep and no spells of shaking.",
        "Sam did not seem to sleep in the 9 h recorded and had 1 spell of shaking (the longest "
        "3 min 30 s).",
        "Sam fell asleep 34 min after lights out (the legs kicked in a regular rhythm for about "
        "22 min of it), slept 8 h between 19:50 and 04:20, woke once, had 2.3 repeating leg "
        "movements per hour of sleep and no spells of shaking.",
        "Sam fell asleep 12 min after the sensors went on, slept 8 h between 19:50 and 04:20, "
        "woke once, had 2.3 repeating leg movements per hour of sleep and no spells of shaking.",
    ]
    words = " ".join(got["text"]).lower()
    for never in ("plmd", "rls", "restless legs", "disorder", "epilep", "your child has"):
        assert never not in words
    assert "not a diagnosis" in words and "emergency services" in words
    assert "the left sensor's battery is low (12 %): charge it before tonight." in words
