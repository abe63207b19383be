"""The console in a real Chromium (Playwright for Python driving Debian's ``chromium``): sign in,
edit a flow with a mistake and see where it is, fix and save it, run it from the form, watch it
reach SUCCESS live, open its Gantt and trace, decide an approval on a phone-sized screen, open an
eval run's matrix; and nothing is loaded from outside the server.

Skipped when chromium or Playwright is missing (``scripts/test.sh`` installs chromium when root).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("HUB_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - playwright is a dev dependency
    sync_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="Playwright for Python is not installed: "
                       "pip install -e '.[dev]'"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium: apt-get install -y chromium "
                       "(scripts/test.sh installs it when run as root); never 'playwright install'"),
    pytest.mark.timeout(300),
]

TIMEOUT = 30_000  # ms; the machine running the suite may be busy
if sync_playwright is not None:
    expect.set_options(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.console.live import demo_hub

    with demo_hub(tmp_path_factory.mktemp("console")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def outside(hub: Any) -> list[str]:
    """Requests the pages made to anything but the hub server (should stay empty)."""
    return []


def new_page(browser: Browser, hub: Any, outside: list[str], **context: Any) -> Page:
    page = browser.new_context(**context).new_page()
    page.set_default_timeout(TIMEOUT)

    def check(route: Any) -> None:
        if route.request.url.startswith(hub.url) or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", check)
    return page


def sign_in(page: Page, hub: Any, key: str, path: str = "/flows") -> None:
    page.goto(hub.url + path)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key").fill(hub.keys[key])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Key {key}")).to_be_visible()
    page.wait_for_load_state()


def test_edit_a_flow_run_it_and_watch_it_live(browser: Browser, hub: Any, outside: list[str]) -> None:
    page = new_page(browser, hub, outside, viewport={"width": 1280, "height": 800})
    sign_in(page, hub, "admin")
    page.get_by_role("link", name="tour", exact=True).click()
    expect(page.get_by_role("heading", name="demo.tour")).to_be_visible()
    expect(page.locator(".g-node[data-path='choose.many']")).to_contain_text("many")  # the topology graph

    page.get_by_role("link", name="Edit").click()
    editor = page.get_by_label("Flow YAML")
    source = editor.input_value()
    editor.fill(source.replace("type: if", "type: iff"))
    problems = page.locator("#problems")
    expect(problems).to_contain_text("line 15, column 11 tasks[2].type")
    expect(problems).to_contain_text("unknown task type 'iff'; did you mean 'if'?")
    expect(page.locator("#check-status")).to_have_text("1 problem")
    editor.fill(source.replace("Fetch, retry", "Fetch slowly, retry"))
    expect(page.locator("#check-status")).to_have_text("Valid: demo.tour")
    page.get_by_role("button", name="Save revision").click()
    expect(page.get_by_text("Saved as revision 2.")).to_be_visible()
    expect(page.locator("pre.source")).to_contain_text("Fetch slowly, retry")

    page.get_by_role("link", name="Run").click()
    page.get_by_label("name *").fill("ana")
    page.get_by_label("times").fill("3")
    page.get_by_role("button", name="Start execution").click()
    state = page.locator("#execution-state")
    expect(state).to_have_text(re.compile("QUEUED|RUNNING"))  # the page opens before the run ends ...
    expect(page.locator("#live-indicator")).to_be_visible()
    expect(state).to_have_text("SUCCESS")  # ... and follows it over server-sent events
    expect(page.locator("#live-indicator")).to_have_count(0)
    rows = page.locator(".bar-row .name")
    expect(rows).to_have_text(["fetch", "call ×2", "choose", "many"])  # the Gantt: one row per step
    expect(page.locator(".bar-row", has_text="call").locator(".bar.wait")).to_have_count(1)  # the retry wait
    expect(page.locator("#outputs")).to_contain_text('"greeting": "hello ana"')
    expect(page.locator("pre.logs")).to_contain_text("ana x3")

    page.get_by_role("link", name="Trace", exact=True).click()
    expect(page.get_by_role("heading", name="Trace of demo.tour")).to_be_visible()
    spans = page.locator("details.span > summary .name")
    expect(spans.first).to_have_text("execution demo.tour")
    page.locator("details.span", has_text="step call").first.locator("summary").click()
    expect(page.locator("details.span[open] dl.kv").first).to_contain_text("hub.step.attempt")
    assert outside == []


def test_decide_an_approval_on_a_phone(browser: Browser, hub: Any, outside: list[str]) -> None:
    page = new_page(browser, hub, outside, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    sign_in(page, hub, "ana", "/approvals")
    page.get_by_role("link", name="Refund request").click()
    expect(page.locator(".card.message")).to_contain_text("Refund 42.5 EUR to the customer?")
    amount = page.get_by_label("amount")
    expect(amount).to_have_value("42.5")  # the draft, typed
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")  # no sideways scroll
    amount.fill("40")
    page.get_by_label("Comment").fill("partial refund")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("Your decision closed this request.")).to_be_visible()
    expect(page.locator("#gate-state")).to_have_text("approved")
    expect(page.get_by_role("cell", name="accepted").first).to_be_visible()  # the audit trail
    done = hub.wait(hub.extra["refund"], {"SUCCESS", "FAILED"})
    assert done["state"] == "SUCCESS" and done["outputs"]["amount"] == 40.0
    assert outside == []


def test_open_an_eval_runs_matrix_and_navigate_by_keyboard(browser: Browser, hub: Any, outside: list[str]) -> None:
    page = new_page(browser, hub, outside, viewport={"width": 1280, "height": 800})
    sign_in(page, hub, "reader")
    page.keyboard.press("g")
    page.keyboard.press("v")
    expect(page.get_by_role("heading", name="Eval runs")).to_be_visible()
    page.get_by_role("link", name=hub.eval_run).click()
    expect(page.get_by_role("heading", name="Matrix: cases × versions × models")).to_be_visible()
    crash = page.locator("td.cell[data-case='crash']")
    expect(crash).to_have_count(2)
    expect(crash.nth(0)).to_contain_text("FAIL")
    expect(crash.nth(1)).to_contain_text("pass")
    expect(page.locator("table").first).to_contain_text("needs ≥ 0.8")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    assert outside == []


def test_the_api_docs_render_offline(browser: Browser, hub: Any, outside: list[str]) -> None:
    page = new_page(browser, hub, outside)
    page.goto(hub.url + "/docs")
    expect(page.get_by_text("/v1/flows/validate").first).to_be_visible()
    page.goto(hub.url + "/redoc")
    expect(page.get_by_text("Create or update a flow from its YAML").first).to_be_visible()
    assert outside == []


def test_a_prompts_online_scores_and_its_latest_comparison(browser: Browser, hub: Any, outside: list[str]) -> None:
    page = new_page(browser, hub, outside, viewport={"width": 1280, "height": 900})
    sign_in(page, hub, "reader", "/prompts/triage")
    online = page.get_by_role("region", name="Online scores")
    expect(online.get_by_role("heading", name=re.compile("triage_online"))).to_contain_text("alerting")
    # the newest window of 10 has 3 passes (scores 1) and 7 failures: mean 0.30, the one before 1.00
    expect(online.locator(".online-summary")).to_contain_text("Mean score over the newest 10: 0.30")
    expect(online.locator(".online-summary")).to_contain_text("the window before: 1.00")
    chart = online.get_by_role("img", name=re.compile("30 newest scores of triage_online"))
    expect(chart).to_be_visible()
    expect(chart.locator("circle")).to_have_count(30)
    expect(chart.locator("circle.fail")).to_have_count(7)
    expect(chart.locator("line.limit")).to_have_count(1)
    windows = online.locator("table.windows tbody tr")
    expect(windows).to_have_count(3)
    expect(windows.nth(0)).to_contain_text("30%")
    expect(windows.nth(2)).to_contain_text("100%")

    compared = page.get_by_role("region", name="Candidate vs production")
    expect(compared).to_contain_text("candidate v2")
    expect(compared).to_contain_text("against v1 (production)")
    expect(compared.locator(".improvements")).to_contain_text("crash")  # v2 reads the ticket; v1 says billing
    expect(compared.locator(".regressions")).to_contain_text("Regressions (0)")
    compared.get_by_role("link", name=hub.extra["comparison"]).click()
    expect(page.get_by_role("heading", name=f"Run {hub.extra['comparison']}")).to_be_visible()
    assert outside == []
