"""The timeline pages in a real browser: Debian's chromium, driven by Playwright.

Corridor is served by waitress on a free loopback port, as ``corridor run``
serves it, so what is checked here is what an agent's browser gets: the login
redirect, the customer list, Maria's email, call and chat inside one
conversation band, newest first, and an email's script that never runs.
One browser serves the whole module; each test gets a fresh page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from playwright.sync_api import Page, expect

from hub.demo import DEMO_AGENT_EMAIL, DEMO_PASSWORD, SHOWCASE_EMAIL, SHOWCASE_ORDER, load_demo
from hub.models import Role
from hub.runtime import Runtime
from tests.conftest import make_agent
from tests.hub.events import post_event

SCREENSHOT = Path("/tmp/corridor-timeline.png")
LIST_SCREENSHOT = Path("/tmp/corridor-customers.png")


def _log_in(page: Page, base: str, target: str) -> None:
    page.goto(base + target, wait_until="domcontentloaded")
    page.fill("#email", DEMO_AGENT_EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + target)


#: Walks the timeline in document order (a band may contain its interactions
#: or precede them) and returns, per band, its subject and its interactions.
_BANDS_JS = """
() => {
  const bands = [];
  for (const el of document.querySelectorAll('.conversation, .interaction')) {
    if (el.matches('.conversation')) {
      bands.push({subject: (el.querySelector('.subject') || el).textContent.trim(), items: []});
    } else {
      if (!bands.length) bands.push({subject: null, items: []});
      bands[bands.length - 1].items.push({
        channel: el.dataset.channel,
        time: el.querySelector('time').getAttribute('datetime'),
        badge: el.querySelector('.badge').textContent.trim().toLowerCase(),
      });
    }
  }
  return bands;
}
"""


def test_agent_logs_in_and_sees_marias_story_as_one_conversation(runtime: Runtime, served: str, page: Page) -> None:
    load_demo(runtime, echo=lambda _line: None)

    # Not logged in: the list sends the browser to the login page.
    page.goto(served + "/customers", wait_until="domcontentloaded")
    assert "/login" in page.url
    expect(page.locator("form.login")).to_be_visible()

    # A wrong password is refused, on the page.
    page.fill("#email", DEMO_AGENT_EMAIL)
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    expect(page.locator("[role=alert]")).to_contain_text("wrong password")

    _log_in(page, served, "/customers")
    rows = page.locator("table.list tbody tr")
    assert rows.count() >= 20
    assert "Maria Keller" in rows.first.inner_text()

    page.screenshot(path=str(LIST_SCREENSHOT))
    page.click("table.list a:has-text('Maria Keller')")
    page.wait_for_selector(".interaction")
    assert page.locator("h1").inner_text().strip() == "Maria Keller"
    assert SHOWCASE_EMAIL in page.content()

    bands: list[dict[str, Any]] = page.evaluate(_BANDS_JS)
    newest = bands[0]
    assert SHOWCASE_ORDER in newest["subject"]
    channels = [item["channel"] for item in newest["items"]]
    assert {"email", "voice", "chat"} <= set(channels), channels
    # Newest first: the chat on top, the email that started it at the bottom.
    assert channels[0] == "chat"
    assert channels.index("voice") < max(i for i, c in enumerate(channels) if c == "email")
    times = [item["time"] for band in bands for item in band["items"]]
    assert times == sorted(times, reverse=True)
    # Every interaction carries a badge naming its channel.
    assert all(item["badge"] for band in bands for item in band["items"])
    # Her older exchange is a band of its own further down.
    assert len(bands) == 2
    assert "47102" in bands[1]["subject"]

    page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_a_script_in_an_email_never_runs(
    runtime: Runtime, served: str, page: Page, client: FlaskClient, auth: dict[str, str]
) -> None:
    make_agent(runtime, Role.AGENT, email=DEMO_AGENT_EMAIL, password=DEMO_PASSWORD)
    event = {
        "channel": "email",
        "external_id": "hostile-1@attacker.example.net",
        "occurred_at": "2026-03-02T09:15:00Z",
        "direction": "inbound",
        "from": {"address": "mallory@example.net", "name": "Mallory <b>Bold</b>"},
        "to": ["support@larkspur.example.com"],
        "subject": "Invoice <script>window.pwned=1</script>",
        "text": "Please see the invoice below. <script>window.pwned=2</script>",
        "html": (
            "<p>Please see the invoice below.</p>"
            "<script>window.pwned=1</script>"
            '<img src=x onerror="window.pwned=3">'
            '<a href="javascript:window.pwned=4">open</a>'
        ),
    }
    outcome = post_event(client, event, auth)
    assert outcome["status"] == "processed", outcome
    customer_id = outcome["customer_id"]
    # What is stored is already harmless, whatever a page later does with it.
    stored = client.get(f"/api/customers/{customer_id}/timeline", headers=auth).get_json()["interactions"][0]
    assert "<script" not in stored["html"]
    assert "onerror" not in stored["html"]
    assert "javascript:" not in stored["html"]

    _log_in(page, served, f"/customers/{customer_id}")
    page.wait_for_selector(".interaction")
    assert page.evaluate("() => window.pwned") is None
    assert page.evaluate("() => [...document.scripts].filter(s => s.textContent.includes('pwned')).length") == 0
    # The hostile text is shown as text, not interpreted.
    assert "<script>" in page.locator(".interaction").first.inner_text()
    assert page.evaluate("() => document.querySelectorAll('.interaction img').length") == 0
