"""A voicemail's recording played through Corridor in a real browser (Debian's chromium, Playwright).

Corridor is served by waitress as ``corridor run`` serves it; Twilio's media
API is the loopback stand-in of ``media_api``. Screenshots of the call with its
recording go to ``tests/artifacts/screenshots/`` (``media-recording-*.png``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from hub.models import Interaction, Role
from hub.runtime import Runtime
from tests.conftest import make_agent, serving
from tests.connectors.twilio.media_api import MediaApi, media_api
from tests.connectors.twilio.test_media import RECORDING_SID, WRONG_TOKEN, recorded_call, silent_mp3
from tests.hub.console import log_in_page
from tests.services.browser import TIMEOUT_MS

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
AGENT = ("ana@corridor.test", "ana-password-1")
#: Plays the page's recording (muted: headless Chromium lets a page start muted
#: media without a gesture) and waits until the browser has decoded its length.
PLAY = """async audio => {
  audio.muted = true;
  try { await audio.play(); } catch (e) { return {error: String(e), readyState: audio.readyState}; }
  return {duration: audio.duration, readyState: audio.readyState};
}"""


@pytest.fixture
def twilio() -> Iterator[MediaApi]:
    with media_api() as api:
        yield api


def customer_page(app: Flask) -> str:
    runtime: Runtime = app.extensions["corridor"]
    make_agent(runtime, Role.AGENT, email=AGENT[0], password=AGENT[1])
    with runtime.database.read() as session:
        customer_id = session.scalar(select(Interaction.customer_id))
    return f"/customers/{customer_id}"


def open_as_agent(browser: Browser, base: str, path: str, width: int = 1280) -> Page:
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    log_in_page(page, base, *AGENT, target=path)
    page.wait_for_url(base + path)
    return page


def no_sideways_scroll(page: Page) -> bool:
    return bool(page.evaluate("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"))


def test_the_recording_plays_through_corridor_and_the_second_play_stays_local(
    browser: Browser, make_twilio_app: Any, twilio: MediaApi
) -> None:
    app: Flask = make_twilio_app(api_base_url=twilio.url)
    recorded_call(app.test_client(), twilio.add_recording(RECORDING_SID, silent_mp3()))
    path = customer_page(app)
    with serving(app) as base:
        page = open_as_agent(browser, base, path)
        audio = page.locator("audio")
        expect(audio).to_have_count(1)
        assert twilio.requests == []  # showing the page fetches nothing: preload="none"
        with page.expect_response(lambda r: "/attachments/" in r.url) as played:
            result = audio.evaluate(PLAY)
        assert played.value.status == 200
        assert played.value.headers["content-type"] == "audio/mpeg"
        assert result["readyState"] >= 1, result
        assert result["duration"] == pytest.approx(2.6, abs=0.2), result
        assert len(twilio.requests) == 1
        assert "twilio" not in (audio.get_attribute("src") or "")
        assert "127.0.0.1:" not in (audio.get_attribute("src") or "")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.locator("article.interaction[data-channel=voice]").first.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "media-recording-1280.png"), full_page=True)
        page.context.close()

        twilio.delete_everything()  # gone at Twilio: the agent on a phone still hears it
        phone = open_as_agent(browser, base, path, width=390)
        again = phone.locator("audio").evaluate(PLAY)
        assert again["readyState"] >= 1, again
        assert again["duration"] == pytest.approx(2.6, abs=0.2), again
        assert len(twilio.requests) == 1
        assert no_sideways_scroll(phone)
        phone.screenshot(path=str(SCREENSHOTS / "media-recording-390.png"), full_page=True)
        phone.context.close()


def test_with_wrong_credentials_the_agent_reads_why_instead_of_a_broken_player(
    browser: Browser, make_twilio_app: Any, twilio: MediaApi
) -> None:
    app: Flask = make_twilio_app(api_base_url=twilio.url, auth_token=WRONG_TOKEN)
    recorded_call(app.test_client(), twilio.add_recording(RECORDING_SID, silent_mp3()), token=WRONG_TOKEN)
    path = customer_page(app)
    with serving(app) as base:
        page = open_as_agent(browser, base, path)
        page.locator("audio").evaluate("audio => { audio.muted = true; audio.play().catch(() => {}); }")
        problem = page.locator(".recording .media-problem")
        expect(problem).to_contain_text("Twilio refused Corridor's credentials for this recording")
        expect(page.locator("audio")).to_be_hidden()
        page.screenshot(path=str(SCREENSHOTS / "media-recording-refused-1280.png"), full_page=True)
        page.context.close()
