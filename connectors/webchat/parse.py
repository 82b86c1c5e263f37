"""A visitor's message as journaled, to a ChannelEvent: pure, no I/O.

The widget's POST is checked and turned into one canonical JSON document
(:func:`message_payload`), which is what the journal keeps and what a replay
parses again with :func:`parse_message`. The external id is the visitor's
session plus the widget's client message id, so a retry of the same POST
(a flaky phone network) is one interaction, and no other visitor can
collide with it.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from hub.contract import Attachment, Channel, ChannelEvent, Direction, IdentityKind, Party, sniff_media

CONTENT_TYPE = "application/json"

#: What an attachment may be, by its first bytes (the name and the browser's
#: word are not believed): images and PDFs only.
ACCEPTED = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})


class MalformedMessage(ValueError):
    """A payload that is not a chat message; ``field`` names the part at fault."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def sniff(content: bytes) -> str | None:
    """The content type ``content`` really has (the hub's reading of its bytes), if it is one the chat accepts."""
    found = sniff_media(content)
    return found if found in ACCEPTED else None


def message_payload(
    *,
    site: str,
    session: str,
    client_id: str,
    text: str,
    identity: dict[str, Any],
    received_at: datetime,
    page: str = "",
    attachment: dict[str, str] | None = None,
) -> bytes:
    """The canonical journal document of one visitor message."""
    document: dict[str, Any] = {
        "site": site,
        "session": session,
        "client_id": client_id,
        "text": text,
        "identity": identity,
        "received_at": received_at.isoformat(),
        "page": page,
    }
    if attachment is not None:
        document["attachment"] = attachment
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _party(session: str, identity: dict[str, Any]) -> Party:
    name = str(identity.get("name") or "")
    # The customer is the email, else the phone, else this visitor alone.
    if identity.get("email"):
        return Party(address=str(identity["email"]), name=name, kind=IdentityKind.EMAIL)
    if identity.get("phone"):
        return Party(address=str(identity["phone"]), name=name, kind=IdentityKind.PHONE)
    return Party(address=session, name=name, kind=IdentityKind.CHAT_VISITOR)


def _attachment(raw: Any) -> Attachment:
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), str):
        raise MalformedMessage("attachment", "expected {filename, data (base64)}")
    try:
        content = base64.b64decode(raw["data"], validate=True)
    except (binascii.Error, ValueError):
        raise MalformedMessage("attachment.data", "is not base64") from None
    content_type = sniff(content)
    if content_type is None:
        raise MalformedMessage("attachment", "only images (PNG, JPEG, GIF, WebP) and PDF files are accepted")
    filename = str(raw.get("filename") or "attachment").replace("/", "_").replace("\\", "_")[:200]
    return Attachment(filename=filename, content_type=content_type, size=len(content), content=content)


def parse_message(raw: bytes) -> ChannelEvent:
    """The ChannelEvent a journaled visitor message stands for."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedMessage("body", "is not JSON") from None
    if not isinstance(document, dict):
        raise MalformedMessage("body", "expected a JSON object")
    for key in ("site", "session", "client_id", "text", "received_at"):
        if not isinstance(document.get(key), str):
            raise MalformedMessage(key, "is required")
    identity = document.get("identity") or {}
    if not isinstance(identity, dict):
        raise MalformedMessage("identity", "expected an object")
    try:
        received_at = datetime.fromisoformat(document["received_at"])
    except ValueError:
        raise MalformedMessage("received_at", "is not an ISO 8601 time") from None
    attachments = (_attachment(document["attachment"]),) if document.get("attachment") is not None else ()
    text = document["text"]
    if not text.strip() and not attachments:
        raise MalformedMessage("text", "must not be empty")
    session = document["session"]
    metadata: dict[str, Any] = {
        "webchat_site": document["site"],
        "webchat_session": session,
        # What the agent must know before believing the address: the site
        # vouched for it, or the visitor only typed it.
        "identity": "verified"
        if identity.get("verified")
        else ("unverified" if identity.get("email") or identity.get("phone") else "anonymous"),
    }
    if document.get("page"):
        metadata["page"] = str(document["page"])[:500]
    return ChannelEvent(
        channel=Channel.CHAT,
        external_id=f"webchat:{session}:{document['client_id']}",
        occurred_at=received_at,
        direction=Direction.INBOUND,
        sender=_party(session, identity),
        recipients=(Party(address=document["site"]),),
        text=text,
        session=session,
        attachments=attachments,
        metadata=metadata,
        raw=raw,
        raw_content_type=CONTENT_TYPE,
    )
