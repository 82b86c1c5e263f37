"""The `corridor` command as an operator uses it."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo

from hub.cli import cli, public_url_mismatch
from hub.events import Channel
from hub.ingest import ingest_many, receive
from hub.runtime import Runtime
from hub.web.event_schema import parse_event
from tests.hub.events import event, event_json


def corridor(app: Flask, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj=ScriptInfo(create_app=lambda: app), catch_exceptions=False)


def test_user_create_prints_a_working_token(app: Flask) -> None:
    result = corridor(app, "user", "create", "Lee@Example.com", "--role", "supervisor", "--name", "Lee")
    assert result.exit_code == 0, result.output
    assert "created supervisor lee@example.com" in result.output
    token = result.output.split("API token: ")[1].strip()
    me = app.test_client().get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json["role"] == "supervisor"
    again = corridor(app, "user", "create", "lee@example.com")
    assert again.exit_code != 0
    assert "exists already" in again.output


def test_search_reindex_rebuilds_the_index_with_progress(app: Flask, runtime: Runtime) -> None:
    with runtime.database.write() as session:
        ingest_many(session, [event(Channel.SMS, "+14155550100", hours=h, text=f"toaster {h}") for h in range(30)],
                    source="test")  # fmt: skip
    result = corridor(app, "search", "reindex")
    assert result.exit_code == 0, result.output
    assert "indexing interactions" in result.output
    assert "indexed 30 interactions" in result.output
    hits = app.test_client()
    from hub.models import Role
    from tests.conftest import make_agent

    token = make_agent(runtime, Role.AGENT)
    found = hits.get("/api/search?q=toaster&limit=100", headers={"Authorization": f"Bearer {token}"}).json["hits"]
    assert len(found) == 30  # nothing lost, nothing doubled
    check = corridor(app, "search", "check")
    assert check.exit_code == 0
    assert "ok=True" in check.output


def test_journal_list_shows_failures(app: Flask, runtime: Runtime) -> None:
    with runtime.database.write() as session:
        ingest_many(session, [event(Channel.SMS, "+14155550100", external_id="y" * 1200)], source="test")
    result = corridor(app, "journal", "list")
    assert "external_id" in result.output
    replayed = corridor(app, "journal", "replay", "--id", "1")
    assert "no parser for source 'test'" in replayed.output


def test_journal_list_received_shows_the_backlog_waiting_for_a_processor(app: Flask, runtime: Runtime) -> None:
    assert corridor(app, "journal", "list", "--status", "received").output.strip() == "no received entries"
    sms = [json.dumps(event_json(channel="sms", **{"from": f"+1415555017{i}"})).encode() for i in range(3)]
    ids = receive(runtime.database, [parse_event(body) for body in sms], source="api")

    listed = corridor(app, "journal", "list", "--status", "received").output.splitlines()
    assert [line.split()[0] for line in listed] == [f"#{i}" for i in reversed(ids)]  # newest first
    assert all(" api attempts=1" in line for line in listed)

    runtime.journal.drain()
    assert corridor(app, "journal", "list", "--status", "received").output.strip() == "no received entries"
    processed = corridor(app, "journal", "list", "--status", "processed").output
    assert all(f"#{i} " in processed for i in ids)


def test_help_shows_corridors_commands_not_flasks_options(app: Flask) -> None:
    shown = corridor(app, "--help").output
    assert "customer" in shown
    assert "user" in shown
    for flask_option in ("--app", "--env-file", "--debug"):
        assert flask_option not in shown


def test_a_disabled_connectors_command_says_how_to_enable_it(app: Flask) -> None:
    # The test app enables no connector: `corridor twilio` is not there, and says why.
    result = CliRunner().invoke(cli, ["twilio", "simulate", "sms", "--body", "hi"],
                                obj=ScriptInfo(create_app=lambda: app))  # fmt: skip
    assert result.exit_code == 2
    assert "the twilio connector, which is not enabled" in result.output
    assert """HUB_APP_CONNECTORS='["twilio"]'""" in result.output
    unknown = CliRunner().invoke(cli, ["nosuch"], obj=ScriptInfo(create_app=lambda: app))
    assert unknown.exit_code == 2
    assert "No such command 'nosuch'" in unknown.output


def test_serving_another_port_than_the_public_url_names_says_how_to_fix_it() -> None:
    warning = public_url_mismatch("http://127.0.0.1:5000", 5077)
    assert warning is not None
    assert "HUB_APP_PUBLIC_BASE_URL=http://127.0.0.1:5077" in warning
    assert public_url_mismatch("http://127.0.0.1:5077", 5077) is None
    assert public_url_mismatch("http://localhost", 80) is None
    assert public_url_mismatch("https://support.example.com", 5000) is None  # a proxy in front: its business


def test_the_served_app_answers_with_descriptors_past_1024_open(app: Flask) -> None:
    # A busy process (many database connections, log files, clients) holds
    # descriptors numbered past select()'s limit; with waitress's default loop the
    # server thread died on the first such socket and every request hung unanswered.
    import os
    import urllib.request

    from tests.conftest import serving

    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        assert max(held) >= 1024
        with serving(app) as url:
            for _ in range(3):  # each request a new connection, on a descriptor past 1024
                with urllib.request.urlopen(url + "/api/health", timeout=10) as answer:
                    assert answer.status == 200
    finally:
        for fd in held:
            os.close(fd)
