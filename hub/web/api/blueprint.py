"""The /api blueprint: every resource module registers its views on it."""

from __future__ import annotations

from flask import Blueprint

api = Blueprint("api", __name__, url_prefix="/api")
