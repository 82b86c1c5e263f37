"""The web chat's routes: the widget's files, the framed panel, and the visitor's JSON API.

* ``/chat/widget.js`` -- the loader a site embeds with one tag. It adds a
  launcher and an iframe on Corridor's origin, keeps the visitor token in
  the host page's storage and offers ``window.Corridor``.
* ``/chat/frame`` -- the panel. No inline script or style anywhere; its CSP
  allows only Corridor's own files and the stream server, and
  ``frame-ancestors`` only the site's origins, so no other site can frame it.
* ``/chat/api/<site>/…`` -- what the panel calls (same origin) and what a host
  page may call (CORS for the site's origins only). Every call carries the
  visitor token; a message is journaled (``hub.ingest.receive``) before its
  202, and its client id makes a retry the same interaction.
* ``/chat/demo`` -- a host page with the widget, when ``[webchat] demo_site``.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge

from connectors.webchat.parse import CONTENT_TYPE, MalformedMessage, message_payload, parse_message, sniff
from connectors.webchat.sender import visitor_state_key
from connectors.webchat.settings import Site, WebchatSettings
from connectors.webchat.visitors import (
    STATE_CONNECTOR,
    Identity,
    VisitorRefused,
    check_identity,
    issue_visitor_token,
    new_visitor_id,
    read_visitor_token,
    session_key,
)
from hub.contract import (
    AGENTS,
    Agent,
    Channel,
    Database,
    Direction,
    Interaction,
    LiveSettings,
    ReplyError,
    Sender,
    agents_online,
    chat_topic,
    deliver,
    issue_stream_token,
    load_state,
    position,
    publish,
    queue_reply,
    receive,
    record_unparseable,
    save_state,
    utcnow,
)

log = logging.getLogger(__name__)

SOURCE = "webchat"
STATIC = Path(__file__).parent / "static"
#: Interactions of a chat shown to the visitor when the panel opens.
HISTORY_LIMIT = 200
#: Client message ids are the widget's (a UUID); anything longer is not one.
_CLIENT_ID_MAX = 64
#: The security headers of every visitor API answer (JSON).
_API_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def _refusal(status: int, field: str | None, message: str) -> Response:
    response = jsonify({"error": {"status": status, "field": field, "message": message}})
    response.status_code = status
    return response


class RateLimits:
    """Sliding windows per key, in this process (a second web process counts on its own).

    Cheap enough to run before anything touches the database, which is the point:
    a flood is turned away before it costs a journal row.
    """

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, limit: int, window: float, now: float | None = None) -> bool:
        """Count one hit on ``key``; False (not counted) past ``limit`` in ``window`` seconds."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                return False
            hits.append(now)
            if len(self._hits) > 100_000:
                # Forget idle keys rather than grow without bound.
                for stale in [k for k, v in self._hits.items() if not v or v[-1] <= now - window][:50_000]:
                    del self._hits[stale]
            return True


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _stream_url(live: LiveSettings) -> str:
    if live.public_url:
        return live.public_url
    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    return f"{request.scheme}://{host}:{live.port}/live/stream"


def build_blueprint(
    database: Database,
    settings: WebchatSettings,
    sites: dict[str, Site],
    live: LiveSettings,
    senders: Mapping[Channel, Sender],
) -> Blueprint:
    """The blueprint serving the widget, its frame and the visitor API.

    ``senders`` is the registry's map, read per request (connectors loaded
    after this one register theirs later).
    """
    blueprint = Blueprint("webchat", __name__, template_folder="templates")
    limits = RateLimits()

    def secret() -> str:
        # The app's secret (the stream server checks stream tokens with it too).
        return str(current_app.secret_key)

    def own_origin() -> str:
        return request.host_url.rstrip("/")

    def site_or_404(name: str) -> Site:
        site = sites.get(name)
        if site is None:
            raise _Refused(404, "site", f"no chat site named {name!r}")
        return site

    def check_origin(site: Site) -> str | None:
        """The request's Origin when it may call this site's API; refuses any other."""
        origin = request.headers.get("Origin")
        # The site's origins first: the host page's calls are the many, and
        # building our own origin from the request is the dearer test.
        if origin is None or origin in site.origins or origin == own_origin():
            return origin
        raise _Refused(403, "Origin", f"origin {origin} may not use the chat of site {site.name!r}")

    def body() -> dict[str, Any]:
        # sendBeacon (a page being closed) posts text/plain: read the JSON whatever the type says.
        raw = request.get_data(cache=True)
        try:
            data = json.loads(raw or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _Refused(400, "body", "is not JSON") from None
        if not isinstance(data, dict):
            raise _Refused(400, "body", "expected a JSON object")
        return data

    def string(data: dict[str, Any], key: str, default: str = "") -> str:
        value = data.get(key, default)
        if value is None:
            return default
        if not isinstance(value, str):
            raise _Refused(400, key, "must be a string")
        return value

    def visitor_and_identity(site: Site, data: dict[str, Any]) -> tuple[str, Identity]:
        try:
            return read_visitor_token(secret(), site.name, string(data, "visitor_token"), settings.visitor_token_days)
        except VisitorRefused as exc:
            raise _Refused(401, exc.field, exc.message) from None

    def visitor(site: Site, data: dict[str, Any]) -> str:
        return visitor_and_identity(site, data)[0]

    def touch(session: Session, key: str, **changes: Any) -> dict[str, Any]:
        state = load_state(session, STATE_CONNECTOR, visitor_state_key(key)) or {}
        state.update(changes, last_seen=utcnow().isoformat())
        state.setdefault("left", False)
        if "left" not in changes:
            state["left"] = False
        save_state(session, STATE_CONNECTOR, visitor_state_key(key), state)
        return state

    def cors(response: Response, origin: str | None, site: Site) -> Response:
        headers = response.headers
        if origin and origin in site.origins:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Vary"] = "Origin"
        headers["Cache-Control"] = "no-store"
        # An API answer is JSON, never a page: it needs a policy that allows
        # nothing rather than the console's (which the app would otherwise
        # build for every visitor message, hub.web.security).
        headers.update(_API_HEADERS)
        return response

    def api(
        handler: Callable[[Site, dict[str, Any]], Response | tuple[dict[str, Any], int]],
    ) -> Callable[[str], Response]:
        def view(site_name: str) -> Response:
            try:
                site = site_or_404(site_name)
                origin = check_origin(site)
                if request.method == "OPTIONS":
                    response = Response(status=204)
                    response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
                    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
                    response.headers["Access-Control-Max-Age"] = "600"
                    return cors(response, origin, site)
                try:
                    result = handler(site, body())
                except RequestEntityTooLarge:
                    raise _Refused(413, "body", "is too large") from None
                if isinstance(result, Response):
                    return cors(result, origin, site)
                payload, status = result
                response = jsonify(payload)
                response.status_code = status
                return cors(response, origin, site)
            except _Refused as exc:
                return _refusal(exc.status, exc.field, exc.message)

        view.__name__ = handler.__name__
        return view

    def route(path: str, handler: Callable[[Site, dict[str, Any]], Any]) -> None:
        blueprint.add_url_rule(
            f"/chat/api/<site_name>/{path}",
            endpoint=handler.__name__,
            view_func=api(handler),
            methods=["POST", "OPTIONS"],
        )

    # -- the visitor API --------------------------------------------------------------------------

    def start(site: Site, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Open (or continue) the visitor's chat: a token, the history, a stream to follow."""
        identity = Identity()
        try:
            visitor_id, identity = visitor_and_identity(site, data) if data.get("visitor_token") else (None, identity)
        except _Refused:
            visitor_id = None  # a token from another site or an old secret: a new visitor
        if visitor_id is None:
            if not limits.allow(f"new:{site.name}:{request.remote_addr}", settings.conversations_per_hour, 3600):
                raise _Refused(429, None, "too many new chats from this address; try again later")
            visitor_id = new_visitor_id()
        key = session_key(site.name, visitor_id)
        now = datetime.now(UTC)
        staffed = True
        with database.write() as session:
            touch(session, key)
            history, current = _history(session, key, identity)
            if settings.agents_online_seconds:
                # In the opening hours with nobody at a console, a visitor would wait for nothing.
                staffed = agents_online(session, timedelta(seconds=settings.agents_online_seconds), now) > 0
        opens = site.opens_next(now)
        return {
            "visitor_token": issue_visitor_token(secret(), site.name, visitor_id, identity),
            "site": site.public(),
            "open": site.is_open(now) and staffed,
            "agents_online": staffed,
            "opens_at": opens.isoformat().replace("+00:00", "Z") if opens else None,
            "identity": {
                "name": identity.name,
                "email": identity.email,
                "phone": identity.phone,
                "verified": identity.verified,
            },
            "messages": history,
            "transcript": Channel.EMAIL in senders,
            "stream": {
                "url": _stream_url(live),
                "token": issue_stream_token(
                    secret(),
                    subject=f"visitor:{key}",
                    topics=[chat_topic(key)],
                    origins=[own_origin()],
                ),
                "position": current,
                "expires_in": live.token_ttl_seconds,
            },
        }, 200

    def identify(site: Site, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Who the visitor is: a claim (pre-chat form) or an identity the site signed."""
        key = session_key(site.name, visitor(site, data))
        try:
            identity = check_identity(
                site, string(data, "name"), string(data, "email"), string(data, "phone"), string(data, "signature")
            )
        except VisitorRefused as exc:
            raise _Refused(403 if exc.field == "signature" else 400, exc.field, exc.message) from None
        with database.write() as session:
            previous = Identity.from_state(load_state(session, STATE_CONNECTOR, visitor_state_key(key)))
            if previous.verified and not identity.verified and (identity.email or identity.phone):
                # A verified visitor stays who the site said; a typed address cannot replace it.
                raise _Refused(409, "email", "this chat's identity was verified by the site; reset to change it")
            touch(session, key, **identity.as_state())
        token = issue_visitor_token(secret(), site.name, key.split("/", 1)[1], identity)
        return {"identity": identity.as_state(), "visitor_token": token}, 200

    def send(site: Site, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """A visitor's message: journaled before the 202; a retry is the same message.

        Nothing is read from the database: the token says who the visitor is.
        """
        visitor_id, identity = visitor_and_identity(site, data)
        key = session_key(site.name, visitor_id)
        client_id = string(data, "client_id")
        if not client_id or len(client_id) > _CLIENT_ID_MAX or not client_id.replace("-", "").isalnum():
            raise _Refused(400, "client_id", "is required: the widget's id of this message (letters, digits, dashes)")
        text = string(data, "text")
        if "\x00" in text:
            raise _Refused(400, "text", "must not contain NUL characters")
        if len(text) > settings.max_text_chars:
            raise _Refused(413, "text", f"is longer than {settings.max_text_chars} characters")
        attachment = data.get("attachment")
        if attachment is not None:
            attachment = _check_attachment(attachment, settings.max_attachment_bytes)
        if not text.strip() and attachment is None:
            raise _Refused(400, "text", "must not be empty")
        if not limits.allow(f"visitor:{key}", settings.messages_per_minute, 60):
            raise _Refused(429, None, "too many messages; wait a moment")
        if not limits.allow(f"address:{request.remote_addr}", settings.messages_per_minute * 5, 60):
            raise _Refused(429, None, "too many messages from this address; wait a moment")
        if site.require_verification and not identity.verified:
            raise _Refused(403, "signature", f"site {site.name!r} chats only with visitors its backend identified")
        missing = [f for f in ("name", "email", "phone") if site.prechat[f] == "required" and not getattr(identity, f)]
        if missing and not identity.verified:
            raise _Refused(400, missing[0], "is required on this site before the first message")
        raw = message_payload(
            site=site.name,
            session=key,
            client_id=client_id,
            text=text,
            identity=identity.as_state(),
            received_at=utcnow(),
            page=string(data, "page")[:500],
            attachment=attachment,
        )
        try:
            event = parse_message(raw)
        except MalformedMessage as exc:
            with database.write() as session:
                record_unparseable(
                    session, source=SOURCE, raw=raw, content_type=CONTENT_TYPE, error=str(exc), context={}
                )
            raise _Refused(400, exc.field, exc.message) from None
        receive(database, [event], source=SOURCE)
        return {"external_id": event.external_id, "status": "received"}, 202

    def presence(site: Site, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """The widget is open (``here``) or its page is gone (``left``): decides email vs chat."""
        key = session_key(site.name, visitor(site, data))
        state = string(data, "state", "here")
        if state not in ("here", "left"):
            raise _Refused(400, "state", "must be here or left")
        with database.write() as session:
            touch(session, key, left=state == "left")
        return {"state": state}, 200

    def typing(site: Site, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """The visitor is typing: the agents' console hears it."""
        key = session_key(site.name, visitor(site, data))
        if not limits.allow(f"typing:{key}", 30, 60):
            return {"typing": False}, 200
        with database.write() as session:
            conversation_id = _conversation_of(session, key)
            if conversation_id is not None:
                publish(session, AGENTS, "chat.typing", {"conversation_id": conversation_id, "who": "visitor"})
        return {"typing": True}, 200

    def read(site: Site, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """The visitor has seen the agent's replies up to ``interaction_id``."""
        key = session_key(site.name, visitor(site, data))
        seen = data.get("interaction_id")
        if not isinstance(seen, int):
            raise _Refused(400, "interaction_id", "must be an integer")
        with database.write() as session:
            conversation_id = _conversation_of(session, key)
            if conversation_id is not None:
                publish(session, AGENTS, "chat.read", {"conversation_id": conversation_id, "interaction_id": seen})
        return {"read": seen}, 200

    def transcript(site: Site, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """The visitor's chat by email, as a reply in the same conversation (its answer threads back)."""
        key = session_key(site.name, visitor(site, data))
        if Channel.EMAIL not in senders:
            raise _Refused(422, None, "transcripts go by email, and no email connector is enabled")
        if not limits.allow(f"transcript:{key}", 2, 3600):
            raise _Refused(429, None, "a transcript was sent a moment ago")
        with database.write() as session:
            identity = Identity.from_state(load_state(session, STATE_CONNECTOR, visitor_state_key(key)))
            if not identity.email:
                raise _Refused(400, "email", "leave an email address first")
            conversation_id = _conversation_of(session, key)
            history, _ = _history(session, key, identity)
            if conversation_id is None or not history:
                raise _Refused(400, None, "there is nothing to send yet")
            lines = [f"{m['at'][:16].replace('T', ' ')} UTC  {_speaker(m)}: {m['text']}" for m in history]
            try:
                interaction_id = queue_reply(
                    session,
                    senders,
                    conversation_id=conversation_id,
                    channel=Channel.EMAIL,
                    text=f"Your chat with {site.title}:\n\n" + "\n".join(lines) + "\n\nAnswer this email to continue.",
                    subject=f"Your chat with {site.title}",
                    author_id=None,
                )
            except ReplyError as exc:
                raise _Refused(422, exc.field, exc.message) from None
        deliver(database, senders, interaction_id)
        return {"to": identity.email, "interaction_id": interaction_id}, 202

    route("session", start)
    route("transcript", transcript)
    route("identify", identify)
    route("messages", send)
    route("presence", presence)
    route("typing", typing)
    route("read", read)

    # -- files ------------------------------------------------------------------------------------

    def static_file(name: str, content_type: str, max_age: int = 300) -> Response:
        response = Response((STATIC / name).read_bytes(), content_type=content_type)
        response.headers["Cache-Control"] = f"public, max-age={max_age}"
        response.headers["X-Content-Type-Options"] = "nosniff"
        # The loader runs on other sites' pages; the rest only in Corridor's frame.
        response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
        return response

    @blueprint.get("/chat/widget.js")
    def widget_js() -> Response:
        return static_file("widget.js", "text/javascript; charset=utf-8")

    @blueprint.get("/chat/frame.js")
    def frame_js() -> Response:
        return static_file("frame.js", "text/javascript; charset=utf-8")

    @blueprint.get("/chat/frame.css")
    def frame_css() -> Response:
        return static_file("frame.css", "text/css; charset=utf-8")

    @blueprint.get("/chat/frame")
    def frame() -> ResponseReturnValue:
        site = sites.get(request.args.get("site", ""))
        if site is None:
            return _refusal(404, "site", "no such chat site")
        stream_origin = _origin_of(_stream_url(live)) or "'self'"
        response = Response(
            render_template("webchat/frame.html", site=site, origins=" ".join(site.origins)),
            content_type="text/html; charset=utf-8",
        )
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' {stream_origin}; base-uri 'none'; form-action 'none'; "
            f"frame-ancestors {' '.join(site.origins)}"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "strict-origin"
        response.headers["Cache-Control"] = "no-store"
        return response

    if "demo" in sites and settings.demo_site:

        @blueprint.get("/chat/demo")
        def demo() -> Response:
            response = Response(render_template("webchat/demo.html"), content_type="text/html; charset=utf-8")
            response.headers["Content-Security-Policy"] = (
                "default-src 'self'; script-src 'self'; style-src 'self'; frame-src 'self'"
            )
            return response

    return blueprint


class _Refused(Exception):
    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message


def _check_attachment(attachment: Any, max_bytes: int) -> dict[str, str]:
    if max_bytes == 0:
        raise _Refused(400, "attachment", "this site accepts no attachments")
    if not isinstance(attachment, dict) or not isinstance(attachment.get("data"), str):
        raise _Refused(400, "attachment", "expected {filename, data (base64)}")
    data = attachment["data"]
    if len(data) * 3 // 4 > max_bytes:
        raise _Refused(413, "attachment", f"is larger than {max_bytes} bytes")
    try:
        content = base64.b64decode(data, validate=True)
    except ValueError:
        raise _Refused(400, "attachment.data", "is not base64") from None
    if sniff(content) is None:
        raise _Refused(415, "attachment", "only images (PNG, JPEG, GIF, WebP) and PDF files are accepted")
    return {"filename": str(attachment.get("filename") or "attachment")[:200], "data": data}


def _speaker(message: dict[str, Any]) -> str:
    return "You" if message["direction"] == "inbound" else message["author"] or "Support"


def _conversation_of(session: Session, key: str) -> int | None:
    return session.scalar(
        select(Interaction.conversation_id)
        .where(Interaction.channel == Channel.CHAT.value, Interaction.session_key == key)
        .order_by(Interaction.id.desc())
        .limit(1)
    )


def _history(session: Session, key: str, identity: Identity) -> tuple[list[dict[str, Any]], int]:
    """What this visitor may see of their chat, oldest first, and the feed position it is current to.

    A visitor sees their own messages and the replies to them. A visitor the
    site verified sees their whole conversation (an earlier email too): it is
    theirs. A claim never shows anything beyond the visitor's own chat.
    """
    current = position(session)
    conversations = list(
        session.scalars(
            select(Interaction.conversation_id)
            .where(Interaction.channel == Channel.CHAT.value, Interaction.session_key == key)
            .distinct()
        )
    )
    if not conversations:
        return [], current
    query = (
        select(Interaction)
        .where(Interaction.conversation_id.in_(conversations), Interaction.direction != Direction.INTERNAL.value)
        .order_by(Interaction.occurred_at, Interaction.id)
        .limit(HISTORY_LIMIT * 4)
    )
    if not identity.verified:
        query = query.where(
            Interaction.channel == Channel.CHAT.value,
            or_(Interaction.session_key == key, Interaction.direction == Direction.OUTBOUND.value),
        )
    agents: dict[int, str] = {}
    shown: list[dict[str, Any]] = []
    for interaction in session.scalars(query):
        outbound = interaction.direction == Direction.OUTBOUND.value
        # A chat reply is the visitor's only if it answered their session.
        mine = (interaction.provider_metadata or {}).get("webchat_session") == key
        if outbound and interaction.channel == Channel.CHAT.value and not mine:
            continue
        author = ""
        if outbound and interaction.author_id is not None:
            if interaction.author_id not in agents:
                agent = session.get(Agent, interaction.author_id)
                agents[interaction.author_id] = agent.name.split()[0] if agent is not None and agent.name else ""
            author = agents[interaction.author_id]
        shown.append(
            {
                "interaction_id": interaction.id,
                "direction": "outbound" if outbound else "inbound",
                "channel": interaction.channel,
                "text": interaction.reply_text or interaction.text,
                "author": author,
                "at": interaction.occurred_at.isoformat(),
                "client_id": interaction.external_id.rsplit(":", 1)[-1] if not outbound else None,
            }
        )
    return shown[-HISTORY_LIMIT:], current


def replay_parser(raw: bytes, _context: dict[str, Any]) -> list[Any]:
    """How ``corridor journal replay`` parses a journaled visitor message again."""
    return [parse_message(raw)]
