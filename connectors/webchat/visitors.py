"""Visitors: who is chatting, as far as the widget can prove it.

* **The visitor token** (itsdangerous, signed with the app's secret) names a
  site and a visitor id. The salt carries the site, so a token issued for
  one site is not a token for another, and the payload names the site again
  for the error message. It lives in the host page's storage so a reload or
  another page of the site continues the same chat.
* **A claim** is an email or phone typed into the pre-chat form. It is
  believed enough to file the chat on that customer's timeline (flagged
  ``unverified`` so the agent knows), never enough to show the visitor
  anything but their own chat, and never a reason to merge two customers.
* **A verified identity** is one the site's own backend signed: the
  hex HMAC-SHA256 of the email (or, without one, the phone) with the site's
  secret. Checked with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from connectors.webchat.settings import Site

_SALT = "corridor.webchat.visitor:"
#: ConnectorState's connector name for visitors' state.
STATE_CONNECTOR = "webchat"
#: Visitor tokens whose signature was checked, remembered per process: a
#: visitor sends every message with the same token, and checking it again
#: was an eighth of a message's time in the web process.
VERIFIED_TOKENS = 20_000


class VisitorRefused(ValueError):
    """A token or identity that cannot be accepted; ``field`` names what is wrong."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@lru_cache(maxsize=64)
def _serializer(secret_key: str, site: str) -> URLSafeTimedSerializer:
    # Built once per secret and site: it holds nothing that changes per token.
    return URLSafeTimedSerializer(secret_key, salt=_SALT + site)


def new_visitor_id() -> str:
    """A fresh visitor id: unguessable, so a topic or session key names one visitor only."""
    return secrets.token_urlsafe(18)


def issue_visitor_token(secret_key: str, site: str, visitor_id: str, identity: Identity | None = None) -> str:
    """The token the widget keeps in the host page's storage.

    It carries the visitor's identity as the server recorded it (a claim, or
    verified), signed: a message then needs no database read to know who
    sent it, and a page cannot promote a claim to verified by editing it.
    """
    payload: dict[str, Any] = {"site": site, "v": visitor_id}
    if identity is not None and (identity.name or identity.email or identity.phone):
        payload["i"] = identity.as_state()
    return _serializer(secret_key, site).dumps(payload)


def read_visitor_token(secret_key: str, site: str, token: str, max_age_days: int) -> tuple[str, Identity]:
    """The visitor id and identity in ``token`` for ``site``, or :class:`VisitorRefused`."""
    visitor_id, identity, signed_at = _verified(secret_key, site, token)
    # The age is checked on every call, remembered or not, as itsdangerous
    # checks it: whole seconds, and a token from the future is not accepted.
    age = int(time.time()) - signed_at
    if age > max_age_days * 86400 or age < 0:
        raise VisitorRefused("visitor_token", "has expired; start a new chat")
    return visitor_id, identity


@lru_cache(maxsize=VERIFIED_TOKENS)
def _verified(secret_key: str, site: str, token: str) -> tuple[str, Identity, int]:
    """What a token whose signature is good says, and when it was signed.

    Remembered by the exact token, secret and site, so only a string that
    was checked is ever taken from memory; a refusal raises and is never
    remembered. The identity is immutable, so sharing it is safe.
    """
    try:
        payload, signed_at = _serializer(secret_key, site).loads(token, return_timestamp=True)
    except BadSignature:
        raise VisitorRefused("visitor_token", f"is not a visitor token of site {site!r}") from None
    if not isinstance(payload, dict) or payload.get("site") != site or not isinstance(payload.get("v"), str):
        raise VisitorRefused("visitor_token", f"is not a visitor token of site {site!r}")
    identity = payload.get("i")
    return (
        str(payload["v"]),
        Identity.from_state(identity if isinstance(identity, dict) else None),
        int(signed_at.timestamp()),
    )


def session_key(site: str, visitor_id: str) -> str:
    """The chat session of one visitor on one site (the timeline's ``session``)."""
    return f"{site}/{visitor_id}"


def identity_signature(secret: str, value: str) -> str:
    """What the site's backend computes: hex HMAC-SHA256 of ``value`` with the site's secret."""
    return hmac.new(secret.encode(), value.strip().encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Identity:
    """Who the visitor says they are, and whether the site vouched for it."""

    name: str = ""
    email: str = ""
    phone: str = ""
    verified: bool = False

    def as_state(self) -> dict[str, Any]:
        return {"name": self.name, "email": self.email, "phone": self.phone, "verified": self.verified}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> Identity:
        state = state or {}
        return cls(
            name=str(state.get("name") or ""),
            email=str(state.get("email") or ""),
            phone=str(state.get("phone") or ""),
            verified=bool(state.get("verified")),
        )


def check_identity(site: Site, name: str, email: str, phone: str, signature: str) -> Identity:
    """The identity to record for what the visitor or the host page gave.

    A signature must match; a site that requires verification refuses an
    identity without one (and the caller refuses anonymous chats there).
    """
    email, phone, name = email.strip(), phone.strip(), name.strip()
    if email and "@" not in email:
        raise VisitorRefused("email", "is not an email address")
    if phone and sum(c.isdigit() for c in phone) < 5:
        raise VisitorRefused("phone", "is not a phone number")
    signed_value = email or phone
    if signature:
        if not site.secret or not signed_value:
            raise VisitorRefused("signature", "nothing this site can verify")
        expected = identity_signature(site.secret, signed_value)
        if not hmac.compare_digest(expected, signature.strip().lower()):
            raise VisitorRefused("signature", "does not match; the identity was not signed with the site's secret")
        return Identity(name=name, email=email, phone=phone, verified=True)
    if site.require_verification:
        raise VisitorRefused("signature", f"site {site.name!r} accepts only identities its backend signed")
    for key, value in (("name", name), ("email", email), ("phone", phone)):
        if site.prechat[key] == "required" and not value:
            raise VisitorRefused(key, "is required on this site")
    return Identity(name=name, email=email, phone=phone, verified=False)
