"""Events in, and what became of them: POST /api/events, the journal, health."""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.db import without_sql
from hub.events import ChannelEvent, Direction
from hub.identity import InvalidAddress, normalise
from hub.ingest import receive
from hub.integrations.subscriptions import health as webhook_health
from hub.journal import find_entry, received_backlog, wait_processed
from hub.models import Interaction, JournalEntry, JournalStatus, utcnow
from hub.runtime import current_runtime
from hub.search.engine import EngineBackend
from hub.search.lifecycle import search_health
from hub.web.access import requires
from hub.web.api.args import float_arg
from hub.web.api.blueprint import api
from hub.web.errors import ApiError
from hub.web.event_schema import FieldError, parse_event

log = logging.getLogger(__name__)


#: The longest a client may ask POST /api/events to wait for processing.
MAX_WAIT_SECONDS = 30.0


@api.post("/events")
@requires("events.write")
def post_event() -> ResponseReturnValue:
    """The generic channel: any system pushes one ChannelEvent as JSON.

    The event is validated, journaled and answered with 202: it is durable,
    and the journal processor puts it on the timeline a moment later
    (``GET /api/events/<id>`` says what became of it). ``?wait=<seconds>``
    answers once it is processed instead, with its interaction, customer and
    conversation (201, or 200 for a duplicate), for clients that need the ids.
    """
    wait = float_arg("wait", 0.0, 0.0, MAX_WAIT_SECONDS)
    if request.mimetype != "application/json":
        raise ApiError(415, "body", "send Content-Type: application/json")
    body = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    try:
        event = parse_event(body)
    except FieldError as exc:
        raise ApiError(400, exc.field, exc.message) from None
    runtime = current_runtime()
    _check_customer_address(event, runtime.pipeline.default_region)
    database = runtime.database
    [journal_id] = receive(database, [event], source="api")
    headers = {"Location": f"/api/events/{journal_id}"}
    entry = _wait_processed(journal_id, wait) if wait else None
    if entry is None:
        return jsonify(_received_json(journal_id)), 202, headers
    with database.read() as session:
        outcome = _journal_json(session, entry)
    if entry.status == JournalStatus.PROCESSED:
        return jsonify(outcome), 201, headers
    if entry.status == JournalStatus.DUPLICATE:
        return jsonify(outcome), 200, headers
    # Failed or deferred: journaled with its error for an admin to see and replay.
    return jsonify(outcome), 202, headers


def _check_customer_address(event: ChannelEvent, default_region: str) -> None:
    """Refuse an event whose customer address is no identity (``not-an-email``, phone ``12``).

    The lookup answers 400 for the same value; accepted, it would make a
    customer named after the typo. Connectors, whose data must not be lost,
    store such senders with a defect instead: the API's caller can fix it.
    """
    party = event.customer_party
    if party is None:
        return
    field = "to[0].address" if event.direction is Direction.OUTBOUND else "from.address"
    try:
        normalise(party, event.channel, default_region)
    except InvalidAddress as exc:
        raise ApiError(400, field, str(exc)) from None


def _wait_processed(journal_id: int, seconds: float) -> JournalEntry | None:
    """The entry once processed, if a waiting place is free ([journal] max_waiting); None otherwise.

    A waiting request holds a server thread. Without a bound, clients asking
    to wait while processing is slow or stopped would hold every thread, and
    webhooks, which must be answered within seconds, would find none.
    """
    runtime = current_runtime()
    if not runtime.waiting.acquire(blocking=False):
        log.info(
            "journal #%d: %d requests already wait for processing; answering 202 at once",
            journal_id,
            runtime.hub.journal.max_waiting,
        )
        return None
    try:
        return wait_processed(runtime.database, journal_id, seconds)
    finally:
        runtime.waiting.release()


@api.get("/events/<int:journal_id>")
@requires("events.write")
def get_event_outcome(journal_id: int) -> ResponseReturnValue:
    """What became of an event a system posted (the Location of ``POST /api/events``).

    For the systems that push events: received, processed, duplicate,
    deferred or failed, and where it landed. Only events the API accepted
    (source ``api``); the rest of the journal (webhooks, mail) is for admins.
    """
    database = current_runtime().database
    entry = find_entry(database, journal_id)
    if entry is None or entry.source != "api":
        abort(404, description=f"no event {journal_id}")
    with database.read() as session:
        return jsonify(_journal_json(session, entry))


@api.get("/journal/<int:entry_id>")
@requires("journal.read")
def get_journal_entry(entry_id: int) -> ResponseReturnValue:
    """Any journal entry, whatever delivered it (admins: ``journal.read``)."""
    database = current_runtime().database
    entry = find_entry(database, entry_id)
    if entry is None:
        abort(404, description=f"no journal entry {entry_id}")
    with database.read() as session:
        return jsonify({**_journal_json(session, entry), "source": entry.source})


#: A received entry older than this means no processor is keeping up (or running).
BACKLOG_DEGRADED_SECONDS = 60.0


@api.get("/health")
def health() -> ResponseReturnValue:
    """For load balancers and monitoring: no token, counts only.

    ``degraded`` when a received event has waited more than a minute: the
    web process journals and answers, so a stopped worker shows nowhere else.
    """
    runtime = current_runtime()
    database = runtime.database
    received, oldest = received_backlog(database)
    with database.read() as session:
        failed = session.scalar(
            select(func.count()).select_from(JournalEntry).where(JournalEntry.status == JournalStatus.FAILED)
        )
        webhooks = webhook_health(session)
    waited = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
    reasons = []
    if waited > BACKLOG_DEGRADED_SECONDS:
        reasons.append(f"received events have waited {waited:.0f} s for the journal processor")
    body: dict[str, Any] = {
        "journal": {"received": received, "oldest_received_seconds": round(waited, 1), "failed": failed},
        # Paused subscriptions and the delivery backlog: the integrations' health, not the server's.
        "webhooks": webhooks,
    }
    if isinstance(runtime.search, EngineBackend):
        # The index's lag and failures: an engine that is down or behind
        # shows here, while ingest and the timeline carry on.
        body["search"] = search_health(database, runtime.search)
        if body["search"]["degraded"]:
            reasons.append(body["search"]["reason"])
    return jsonify({"status": "degraded" if reasons else "ok", "reason": "; ".join(reasons) or None, **body})


def _received_json(journal_id: int) -> dict[str, Any]:
    return {
        "journal_id": journal_id,
        "status": JournalStatus.RECEIVED.value,
        "interaction_id": None,
        "customer_id": None,
        "conversation_id": None,
        "duplicate": False,
        "error": None,
    }


def _journal_json(session: Session, entry: JournalEntry) -> dict[str, Any]:
    """An entry's outcome; for a processed event, where it landed on the timeline."""
    interaction: Interaction | None = None
    if entry.channel and entry.external_id:
        # (channel, external_id) is unique and indexed; a duplicate also
        # names the interaction it repeated.
        interaction = session.scalar(
            select(Interaction).where(
                Interaction.channel == entry.channel, Interaction.external_id == entry.external_id
            )
        )
    if interaction is None and entry.interaction_id is not None:
        interaction = session.get(Interaction, entry.interaction_id)
    return {
        "journal_id": entry.id,
        "status": str(entry.status),
        "interaction_id": interaction.id if interaction else None,
        "customer_id": interaction.customer_id if interaction else None,
        "conversation_id": interaction.conversation_id if interaction else None,
        "duplicate": entry.status == JournalStatus.DUPLICATE,
        # Errors stored before SQL was kept out of them still hold it.
        "error": without_sql(entry.error) if entry.error else None,
    }
