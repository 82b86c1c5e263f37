"""Logging in to the console: with the test client as a browser does (the form carries its CSRF token), or in one."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from playwright.sync_api import Page
from werkzeug.test import TestResponse


def form_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token in the form at ``path``."""
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, f"no CSRF token in {path}"
    return found.group(1)


def log_in(client: FlaskClient, email: str, password: str) -> TestResponse:
    return client.post("/login", data={"email": email, "password": password, "csrf_token": form_token(client)})


def log_in_page(page: Page, base: str, email: str, password: str, target: str = "/login") -> None:
    """Log in through the form in a browser: open ``target`` (a page sends the browser to the form), submit."""
    page.goto(base + target, wait_until="domcontentloaded")
    page.fill("#email", email)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
