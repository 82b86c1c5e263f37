"""The agent console: the inbox, the customer's whole story, replies, notes, live updates, the screen pop.

Server-rendered pages; small dependency-free JavaScript (``static/console.js``,
no build step) adds live updates, the screen pop and local times. Every form
works without it. The blueprint keeps the name ``pages`` it had in
hub/web/pages.py, so links (``url_for('pages.…')``) in other templates stay valid.
"""

from __future__ import annotations

from hub.console import agents, canned, identities, search, webhooks  # noqa: F401  (their routes are on the pages blueprint)
from hub.console.views import pages

__all__ = ["pages"]
