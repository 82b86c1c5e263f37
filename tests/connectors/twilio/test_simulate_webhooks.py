"""The deployment path end to end: a simulated SMS becomes a signed webhook; a receiver down delays, loses nothing.

Corridor is served over HTTP, the journal processor and the webhook loop run
as threads as in ``corridor worker``, subscriptions are made with ``corridor
webhook``, and the receiver is a real HTTP server on loopback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo
from werkzeug.serving import make_server

from hub.cli import cli
from hub.integrations import webhook_settings
from hub.integrations.signing import HEADER, verify
from hub.integrations.worker import WebhookWorker
from hub.runtime import Runtime
from tests.conftest import AppFactory
from tests.connectors.twilio.conftest import twilio_sections
from tests.hub.receiver import receiving

CALLER = "+14155550177"


@pytest.fixture
def deployed(make_app: AppFactory) -> Iterator[tuple[Flask, str]]:
    """Corridor with Twilio on loopback, its journal processor and webhook loop running; yields app and URL."""
    app = make_app(
        **twilio_sections(),
        webhooks={"allowed_hosts": ["127.0.0.1"], "retry_base_seconds": 0.2, "retry_max_seconds": 0.5},
    )
    runtime: Runtime = app.extensions["corridor"]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    stop = threading.Event()
    threads = [
        threading.Thread(target=server.serve_forever, daemon=True),
        threading.Thread(target=runtime.journal.run, args=(stop,), daemon=True),
        threading.Thread(
            target=WebhookWorker(runtime.database, webhook_settings(runtime.settings)).run, args=(stop,), daemon=True
        ),
    ]
    for thread in threads:
        thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}"
    stop.set()
    server.shutdown()
    for thread in threads:
        thread.join(timeout=10)


def corridor(app: Flask, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj=ScriptInfo(create_app=lambda: app), catch_exceptions=False)


@pytest.mark.slow
def test_a_simulated_sms_is_a_signed_webhook_within_2_s_and_a_receiver_down_loses_nothing(
    deployed: tuple[Flask, str],
) -> None:
    app, served = deployed
    with receiving() as receiver:
        added = corridor(app, "webhook", "add", receiver.url, "--event", "interaction.created")
        assert added.exit_code == 0, added.output
        secret = added.output.split("signing secret: ", 1)[1].strip()
        started = time.monotonic()
        sent = corridor(app, "twilio", "simulate", "sms", "--url", served, "--from", CALLER, "--body", "Where is 1042?")
        assert sent.exit_code == 0, sent.output
        receiver.wait_for(lambda: len(receiver.acknowledged()) == 1, timeout=5)
        elapsed = receiver.requests[0].at - started
        [request] = receiver.requests
        assert verify(secret, request.headers[HEADER], request.raw)
        assert request.body["data"]["interaction"]["text"] == "Where is 1042?"
        port = urlsplit(receiver.url).port
        assert port is not None
    assert elapsed < 2.0, f"{elapsed:.2f} s from the SMS to the webhook"

    # The receiver is gone: attempts fail (connection refused) and are retried.
    for text in ("first while down", "second while down"):
        assert (
            corridor(app, "twilio", "simulate", "sms", "--url", served, "--from", CALLER, "--body", text).exit_code == 0
        )
    time.sleep(2.0)
    log = corridor(app, "webhook", "deliveries", "1", "--status", "pending")
    assert "first while down" not in log.output  # the log shows the attempt, not the body
    assert "attempts=" in log.output
    assert "could not connect: " in log.output, log.output  # a refused connection, not called a timeout
    assert "Connection refused" in log.output, log.output
    assert "queued: waits its turn behind earlier events" in log.output, log.output  # the second, behind the first
    with receiving(port) as back:
        back.wait_for(lambda: len(back.acknowledged()) == 2, timeout=10)
        # In order: the conversation's later message waited for the earlier one.
        assert [r.body["data"]["interaction"]["text"] for r in back.acknowledged()] == [
            "first while down", "second while down",
        ]  # fmt: skip
        assert all(verify(secret, r.headers[HEADER], r.raw) for r in back.requests)

        listed = corridor(app, "webhook", "list")
        assert f"#1 active {back.url} <- interaction.created" in listed.output
        tested = corridor(app, "webhook", "test", "1")
        assert tested.exit_code == 0, tested.output
        assert "delivered: HTTP 200" in tested.output
        assert corridor(app, "webhook", "pause", "1").output.strip() == "subscription 1 paused"
        assert corridor(app, "webhook", "resume", "1").output.strip() == "subscription 1 active"
        assert corridor(app, "webhook", "remove", "1").output.strip() == "subscription 1 removed"
        assert corridor(app, "webhook", "list").output.strip() == "no subscriptions"
