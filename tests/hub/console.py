"""Logging in to the console with Flask's test client, as a browser does: the form carries its CSRF token."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse


def form_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token in the form at ``path``."""
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, f"no CSRF token in {path}"
    return found.group(1)


def log_in(client: FlaskClient, email: str, password: str) -> TestResponse:
    return client.post("/login", data={"email": email, "password": password, "csrf_token": form_token(client)})
