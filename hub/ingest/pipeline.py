"""What the steps of the write path share: the settings, the batch's state, an event on its way.

Every step is a set of functions taking a :class:`BatchState` (the session,
its connection, the settings, the batch's clock and the notifications to
send after commit) and the batch's items; :mod:`hub.ingest.batch` calls
them in the order of the README's diagram.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from hub.events import ChannelEvent
from hub.identity import NormalisedAddress
from hub.search import SearchBackend

PIPELINE_KEY = "corridor.pipeline"


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline needs from settings; attached to every write session."""

    default_region: str
    continuation_window: timedelta
    search: SearchBackend


def pipeline_config(session: Session) -> PipelineConfig:
    """The settings the session was opened with (by ``hub.db.Database.write()``)."""
    try:
        config: PipelineConfig = session.info[PIPELINE_KEY]
    except KeyError:
        raise RuntimeError("this session was not opened by hub.db.Database.write()") from None
    return config


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of one ingested item."""

    journal_id: int
    interaction_id: int | None = None
    customer_id: int | None = None
    conversation_id: int | None = None
    #: The item was already on the timeline (a provider's retry).
    duplicate: bool = False
    #: An update whose interaction has not arrived yet; the worker retries it.
    deferred: bool = False
    #: Processing failed; the payload stays in the journal with this error.
    error: str | None = None


class InvalidEvent(ValueError):
    """A connector produced an event the hub cannot accept; names the field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass
class BatchState:
    """What every step of one batch works with."""

    session: Session
    # Core statements on the session's connection: the ORM's bulk
    # machinery costs more than the statements themselves on this path.
    conn: Connection
    config: PipelineConfig
    #: The batch's clock: one received_at / created_at for all its rows.
    now: datetime
    #: What step 7 publishes once the transaction has committed.
    notifications: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ConversationState:
    """A conversation as threading sees it: chosen, touched, then written by the append step."""

    id: int | None
    customer_id: int
    status: str
    opened_at: datetime
    last_activity_at: datetime
    subject: str
    is_new: bool = False
    changed: bool = False


@dataclass
class Pending:
    """An event on its way to becoming an interaction."""

    index: int
    event: ChannelEvent
    journal_id: int
    address: NormalisedAddress
    defects: list[str]
    #: What dedupe tells different messages under one id apart by (dedupe.fingerprint).
    fingerprint: str | None = None
    customer_id: int = 0
    identity_id: int | None = None
    conversation: ConversationState | None = None
