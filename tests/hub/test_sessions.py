"""Console logins: revocable, lapsing when idle, throttled; the CLI that manages agents (SQLite and PostgreSQL)."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo
from flask.testing import FlaskClient
from sqlalchemy import delete, select

from hub.cli import cli
from hub.events import Channel
from hub.models import Agent, AuditRecord, Interaction, LoginThrottle, Role
from hub.runtime import Runtime
from tests.conftest import AppFactory, make_agent
from tests.hub.console import form_token
from tests.hub.events import event, put

EMAIL, PASSWORD = "mia@corridor.test", "correct horse"


def corridor(app: Flask, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        cli, list(args), obj=ScriptInfo(create_app=lambda: app), catch_exceptions=False, input=input, env=env
    )


def log_in(client: FlaskClient, email: str = EMAIL, password: str = PASSWORD, address: str = "10.0.0.1") -> int:
    data = {"email": email, "password": password, "csrf_token": form_token(client)}
    response = client.post("/login", data=data, environ_base={"REMOTE_ADDR": address})
    return response.status_code


def logged_in(client: FlaskClient) -> bool:
    return client.get("/customers").status_code == 200


@pytest.fixture
def mia(runtime: Runtime) -> str:
    return make_agent(runtime, Role.AGENT, email=EMAIL, password=PASSWORD)


def test_a_cookie_copied_before_logout_no_longer_works(app: Flask, mia: str) -> None:
    browser, thief = app.test_client(), app.test_client()
    assert log_in(browser) == 302
    cookie = browser.get_cookie("session")
    assert cookie is not None
    thief.set_cookie("session", cookie.value)
    assert logged_in(thief)

    browser.post("/logout", data={"csrf_token": form_token(browser, "/customers")})

    assert not logged_in(browser)
    assert not logged_in(thief)
    # Logging in again works, with a new cookie.
    assert log_in(browser) == 302
    assert logged_in(browser)


def test_a_session_lapses_after_the_idle_time(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(auth={"session_idle_minutes": 5})
    make_agent(app.extensions["corridor"], Role.AGENT, email=EMAIL, password=PASSWORD)
    client = app.test_client()
    assert log_in(client) == 302
    start = time.time()
    monkeypatch.setattr(time, "time", lambda: start + 4 * 60)
    assert logged_in(client)  # a request within the idle time keeps it alive...
    monkeypatch.setattr(time, "time", lambda: start + 8 * 60)
    assert logged_in(client)  # ...counted from the last request
    monkeypatch.setattr(time, "time", lambda: start + 14 * 60)
    assert not logged_in(client)


def test_repeated_failures_block_the_account_and_the_address_with_a_clear_message(
    make_app: AppFactory,
) -> None:
    app = make_app(auth={"login_max_failures": 3})
    make_agent(app.extensions["corridor"], Role.AGENT, email=EMAIL, password=PASSWORD)
    client = app.test_client()
    for _ in range(3):
        assert log_in(client, password="guess", address="10.0.0.9") == 401
    # The account is blocked, from any address, even with the right password.
    data = {"email": EMAIL, "password": PASSWORD, "csrf_token": form_token(client)}
    response = client.post("/login", data=data, environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert response.status_code == 429
    assert "Too many failed logins" in response.text
    assert "Try again in 15 minutes" in response.text
    # The address is blocked for every account.
    make_agent(app.extensions["corridor"], Role.AGENT, email="leo@corridor.test", password=PASSWORD)
    assert log_in(client, email="leo@corridor.test", address="10.0.0.9") == 429
    assert log_in(client, email="leo@corridor.test", address="10.0.0.3") == 302


def test_logins_logouts_failures_and_console_views_are_in_the_audit_trail(make_app: AppFactory) -> None:
    app = make_app(auth={"login_max_failures": 2})
    corridor_runtime: Runtime = app.extensions["corridor"]
    make_agent(corridor_runtime, Role.AGENT, email=EMAIL, password=PASSWORD)
    put(corridor_runtime, event(Channel.SMS, "+14155550142", text="Where is my parcel?"))
    with corridor_runtime.database.read() as session:
        customer_id, conversation_id = session.execute(
            select(Interaction.customer_id, Interaction.conversation_id)
        ).one()
    client = app.test_client()
    assert log_in(client, password="a wrong guess", address="10.0.0.9") == 401
    assert log_in(client, email="nobody@corridor.test", password="x", address="10.0.0.8") == 401
    assert log_in(client, password="another guess", address="10.0.0.9") == 401
    assert log_in(client, address="10.0.0.7") == 429  # throttled, even with the right password
    with corridor_runtime.database.write() as session:
        session.execute(delete(LoginThrottle))
    assert log_in(client, address="10.0.0.7") == 302
    client.get(f"/customers/{customer_id}")
    client.get(f"/customers/{customer_id}?fragment=1")  # a live refresh: not a look
    client.get(f"/conversations/{conversation_id}")
    client.post(
        "/logout", data={"csrf_token": form_token(client, "/customers")}, environ_base={"REMOTE_ADDR": "10.0.0.7"}
    )

    with corridor_runtime.database.read() as session:
        mia = session.scalars(select(Agent.id).where(Agent.email == EMAIL)).one()
        records = list(session.scalars(select(AuditRecord).order_by(AuditRecord.id)))
    trail = [(r.action, r.actor_id, r.target_id, r.details.get("address"), r.details.get("via")) for r in records
             if r.action.startswith(("agent.log", "customer.view"))]  # fmt: skip
    assert trail == [
        ("agent.login_failed", None, mia, "10.0.0.9", None),  # nobody@ is no account: not recorded
        ("agent.login_failed", None, mia, "10.0.0.9", None),  # this one blocks the account...
        ("agent.login", mia, mia, "10.0.0.7", None),  # ...whose refused attempt (429) is the throttle's alone
        ("customer.view", mia, customer_id, None, "console.customer"),
        ("customer.view", mia, customer_id, None, "console.conversation"),
        ("agent.logout", mia, mia, "10.0.0.7", None),
    ]
    assert [r.details["blocked"] for r in records if r.action == "agent.login_failed"] == [False, True]
    assert not [r for r in records if "guess" in repr(r.details)]  # what was typed is never kept


def test_a_password_change_is_audited_as_one_not_as_a_login(app: Flask, runtime: Runtime, mia: str) -> None:
    browser = app.test_client()
    assert log_in(browser) == 302
    new = "battery staple"
    form = {"current": PASSWORD, "password": new, "repeat": new, "csrf_token": form_token(browser, "/account")}
    assert browser.post("/account", data=form).status_code == 302

    with runtime.database.read() as session:
        actions = session.scalars(select(AuditRecord.action).order_by(AuditRecord.id)).all()
    # From the login on: the current password typed again proves who asks; nobody logged in a second time.
    assert actions[actions.index("agent.login") :] == ["agent.login", "agent.password"]
    assert logged_in(browser)


def test_the_bearer_scheme_is_case_insensitive(client: FlaskClient, auth: dict[str, str]) -> None:
    token = auth["Authorization"].split(" ", 1)[1]
    for scheme in ("bearer", "BEARER", "Bearer"):
        assert client.get("/api/me", headers={"Authorization": f"{scheme} {token}"}).status_code == 200
    assert client.get("/api/me", headers={"Authorization": f"Basic {token}"}).status_code == 401


def test_user_create_takes_the_password_from_a_prompt_or_the_environment_never_argv(app: Flask) -> None:
    refused = CliRunner().invoke(
        cli, ["user", "create", "a@corridor.test", "--password", "hunter22"], obj=ScriptInfo(create_app=lambda: app)
    )
    assert refused.exit_code != 0

    prompted = corridor(app, "user", "create", "a@corridor.test", "--password", input="hunter2222\nhunter2222\n")
    assert prompted.exit_code == 0, prompted.output
    assert "hunter2222" not in prompted.output
    assert log_in(app.test_client(), "a@corridor.test", "hunter2222") == 302

    from_env = corridor(app, "user", "create", "b@corridor.test", env={"CORRIDOR_PASSWORD": "from-the-env"})
    assert from_env.exit_code == 0, from_env.output
    assert log_in(app.test_client(), "b@corridor.test", "from-the-env", address="10.0.0.5") == 302


def test_user_list_deactivate_password_and_logout_everywhere(app: Flask, mia: str) -> None:
    listed = corridor(app, "user", "list")
    assert f"{EMAIL}\tagent\tactive\tconsole+api" in listed.output

    browser = app.test_client()
    assert log_in(browser) == 302
    assert corridor(app, "user", "logout", EMAIL).exit_code == 0
    assert not logged_in(browser)

    assert log_in(browser) == 302
    changed = corridor(app, "user", "password", EMAIL, input="new password\nnew password\n")
    assert changed.exit_code == 0, changed.output
    assert not logged_in(browser)
    assert log_in(browser, password=PASSWORD, address="10.0.0.6") == 401
    assert log_in(browser, password="new password", address="10.0.0.6") == 302

    assert corridor(app, "user", "deactivate", EMAIL).exit_code == 0
    assert not logged_in(browser)
    assert "deactivated" in corridor(app, "user", "list").output
    assert corridor(app, "user", "logout", "nobody@corridor.test").exit_code != 0
