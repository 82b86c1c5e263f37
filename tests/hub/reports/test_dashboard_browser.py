"""The dashboard in a real browser (Debian's chromium via Playwright), on the demo's six months.

Served by waitress as ``corridor run`` serves it; the demo supervisor logs in,
picks the last 180 days and sees the figures and charts; the same page in
dark mode and printed keeps its charts readable (screenshots in /tmp).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from hub.demo import DEMO_AGENT_EMAIL, DEMO_PASSWORD, DEMO_SUPERVISOR_EMAIL, load_demo
from hub.demo_reports import add_report_demo
from hub.reports import update_reports
from hub.runtime import Runtime
from tests.services.browser import TIMEOUT_MS

SCREENSHOT = Path("/tmp/corridor-dashboard.png")
DARK_SCREENSHOT = Path("/tmp/corridor-dashboard-dark.png")


@pytest.fixture
def dark_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


@pytest.fixture
def light_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def log_in(page: Page, base: str, email: str, target: str) -> None:
    page.goto(base + target)
    page.fill("#email", email)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + target)


def test_the_supervisor_reads_the_demo_dashboard(
    runtime: Runtime, served: str, light_page: Page, dark_page: Page
) -> None:
    load_demo(runtime, echo=lambda _line: None)
    add_report_demo(runtime, echo=lambda _line: None)
    update_reports(runtime.database, runtime.settings)
    page = light_page
    log_in(page, served, DEMO_SUPERVISOR_EMAIL, "/reports")
    page.click("text=Last 180 days")
    page.wait_for_url("**preset=180d**")
    expect(page.locator("h1")).to_have_text("Customer experience")
    # Supervisors find the reports in the navigation.
    expect(page.locator("nav a", has_text="Reports")).to_have_attribute("aria-current", "page")
    figures = page.locator(".figure")
    assert figures.count() == 9
    # Real figures, not dashes: the demo has answered, resolved and multichannel conversations.
    median = page.locator(".figure", has_text="median first response").locator(".n").inner_text()
    assert median.endswith((" min", " h")), median
    share = page.locator(".figure", has_text="more than one channel").locator(".n").inner_text()
    assert share.endswith("%"), share
    assert share != "0 %"
    satisfaction = page.locator(".figure", has_text="surveys answered").locator(".n").inner_text()
    assert 3.0 <= float(satisfaction) <= 5.0, satisfaction
    charts = page.locator("svg.chart[role=img]")
    # Agents answered the demo's conversations: response and resolution times by agent too.
    assert charts.count() == 7
    for name in ("Customer contacts per week, by channel", "First response time by channel"):
        expect(page.locator("svg.chart title", has_text=name)).to_have_count(1)
    # Each chart's bars have a size: the SVG drew data, not an empty frame.
    heights = page.evaluate(
        "() => [...document.querySelectorAll('#h-volume ~ svg rect')].map(r => r.getBBox().height).filter(h => h > 1)"
    )
    assert len(heights) > 20
    with page.expect_download() as download:
        page.click("#h-frt a.csv")
    assert download.value.suggested_filename.startswith("corridor-first_response-")
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    log_in(dark_page, served, DEMO_SUPERVISOR_EMAIL, "/reports?preset=180d")
    text_colour = dark_page.evaluate("() => getComputedStyle(document.querySelector('svg.chart text')).fill")
    # Light text on the dark card, not the light theme's dark ink.
    assert text_colour.startswith("rgb(2"), text_colour
    dark_page.screenshot(path=str(DARK_SCREENSHOT), full_page=True)


def test_an_agent_is_refused_the_dashboard(runtime: Runtime, served: str, light_page: Page) -> None:
    load_demo(runtime, echo=lambda _line: None)
    log_in(light_page, served, DEMO_AGENT_EMAIL, "/customers")
    answer = light_page.goto(served + "/reports")
    assert answer is not None
    assert answer.status == 403
