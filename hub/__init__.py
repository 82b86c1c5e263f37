"""Corridor: every channel a customer uses, on one timeline.

``create_app()`` builds the Flask application from validated settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from hub.config import load_settings
from hub.logs import register_request_ids, use_json_logs
from hub.metrics import register_metrics
from hub.runtime import build_runtime


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signer built once per app.

    Flask builds it (deriving the signing key) for every request, ~15 us, on
    every webhook and API call too, which carry no cookie: a few per cent of a
    request's whole budget. The key cannot change while the app runs. A
    request with no Cookie header at all (webhooks, API clients) gets its
    empty session without parsing cookies, the rest as Flask does it.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if "HTTP_COOKIE" not in request.environ:
            return self.session_class()
        return super().open_session(app, request)

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        signer: URLSafeTimedSerializer | None = app.extensions.get("corridor.session_signer")
        if signer is None:
            signer = super().get_signing_serializer(app)
            app.extensions["corridor.session_signer"] = signer
        return signer


def create_app(
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Flask:
    """The Corridor web application.

    Settings come from ``config/defaults.toml``, the ``HUB_CONFIG`` file, the
    ``HUB_*`` environment (``environ``, default ``os.environ``) and then
    ``overrides``; anything unknown or malformed raises SettingsError.
    """
    settings = load_settings(environ, overrides)
    runtime = build_runtime(settings)
    # No static folder of its own: the console serves its files (hub/console/static).
    app = Flask(__name__, instance_path=str(runtime.instance_dir), static_folder=None)
    app.config.update(
        SECRET_KEY=runtime.secret_key,
        MAX_CONTENT_LENGTH=runtime.hub.app.max_body_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=runtime.hub.app.public_base_url.startswith("https://"),
        # The signature's own age limit backs up the idle check (hub.web.access):
        # a cookie older than this is refused before it is even read.
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=runtime.hub.auth.session_idle_minutes),
        JSON_SORT_KEYS=False,
    )
    app.session_interface = _SessionInterface()
    app.extensions["corridor"] = runtime

    from hub.web import register_web

    register_web(app)
    if runtime.hub.app.log_format == "json":
        use_json_logs()
    register_request_ids(app)
    register_metrics(app, runtime.hub.metrics.token, runtime.hub.metrics.allow_from)
    for blueprint in runtime.registry.blueprints:
        app.register_blueprint(blueprint)
    for command in runtime.registry.commands:
        app.cli.add_command(command)
    return app
