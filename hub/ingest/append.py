"""Step 5, append: the new interactions, their attachments, and the conversations' state.

The conversations threading opened are inserted and the ones it moved (last
activity, reopened) updated, one statement each for the batch; then the
interactions, one row per new event, with sanitised HTML and the defects
found on the way; then the attachments, whose contents are stored once per
SHA-256 however many interactions carry them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, insert, update

from hub.events import Attachment, CallStatus, InteractionKind
from hub.ingest.pipeline import BatchState, ConversationState, Pending
from hub.ingest.statements import (
    ATTACHMENT,
    BLOB,
    CONVERSATION,
    INTERACTION,
    insert_ignoring_conflicts,
    insert_returning_ids,
)
from hub.models import ConversationStatus, utcnow
from hub.sanitise import UnsanitisableHtml, html_to_text, sanitise_html
from hub.search import IndexDocument


def save_conversations(state: BatchState, fresh: list[Pending], loaded: list[ConversationState]) -> None:
    """Insert the conversations threading opened and update those it changed (of ``loaded``)."""
    new = [c for c in {id(p.conversation): p.conversation for p in fresh if p.conversation}.values() if c.is_new]
    if new:
        ids = insert_returning_ids(
            state.conn,
            CONVERSATION,
            [
                {
                    "customer_id": c.customer_id,
                    "status": c.status,
                    "subject": c.subject,
                    "opened_at": c.opened_at,
                    "last_activity_at": c.last_activity_at,
                }
                for c in new
            ],
        )
        for c, conversation_id in zip(new, ids, strict=True):
            c.id = conversation_id
            c.changed = False
    # Every existing conversation an event chose passed through threading's
    # state_for() or its open-conversation lookup, so it is in ``loaded``.
    changed = [c for c in loaded if c.changed and not c.is_new]
    if changed:
        state.conn.execute(
            update(CONVERSATION).where(CONVERSATION.c.id == bindparam("row_id")),
            [
                {
                    "row_id": c.id,
                    "status": c.status,
                    "last_activity_at": c.last_activity_at,
                    "closed_at": None if c.status != ConversationStatus.CLOSED else state.now,
                }
                for c in changed
            ],
        )


def append_interactions(state: BatchState, fresh: list[Pending]) -> tuple[list[int], list[IndexDocument]]:
    """Insert one interaction per new event, and its attachments; their ids and what step 6 indexes."""
    if not fresh:
        return [], []
    rows: list[dict[str, Any]] = []
    for p in fresh:
        event = p.event
        html: str
        try:
            html = sanitise_html(event.html)
        except UnsanitisableHtml as exc:
            html = ""
            p.defects.append(f"HTML dropped: {exc}")
        text = event.text or html_to_text(html or _tagless(event.html))
        sender = event.sender.address if event.sender else ""
        recipient = event.recipients[0].address if event.recipients else ""
        status = event.delivery_status.value if event.delivery_status else None
        if status is None and event.kind is InteractionKind.CALL:
            status = str(event.metadata.get("call_status") or CallStatus.RINGING.value)
        rows.append(
            {
                "customer_id": p.customer_id,
                "conversation_id": p.conversation.id if p.conversation else None,
                "identity_id": p.identity_id,
                "channel": event.channel.value,
                "direction": event.direction.value,
                "kind": event.kind.value,
                "external_id": event.external_id,
                "occurred_at": event.occurred_at,
                "received_at": state.now,
                "subject": event.subject,
                "text": text,
                "reply_text": event.reply_text,
                "html": html,
                "from_address": sender[:320],
                "to_address": recipient[:320],
                "session_key": event.session,
                "status": status,
                "provider_metadata": jsonable(event.metadata),
                "defects": p.defects,
                "fingerprint": p.fingerprint,
                "journal_id": p.journal_id,
                "author_id": event.author_id,
            }
        )
    ids = insert_returning_ids(state.conn, INTERACTION, rows)
    attach(state, [(interaction_id, p.event.attachments) for p, interaction_id in zip(fresh, ids, strict=True)])
    documents = [
        IndexDocument(interaction_id, row["subject"], row["text"])
        for row, interaction_id in zip(rows, ids, strict=True)
    ]
    return ids, documents


def attach(state: BatchState, attachments: list[tuple[int, Sequence[Attachment]]]) -> None:
    """Store attachments of the given interactions: one blob per content, one record per file."""
    blobs: dict[str, bytes] = {}
    records = []
    now = utcnow()
    for interaction_id, files in attachments:
        for a in files:
            digest = None
            if a.content is not None:
                digest = hashlib.sha256(a.content).hexdigest()
                blobs[digest] = a.content
            records.append(
                {
                    "interaction_id": interaction_id,
                    "filename": (a.filename or "attachment")[:255],
                    "content_type": a.content_type[:255],
                    "size": a.size if a.content is None else len(a.content),
                    "sha256": digest,
                    "url": a.url,
                    "content_id": a.content_id,
                    "inline": a.inline,
                    # A file the provider keeps joins the download queue (hub.media).
                    "fetch_due_at": now if a.content is None and a.url else None,
                }
            )
    if blobs:
        insert_ignoring_conflicts(
            state.session,
            BLOB,
            [{"sha256": d, "content": c} for d, c in blobs.items()],
        )
    if records:
        state.conn.execute(insert(ATTACHMENT), records)


def jsonable(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Provider metadata as stored (the engines' JSON serializer writes unknown types as text)."""
    return dict(metadata)


def _tagless(html: str) -> str:
    """Text of HTML the sanitiser refused: tags out, so no markup reaches anyone."""
    return re.sub(r"<[^>]*>", " ", html)
