"""Outgoing webhooks in the console, in a real browser: an admin subscribes a receiver on loopback, copies the
secret, sends a test that verifies with it, pauses (events wait), resumes (they are sent), and unsubscribes."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from hub.events import Channel
from hub.integrations import webhook_settings
from hub.integrations.signing import HEADER, verify
from hub.integrations.worker import WebhookWorker
from hub.models import Role
from hub.runtime import Runtime
from tests.conftest import AppFactory, make_agent, serving
from tests.hub.console import log_in_page
from tests.hub.events import event, put
from tests.hub.receiver import Receiver, receiving

PASSWORD = "a long enough password"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as found:
        yield found


@pytest.fixture
def hooked(make_app: AppFactory) -> Iterator[tuple[Flask, str]]:
    app = make_app(webhooks={"allowed_hosts": ["127.0.0.1"], "timeout_seconds": 2, "retry_base_seconds": 0.05})
    with serving(app) as url:
        yield app, url


def test_an_admin_subscribes_tests_pauses_resumes_and_unsubscribes(
    hooked: tuple[Flask, str], receiver: Receiver, page: Page
) -> None:
    app, base = hooked
    runtime: Runtime = app.extensions["corridor"]
    make_agent(runtime, Role.ADMIN, email="ada@corridor.test", password=PASSWORD)
    log_in_page(page, base, "ada@corridor.test", PASSWORD)
    page.click("header.top nav a:has-text('Webhooks')")
    expect(page.locator("h1")).to_have_text("Webhooks")

    # A private address is refused, with the reason, and what was typed is kept.
    page.fill("#w-url", "http://10.1.2.3/hook")
    page.check("input[value='interaction.created']")
    with page.expect_navigation():
        page.click("section.new-webhook button[type=submit]")
    expect(page.locator(".flash.error")).to_contain_text("url")
    assert page.locator("#w-url").input_value() == "http://10.1.2.3/hook"

    page.fill("#w-url", receiver.url)
    page.fill("#w-description", "The CRM")
    with page.expect_navigation():
        page.click("section.new-webhook button[type=submit]")
    expect(page.locator(".flash.ok")).to_contain_text("Subscribed")
    page.click("details.secret summary")
    secret = page.locator("#secret").inner_text().strip()
    assert secret.startswith("whsec_")

    # Send test: the receiver gets a request that verifies with the secret on the page.
    with page.expect_navigation():
        page.click("button:has-text('Send test')")
    expect(page.locator(".flash.ok")).to_contain_text("Test delivered: the receiver answered 200")
    [test] = receiver.requests
    assert test.body["type"] == "webhook.test"
    assert verify(secret, test.headers[HEADER], test.raw)
    expect(page.locator("table.deliveries tbody tr")).to_have_count(1)

    # Paused: an SMS waits in the log and is not sent...
    with page.expect_navigation():
        page.click("button:has-text('Pause')")
    expect(page.locator(".page-head .state")).to_have_text("paused")
    put(runtime, event(Channel.SMS, "+14155550142", text="Where is my parcel?"))
    worker = WebhookWorker(runtime.database, webhook_settings(runtime.settings))
    with ThreadPoolExecutor(2) as pool:
        for _ in range(5):
            worker.step(pool)
        page.reload()
        expect(page.locator("table.deliveries .state", has_text="waiting")).to_have_count(1)
        assert len(receiver.requests) == 1
        # ...until resumed.
        with page.expect_navigation():
            page.click("button:has-text('Resume')")
        receiver.wait_for(lambda: len(receiver.acknowledged()) == 2, pump=lambda: worker.step(pool))
    assert receiver.requests[-1].body["type"] == "interaction.created"
    page.reload()
    expect(page.locator("table.deliveries .state", has_text="delivered")).to_have_count(2)
    # On a phone the log's header is hidden, so its numbers say what they are.
    page.set_viewport_size({"width": 390, "height": 844})
    attempts = page.locator("table.deliveries tbody tr td.when").first
    label = attempts.evaluate("cell => getComputedStyle(cell, '::before').content")
    assert label == '"Attempts: "', label
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 800})
    assert attempts.evaluate("cell => getComputedStyle(cell, '::before').content") == "none"
    page.goto(base + "/admin/webhooks", wait_until="domcontentloaded")
    expect(page.locator("table.webhooks tbody tr")).to_contain_text("The CRM")

    page.click("table.webhooks a")
    page.click("details.danger summary")
    with page.expect_navigation():
        page.click("button:has-text('Unsubscribe and delete the log')")
    expect(page.locator(".empty")).to_contain_text("No webhooks yet")


def test_webhooks_are_for_admins_only(hooked: tuple[Flask, str], page: Page) -> None:
    app, base = hooked
    make_agent(app.extensions["corridor"], Role.SUPERVISOR, email="sam@corridor.test", password=PASSWORD)
    log_in_page(page, base, "sam@corridor.test", PASSWORD)
    expect(page.locator("header.top nav a:has-text('Webhooks')")).to_have_count(0)
    response = page.goto(base + "/admin/webhooks", wait_until="domcontentloaded")
    assert response is not None
    assert response.status == 403
