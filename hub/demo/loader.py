"""Loading the demo through the real write path, with the identity links and closed conversations agents make."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.auth import create_agent
from hub.canned import create_canned
from hub.customers import add_identity
from hub.demo.personas import SHOWCASE_ORDER, _Demo, _Persona, _Planned
from hub.demo.showcase import _maria, _tomas, _withheld_and_short_code
from hub.demo.stories import _write_histories
from hub.events import NON_PERSONAL_KINDS, Channel, ChannelEvent, IdentityKind
from hub.identity import normalise_email
from hub.ingest import IngestResult, ingest_many
from hub.models import Agent, CannedResponse, Conversation, ConversationStatus, Customer, Interaction, Role, utcnow
from hub.runtime import Runtime

#: The demo logins. Printed by ``corridor demo``; never use them outside a demo.
DEMO_AGENT_EMAIL = "demo@corridor.local"
DEMO_SUPERVISOR_EMAIL = "supervisor@corridor.local"
DEMO_PASSWORD = "corridor-demo"  # noqa: S105 -- a published demo login, by design


#: Most people ``corridor demo --customers`` invents: the fictional phone
#: ranges of the smallest country run out beyond this.
MAX_CUSTOMERS = 500


#: Conversations quiet for longer than this are closed, as agents would have.
CLOSE_AFTER = timedelta(days=14)


#: The journal's name for who delivered the demo's payloads. The payloads
#: themselves are shaped like the real connectors' (RFC 822, Twilio forms,
#: chat frames), so the journal reads like production's.
SOURCE = "demo"


# -- identity links, as agents make them -----------------------------------------------


@dataclass(frozen=True)
class _Link:
    person: _Persona
    kind: IdentityKind
    address: str


def _links(planned: Sequence[_Planned], first: dict[int, _Planned]) -> list[_Link]:
    """The addresses an agent links to each person's customer after their first contact.

    Someone who first emailed and later calls from their phone is one customer
    because an agent linked the phone (from an email signature, during a call);
    Corridor never guesses such a link by itself.
    """
    channels: dict[int, set[Channel]] = {}
    for p in planned:
        if p.persona is not None and isinstance(p.item, ChannelEvent):
            channels.setdefault(id(p.persona), set()).add(p.item.channel)
    links: list[_Link] = []
    for key, opening in first.items():
        person = opening.persona
        event = opening.item
        assert person is not None
        assert isinstance(event, ChannelEvent)
        assert event.sender is not None
        if person.visitor_id is not None or event.sender.kind in {IdentityKind.WITHHELD, IdentityKind.SHORT_CODE}:
            continue
        used = channels[key]
        known_by_email = event.channel is Channel.EMAIL or event.sender.kind is IdentityKind.EMAIL
        if known_by_email and person.phone and used & {Channel.VOICE, Channel.SMS, Channel.WHATSAPP}:
            links.append(_Link(person, IdentityKind.PHONE, person.phone_as_typed))
        if not known_by_email and person.email and used & {Channel.EMAIL, Channel.CHAT, Channel.OTHER}:
            links.append(_Link(person, IdentityKind.EMAIL, person.email))
    return links


# -- loading ---------------------------------------------------------------------------


def _ensure_agents(session: Session, echo: Callable[[str], None]) -> Agent:
    """The demo logins, created once; returns the demo agent."""
    agent: Agent | None = None
    for email, name, role in (
        (DEMO_AGENT_EMAIL, "Demo Agent", Role.AGENT),
        (DEMO_SUPERVISOR_EMAIL, "Demo Supervisor", Role.SUPERVISOR),
    ):
        existing = session.scalar(select(Agent).where(Agent.email == normalise_email(email)))
        if existing is None:
            existing, token = create_agent(session, email=email, name=name, role=role, password=DEMO_PASSWORD)
            echo(f"created {role.value} {email} (password {DEMO_PASSWORD}; API token {token})")
        if role is Role.AGENT:
            agent = existing
    assert agent is not None
    return agent


def _opening_batches(openings: Sequence[_Planned]) -> list[list[_Planned]]:
    """First contacts in three batches: Maria, people, then senders that are not people.

    A batch creates its new customers in the order of their addresses, so the
    batches decide who comes first in the customer list: anonymous visitors
    and withheld numbers after everyone with a name.
    """
    people: list[_Planned] = []
    others: list[_Planned] = []
    for planned in openings[1:]:
        event = planned.item
        assert isinstance(event, ChannelEvent)
        assert event.sender is not None
        anonymous = event.sender.kind in {IdentityKind.CHAT_VISITOR, *NON_PERSONAL_KINDS}
        (others if anonymous else people).append(planned)
    return [[openings[0]], people, others]


def _check(results: Iterable[IngestResult]) -> list[IngestResult]:
    """The results, or an error: a demo event that fails is a bug in the demo."""
    kept = list(results)
    failed = [r for r in kept if r.error]
    if failed:
        details = "; ".join(f"journal #{r.journal_id}: {r.error}" for r in failed[:5])
        raise RuntimeError(f"{len(failed)} demo events failed ({details})")
    return kept


def _close_old(session: Session, conversation_ids: set[int], now: datetime) -> int:
    """Close the demo's conversations that have been quiet for two weeks.

    This simulates agents closing them: the pipeline opens conversations, and
    closing one is an agent's decision that no channel event makes. A direct
    update is fine here, inside the demo's own write transaction.
    """
    rows: list[dict[str, Any]] = []
    ids = sorted(conversation_ids)
    for start in range(0, len(ids), 400):
        for conversation_id, last_activity in session.execute(
            select(Conversation.id, Conversation.last_activity_at).where(
                Conversation.id.in_(ids[start : start + 400]),
                Conversation.status != ConversationStatus.CLOSED,
                Conversation.last_activity_at < now - CLOSE_AFTER,
            )
        ):
            # Closed the working day after the last message, as a tidy team would.
            rows.append(
                {
                    "id": conversation_id,
                    "status": ConversationStatus.CLOSED,
                    "closed_at": last_activity + timedelta(hours=20),
                }
            )
    if rows:
        session.execute(update(Conversation), rows)
    return len(rows)


def _login_line(base_url: str) -> str:
    return (
        f"Log in at {base_url}/login as {DEMO_AGENT_EMAIL} / {DEMO_PASSWORD} (agent) "
        f"or {DEMO_SUPERVISOR_EMAIL} / {DEMO_PASSWORD} (supervisor)."
    )


#: The team's snippets in the demo: type /thanks then Tab in a reply.
DEMO_SNIPPETS = [
    ("thanks", "Thanks, on it",
     "Hi {{customer.first_name}},\n\nthanks for writing. I'm looking into it now and will come back to you today."
     "\n\n{{agent.first_name}}"),
    ("shipped", "Replacement shipped",
     "Hi {{customer.first_name}}, the replacement left our warehouse today; the tracking number follows by email."),
    ("closing", "Anything else?",
     "Is there anything else I can help with, {{customer.first_name}}? If not, I'll close this conversation."),
]  # fmt: skip


def _add_snippets(session: Session, agent_id: int) -> None:
    for shortcut, title, text in DEMO_SNIPPETS:
        if session.scalar(select(CannedResponse.id).where(CannedResponse.shortcut == shortcut)) is None:
            create_canned(session, shortcut=shortcut, title=title, text=text, actor_id=agent_id)


def load_demo(
    runtime: Runtime,
    *,
    customers: int = 60,
    seed: int = 7,
    if_empty: bool = False,
    echo: Callable[[str], None] = print,
    now: datetime | None = None,
) -> str:
    """Load the demo through the real pipeline; returns a summary to print.

    ``customers`` people are invented (at least the two showcase customers),
    plus a withheld caller and a short-code sender, which Corridor keeps as
    customers of their own. With ``if_empty``, a database that has any
    customer is left alone. ``now`` (default: the current time) is where the
    history ends; the same seed and ``now`` give the same events, so loading
    them again adds nothing.
    """
    started = time.perf_counter()
    database = runtime.database
    base_url = runtime.hub.app.public_base_url.rstrip("/")
    if if_empty:
        with database.read() as session:
            existing = session.scalar(select(func.count()).select_from(Customer)) or 0
            has_login = session.scalar(select(Agent.id).where(Agent.email == DEMO_AGENT_EMAIL)) is not None
        if existing:
            echo(f"Demo data not loaded: the database has {existing} customers already (--if-empty).")
            return _login_line(base_url) if has_login else "Nothing changed."

    if not 2 <= customers <= MAX_CUSTOMERS:
        customers = min(max(customers, 2), MAX_CUSTOMERS)
        echo(f"demo customers must be 2 to {MAX_CUSTOMERS}; inventing {customers}")
    now = (now or utcnow()).replace(microsecond=0)
    demo = _Demo(seed, now, runtime.pipeline.continuation_window)
    maria = _maria(demo)
    _tomas(demo)
    _withheld_and_short_code(demo)
    _write_histories(demo, demo.personas(customers - 2))
    planned = sorted(demo.planned, key=lambda p: (p.at, p.seq))

    # Everyone's first contact is ingested first (Maria's before anyone's, so
    # she is the first customer and heads the customer list); then agents
    # link the addresses people later used; then the rest of the history
    # arrives as one batch, as a backfill would.
    first: dict[int, _Planned] = {}
    for p in planned:
        if p.persona is not None and isinstance(p.item, ChannelEvent) and id(p.persona) not in first:
            first[id(p.persona)] = p
    openings = [first[id(maria)], *(p for key, p in first.items() if key != id(maria))]
    opening_ids = {id(p) for p in openings}
    rest = [p.item for p in planned if id(p) not in opening_ids]
    context = {"demo_seed": seed}
    echo(f"loading demo data: {len(first)} customers, {len(planned)} events and updates ...")

    with database.write() as session:
        agent = _ensure_agents(session, echo)
        results: list[IngestResult] = []
        customer_of: dict[int, int | None] = {}
        for batch in _opening_batches(openings):
            done = _check(ingest_many(session, [p.item for p in batch], source=SOURCE, context=context))
            customer_of.update((id(p.persona), r.customer_id) for p, r in zip(batch, done, strict=True))
            results += done
        maria_id = customer_of[id(maria)]
        assert maria_id is not None
        links = _links(planned, first)
        for link in links:
            customer_id = customer_of[id(link.person)]
            assert customer_id is not None
            add_identity(
                session,
                customer_id,
                link.kind,
                link.address,
                actor_id=agent.id,
                default_region=runtime.pipeline.default_region,
            )
        results += _check(ingest_many(session, rest, source=SOURCE, context=context))
        closed = _close_old(session, {r.conversation_id for r in results if r.conversation_id is not None}, now)
        _add_snippets(session, agent.id)

    with database.read() as session:
        people = session.scalar(select(func.count()).select_from(Customer).where(Customer.merged_into_id.is_(None)))
        statuses = dict(session.execute(select(Conversation.status, func.count()).group_by(Conversation.status)).all())
        by_channel = dict(
            session.execute(select(Interaction.channel, func.count()).group_by(Interaction.channel)).all()
        )
    elapsed = time.perf_counter() - started
    duplicates = sum(1 for r in results if r.duplicate)
    channels = " · ".join(f"{Channel(c).value} {n}" for c, n in sorted(by_channel.items(), key=lambda kv: -kv[1]))
    conversations = sum(statuses.values())
    return "\n".join(
        [
            f"Demo data loaded in {elapsed:.1f} s ({len(links)} phone/email links made as an agent would, "
            f"{closed} old conversations closed"
            + (f", {duplicates} events already present" if duplicates else "")
            + ").",
            f"Corridor now has {people} customers, {conversations} conversations "
            f"({statuses.get(ConversationStatus.OPEN, 0)} open, {statuses.get(ConversationStatus.CLOSED, 0)} closed) "
            f"and {sum(by_channel.values())} interactions: {channels}.",
            f"Showcase: Maria Keller emailed, called, then chatted about order #{SHOWCASE_ORDER}, "
            f"one conversation: {base_url}/customers/{maria_id}",
            _login_line(base_url),
        ]
    )
