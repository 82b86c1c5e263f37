"""Console logins: revocable, lapsing when idle, throttled; the CLI that manages agents (SQLite and PostgreSQL)."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo
from flask.testing import FlaskClient

from hub.cli import cli
from hub.models import Role
from hub.runtime import Runtime
from tests.conftest import AppFactory, make_agent
from tests.hub.console import form_token

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
