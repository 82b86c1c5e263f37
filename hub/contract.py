"""The connector contract: everything of the hub a connector may use, in one place.

A connector (``connectors/<provider>/``) imports the hub only from here
(``tests/test_architecture.py`` enforces it), and never another connector.
It turns what a provider sends into the event types below, hands them to an
ingest entry point, and registers itself with the :class:`Registry` in its
``init_connector(registry)``, which the app factory calls when the connector
is enabled in ``[app] connectors``. What each name means is in its own
docstring; this is the map.

The event types (``hub.events``): what a connector produces.
    :class:`ChannelEvent` is something new on a customer's timeline (a
    message, a call, a note); :class:`InteractionUpdate` is something that
    happened to one already there (a delivery status, a call's end, a
    transcript); :data:`Ingestible` is either. :class:`Party` is who sent or
    received it, :class:`Attachment` a file with it; the enums
    (:class:`Channel`, :class:`Direction`, :class:`IdentityKind`,
    :class:`InteractionKind`, :class:`DeliveryStatus`, :class:`CallStatus`)
    name the rest. :data:`JSONValue` is what metadata may hold, and
    :data:`FUTURE_TOLERANCE` how far after the server's clock an event's time
    may be before it is taken as wrong.

Ingest entry points (``hub.ingest``): the one write path, for every channel.
    :func:`receive` journals a request's events, commits (concurrent requests
    share one group commit) and returns their journal ids, so a webhook answers
    the provider only once the payload is durable; :func:`ingest` and
    :func:`ingest_many` run events through the whole pipeline inside the
    caller's transaction (pollers and backfills, in batches) and give an
    :class:`IngestResult` each; :func:`record_unparseable` journals a payload
    the connector could not read, so an admin sees it and can replay it:
    nothing accepted is lost.

Database and session scope (``hub.db``): :class:`Database`.
    ``database.write()`` and ``database.read()`` open the one transaction an
    entry point owns (a webhook view, a worker loop, a command); the code
    inside flushes and never commits.

Settings (``hub.config``): a connector declares its section in
    ``config/defaults.toml`` and reads it with ``registry.settings.section``;
    :func:`read_secret` reads a password file, :class:`SettingsError` stops
    start-up with a message naming the setting, and :class:`AppSettings` is
    the ``[app]`` section (e.g. the public base URL webhooks are signed for).

The outbound sender protocol (``hub.outbound``): how replies leave.
    A connector that sends implements :class:`Sender` (``from_address`` for a
    reply, and ``send`` of an :class:`OutboundMessage`, called after commit,
    answering a :class:`SendResult` or raising a :class:`SendError` whose
    ``permanent`` says whether a retry can help) and registers it for its
    channels with ``registry.add_sender``.

The registry (``hub.registry``): :class:`Registry` takes the connector's
    senders, webhook blueprints, worker loops (run by ``corridor worker``),
    ``corridor`` commands, replay parsers and media fetchers; a :data:`Parser`
    turns a payload journaled under the connector's source back into events,
    for replay.

Media the provider keeps (``hub.media``): a connector whose provider keeps
    files (call recordings, MMS media) registers a :class:`MediaFetcher` for
    its channels with ``registry.add_media_fetcher``; ``fetch`` answers
    :class:`FetchedMedia` or raises :class:`MediaUnavailable` with a
    :class:`MediaProblem`. The hub stores what it fetches and serves it.
    :func:`sniff_media` names a file's type from its bytes, for a connector
    that takes files (the web chat) and must not believe the sender.

Connector state (``hub.state``): small JSON documents a connector keeps
    between runs (e.g. a mailbox folder's last UID seen), saved in the same
    transaction as the data they cover: :func:`load_state`,
    :func:`save_state`, :func:`all_state`, :func:`delete_state`, and
    :func:`replace_state`, a compare-and-set with which one of two workers
    claims a job.

Leases (``hub.leases``): one owner at a time for work any worker could do.
    :func:`take_lease` takes, renews or takes over a lease for a
    :func:`new_owner`, :func:`holds_lease` checks it in the transaction that
    commits the work (else raise :class:`LeaseLost`), :func:`release_lease`
    gives it up.

Metrics (``hub.metrics``): :func:`mail_synced` and :func:`mail_failed`
    count a mail intake's passes per mailbox folder for ``/metrics``.

Sanitising (``hub.sanitise``): :func:`sanitise_html` makes a message's HTML
    safe for an agent's browser (or raises :class:`UnsanitisableHtml`), and
    :func:`html_to_text` gives its readable text, with or without the quoted
    history.

Live updates (``hub.live``): :func:`publish` announces a change on a topic
    in the caller's transaction (:data:`AGENTS` for the console,
    :func:`chat_topic` for one chat visitor), :func:`position` is the feed's
    newest id, and :func:`issue_stream_token` signs a stream grant for
    ``corridor live`` (configured by :class:`LiveSettings`).

Replies (``hub.replies``): :func:`queue_reply` puts an agent's reply on the
    timeline and :func:`deliver` sends it after commit (a :class:`ReplyError`
    names the field at fault); a connector continues a conversation on
    another channel through them, as an agent would.

Presence (``hub.auth``): :func:`agents_online` counts the agents whose
    console was open lately, so a chat can tell a visitor nobody is there.

Read models (``hub.models``): :class:`Interaction`, :class:`Identity` and
    :class:`Agent` may be read (never written: the write path writes) to show
    a visitor their own conversation; :func:`utcnow` is the hub's clock.

Storable text (``hub.storable``): what a request carries is decided at the
    door, before the 2xx. :func:`storable` returns an event with NUL bytes
    and lone surrogates replaced in its prose (each field noted as a defect)
    and raises :class:`Unstorable` where an id cannot be stored faithfully;
    :func:`repair` does the same for one string.
"""

from __future__ import annotations

from hub.auth import agents_online
from hub.config import AppSettings, LiveSettings, SettingsError, read_secret
from hub.db import Database
from hub.events import (
    FUTURE_TOLERANCE,
    Attachment,
    CallStatus,
    Channel,
    ChannelEvent,
    DeliveryStatus,
    Direction,
    IdentityKind,
    Ingestible,
    InteractionKind,
    InteractionUpdate,
    JSONValue,
    Party,
)
from hub.ingest import IngestResult, ingest, ingest_many, receive, record_unparseable
from hub.leases import LeaseLost, holds_lease, new_owner, release_lease, take_lease
from hub.live import AGENTS, chat_topic, position, publish
from hub.live.tokens import issue_stream_token
from hub.media import FetchedMedia, MediaFetcher, MediaProblem, MediaUnavailable
from hub.media import sniff as sniff_media
from hub.metrics import mail_failed, mail_synced
from hub.models import Agent, Identity, Interaction, utcnow
from hub.outbound import OutboundMessage, Sender, SendError, SendResult
from hub.registry import Parser, Registry
from hub.replies import ReplyError, deliver, queue_reply
from hub.sanitise import UnsanitisableHtml, html_to_text, sanitise_html
from hub.state import all_state, delete_state, load_state, replace_state, save_state
from hub.storable import Unstorable, repair, storable

__all__ = [  # noqa: RUF022 -- grouped as in the docstring, not sorted: the groups are the contract
    # the event types
    "FUTURE_TOLERANCE",
    "Attachment",
    "CallStatus",
    "Channel",
    "ChannelEvent",
    "DeliveryStatus",
    "Direction",
    "IdentityKind",
    "Ingestible",
    "InteractionKind",
    "InteractionUpdate",
    "JSONValue",
    "Party",
    # ingest entry points
    "IngestResult",
    "ingest",
    "ingest_many",
    "receive",
    "record_unparseable",
    # database and session scope
    "Database",
    # settings
    "AppSettings",
    "SettingsError",
    "read_secret",
    # the outbound sender protocol
    "OutboundMessage",
    "SendError",
    "SendResult",
    "Sender",
    # the registry
    "Parser",
    "Registry",
    # media the provider keeps
    "FetchedMedia",
    "MediaFetcher",
    "MediaProblem",
    "MediaUnavailable",
    "sniff_media",
    # connector state
    "all_state",
    "delete_state",
    "load_state",
    "replace_state",
    "save_state",
    # leases
    "LeaseLost",
    "holds_lease",
    "new_owner",
    "release_lease",
    "take_lease",
    # metrics
    "mail_failed",
    "mail_synced",
    # sanitising
    "UnsanitisableHtml",
    "html_to_text",
    "sanitise_html",
    # presence
    "agents_online",
    # live updates
    "AGENTS",
    "LiveSettings",
    "chat_topic",
    "issue_stream_token",
    "position",
    "publish",
    # replies
    "ReplyError",
    "deliver",
    "queue_reply",
    # read models
    "Agent",
    "Identity",
    "Interaction",
    "utcnow",
    # storable text
    "Unstorable",
    "repair",
    "storable",
]
