"""The widget in a real browser (Debian's chromium via Playwright), embedded by a page on another origin.

Three loopback servers, as in production: Corridor (waitress, as ``corridor
run`` serves it), the stream server (``corridor live``'s StreamServer) and a
"customer's website" on another port that embeds the widget with one tag
under a strict CSP of its own. Screenshots go to tests/artifacts/screenshots/.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, FrameLocator, Page, expect, sync_playwright
from sqlalchemy import func, select

from connectors.webchat.visitors import identity_signature
from hub.live import AGENTS
from hub.live.server import StreamServer, StreamSettings, serving_in_thread
from hub.live.tokens import issue_stream_token
from hub.models import ConnectorState, Identity, Interaction, Role
from hub.runtime import Runtime
from tests.conftest import make_agent
from tests.connectors.webchat.conftest import SITE_SECRET, shop_site
from tests.hub.sse import SseClient
from tests.services import free_port, require
from tests.waiting import wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
TIMEOUT_MS = 15_000
#: Seconds a message may take to appear live on the other side here (see the first test).
LIVE_BOUND_S = 3.0


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        require("chromium", "apt-get install chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _host_page(corridor: str, site: str = "shop") -> bytes:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Shop</title>
<link rel="stylesheet" href="/host.css"></head>
<body><h1>A shop</h1><p>Products, prices, a chat in the corner.</p>
<script src="/host.js"></script>
<script src="{corridor}/chat/widget.js" data-site="{site}" async></script></body></html>""".encode()


# The host page's own script (external: its CSP has no 'unsafe-inline' either).
_HOST_JS = b"""
window.readyFired = false;
window.addEventListener("corridor:ready", function () { window.readyFired = true; });
"""
# A hostile stylesheet: the widget's panel must not inherit it.
_HOST_CSS = b"body { font-family: serif; } * { color: #e0e !important; } iframe { opacity: 1; }"


@contextmanager
def _website(corridor: Callable[[], str], site: str = "shop") -> Iterator[str]:
    """A customer's website on its own loopback port, with a strict CSP that allows only Corridor."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, kind = {
                "/host.js": (_HOST_JS, "text/javascript"),
                "/host.css": (_HOST_CSS, "text/css"),
            }.get(self.path, (_host_page(corridor(), site), "text/html; charset=utf-8"))
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header(
                "Content-Security-Policy",
                f"default-src 'self'; script-src 'self' {corridor()}; frame-src {corridor()}; style-src 'self'",
            )
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Stack:
    """Corridor, its stream server and a website, on loopback ports."""

    def __init__(self, app: Flask, corridor: str, website: str, stream_port: int) -> None:
        self.app = app
        self.runtime: Runtime = app.extensions["corridor"]
        self.corridor = corridor
        self.website = website
        self.stream_port = stream_port
        self._server: Any = None

    def start_streams(self) -> None:
        server = StreamServer(self.runtime.database, StreamSettings(secret=self.runtime.secret_key, poll_interval=0.01))
        self._server = serving_in_thread(server, port=self.stream_port)
        self._server.__enter__()

    def stop_streams(self) -> None:
        if self._server is not None:
            self._server.__exit__(None, None, None)
            self._server = None

    def agent_stream(self) -> SseClient:
        token = issue_stream_token(self.runtime.secret_key, subject="agent:test", topics=[AGENTS])
        stream = SseClient(f"http://127.0.0.1:{self.stream_port}/live/stream?token={token}")
        stream.frames(1)
        return stream

    def conversation(self) -> int | None:
        with self.runtime.database.read() as session:
            return session.scalar(
                select(Interaction.conversation_id).where(Interaction.channel == "chat").order_by(Interaction.id.desc())
            )

    def reply(self, text: str) -> int:
        # The visitor's message is on the timeline a moment after its 202 (the journal processor).
        assert wait_until(lambda: self.conversation() is not None, 5)
        conversation = self.conversation()
        client = self.app.test_client()
        token = make_agent(self.runtime, Role.AGENT, email=f"agent{time.monotonic_ns()}@corridor.test")
        answer = client.post(
            f"/api/conversations/{conversation}/replies",
            json={"channel": "chat", "text": text},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 201, answer.json
        return int(answer.json["interaction_id"])


@pytest.fixture
def stack_factory(make_chat_app: Any) -> Iterator[Callable[..., Stack]]:
    from waitress import create_server

    from hub.cli import WAITRESS_OPTIONS

    stacks: list[tuple[Stack, Any, threading.Thread, Any]] = []

    def build(
        *, site_overrides: dict[str, Any] | None = None, site_origin: str | None = None, **sections: Any
    ) -> Stack:
        stream_port = free_port()
        holder: dict[str, str] = {}
        website = _website(lambda: holder["corridor"])
        site_url = website.__enter__()
        site = shop_site(origins=[site_origin or site_url], **(site_overrides or {}))
        app = make_chat_app(site, live={"port": stream_port}, journal={"processor": "web"}, **sections)
        server = create_server(app, host="127.0.0.1", port=0, threads=6, **WAITRESS_OPTIONS)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        holder["corridor"] = f"http://127.0.0.1:{server.effective_port}"
        stack = Stack(app, holder["corridor"], site_url, stream_port)
        stack.start_streams()
        stacks.append((stack, server, thread, website))
        return stack

    yield build
    for stack, server, thread, website in stacks:
        stack.stop_streams()
        server.close()
        for channel in list(server._map.values()):
            channel.close()
        server.task_dispatcher.shutdown()
        thread.join(timeout=10)
        website.__exit__(None, None, None)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    new_page = context.new_page()
    yield new_page
    context.close()


def _open_chat(page: Page, stack: Stack) -> FrameLocator:
    page.goto(stack.website)
    page.wait_for_function("() => window.readyFired === true")
    page.click("button[aria-label='Open chat']")
    return page.frame_locator("#corridor-chat-frame")


def _send(chat: FrameLocator, text: str) -> None:
    chat.locator("#text").fill(text)
    chat.locator("#text").press("Enter")


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_a_chat_both_ways_within_a_second_and_a_reload_keeps_it(
    stack_factory: Callable[..., Stack], page: Page
) -> None:
    stack = stack_factory(site_overrides={"prechat": {}})
    chat = _open_chat(page, stack)
    expect(chat.locator(".notice")).to_contain_text("Hello")
    agents = stack.agent_stream()
    try:
        sent = time.monotonic()
        _send(chat, "Where is my order 1042?")
        created: list[dict[str, Any]] = []
        while not created and time.monotonic() - sent < 3:
            created = [e for e in agents.events(1, timeout=0.2) if e["kind"] == "interaction.created"]
        arrived = time.monotonic() - sent
        assert created, "the agents' stream never heard of the visitor's message"
        assert created[0]["data"]["channel"] == "chat"
        # The issue's figure is 1 s; its distribution is bench_chat's to measure. Here the
        # bound is what a CI machine shared with other jobs keeps: live, not on a reload.
        assert arrived < LIVE_BOUND_S, f"visitor -> agent took {arrived:.2f} s"
    finally:
        agents.close()
    expect(chat.locator(".me .text")).to_have_text(["Where is my order 1042?"])

    started = time.monotonic()
    stack.reply("It left the warehouse this morning.")
    expect(chat.locator(".them .text")).to_have_text(
        ["It left the warehouse this morning."], timeout=LIVE_BOUND_S * 1000
    )
    assert time.monotonic() - started < LIVE_BOUND_S
    _shot(page, "widget-desktop")

    page.reload()
    page.wait_for_function("() => window.readyFired === true")
    page.click("button[aria-label='Open chat']")
    chat = page.frame_locator("#corridor-chat-frame")
    expect(chat.locator(".msg .text")).to_have_text(["Where is my order 1042?", "It left the warehouse this morning."])
    # The host page's hostile styles stop at the frame.
    colour = chat.locator(".them .text").evaluate("el => getComputedStyle(el).color")
    assert colour != "rgb(238, 0, 238)"


def test_a_reply_sent_while_the_stream_server_restarts_is_shown_once(
    stack_factory: Callable[..., Stack], page: Page
) -> None:
    stack = stack_factory(site_overrides={"prechat": {}})
    chat = _open_chat(page, stack)
    _send(chat, "Hello?")
    expect(chat.locator(".me:not(.pending)")).to_have_count(1)
    stack.reply("First answer")
    expect(chat.locator(".them .text")).to_have_text(["First answer"], timeout=2000)
    stack.stop_streams()
    stack.reply("Sent while the stream server was down")
    time.sleep(0.5)
    stack.start_streams()
    expect(chat.locator(".them .text")).to_have_text(
        ["First answer", "Sent while the stream server was down"], timeout=10_000
    )
    stack.reply("And after")
    expect(chat.locator(".them .text")).to_have_text(
        ["First answer", "Sent while the stream server was down", "And after"], timeout=3000
    )
    time.sleep(0.5)
    assert chat.locator(".them").count() == 3


def test_a_page_on_an_origin_the_site_does_not_list_gets_no_chat(
    stack_factory: Callable[..., Stack], page: Page
) -> None:
    stack = stack_factory(site_origin="https://shop.example")
    page.goto(stack.website)
    time.sleep(2)
    assert page.evaluate("() => window.readyFired") is False
    with stack.runtime.database.read() as session:
        assert session.scalar(select(func.count()).select_from(ConnectorState)) == 0


def test_a_script_in_a_visitors_message_is_shown_as_text(stack_factory: Callable[..., Stack], page: Page) -> None:
    stack = stack_factory(site_overrides={"prechat": {}})
    chat = _open_chat(page, stack)
    payload = '<img src=x onerror="parent.pwned=1"><script>parent.pwned=2</script>'
    _send(chat, payload)
    expect(chat.locator(".me .text")).to_have_text([payload])
    stack.reply(payload)
    expect(chat.locator(".them .text")).to_have_text([payload], timeout=2000)
    assert chat.locator(".log img, .log script").count() == 0
    assert page.evaluate("() => window.pwned") is None

    # And in the agents' console, on the customer's timeline.
    make_agent(stack.runtime, Role.AGENT, email="console@corridor.test", password="a long console password")
    with stack.runtime.database.read() as session:
        customer = session.scalar(select(Interaction.customer_id).where(Interaction.direction == "inbound"))
    page.goto(f"{stack.corridor}/customers/{customer}")
    page.fill("#email", "console@corridor.test")
    page.fill("#password", "a long console password")
    page.click("button[type=submit]")
    page.wait_for_selector(".interaction")
    assert payload in page.locator(".interaction").first.inner_text()
    assert page.evaluate("() => document.querySelectorAll('.interaction img, .interaction script').length") == 0
    assert page.evaluate("() => window.pwned") is None


def test_a_verified_identity_lands_on_its_customer_and_a_forged_one_is_refused(
    stack_factory: Callable[..., Stack], page: Page
) -> None:
    stack = stack_factory(site_overrides={"prechat": {}, "require_verification": True})
    page.goto(stack.website)
    page.wait_for_function("() => window.readyFired === true")
    forged = page.evaluate(
        """(sig) => Corridor.identify({email: "eve@example.com", signature: sig})
                   .then(() => "accepted", e => e.message)""",
        identity_signature("not-the-secret", "eve@example.com"),
    )
    assert "does not match" in forged
    verified = page.evaluate(
        """(sig) => Corridor.identify({email: "maria@example.com", name: "Maria", signature: sig})
                   .then(r => r.verified)""",
        identity_signature(SITE_SECRET, "maria@example.com"),
    )
    assert verified is True
    page.evaluate("() => Corridor.open()")
    chat = page.frame_locator("#corridor-chat-frame")
    _send(chat, "It's Maria, signed in")
    expect(chat.locator(".me:not(.pending)")).to_have_count(1)
    # The web process's journal processor puts it on the timeline a moment after the 202.
    assert wait_until(lambda: stack.conversation() is not None, 5)
    with stack.runtime.database.read() as session:
        row = session.execute(
            select(Interaction.customer_id, Interaction.provider_metadata).where(Interaction.channel == "chat")
        ).one()
        owner = session.scalar(select(Identity.customer_id).where(Identity.value == "maria@example.com"))
    assert row.customer_id == owner
    assert row.provider_metadata["identity"] == "verified"


def test_the_chat_works_on_a_390_px_phone(stack_factory: Callable[..., Stack], browser: Browser) -> None:
    stack = stack_factory(site_overrides={"prechat": {"name": "optional", "email": "optional"}})
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(stack.website)
        page.wait_for_function("() => window.readyFired === true")
        _shot(page, "phone-launcher")
        page.click("button[aria-label='Open chat']")
        chat = page.frame_locator("#corridor-chat-frame")
        box = page.locator("#corridor-chat-frame").bounding_box()
        assert box is not None
        assert box["width"] == 390
        # The pre-chat form first (name and email are asked for, optional).
        expect(chat.locator("#prechat")).to_be_visible()
        chat.locator("input[name=name]").fill("Jo")
        chat.locator("input[name=email]").fill("jo@example.com")
        _shot(page, "phone-prechat")
        chat.locator("#prechat button[type=submit]").click()
        expect(chat.locator("#compose")).to_be_visible()
        _send(chat, "Typing on a phone")
        expect(chat.locator(".me:not(.pending)")).to_have_count(1)
        send = chat.locator("#send").bounding_box()
        assert send is not None
        assert send["x"] + send["width"] <= 390
        _shot(page, "phone-chat")
        chat.locator("#close").click()
        expect(page.locator("#corridor-chat-frame")).to_be_hidden()
    finally:
        context.close()
