"""Updates to interactions already on the timeline: delivery status, call outcome, transcript.

An ``InteractionUpdate`` names its interaction by ``(channel, external_id)``
and itself by ``(channel, update_id)``: an update applied once is recorded
(``applied_update``), so a provider's retry is a duplicate. Statuses only
move forward, and final ones never change. An update whose interaction has
not arrived yet (a status callback overtaking its message) is deferred: kept
in the journal and retried by the worker. Updates an event implies (a bounce
failing the message it reports on) run after the batch's events, so they
can name one from the same batch.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update

from hub.events import CallStatus, DeliveryStatus, InteractionUpdate
from hub.ingest.append import attach, jsonable
from hub.ingest.index import reindex
from hub.ingest.journal import DEFER_DELAY
from hub.ingest.notify import interaction_updated
from hub.ingest.pipeline import BatchState, IngestResult, InvalidEvent
from hub.ingest.statements import chunks, pairs_in
from hub.models import AppliedUpdate, Interaction, JournalEntry, JournalStatus
from hub.search import IndexDocument

_FINAL_DELIVERY = {DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED, DeliveryStatus.CANCELED}
_DELIVERY_ORDER = [
    DeliveryStatus.QUEUED,
    DeliveryStatus.ACCEPTED,
    DeliveryStatus.SENDING,
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.READ,
]
_FINAL_CALL = {
    CallStatus.COMPLETED,
    CallStatus.BUSY,
    CallStatus.NO_ANSWER,
    CallStatus.FAILED,
    CallStatus.CANCELED,
}
_CALL_ORDER = [CallStatus.QUEUED, CallStatus.RINGING, CallStatus.IN_PROGRESS]
FINAL_RANK = 100
_RANK: dict[str, int] = {
    **{s.value: i for i, s in enumerate(_DELIVERY_ORDER)},
    **{s.value: i for i, s in enumerate(_CALL_ORDER)},
    **{s.value: FINAL_RANK for s in _FINAL_DELIVERY | _FINAL_CALL},
    DeliveryStatus.RECEIVED.value: FINAL_RANK,
}

#: An update with the index of the batch item it came as (None: implied by an event) and its journal id.
Update = tuple[int | None, InteractionUpdate, int]


def status_rank(status: str | None) -> int:
    """Statuses only move forward; final ones (failed, completed...) never change."""
    if status is None:
        return -1
    return _RANK.get(status, 0)


def moves_forward(current: str | None, new: str) -> bool:
    """Whether ``new`` is a step forward from ``current`` (never from a final status)."""
    return status_rank(current) < FINAL_RANK and status_rank(new) > status_rank(current)


def apply_updates(state: BatchState, updates: list[Update]) -> dict[int, IngestResult]:
    """Apply each update once, to its interaction; the results of those that came as batch items."""
    results: dict[int, IngestResult] = {}
    for _, item, _ in updates:
        _check_update(item)
    keys = sorted({(u.channel.value, u.update_id) for _, u, _ in updates})
    applied: set[tuple[str, str]] = set()
    for chunk in chunks(keys):
        rows = state.session.execute(
            select(AppliedUpdate.channel, AppliedUpdate.update_id).where(
                pairs_in(AppliedUpdate.channel, AppliedUpdate.update_id, chunk)
            )
        )
        applied.update((channel, update_id) for channel, update_id in rows)
    targets = _update_targets(state, updates)
    journal_changes: list[dict[str, Any]] = []
    for index, item, journal_id in updates:
        key = (item.channel.value, item.update_id)
        target = targets.get((item.channel.value, item.external_id))
        if key in applied:
            if index is not None:
                results[index] = IngestResult(
                    journal_id=journal_id,
                    interaction_id=target.id if target else None,
                    duplicate=True,
                )
                journal_changes.append(
                    {
                        "id": journal_id,
                        "status": JournalStatus.DUPLICATE,
                        "interaction_id": target.id if target else None,
                    }
                )
            continue
        if target is None:
            if index is not None:
                # The interaction it is about has not arrived yet (a status
                # callback overtaking its message): kept and retried.
                results[index] = IngestResult(journal_id=journal_id, deferred=True)
                journal_changes.append(
                    {
                        "id": journal_id,
                        "status": JournalStatus.DEFERRED,
                        "error": f"no {item.channel.value} interaction {item.external_id!r} yet",
                        "next_attempt_at": state.now + DEFER_DELAY,
                    }
                )
            continue
        _apply(state, target, item)
        applied.add(key)
        state.session.execute(
            insert(AppliedUpdate),
            {"channel": key[0], "update_id": key[1], "interaction_id": target.id, "applied_at": state.now},
        )
        if index is not None:
            results[index] = IngestResult(
                journal_id=journal_id,
                interaction_id=target.id,
                customer_id=target.customer_id,
                conversation_id=target.conversation_id,
            )
            journal_changes.append({"id": journal_id, "status": JournalStatus.PROCESSED, "interaction_id": target.id})
    for change in journal_changes:
        state.session.execute(update(JournalEntry).where(JournalEntry.id == change.pop("id")).values(**change))
    return results


def _check_update(item: InteractionUpdate) -> None:
    if not item.external_id:
        raise InvalidEvent("external_id", "must name the interaction to update")
    if not item.update_id:
        raise InvalidEvent("update_id", "must be given so retries are recognised")


def _update_targets(state: BatchState, updates: list[Update]) -> dict[tuple[str, str], Interaction]:
    keys = sorted({(u.channel.value, u.external_id) for _, u, _ in updates})
    found: dict[tuple[str, str], Interaction] = {}
    for chunk in chunks(keys):
        for interaction in state.session.scalars(
            select(Interaction).where(pairs_in(Interaction.channel, Interaction.external_id, chunk))
        ):
            found[(interaction.channel, interaction.external_id)] = interaction
    return found


def _apply(state: BatchState, interaction: Interaction, item: InteractionUpdate) -> None:
    old_document = IndexDocument(interaction.id, interaction.subject, interaction.text)
    if item.status and moves_forward(interaction.status, item.status):
        interaction.status = item.status
        if item.error_code or item.error_message:
            interaction.error_code = item.error_code
            interaction.error_message = item.error_message
    elif item.status and status_rank(item.status) >= FINAL_RANK and item.error_code:
        # A late failure report for a message already final: keep the
        # details without moving the status.
        interaction.error_code = interaction.error_code or item.error_code
        interaction.error_message = interaction.error_message or item.error_message
    if item.duration_seconds is not None:
        interaction.duration_seconds = item.duration_seconds
    if item.kind is not None:
        interaction.kind = item.kind
    if item.metadata:
        interaction.provider_metadata = {**interaction.provider_metadata, **jsonable(item.metadata)}
    text_changed = False
    if item.text_append:
        interaction.text = f"{interaction.text}\n\n{item.text_append}".strip()
        text_changed = True
    if item.new_external_id and item.new_external_id != interaction.external_id:
        interaction.external_id = item.new_external_id
    if item.attachments:
        attach(state, [(interaction.id, item.attachments)])
    state.session.flush()
    if text_changed:
        reindex(state, old_document, IndexDocument(interaction.id, interaction.subject, interaction.text))
    interaction_updated(state, interaction)
