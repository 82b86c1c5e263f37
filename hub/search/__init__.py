"""Full-text search over every interaction, behind one small protocol.

Backends:

* ``sqlite``: FTS5, updated inside the ingest transaction (embedded default).
* ``postgres``: PostgreSQL full-text search on an expression index; nothing to
  update at ingest because the index follows the rows.
* ``elasticsearch`` / ``opensearch``: an engine index fed from the outbox
  written in the ingest transaction (``hub.search.engine``; the indexer in
  ``hub.search.indexer``, rebuild and check in ``hub.search.lifecycle``).

``in_transaction`` tells the ingest pipeline whether to call :meth:`index`
itself or to write outbox rows for a relay.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from hub.config import SearchSettings
    from hub.db import Database

#: Progress of long work: (done, total).
Progress = Callable[[int, int], None]

MARK_START = "\x02"
MARK_END = "\x03"


@dataclass(frozen=True, slots=True)
class IndexDocument:
    """The searchable part of one interaction."""

    interaction_id: int
    subject: str
    text: str


@dataclass(frozen=True, slots=True)
class AddressTerm:
    """A phone number or email address typed in a search, as the identities it names.

    Either exact normalised ``values`` (a whole number or address) or a
    ``pattern`` for LIKE (escape ``\\``) over identity values: the start of a
    number or address, or an ``@domain``.
    """

    typed: str
    kind: str
    values: tuple[str, ...] = ()
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str
    channels: tuple[str, ...] = ()
    direction: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    customer_id: int | None = None
    kinds: tuple[str, ...] = ()
    #: Delivery or call states; "none" is an interaction without one (a note, an inbound chat).
    statuses: tuple[str, ...] = ()
    #: The agents who wrote the interactions (replies and notes).
    agent_ids: tuple[int, ...] = ()
    #: "newest" (keyset pagination) or "relevance".
    order: str = "newest"
    limit: int = 20
    cursor: str | None = None
    #: On the database backends: the phone numbers and email addresses typed
    #: in ``text``, taken out of it (``hub.search.addresses``); every one is
    #: required, and ``text`` may then be empty.
    addresses: tuple[AddressTerm, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchHit:
    interaction_id: int
    customer_id: int
    conversation_id: int | None
    channel: str
    direction: str
    occurred_at: datetime
    subject: str
    #: Safe HTML: the text is escaped, matches are wrapped in <mark>.
    snippet: str

    @classmethod
    def from_row(cls, row: Any, snippet: str | None = None) -> SearchHit:
        """A hit from a search query's row, whose ``snippet`` is the engine's raw marked text (or ``snippet``, safe)."""
        return cls(
            interaction_id=row.id,
            customer_id=row.customer_id,
            conversation_id=row.conversation_id,
            channel=row.channel,
            direction=row.direction,
            occurred_at=row.occurred_at,
            subject=row.subject,
            snippet=safe_snippet(row.snippet or "") if snippet is None else snippet,
        )


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: list[SearchHit] = field(default_factory=list)
    next_cursor: str | None = None


class InvalidQuery(ValueError):
    """The search text cannot be searched (for example, no words in it)."""


class SearchBackend(Protocol):
    name: str
    in_transaction: bool

    def index(self, session: Session, documents: Sequence[IndexDocument]) -> None:
        """Add documents (new interactions) to the index."""
        ...

    def delete(self, session: Session, documents: Sequence[IndexDocument]) -> None:
        """Remove documents, given as they were indexed."""
        ...

    def search(self, session: Session, query: SearchQuery) -> SearchPage: ...

    def rebuild(self, session: Session, progress: Progress | None = None) -> int:
        """Index every interaction from scratch; returns how many."""
        ...

    def health(self, session: Session) -> dict[str, object]:
        """Whether the index agrees with the database, for `search check`."""
        ...


_TERM = re.compile(r'"([^"]+)"|(\w+\*?)', re.UNICODE)


def query_terms(text: str) -> list[str]:
    """The words and "quoted phrases" of what a user typed, without operators.

    Users type order numbers, email addresses and punctuation; passing that to a
    query parser raises syntax errors. Every backend searches for all the terms.
    """
    terms: list[str] = []
    for phrase, word in _TERM.findall(text):
        if phrase:
            words = re.findall(r"\w+", phrase, re.UNICODE)
            if words:
                terms.append(" ".join(words))
        elif word:
            terms.append(word)
    if not terms:
        raise InvalidQuery("q: nothing to search for; type at least one word")
    return terms


def safe_snippet(marked: str) -> str:
    """Escape a backend's snippet and turn its sentinels into <mark> tags."""
    return html.escape(marked).replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")


def database_fallback(dialect: str) -> SearchBackend:
    """The database's own full-text backend, which answers while an engine is down (``hub.search.fallback``).

    PostgreSQL's is current whatever the backend (its index follows the rows);
    SQLite's FTS5 is not written under an engine, so only its address-only
    listing may be used then.
    """
    return make_backend("auto", dialect)


def make_backend(name: str, dialect: str, settings: SearchSettings | None = None,
                 database: Database | None = None) -> SearchBackend:  # fmt: skip
    """The backend for the ``[search] backend`` setting on this database (engines need ``settings``)."""
    if name in ("elasticsearch", "opensearch"):
        from hub.search.engine import make_engine_backend

        if settings is None:
            raise ValueError(f"HUB_SEARCH_BACKEND={name} needs the [search] settings")
        return make_engine_backend(settings, database)
    if name == "auto":
        name = "sqlite" if dialect == "sqlite" else "postgres"
    if name == "sqlite":
        if dialect != "sqlite":
            raise ValueError("HUB_SEARCH_BACKEND=sqlite needs a SQLite database")
        from hub.search.sqlite_fts import SqliteFts

        return SqliteFts()
    if name == "postgres":
        if dialect != "postgresql":
            raise ValueError("HUB_SEARCH_BACKEND=postgres needs a PostgreSQL database")
        from hub.search.postgres_fts import PostgresFts

        return PostgresFts()
    raise ValueError(f"HUB_SEARCH_BACKEND: unknown search backend {name!r}")
