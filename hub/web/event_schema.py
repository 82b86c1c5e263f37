"""The generic channel: a JSON event from any system, validated field by field.

Every error names the field at fault (``from.address``, ``attachments[2].url``)
so the system pushing events can be fixed from the answer alone.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from hub.events import (
    FUTURE_TOLERANCE,
    Attachment,
    Channel,
    ChannelEvent,
    DeliveryStatus,
    Direction,
    IdentityKind,
    InteractionKind,
    Party,
)
from hub.storable import MAX_DEPTH, depth, problem, storable

MAX_TEXT = 1_000_000


class FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _string(
    data: dict[str, Any], key: str, path: str, *, required: bool = False, limit: int = 998, identifier: bool = False
) -> str:
    """A string field. An ``identifier`` (an id, a reference, an address) that
    cannot be stored is refused: repairing it would make it name something
    else. Prose with a NUL or a lone surrogate is repaired later (storable()).
    """
    value = data.get(key)
    if value is None:
        if required:
            raise FieldError(path, "is required")
        return ""
    if not isinstance(value, str):
        raise FieldError(path, f"must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise FieldError(path, "must not be empty")
    if len(value) > limit:
        raise FieldError(path, f"is longer than {limit} characters")
    if identifier:
        found = problem(value)
        if found is not None:
            raise FieldError(path, found)
    return value


def _choice(data: dict[str, Any], key: str, enum_cls: Any, default: Any = None) -> Any:
    value = data.get(key)
    if value is None:
        if default is None:
            raise FieldError(key, f"is required (one of {', '.join(e.value for e in enum_cls)})")
        return default
    try:
        return enum_cls(value)
    except ValueError:
        raise FieldError(key, f"must be one of {', '.join(e.value for e in enum_cls)}, got {value!r}") from None


def _party(value: Any, path: str) -> Party:
    if isinstance(value, str):
        value = {"address": value}
    if not isinstance(value, dict):
        raise FieldError(path, "must be an object with an address")
    address = _string(value, "address", f"{path}.address", required=True, limit=320, identifier=True)
    name = _string(value, "name", f"{path}.name", limit=200)
    kind = None
    if value.get("kind") is not None:
        try:
            kind = IdentityKind(value["kind"])
        except ValueError:
            raise FieldError(f"{path}.kind", f"must be one of {', '.join(k.value for k in IdentityKind)}") from None
    return Party(address=address, name=name, kind=kind)


def _attachment(value: Any, path: str) -> Attachment:
    if not isinstance(value, dict):
        raise FieldError(path, "must be an object")
    filename = _string(value, "filename", f"{path}.filename", required=True, limit=255)
    content_type = _string(value, "content_type", f"{path}.content_type", limit=255) or "application/octet-stream"
    content = None
    if value.get("content_base64") is not None:
        encoded = _string(value, "content_base64", f"{path}.content_base64", limit=50_000_000)
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise FieldError(f"{path}.content_base64", "is not valid base64") from None
    url = _string(value, "url", f"{path}.url", limit=2000, identifier=True) or None
    if content is None and url is None:
        raise FieldError(path, "needs content_base64 or url")
    size = value.get("size", len(content) if content is not None else 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise FieldError(f"{path}.size", "must be a non-negative integer")
    return Attachment(filename=filename, content_type=content_type, size=size, content=content, url=url)


def parse_event(body: bytes) -> ChannelEvent:
    """A ChannelEvent from a JSON body, or FieldError naming what is wrong.

    Everything it returns can be stored on both databases: ids, references
    and addresses with a NUL or a lone surrogate are refused; in prose
    (text, subject, names, file names, metadata) those characters are
    replaced and the event carries a defect naming the field.
    """
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FieldError("body", f"is not valid JSON ({exc})") from None
    except RecursionError:
        raise FieldError("body", "is nested too deeply") from None
    if not isinstance(data, dict):
        raise FieldError("body", "must be a JSON object")
    known = {
        "channel", "external_id", "occurred_at", "direction", "kind", "from", "to", "subject",
        "text", "html", "thread_refs", "session", "attachments", "metadata", "delivery_status",
    }  # fmt: skip
    unknown = sorted(set(data) - known)
    if unknown:
        raise FieldError(unknown[0], "is not a field of an event")
    channel = _choice(data, "channel", Channel)
    external_id = _string(data, "external_id", "external_id", required=True, identifier=True)
    occurred_raw = _string(data, "occurred_at", "occurred_at", required=True, limit=64)
    try:
        occurred_at = datetime.fromisoformat(occurred_raw.replace("Z", "+00:00"))
    except ValueError:
        raise FieldError("occurred_at", f"is not an ISO 8601 time: {occurred_raw!r}") from None
    if occurred_at.tzinfo is None:
        raise FieldError("occurred_at", "must include a time zone (e.g. Z or +02:00)")
    now = datetime.now(UTC)
    if occurred_at - now > FUTURE_TOLERANCE:
        raise FieldError(
            "occurred_at", f"is more than a day after this server's time ({now:%Y-%m-%dT%H:%M}Z): send when it happened"
        )
    direction = _choice(data, "direction", Direction)
    kind = _choice(data, "kind", InteractionKind, InteractionKind.MESSAGE)
    sender = _party(data["from"], "from") if data.get("from") is not None else None
    to = data.get("to", [])
    if isinstance(to, (str, dict)):
        to = [to]
    if not isinstance(to, list):
        raise FieldError("to", "must be a list of addresses")
    recipients = tuple(_party(v, f"to[{i}]") for i, v in enumerate(to))
    if direction is Direction.OUTBOUND and not recipients:
        raise FieldError("to", "is required for an outbound event (the customer)")
    if direction is not Direction.OUTBOUND and sender is None:
        raise FieldError("from", "is required (the customer who wrote or called)")
    refs = data.get("thread_refs", [])
    if not isinstance(refs, list) or not all(isinstance(r, str) and r for r in refs):
        raise FieldError("thread_refs", "must be a list of external ids")
    for index, ref in enumerate(refs):
        _string({"ref": ref}, "ref", f"thread_refs[{index}]", identifier=True)
    attachments = data.get("attachments", [])
    if not isinstance(attachments, list):
        raise FieldError("attachments", "must be a list")
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise FieldError("metadata", "must be an object")
    if depth(metadata) > MAX_DEPTH:
        raise FieldError("metadata", f"is nested more than {MAX_DEPTH} levels deep")
    delivery_status = None
    if data.get("delivery_status") is not None:
        delivery_status = _choice(data, "delivery_status", DeliveryStatus)
    session_key = _string(data, "session", "session", limit=200, identifier=True) or None
    event = ChannelEvent(
        channel=channel,
        external_id=external_id,
        occurred_at=occurred_at,
        direction=direction,
        kind=kind,
        sender=sender,
        recipients=recipients,
        subject=_string(data, "subject", "subject", limit=2000),
        text=_string(data, "text", "text", limit=MAX_TEXT),
        html=_string(data, "html", "html", limit=MAX_TEXT),
        thread_refs=tuple(refs),
        session=session_key,
        attachments=tuple(_attachment(a, f"attachments[{i}]") for i, a in enumerate(attachments)),
        metadata=metadata,
        raw=body,
        raw_content_type="application/json",
        delivery_status=delivery_status,
    )
    return storable(event)
