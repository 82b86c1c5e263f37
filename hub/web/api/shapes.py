"""The JSON shapes of the API's resources: one function per resource, used by every view."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub.models import AttachmentRecord, Conversation, Customer, CustomerMerge, Identity, Interaction
from hub.sanitise import inline_images, without_remote_content
from hub.search import SearchHit
from hub.timeline import TimelinePage


def iso_time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def customer_json(customer: Customer) -> dict[str, Any]:
    return {"id": customer.id, "display_name": customer.display_name, "created_at": iso_time(customer.created_at)}


def identity_json(identity: Identity) -> dict[str, Any]:
    return {"id": identity.id, "kind": identity.kind, "value": identity.value, "raw_value": identity.raw_value}


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "customer_id": conversation.customer_id,
        "status": conversation.status,
        "subject": conversation.subject,
        "opened_at": iso_time(conversation.opened_at),
        "last_activity_at": iso_time(conversation.last_activity_at),
        "assignee_id": conversation.assignee_id,
    }


def attachment_json(attachment: AttachmentRecord) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "url": attachment.url,
        "inline": attachment.inline,
        "content_id": attachment.content_id,
        # The bytes, when Corridor keeps them (a provider's URL otherwise).
        "download_url": attachment_url(attachment) if attachment.sha256 else None,
    }


def attachment_url(attachment: AttachmentRecord) -> str:
    """Where Corridor serves an attachment's bytes, to agents who are logged in."""
    return f"/api/attachments/{attachment.id}"


def shown_html(html: str, attachments: list[AttachmentRecord]) -> str:
    """An interaction's HTML as returned: nothing remote, inline images served by Corridor."""
    urls = {a.content_id: attachment_url(a) for a in attachments if a.content_id and a.sha256}
    return inline_images(without_remote_content(html), urls)


def interaction_json(interaction: Interaction, attachments: list[AttachmentRecord]) -> dict[str, Any]:
    return {
        "id": interaction.id,
        "customer_id": interaction.customer_id,
        "conversation_id": interaction.conversation_id,
        "channel": interaction.channel,
        "direction": interaction.direction,
        "kind": interaction.kind,
        "external_id": interaction.external_id,
        "occurred_at": iso_time(interaction.occurred_at),
        "from": interaction.from_address,
        "to": interaction.to_address,
        "subject": interaction.subject,
        "text": interaction.text,
        "reply_text": interaction.reply_text,
        "html": shown_html(interaction.html, attachments),
        "status": interaction.status,
        "error_code": interaction.error_code,
        "error_message": interaction.error_message,
        "duration_seconds": interaction.duration_seconds,
        "defects": interaction.defects,
        "metadata": interaction.provider_metadata,
        "attachments": [attachment_json(a) for a in attachments],
    }


def page_json(page: TimelinePage) -> list[dict[str, Any]]:
    return [interaction_json(i, page.attachments.get(i.id, [])) for i in page.interactions]


def hit_json(hit: SearchHit) -> dict[str, Any]:
    return {
        "interaction_id": hit.interaction_id,
        "customer_id": hit.customer_id,
        "conversation_id": hit.conversation_id,
        "channel": hit.channel,
        "direction": hit.direction,
        "occurred_at": iso_time(hit.occurred_at),
        "subject": hit.subject,
        "snippet": hit.snippet,
    }


def merge_json(record: CustomerMerge) -> dict[str, Any]:
    return {
        "id": record.id,
        "source_id": record.source_id,
        "target_id": record.target_id,
        "merged_at": iso_time(record.merged_at),
        "undone_at": iso_time(record.undone_at),
        "moved": {k: len(v) for k, v in record.moved.items()},
    }
