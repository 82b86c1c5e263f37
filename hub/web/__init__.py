"""Corridor's web side: the JSON API, the pages, and error handling."""

from __future__ import annotations

from flask import Flask


def register_web(app: Flask) -> None:
    from hub.web.errors import CONVERTERS, register_error_handlers

    # Before any route is added: rules bind their converters when they are.
    app.url_map.converters.update(CONVERTERS)
    from hub.web.api import api
    from hub.web.pages import pages

    app.register_blueprint(api)
    app.register_blueprint(pages)
    register_error_handlers(app)
