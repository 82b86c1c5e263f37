"""Stream tokens: who may open a live stream, on which topics, from which origins.

The stream server is a process of its own (hub.live.server) that never sees
the app's login cookie: ``EventSource`` cannot send an Authorization header,
and the stream usually lives on another origin. So the app, which knows who
is logged in, issues a short-lived token signed with the app's secret
(itsdangerous, its own salt so no other signed value can pass for one), and
the browser puts it in the stream URL. The token names its topics; the
server gives nothing else. A token is checked when a stream opens; the server
closes a stream when its token expires, and the page fetches a new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

_SALT = "corridor.live.stream"


class InvalidToken(ValueError):
    """The token is forged, expired or malformed; the message says which, in words."""


@dataclass(frozen=True)
class StreamGrant:
    """What a valid token allows."""

    #: Who holds it: "agent:<id>", or the chat's visitor id.
    subject: str
    topics: tuple[str, ...]
    #: Origins (scheme://host[:port]) allowed to read the stream besides [live] allowed_origins.
    origins: tuple[str, ...]
    #: Unix time the token was signed; the stream closes ``ttl`` seconds later.
    issued_at: float


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=_SALT)


def issue_stream_token(secret: str, *, subject: str, topics: Sequence[str], origins: Sequence[str] = ()) -> str:
    """A signed token for ``topics``; valid for as long as the server's [live] token_ttl_seconds."""
    if not topics:
        raise ValueError("topics: a stream token names at least one topic")
    return _serializer(secret).dumps({"s": subject, "t": list(topics), "o": list(origins)})


def read_stream_token(secret: str, token: str, max_age: int) -> StreamGrant:
    """The grant in ``token``, or :class:`InvalidToken`."""
    try:
        payload, signed_at = _serializer(secret).loads(token, max_age=max_age, return_timestamp=True)
    except SignatureExpired:
        raise InvalidToken("the stream token has expired; fetch a new one") from None
    except BadSignature:
        raise InvalidToken("not a stream token this server issued") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("t"), list) or not payload["t"]:
        raise InvalidToken("not a stream token this server issued")
    return StreamGrant(
        subject=str(payload.get("s", "")),
        topics=tuple(str(t) for t in payload["t"]),
        origins=tuple(str(o) for o in payload.get("o") or ()),
        issued_at=signed_at.timestamp(),
    )
