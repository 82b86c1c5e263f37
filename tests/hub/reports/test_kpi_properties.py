"""Every KPI definition against a brute-force computation over the same generated timeline.

Hypothesis draws customers, agents, conversations (open, pending, closed,
some reopened and closed again), interactions on every channel in both
directions (auto-replies, bounces, failed replies, unanswered calls, notes,
survey messages and answers among them) and satisfaction surveys. The rows
go into a real database, the rollups are brought up to date in two steps
(half the interactions, then the rest: the incremental path), and each
figure of hub.reports.kpis must equal what the plain loops below compute
from the generated rows, read the README's way. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert

from hub.models import (
    Agent,
    AppliedUpdate,
    ConnectorState,
    Conversation,
    ConversationClosure,
    ConversationFacts,
    CsatSurvey,
    Customer,
    CustomerContact,
    DailyVolume,
    Interaction,
)
from hub.reports import kpis, rollup
from hub.runtime import Runtime

T0 = datetime(2026, 6, 1, tzinfo=UTC)
CHANNELS = ["email", "sms", "voice", "chat", "whatsapp"]
RANGE = kpis.Filters(since=T0 + timedelta(days=1), until=T0 + timedelta(days=9))


@dataclass(frozen=True)
class I:  # noqa: E742 -- one interaction as generated
    id: int
    conversation_id: int
    customer_id: int
    at: datetime
    channel: str
    direction: str
    kind: str
    status: str | None
    author_id: int | None
    metadata: dict[str, Any]


@dataclass(frozen=True)
class C:
    id: int
    customer_id: int
    status: str
    assignee_id: int | None
    closed_at: datetime | None
    #: Earlier closes before a reopen.
    earlier_closes: tuple[datetime, ...]


@dataclass(frozen=True)
class S:
    id: int
    conversation_id: int
    channel: str
    sent_at: datetime
    score: int | None
    survey_interaction_id: int | None
    answer_interaction_id: int | None


minutes = st.integers(min_value=0, max_value=10 * 24 * 60)


@st.composite
def timelines(draw: st.DrawFn) -> tuple[list[C], list[I], list[S]]:
    customers = draw(st.integers(1, 3))
    conversations: list[C] = []
    interactions: list[I] = []
    surveys: list[S] = []
    next_id = 1
    for cid in range(1, draw(st.integers(1, 10)) + 1):
        customer = draw(st.integers(1, customers))
        status = draw(st.sampled_from(["open", "pending", "closed"]))
        closed_at = T0 + timedelta(minutes=draw(minutes)) if status == "closed" else None
        earlier = tuple(T0 + timedelta(minutes=m) for m in draw(st.lists(minutes, max_size=2, unique=True)))
        conversations.append(C(cid, customer, status, draw(st.sampled_from([None, 1, 2])), closed_at, earlier))
        for _ in range(draw(st.integers(0, 7))):
            direction = draw(st.sampled_from(["inbound", "inbound", "outbound", "internal"]))
            kind = draw(st.sampled_from(["message", "message", "call", "voicemail", "note"]))
            flags = draw(st.sampled_from([{}, {}, {}, {"auto_reply": True}, {"bounce": True}, {"auto_reply": False}]))
            interactions.append(
                I(
                    id=next_id,
                    conversation_id=cid,
                    customer_id=customer,
                    # Whole seconds, and some at the same instant: ties are ordered by id.
                    at=T0 + timedelta(minutes=draw(minutes), seconds=draw(st.sampled_from([0, 0, 30]))),
                    channel=draw(st.sampled_from(CHANNELS)),
                    direction=direction,
                    kind=kind,
                    status=draw(
                        st.sampled_from([None, "delivered", "failed", "undelivered", "no-answer", "completed"])
                    ),
                    author_id=draw(st.sampled_from([None, 1, 2])) if direction == "outbound" else None,
                    metadata=flags,
                )
            )
            next_id += 1
        if draw(st.booleans()):
            survey_id = len(surveys) + 1
            own = [i.id for i in interactions if i.conversation_id == cid]
            surveys.append(
                S(
                    id=survey_id,
                    conversation_id=cid,
                    channel=draw(st.sampled_from(["email", "sms"])),
                    sent_at=T0 + timedelta(minutes=draw(minutes)),
                    score=draw(st.sampled_from([None, 1, 2, 3, 4, 5])),
                    survey_interaction_id=draw(st.sampled_from([None, *own])) if own else None,
                    answer_interaction_id=draw(st.sampled_from([None, *own])) if own else None,
                )
            )
    return conversations, interactions, surveys


# -- the brute force: the README's definitions, read literally -------------------------------


def survey_ids(surveys: list[S]) -> set[int]:
    return {i for s in surveys for i in (s.survey_interaction_id, s.answer_interaction_id) if i is not None}


def contact(i: I, surveys: set[int]) -> bool:
    automatic = bool(i.metadata.get("auto_reply")) or bool(i.metadata.get("bounce"))
    return (
        i.direction == "inbound"
        and i.kind in {"message", "call", "voicemail"}
        and not automatic
        and i.id not in surveys
    )


def response(i: I, surveys: set[int]) -> bool:
    automatic = bool(i.metadata.get("auto_reply")) or bool(i.metadata.get("bounce"))
    undelivered = i.status in {"failed", "undelivered", "canceled", "busy", "no-answer"}
    return (
        i.direction == "outbound"
        and i.kind in {"message", "call"}
        and not automatic
        and not undelivered
        and i.id not in surveys
    )


def nearest_rank(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(p * len(ordered)) - 1]


@dataclass
class Brute:
    started: dict[int, datetime]
    first_channel: dict[int, str]
    first_response: dict[int, tuple[datetime, int | None]]
    contacts: dict[int, list[I]]
    agent: dict[int, int | None]


def brute(conversations: list[C], interactions: list[I], surveys: list[S]) -> Brute:
    skip = survey_ids(surveys)
    b = Brute({}, {}, {}, {}, {})
    for c in conversations:
        own = sorted((i for i in interactions if i.conversation_id == c.id), key=lambda i: (i.at, i.id))
        cs = [i for i in own if contact(i, skip)]
        b.contacts[c.id] = cs
        if cs:
            b.started[c.id] = cs[0].at
            b.first_channel[c.id] = cs[0].channel
            answers = [i for i in own if response(i, skip) and (i.at, i.id) > (cs[0].at, cs[0].id)]
            if answers:
                b.first_response[c.id] = (answers[0].at, answers[0].author_id)
        responder = b.first_response.get(c.id, (None, None))[1]
        b.agent[c.id] = c.assignee_id if c.assignee_id is not None else responder
    return b


def in_range(t: datetime | None) -> bool:
    return t is not None and RANGE.since <= t < RANGE.until


def stat(values: list[float]) -> kpis.Stat:
    return kpis.Stat(len(values), nearest_rank(values, 0.5), nearest_rank(values, 0.9))


def grouped_stats(
    rows: list[tuple[str | None, int | None, float]],
) -> tuple[kpis.Stat, dict[str, kpis.Stat], dict[int, kpis.Stat]]:
    by_channel: dict[str, list[float]] = {}
    by_agent: dict[int, list[float]] = {}
    for channel, agent, d in rows:
        by_channel.setdefault(channel or "", []).append(d)
        if agent is not None:
            by_agent.setdefault(agent, []).append(d)
    return (
        stat([d for _, _, d in rows]),
        {k: stat(v) for k, v in by_channel.items()},
        {k: stat(v) for k, v in by_agent.items()},
    )


def assert_durations(
    found: kpis.Durations, expected: tuple[kpis.Stat, dict[str, kpis.Stat], dict[int, kpis.Stat]]
) -> None:
    def close(a: kpis.Stat, b: kpis.Stat) -> None:
        assert a.count == b.count
        for x, y in ((a.median, b.median), (a.p90, b.p90)):
            assert (x is None) == (y is None)
            if x is not None and y is not None:
                assert x == pytest.approx(y, abs=0.01)

    close(found.overall, expected[0])
    assert set(found.by_channel) == set(expected[1])
    for k, v in expected[1].items():
        close(found.by_channel[k], v)
    assert set(found.by_agent) == set(expected[2])
    for k2, v2 in expected[2].items():
        close(found.by_agent[k2], v2)


# -- the database side ---------------------------------------------------------------------

TABLES = [
    CsatSurvey, CustomerContact, ConversationFacts, ConversationClosure, DailyVolume, AppliedUpdate, Interaction,
    Conversation, Customer, Agent, ConnectorState,
]  # fmt: skip


def store(runtime: Runtime, conversations: list[C], interactions: list[I], surveys: list[S]) -> None:
    with runtime.database.write() as session:
        for table in TABLES:
            session.execute(delete(table))
        session.execute(
            insert(Agent), [{"id": a, "email": f"a{a}@x.test", "name": f"A{a}", "role": "agent"} for a in (1, 2)]
        )
        session.execute(insert(Customer), [{"id": n, "display_name": f"C{n}"} for n in (1, 2, 3)])
        session.execute(
            insert(Conversation),
            [
                {
                    "id": c.id,
                    "customer_id": c.customer_id,
                    "status": c.status,
                    "opened_at": T0,
                    "last_activity_at": T0,
                    "closed_at": c.closed_at,
                    "assignee_id": c.assignee_id,
                }
                for c in conversations
            ],
        )
        closes = [
            {"conversation_id": c.id, "closed_at": t}
            for c in conversations
            for t in c.earlier_closes
            if t != c.closed_at
        ]
        if closes:
            session.execute(insert(ConversationClosure), closes)


def add_interactions(runtime: Runtime, interactions: list[I], surveys: list[S]) -> None:
    with runtime.database.write() as session:
        if interactions:
            session.execute(
                insert(Interaction),
                [
                    {
                        "id": i.id,
                        "customer_id": i.customer_id,
                        "conversation_id": i.conversation_id,
                        "channel": i.channel,
                        "direction": i.direction,
                        "kind": i.kind,
                        "external_id": f"x{i.id}",
                        "occurred_at": i.at,
                        "received_at": i.at,
                        "status": i.status,
                        "author_id": i.author_id,
                        "provider_metadata": i.metadata,
                        "defects": [],
                    }
                    for i in interactions
                ],
            )
        if surveys:
            session.execute(
                insert(CsatSurvey),
                [
                    {
                        "id": s.id,
                        "conversation_id": s.conversation_id,
                        "customer_id": 1,
                        "channel": s.channel,
                        "token": f"t{s.id}",
                        "sent_at": s.sent_at,
                        "score": s.score,
                        "answered_at": s.sent_at if s.score else None,
                        "survey_interaction_id": s.survey_interaction_id,
                        "answer_interaction_id": s.answer_interaction_id,
                        "comment": "",
                        "flagged": False,
                    }
                    for s in surveys
                ],
            )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=timelines())
def test_every_kpi_matches_a_brute_force_computation(runtime: Runtime, data: tuple[list[C], list[I], list[S]]) -> None:
    conversations, interactions, surveys = data
    store(runtime, conversations, interactions, surveys)
    # Surveys are written with their interactions (as in production), then
    # the rollups catch up three interactions at a time: the incremental path.
    add_interactions(runtime, interactions, surveys)
    with runtime.database.write() as session:
        while rollup.refresh(session, limit=3).interactions:
            pass
    b = brute(conversations, interactions, surveys)
    skip = survey_ids(surveys)
    by_id = {c.id: c for c in conversations}

    with runtime.database.read() as session:
        dashboard = kpis.dashboard(session, RANGE)

    # First response time: conversations started in the range that have a response.
    frt = [
        (b.first_channel[c], b.agent[c], (b.first_response[c][0] - b.started[c]).total_seconds())
        for c in b.started
        if in_range(b.started[c]) and c in b.first_response
    ]
    assert_durations(dashboard.first_response, grouped_stats(frt))
    assert dashboard.first_response.unanswered == sum(
        1 for c in b.started if in_range(b.started[c]) and c not in b.first_response
    )

    # Resolution time: closed now, closed in the range, with a first contact.
    resolved = [c for c in conversations if c.status == "closed" and in_range(c.closed_at) and c.id in b.started]
    rt = [
        (b.first_channel[c.id], b.agent[c.id], (c.closed_at - b.started[c.id]).total_seconds())
        for c in resolved
        if c.closed_at
    ]
    assert_durations(dashboard.resolution, grouped_stats(rt))

    # Volume: contacts and responses (whatever their status) per UTC day and channel.
    volume: Counter[tuple[str, str, str]] = Counter()
    last_day = (RANGE.until - timedelta(microseconds=1)).date()
    for i in interactions:
        delivered_or_not = I(**{**i.__dict__, "status": None})
        counted = contact(i, skip) or response(delivered_or_not, skip)
        if counted and RANGE.since.date() <= i.at.date() <= last_day:
            volume[(i.at.date().isoformat(), i.channel, i.direction)] += 1
    found_volume = Counter()
    for d in dashboard.volume:
        if d.inbound:
            found_volume[(d.day.isoformat(), d.channel, "inbound")] = d.inbound
        if d.outbound:
            found_volume[(d.day.isoformat(), d.channel, "outbound")] = d.outbound
    assert found_volume == volume

    # Backlog: now, whatever the range.
    # (A conversation always has an interaction; the generator may leave one empty.)
    not_closed = [
        c for c in conversations if c.status != "closed" and any(i.conversation_id == c.id for i in interactions)
    ]
    assert dashboard.backlog.open == sum(1 for c in not_closed if c.status == "open")
    assert dashboard.backlog.pending == sum(1 for c in not_closed if c.status == "pending")
    waiting: list[tuple[datetime, int]] = []
    for c in not_closed:
        own = sorted((i for i in interactions if i.conversation_id == c.id), key=lambda i: (i.at, i.id))
        since = None
        for i in own:
            if contact(i, skip):
                since = since or i.at
            elif (
                response(i, skip)
                and c.id in b.started
                and (i.at, i.id) > (b.contacts[c.id][0].at, b.contacts[c.id][0].id)
            ):
                since = None
        if since is not None:
            waiting.append((since, c.id))
    assert dashboard.backlog.waiting == len(waiting)
    assert [w.conversation_id for w in dashboard.backlog.longest] == [cid for _, cid in sorted(waiting)][
        : kpis.WAITING_SHOWN
    ]

    # Cross-channel, for conversations started in the range.
    started = [c for c in b.started if in_range(b.started[c])]
    cross = dashboard.cross_channel
    assert cross.conversations == len(started)

    def steps(cid: int) -> list[str]:
        out: list[str] = []
        for i in b.contacts[cid]:
            if not out or out[-1] != i.channel:
                out.append(i.channel)
        return out

    if started:
        assert cross.multichannel_share == pytest.approx(
            sum(1 for c in started if len({i.channel for i in b.contacts[c]}) > 1) / len(started)
        )
        assert cross.switches_per_conversation == pytest.approx(sum(len(steps(c)) - 1 for c in started) / len(started))
    else:
        assert cross.multichannel_share is None
        assert cross.switches_per_conversation is None
    paths = Counter(">".join(steps(c)) for c in started)
    assert cross.paths == sorted(paths.items(), key=lambda kv: (-kv[1], kv[0]))[: kpis.TOP_PATHS]
    assert cross.resolved == len(resolved)
    if resolved:
        assert cross.contacts_per_resolved == pytest.approx(
            sum(len(b.contacts[c.id]) for c in resolved) / len(resolved)
        )
        closes_of = {c.id: len({*c.earlier_closes, c.closed_at}) for c in resolved}
        assert cross.first_contact_resolution == pytest.approx(
            sum(1 for c in resolved if len(b.contacts[c.id]) == 1 and closes_of[c.id] == 1) / len(resolved)
        )

    # Repeat contacts: every recorded close in the range, and whether the same
    # customer made a contact (in any conversation) within 7 days after it.
    all_closes = [
        (c, t)
        for c in conversations
        for t in {*c.earlier_closes, *([c.closed_at] if c.closed_at else [])}
        if in_range(t) and c.id in b.started
    ]
    assert cross.closes == len(all_closes)
    contacts_of: dict[int, list[datetime]] = {}
    for i in interactions:
        if contact(i, skip):
            contacts_of.setdefault(by_id[i.conversation_id].customer_id, []).append(i.at)
    repeats = sum(
        1 for c, t in all_closes if any(t < at <= t + timedelta(days=7) for at in contacts_of.get(c.customer_id, []))
    )
    assert cross.repeat_contact_rate == (pytest.approx(repeats / len(all_closes)) if all_closes else None)

    # CSAT: surveys sent in the range.
    sent = [s for s in surveys if in_range(s.sent_at)]
    assert dashboard.csat.overall.sent == len(sent)
    answered = [s.score for s in sent if s.score is not None]
    assert dashboard.csat.overall.answered == len(answered)
    if answered:
        assert dashboard.csat.overall.mean_score == pytest.approx(sum(answered) / len(answered))
        assert dashboard.csat.overall.satisfied == pytest.approx(sum(1 for a in answered if a >= 4) / len(answered))
    for channel in {s.channel for s in sent}:
        group = [s for s in sent if s.channel == channel]
        assert dashboard.csat.by_channel[channel].sent == len(group)
        assert dashboard.csat.by_channel[channel].answered == sum(1 for s in group if s.score is not None)
    agents = Counter(b.agent[s.conversation_id] for s in sent if b.agent[s.conversation_id] is not None)
    assert {a: g.sent for a, g in dashboard.csat.by_agent.items()} == dict(agents)
