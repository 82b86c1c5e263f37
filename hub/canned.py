"""Canned responses: reply snippets the team shares, with placeholders filled in for the conversation at hand.

An agent types ``/thanks`` in a reply and presses Tab (or picks the snippet
from the list beside the reply box); the text goes in with
``{{customer.first_name}}`` and the like replaced by this customer's and this
agent's details. Placeholders are a closed list, checked when a snippet is
saved, so a typo ("{{customer.frist_name}}") is refused with its name rather
than sent to a customer as braces. Values are plain text: the reply box and
every channel treat them as text, never as markup.

Services flush; callers commit. Every change is audited.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.conversations import ActionError
from hub.customers import audit
from hub.models import CannedResponse, utcnow
from hub.storable import Unstorable, check_storable

#: What a placeholder can name, and what it means.
PLACEHOLDERS: dict[str, str] = {
    "customer.name": "the customer's name (or 'there' when Corridor has none)",
    "customer.first_name": "the first word of the customer's name (or 'there')",
    "agent.name": "your name",
    "agent.first_name": "the first word of your name",
    "conversation.subject": "the conversation's subject",
}
#: What a name is replaced by when Corridor does not know it: "Hi {{customer.first_name}}" still reads well.
UNKNOWN_NAME = "there"

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+\.[a-z_]+)\s*\}\}")
_SHORTCUT = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
MAX_TEXT = 10_000


@dataclass(frozen=True, slots=True)
class Context:
    """Who and what a snippet is inserted for."""

    customer_name: str
    agent_name: str
    subject: str = ""

    def values(self) -> dict[str, str]:
        customer = self.customer_name.strip()
        # A customer known only by an address is shown by it ("+1 415 555 0142"): no name to greet.
        if "@" in customer or not any(c.isalpha() for c in customer):
            customer = ""
        agent = self.agent_name.strip()
        return {
            "customer.name": customer or UNKNOWN_NAME,
            "customer.first_name": customer.split()[0] if customer else UNKNOWN_NAME,
            "agent.name": agent,
            "agent.first_name": agent.split()[0] if agent else "",
            "conversation.subject": self.subject,
        }


def render(text: str, context: Context) -> str:
    """``text`` with its placeholders filled in (an unknown one, saved before the list changed, stays as typed)."""
    values: Mapping[str, str] = context.values()
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _checked(shortcut: object, title: object, text: object) -> tuple[str, str, str]:
    if not isinstance(shortcut, str) or not _SHORTCUT.fullmatch(shortcut.strip().lstrip("/").lower()):
        raise ActionError(400, "shortcut", "must be 1 to 40 lower-case letters, digits, - or _ (typed as /shortcut)")
    if not isinstance(title, str) or not title.strip() or len(title.strip()) > 200:
        raise ActionError(400, "title", "must be 1 to 200 characters")
    if not isinstance(text, str) or not text.strip():
        raise ActionError(400, "text", "must not be empty")
    if len(text) > MAX_TEXT:
        raise ActionError(400, "text", f"must be at most {MAX_TEXT:,} characters")
    for name, value in (("title", title), ("text", text)):
        try:
            check_storable(value, name)
        except Unstorable as exc:
            raise ActionError(400, exc.field, exc.message) from None
    unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text)} - set(PLACEHOLDERS))
    if unknown:
        known = ", ".join("{{" + name + "}}" for name in PLACEHOLDERS)
        raise ActionError(400, "text", f"unknown placeholder {{{{{unknown[0]}}}}}; known: {known}")
    return shortcut.strip().lstrip("/").lower(), title.strip(), text.strip()


def list_canned(session: Session) -> list[CannedResponse]:
    return list(session.scalars(select(CannedResponse).order_by(CannedResponse.shortcut)))


def get_canned(session: Session, canned_id: int) -> CannedResponse:
    found = session.get(CannedResponse, canned_id)
    if found is None:
        raise ActionError(404, "id", f"no canned response {canned_id}")
    return found


def _taken(session: Session, shortcut: str, other_than: int | None) -> None:
    existing = session.scalar(select(CannedResponse.id).where(CannedResponse.shortcut == shortcut))
    if existing is not None and existing != other_than:
        raise ActionError(409, "shortcut", f"/{shortcut} is taken by another snippet")


def create_canned(session: Session, *, shortcut: object, title: object, text: object, actor_id: int | None
                  ) -> CannedResponse:  # fmt: skip
    short, heading, body = _checked(shortcut, title, text)
    _taken(session, short, None)
    canned = CannedResponse(shortcut=short, title=heading, text=body, created_by_id=actor_id, updated_at=utcnow())
    session.add(canned)
    session.flush()
    audit(session, actor_id, "canned.create", "canned_response", canned.id, shortcut=short)
    return canned


def update_canned(session: Session, canned_id: int, *, shortcut: object, title: object, text: object,
                  actor_id: int | None) -> CannedResponse:  # fmt: skip
    canned = get_canned(session, canned_id)
    short, heading, body = _checked(shortcut, title, text)
    _taken(session, short, canned.id)
    canned.shortcut, canned.title, canned.text, canned.updated_at = short, heading, body, utcnow()
    session.flush()
    audit(session, actor_id, "canned.update", "canned_response", canned.id, shortcut=short)
    return canned


def delete_canned(session: Session, canned_id: int, *, actor_id: int | None) -> None:
    canned = get_canned(session, canned_id)
    audit(session, actor_id, "canned.delete", "canned_response", canned.id, shortcut=canned.shortcut)
    session.delete(canned)
    session.flush()
