"""Web chat: a widget any site embeds with one tag, on the customer's one timeline.

* :mod:`.settings` -- the ``[webchat]`` section: sites, origins, hours, limits;
* :mod:`.visitors` -- visitor tokens, claims and HMAC-verified identities;
* :mod:`.parse` -- a journaled visitor message to a ChannelEvent, no I/O;
* :mod:`.views` -- the loader, the framed panel and the visitor API;
* :mod:`.sender` -- agents' replies, live to the widget, by email or SMS once
  the visitor has left;
* ``static/`` -- the widget's plain JavaScript and CSS (no build step).

Visitors' replies and agents' answers travel through the hub's live feed
(``hub.live``): the panel follows the visitor's own topic
(``hub.live.chat_topic``) on ``corridor live``, with Last-Event-ID replay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.contract import Registry

#: The site ``[webchat] demo_site = true`` adds, embedded by ``/chat/demo``.
DEMO_SITE = "demo"


def init_connector(registry: Registry) -> None:
    """Register the widget's routes, the replay parser and the chat sender."""
    from connectors.webchat.sender import ChatSender
    from connectors.webchat.settings import WebchatSettings, demo_site
    from connectors.webchat.views import SOURCE, build_blueprint, replay_parser
    from hub.contract import AppSettings, Channel, LiveSettings

    settings = registry.settings.section("webchat", WebchatSettings)
    sites = {site.name: site for site in settings.all_sites()}
    if settings.demo_site and DEMO_SITE not in sites:
        base = registry.settings.section("app", AppSettings).public_base_url.rstrip("/")
        sites[DEMO_SITE] = demo_site(DEMO_SITE, base)
    live = registry.settings.section("live", LiveSettings)
    registry.add_blueprint(build_blueprint(registry.database, settings, sites, live, registry.senders))
    registry.add_parser(SOURCE, replay_parser)
    registry.add_sender(Channel.CHAT, ChatSender(registry.database, settings, registry.senders))
