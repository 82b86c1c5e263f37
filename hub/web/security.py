"""What keeps the pages safe in a browser: CSRF tokens and the security headers.

CSRF: a browser sends the login cookie with any request, including one a
hostile page makes it send. So every state-changing request that a cookie
could authenticate (page forms, the console's fetches, cookie-authenticated
/api calls) must carry the session's CSRF token, in the form field
``csrf_token`` or the ``X-CSRF-Token`` header. Requests that cannot ride on
a cookie need none: /api calls with a bearer token (a hostile page cannot add
the header), /api calls with no login cookie at all (they are refused as
unauthenticated anyway), and /webhooks (authenticated by the provider's
signature).

Headers: every page gets a strict Content-Security-Policy (no inline script,
no plugins, only our own frames, and no framing of us), plus
``X-Frame-Options``, ``nosniff`` and ``Referrer-Policy``. Webhook answers
skip them: a provider's HTTP client has no use for them, and webhooks are
the request path whose every microsecond counts.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, Response, request, session
from werkzeug.exceptions import Forbidden

from hub.runtime import current_runtime

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SESSION_KEY = "csrf"
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    token = session.get(_SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[_SESSION_KEY] = token
    return token


def _needs_token() -> bool:
    if request.method not in _UNSAFE:
        return False
    path = request.path
    if path.startswith("/webhooks/"):
        return False
    if path.startswith("/api/"):
        # The scheme is case-insensitive (RFC 9110), as hub.web.access reads it.
        if request.environ.get("HTTP_AUTHORIZATION", "")[:7].lower() == "bearer ":
            return False
        return "HTTP_COOKIE" in request.environ
    # Connectors' own public endpoints (a chat widget's) authenticate themselves.
    return not path.startswith("/chat/")


def check_csrf() -> None:
    if not _needs_token():
        return
    expected = session.get(_SESSION_KEY)
    given = request.headers.get(HEADER) or (
        request.form.get(FIELD)
        if request.mimetype.startswith(("application/x-www-form-urlencoded", "multipart/"))
        else None
    )
    if not isinstance(expected, str) or not given or not hmac.compare_digest(expected, given):
        raise Forbidden(
            description="This form has expired or did not come from Corridor. Reload the page and try again."
        )


def stream_origin() -> str:
    """The origin pages open live streams on (for connect-src)."""
    runtime = current_runtime()
    url = runtime.hub.live.public_url
    if url.startswith(("http://", "https://")):
        return "/".join(url.split("/")[:3])
    if url:
        return ""  # a path on our own origin: 'self' covers it
    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    return f"{request.scheme}://{host}:{runtime.hub.live.port}"


def page_policy(frame: bool = False) -> str:
    """The Content-Security-Policy of a page (``frame``: of an email body shown in a frame of ours)."""
    if frame:
        return "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"
    connect = " ".join(filter(None, ["'self'", stream_origin()]))
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"media-src 'self'; frame-src 'self'; connect-src {connect}; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def add_headers(response: Response) -> Response:
    path = request.path
    if path.startswith("/webhooks/"):
        return response
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if "Content-Security-Policy" not in headers:
        headers["Content-Security-Policy"] = page_policy()
    headers.setdefault("X-Frame-Options", "DENY")
    return response


def register_security(app: Flask) -> None:
    app.before_request(check_csrf)
    app.after_request(add_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
