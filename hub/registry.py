"""What the enabled connectors plug into the hub.

The app factory imports each package listed in ``[app] connectors`` and calls
its ``init_connector(registry)``. A connector registers what it offers here:
a Flask blueprint (webhooks), outbound senders, long-running worker loops and
CLI commands. The hub never imports a connector by name; this registry is the
only way the two meet.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from threading import Event
from typing import TYPE_CHECKING, Any, Protocol

import click
from flask import Blueprint

from hub.config import Settings, SettingsError
from hub.events import Channel, Ingestible

if TYPE_CHECKING:
    from hub.db import Database
    from hub.media import MediaFetcher
    from hub.outbound import Sender


#: A worker loop: runs until ``stop`` is set, then returns.
WorkerLoop = Callable[[Event], None]
#: Parses a journaled payload again (for replay): raw bytes and the journal
#: entry's context in, the items it holds out.
Parser = Callable[[bytes, dict[str, Any]], "Sequence[Ingestible]"]


class ConnectorModule(Protocol):
    def init_connector(self, registry: Registry) -> None: ...


@dataclass
class Registry:
    """The running hub as a connector sees it."""

    settings: Settings
    database: Database
    blueprints: list[Blueprint] = field(default_factory=list)
    senders: dict[Channel, Sender] = field(default_factory=dict)
    workers: dict[str, WorkerLoop] = field(default_factory=dict)
    commands: list[click.Command] = field(default_factory=list)
    parsers: dict[str, Parser] = field(default_factory=dict)
    media_fetchers: dict[Channel, MediaFetcher] = field(default_factory=dict)
    #: Channels whose files the worker downloads as they arrive (hub.media.prefetch).
    prefetch_channels: set[Channel] = field(default_factory=set)

    def add_blueprint(self, blueprint: Blueprint) -> None:
        self.blueprints.append(blueprint)

    def add_sender(self, channel: Channel, sender: Sender) -> None:
        """The sender agents' replies on ``channel`` go through."""
        if channel in self.senders:
            raise ValueError(f"two senders for channel {channel}")
        self.senders[channel] = sender

    def add_worker(self, name: str, loop: WorkerLoop) -> None:
        """A loop that ``corridor worker`` runs in a thread of its own."""
        if name in self.workers:
            raise ValueError(f"two worker loops named {name}")
        self.workers[name] = loop

    def add_parser(self, source: str, parser: Parser) -> None:
        """How to parse payloads journaled under ``source`` again, for replay.

        ``source`` is matched exactly or as the part before the first colon
        ("email" serves "email:support@example.com/INBOX").
        """
        if source in self.parsers:
            raise ValueError(f"two parsers for source {source}")
        self.parsers[source] = parser

    def parser_for(self, source: str) -> Parser | None:
        return self.parsers.get(source) or self.parsers.get(source.split(":", 1)[0])

    def add_media_fetcher(self, channel: Channel, fetcher: MediaFetcher, *, prefetch: bool = False) -> None:
        """How files of ``channel`` that the provider keeps (recordings, MMS media) are fetched.

        Agents' plays fetch them on demand; with ``prefetch`` the worker also
        downloads each soon after it arrives, so it outlives the provider's copy.
        """
        if channel in self.media_fetchers:
            raise ValueError(f"two media fetchers for channel {channel}")
        self.media_fetchers[channel] = fetcher
        if prefetch:
            self.prefetch_channels.add(channel)

    def add_command(self, command: click.Command) -> None:
        """A command under ``corridor`` (e.g. ``corridor email sync``)."""
        self.commands.append(command)


def load_connectors(registry: Registry, names: list[str]) -> None:
    """Import ``connectors.<name>`` for each name and let it register itself."""
    for name in names:
        try:
            module = importlib.import_module(f"connectors.{name}")
        except ModuleNotFoundError as exc:
            raise SettingsError(f"HUB_APP_CONNECTORS: no connector named {name!r} ({exc})") from None
        init = getattr(module, "init_connector", None)
        if init is None:
            raise TypeError(f"connectors.{name} has no init_connector(registry)")
        init(registry)
