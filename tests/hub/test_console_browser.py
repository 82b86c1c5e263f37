"""The agent console in a real browser: Debian's chromium, driven by Playwright.

Corridor is served as ``corridor run`` serves it: waitress for the pages and
the API, the stream server (hub.live.server) beside it on a port of its own.
Replies go out through the real connectors: email to an aiosmtpd server on
loopback, SMS through ``twilio.rest.Client`` over the recording transport
(Twilio's cloud is unreachable from here). Every page counts Content-Security-
Policy violations, and a test fails on any. Screenshots go to
``tests/artifacts/screenshots/``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

import connectors.twilio
from hub.canned import create_canned
from hub.db import Database
from hub.demo import DEMO_AGENT_EMAIL, DEMO_PASSWORD, SHOWCASE_EMAIL, load_demo
from hub.events import Channel, InteractionKind
from hub.ingest import ingest
from hub.live.server import StreamServer, StreamSettings, serving_in_thread
from hub.models import Conversation, Customer, Identity, Interaction, Role
from hub.runtime import Runtime
from tests.conftest import AppFactory, make_agent, serving
from tests.connectors.twilio.recording_http import RecordingHttpClient
from tests.hub.events import BASE_TIME, event, put
from tests.services import SmtpServer
from tests.services.browser import TIMEOUT_MS

SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
OUR_NUMBER = "+14155550100"
SUPPORT = "support@larkspur.example.com"
SECRET = "test-secret"
SECOND_AGENT = ("bo@larkspur.example.com", "bo-password-1")

_CSP_LISTENER = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


@pytest.fixture
def rest(monkeypatch: pytest.MonkeyPatch) -> RecordingHttpClient:
    recording = RecordingHttpClient()
    monkeypatch.setattr(connectors.twilio, "rest_transport", lambda: recording)
    return recording


class Streams:
    """The stream server on a fixed port, which a test may stop and start again (a server restart)."""

    def __init__(self, database_url: str) -> None:
        self.database = Database(database_url)
        self.port = 0
        self._running: Any = None

    def start(self) -> None:
        server = StreamServer(self.database, StreamSettings(secret=SECRET, poll_interval=0.02, retry_ms=500))
        self._running = serving_in_thread(server, port=self.port)
        self.port = self._running.__enter__()

    def stop(self) -> None:
        if self._running is not None:
            self._running.__exit__(None, None, None)
            self._running = None


@pytest.fixture
def streams(database_url: str) -> Iterator[Streams]:
    running = Streams(database_url)
    running.start()
    yield running
    running.stop()
    running.database.dispose()


@pytest.fixture
def app(
    make_app: AppFactory, streams: Streams, smtp_server: SmtpServer, rest: RecordingHttpClient, tmp_path: Path
) -> Flask:
    password = tmp_path / "imap-password"
    password.write_text("unused\n")
    password.chmod(0o600)
    return make_app(
        app={"connectors": ["email", "twilio"], "public_base_url": "https://corridor.example.com"},
        live={"port": streams.port},
        twilio={
            "account_sid": "AC" + "0" * 32,
            "auth_token": "test-auth-token",
            "numbers": [{"number": OUR_NUMBER, "channels": ["sms", "voice", "whatsapp"]}],
        },
        email={
            "mailboxes": [
                {
                    "name": "support", "host": "127.0.0.1", "port": 1, "tls": "none", "user": SUPPORT,
                    "password_file": str(password), "address": SUPPORT, "smtp_host": smtp_server.host,
                    "smtp_port": smtp_server.port, "smtp_tls": "none", "copy_to_sent": False,
                }
            ]
        },
    )  # fmt: skip


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    # Two agents' browsers at once, each with its fetches in flight.
    with serving(app, threads=6) as url:
        yield url


@pytest.fixture
def demo(runtime: Runtime) -> Runtime:
    load_demo(runtime, echo=lambda _line: None)
    make_agent(runtime, Role.AGENT, email=SECOND_AGENT[0], password=SECOND_AGENT[1])
    return runtime


@pytest.fixture
def contexts(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    made: list[BrowserContext] = []

    def new(width: int = 1280, height: int = 900) -> BrowserContext:
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(TIMEOUT_MS)
        context.add_init_script(_CSP_LISTENER)
        made.append(context)
        return context

    yield new
    for context in made:
        for page in context.pages:
            assert page.evaluate("() => window.__csp || []") == [], f"CSP violations on {page.url}"
        context.close()


def log_in(context: BrowserContext, base: str, email: str = DEMO_AGENT_EMAIL, password: str = DEMO_PASSWORD) -> Page:
    page = context.new_page()
    page.goto(base + "/inbox")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/inbox")
    return page


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def wait_live(page: Page) -> None:
    page.wait_for_function("() => document.body.dataset.liveConnected === '1'")


def marias_conversation(runtime: Runtime) -> int:
    with runtime.database.read() as session:
        customer_id = session.scalar(select(Identity.customer_id).where(Identity.value == SHOWCASE_EMAIL))
        conversation_id = session.scalar(
            select(Conversation.id)
            .where(Conversation.customer_id == customer_id)
            .order_by(Conversation.last_activity_at.desc())
            .limit(1)
        )
    assert conversation_id is not None
    return conversation_id


def hours_now() -> float:
    """Now, as tests.hub.events counts time (hours after its reference time)."""
    return (datetime.now(UTC) - BASE_TIME).total_seconds() / 3600


def maria_texts(runtime: Runtime, text: str, **fields: Any) -> None:
    """Maria sends an SMS from her phone number (created as her identity if she has none)."""
    with runtime.database.write() as session:
        customer = session.scalar(select(Customer).join(Identity).where(Identity.value == SHOWCASE_EMAIL))
        assert customer is not None
        phone = session.scalar(
            select(Identity.raw_value).where(Identity.customer_id == customer.id, Identity.kind == "phone")
        )
        if phone is None:
            phone = "+4915155501234"
            session.add(Identity(customer_id=customer.id, kind="phone", value=phone, raw_value=phone))
            session.flush()
        ingest(session, event(Channel.SMS, phone, text=text, hours=hours_now(), **fields), source="test")


def test_an_agent_works_marias_conversation_across_every_channel(
    demo: Runtime, served: str, contexts: Callable[..., BrowserContext], smtp_server: SmtpServer,
    rest: RecordingHttpClient,
) -> None:  # fmt: skip
    page = log_in(contexts(), served)

    # The inbox: open conversations, longest-waiting customer first.
    rows = page.locator(".inbox-row")
    assert rows.count() >= 10
    waits = page.evaluate(
        "() => [...document.querySelectorAll('.inbox-row.waiting time')].map(t => t.getAttribute('datetime'))"
    )
    assert waits == sorted(waits)
    shot(page, "inbox")
    # Filters: SMS conversations only, each showing the SMS badge.
    page.select_option("#f-channel", "sms")
    page.click(".filters button")
    page.wait_for_url("**channel=sms**")
    assert page.locator(".inbox-row").count() >= 1
    for row in page.locator(".inbox-row").all():
        expect(row.locator(".badge.sms")).to_have_count(1)
    page.click("nav.views a:has-text('Mine')")
    expect(page.locator(".empty")).to_be_visible()

    conversation_id = marias_conversation(demo)
    page.goto(f"{served}/conversations/{conversation_id}")
    wait_live(page)
    assert page.locator("h1").inner_text().strip() == "Maria Keller"

    # A reply by email: it reaches the SMTP server, signed with the agent's name on the timeline.
    page.select_option("#channel", "email")
    page.fill("#reply-text", "Hi Maria, the replacement is on its way.")
    page.click("form.reply button[type=submit]")
    expect(page.locator(".flash.ok")).to_contain_text("Reply sent")
    (mail,) = smtp_server.wait_for(1)
    assert mail.rcpt_tos == (SHOWCASE_EMAIL,)
    assert b"the replacement is on its way" in mail.data

    # A reply by SMS: it goes to Twilio's Messages API.
    maria_texts(demo, "Thanks! Will it come today?")
    page.goto(f"{served}/conversations/{conversation_id}")
    page.select_option("#channel", "sms")
    page.fill("#reply-text", "Yes, before 6 pm.")
    page.click("form.reply button[type=submit]")
    expect(page.locator(".flash.ok")).to_contain_text("Reply sent")
    sent = [r for r in rest.requests if r.url.endswith("/Messages.json")]
    assert sent
    assert sent[-1].data["Body"] == "Yes, before 6 pm."

    # A note, shown with its author.
    page.fill("#note-text", "DHL confirmed delivery window.")
    page.click("form.note-form button[type=submit]")
    note = page.locator(".interaction.note", has_text="DHL confirmed delivery window.")
    expect(note.locator(".author")).to_have_text("Demo Agent")

    # Email, call, SMS and chat are one conversation.
    current = page.locator("section.conversation.current")
    channels = set(current.locator(".interaction").evaluate_all("els => els.map(e => e.dataset.channel)"))
    assert {"email", "voice", "sms", "chat"} <= channels, channels
    assert current.locator(".interaction[data-channel=email] .author", has_text="Demo Agent").count() >= 1

    # Assign to me, then close.
    page.click("#assign-me")
    expect(page.locator("#conversation-state .assignee")).to_contain_text("Demo Agent")
    page.click("#close")
    expect(page.locator("#conversation-state .status")).to_have_text("closed")
    expect(page.locator("#reopen")).to_be_visible()
    shot(page, "conversation")


def test_a_new_sms_appears_without_a_reload_and_a_restart_of_the_stream_server_loses_nothing(
    demo: Runtime, served: str, contexts: Callable[..., BrowserContext], streams: Streams
) -> None:
    page = log_in(contexts(), served)
    conversation_id = marias_conversation(demo)
    page.goto(f"{served}/conversations/{conversation_id}")
    wait_live(page)
    page.evaluate("() => { window.__loaded = true; }")

    maria_texts(demo, "Is the courier on the way?")
    started = time.monotonic()  # from the commit
    expect(page.locator(".interaction", has_text="Is the courier on the way?")).to_be_visible(timeout=5000)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"the SMS took {elapsed:.2f} s to appear"
    assert page.evaluate("() => window.__loaded") is True  # the same page: no reload
    expect(page.locator("#announcer")).to_have_text("New sms message")

    # The stream server restarts; what arrives meanwhile is replayed from Last-Event-ID.
    streams.stop()
    page.wait_for_function("() => document.body.dataset.liveConnected === '0'")
    maria_texts(demo, "Hello? Anyone there?")
    streams.start()
    expect(page.locator(".interaction", has_text="Hello? Anyone there?")).to_be_visible(timeout=10_000)
    assert page.evaluate("() => window.__loaded") is True


def test_a_ringing_call_pops_up_for_every_agent_and_two_agents_see_each_other(
    demo: Runtime, served: str, contexts: Callable[..., BrowserContext]
) -> None:
    first = log_in(contexts(), served)
    second = log_in(contexts(), served, *SECOND_AGENT)
    conversation_id = marias_conversation(demo)
    first.goto(f"{served}/conversations/{conversation_id}")
    second.goto(f"{served}/conversations/{conversation_id}")
    wait_live(first)
    wait_live(second)
    # Each page says it is there when it opens; the other sees it.
    first.reload()
    wait_live(first)
    expect(second.locator("#presence")).to_contain_text("Demo Agent is viewing")
    first.focus("#reply-text")
    expect(second.locator("#presence")).to_contain_text("Demo Agent is replying")

    with demo.database.write() as session:
        customer = session.scalar(select(Customer).join(Identity).where(Identity.value == SHOWCASE_EMAIL))
        assert customer is not None
        phone = session.scalar(
            select(Identity.raw_value).where(Identity.customer_id == customer.id, Identity.kind == "phone")
        )
    caller = phone or "+4915155509876"
    with demo.database.write() as session:
        ingest(
            session,
            event(Channel.VOICE, caller, kind=InteractionKind.CALL, hours=hours_now()),
            source="test",
        )
    pop = second.locator(".pop")
    expect(pop).to_be_visible()
    expect(pop.locator(".caller")).to_have_text(caller)
    shot(second, "screen-pop")
    pop.locator("a.button").first.click()
    second.wait_for_url("**/customers/**")


def test_a_hostile_email_renders_inert_and_its_tracking_pixel_is_never_requested(
    demo: Runtime, served: str, contexts: Callable[..., BrowserContext]
) -> None:
    hits: list[str] = []

    class Pixel(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    tracker = ThreadingHTTPServer(("127.0.0.1", 0), Pixel)
    threading.Thread(target=tracker.serve_forever, daemon=True).start()
    pixel = f"http://127.0.0.1:{tracker.server_address[1]}/open.gif?who=agent"
    try:
        with demo.database.write() as session:
            result = ingest(
                session,
                event(
                    Channel.EMAIL, "mallory@example.net", subject="Invoice", text="See the invoice.",
                    html=(
                        "<p>See the invoice.</p><script>window.parent.pwned=1</script>"
                        f'<img src="x" onerror="window.parent.pwned=2"><img src="{pixel}" width="1" height="1">'
                    ),
                ),
                source="test",
            )  # fmt: skip
        page = log_in(contexts(), served)
        page.goto(f"{served}/conversations/{result.conversation_id}")
        page.click("details.formatted summary")
        frame = page.frame_locator("details.formatted iframe")
        expect(frame.locator("p")).to_have_text("See the invoice.")
        time.sleep(0.5)
        assert page.evaluate("() => window.pwned") is None
        assert hits == []
        # The stored HTML keeps no remote source at all (hub.sanitise): the pixel is
        # gone before any page could show it, whatever the frame does.
        assert pixel not in (result_html := frame.locator("body").inner_html())
        assert "open.gif" not in result_html
    finally:
        tracker.shutdown()
        tracker.server_close()


def test_state_changing_requests_without_the_csrf_token_are_refused(
    demo: Runtime, served: str, contexts: Callable[..., BrowserContext]
) -> None:
    context = contexts()
    page = log_in(context, served)
    conversation_id = marias_conversation(demo)
    form = context.request.post(f"{served}/conversations/{conversation_id}/status", form={"status": "closed"})
    assert form.status == 403
    api = context.request.post(f"{served}/api/conversations/{conversation_id}/take", data={})
    assert api.status == 403
    token = page.evaluate("() => document.querySelector('meta[name=csrf-token]').content")
    allowed = context.request.post(
        f"{served}/api/conversations/{conversation_id}/take", data={}, headers={"X-CSRF-Token": token}
    )
    assert allowed.status == 200
    with demo.database.read() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        assert conversation.status == "open"
    # Every page carries the security headers.
    answer = context.request.get(f"{served}/inbox")
    headers = answer.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    missing = context.request.get(f"{served}/conversations/999999")
    assert missing.status == 404
    assert "Inbox" in missing.text()  # the navigation stays


def test_the_phone_layout_never_scrolls_sideways(
    demo: Runtime, served: str, contexts: Callable[..., BrowserContext]
) -> None:
    page = log_in(contexts(width=390, height=844), served)
    conversation_id = marias_conversation(demo)
    for path, name in (("/inbox", "inbox-390"), (f"/conversations/{conversation_id}", "conversation-390")):
        page.goto(served + path)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide"
        shot(page, name)
    with demo.database.read() as session:
        assert session.scalar(select(Interaction.id).limit(1)) is not None


SHORTCUT_PASSWORD = "a long enough password"


def test_an_agent_works_through_the_inbox_by_keyboard(runtime: Runtime, served: str, page: Page) -> None:
    make_agent(runtime, Role.AGENT, email="priya@corridor.test", password=SHORTCUT_PASSWORD)
    put(runtime, event(Channel.EMAIL, "maria@example.com", name="Maria Keller", hours=0, subject="Order 48213"),
        event(Channel.SMS, "+14155550142", hours=1, text="Is it shipped?"))  # fmt: skip
    with runtime.database.write() as session:
        create_canned(session, shortcut="thanks", title="Thanks",
                      text="Thanks, {{customer.first_name}}! {{agent.first_name}}", actor_id=None)  # fmt: skip
        create_canned(session, shortcut="soon", title="Soon", text="We'll write again soon.", actor_id=None)
    with runtime.database.read() as session:
        conversations = list(session.scalars(select(Conversation.id).order_by(Conversation.id)))
    page.goto(served + "/login", wait_until="domcontentloaded")
    page.fill("#email", "priya@corridor.test")
    page.fill("#password", SHORTCUT_PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    rows = page.locator("#inbox-rows .inbox-row")
    expect(rows).to_have_count(2)
    order = [int(i) for i in rows.evaluate_all("els => els.map(e => e.dataset.conversation)")]
    assert sorted(order) == conversations

    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(rows.nth(0)).to_have_class("inbox-row waiting selected")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(f"/conversations/{order[0]}")

    page.keyboard.press("?")
    expect(page.locator("dialog#shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("dialog#shortcuts")).to_be_hidden()

    page.keyboard.press("r")
    reply = page.locator("#reply-text")
    expect(reply).to_be_focused()
    page.keyboard.type("/thanks")
    page.keyboard.press("Tab")
    name = "Maria" if order[0] == conversations[0] else "there"
    expect(reply).to_have_value(f"Thanks, {name}! Agent")
    expect(reply).to_be_focused()  # Tab expanded the snippet instead of moving on
    page.select_option("#snippet", "soon")
    expect(reply).to_have_value(f"Thanks, {name}! AgentWe'll write again soon.")
    page.keyboard.press("Escape")

    with page.expect_navigation():
        page.keyboard.press("a")
    expect(page.locator("#conversation-state .assignee")).to_contain_text("Assigned to")
    with page.expect_navigation():
        page.keyboard.press("c")
    expect(page.locator("#conversation-state .status")).to_have_text("closed")
    with page.expect_navigation():
        page.keyboard.press("j")
    assert page.url.endswith(f"/conversations/{order[1]}")
    with page.expect_navigation():
        page.keyboard.press("k")
    assert page.url.endswith(f"/conversations/{order[0]}")
    with page.expect_navigation():
        page.keyboard.press("g")
        page.keyboard.press("s")
    assert page.url.endswith("/search")
