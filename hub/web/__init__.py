"""Corridor's web side: the JSON API, the pages, and error handling."""

from __future__ import annotations

from flask import Flask


def register_web(app: Flask) -> None:
    from hub.web.errors import CONVERTERS, register_error_handlers

    # Before any route is added: rules bind their converters when they are.
    app.url_map.converters.update(CONVERTERS)
    from hub.console import pages
    from hub.web.access import current_agent
    from hub.web.api import api
    from hub.web.security import register_security

    app.register_blueprint(api)
    app.register_blueprint(pages)
    register_error_handlers(app)
    register_security(app)
    # Every page, error pages too, shows the navigation of whoever is logged in.
    app.jinja_env.globals["current_agent"] = current_agent
