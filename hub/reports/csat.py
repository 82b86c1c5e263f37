"""Customer satisfaction: one question when a conversation closes, on the channel the customer last used.

* The close action calls :func:`on_conversation_closed` in its transaction.
  It records the close for the reports and, when ``[csat] enabled`` and the
  customer is past the cool-down, queues the survey as an outbound
  interaction through :func:`hub.replies.queue_reply` (the one write path), to
  be delivered after commit.
* Email surveys carry a link to ``/csat/<token>``; the answer given there is
  put on the timeline by :func:`record_answer` as an inbound interaction
  (``hub.ingest``) in the survey's conversation.
* SMS and WhatsApp surveys ask for a reply 1–5. The reply arrives as any SMS
  does, through the connector; :func:`match_answers` (the worker) recognises
  it and records it as the answer.
* A low score flags the conversation for a supervisor, or reopens it
  (``[csat] low_score_action``).

Surveys and answers are never contacts or responses in the KPIs.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.db import after_commit
from hub.events import Channel, ChannelEvent, Direction, IdentityKind, Party
from hub.ingest import ingest
from hub.models import Conversation, ConversationStatus, CsatSurvey, Interaction, utcnow
from hub.replies import ReplyError, deliver, queue_reply
from hub.reports import rollup
from hub.state import load_state, save_state

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hub.db import Database
    from hub.outbound import Sender
    from hub.reports import CsatSettings
    from hub.runtime import Runtime

#: Where a survey goes for the channel the customer last used (a call is answered by text message).
SURVEY_CHANNEL = {
    Channel.EMAIL.value: Channel.EMAIL,
    Channel.SMS.value: Channel.SMS,
    Channel.WHATSAPP.value: Channel.WHATSAPP,
    Channel.VOICE.value: Channel.SMS,
}
_REPLY = re.compile(r"^\s*([1-5])(?:\s*(?:/\s*5)?)(?:[\s,.:;!-]+(.*))?$", re.DOTALL)
STATE_KEY = "csat"


class SurveyError(ValueError):
    """The answer cannot be taken; names the field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def survey_text(channel: Channel, link: str) -> str:
    if channel is Channel.EMAIL:
        return (
            f"Thank you for getting in touch. How did we do? One click tells us, from 1 (poor) to 5 (great):\n{link}\n"
        )
    return "Thank you for getting in touch. How did we do? Reply with a number from 1 (poor) to 5 (great)."


def on_conversation_closed(session: Session, runtime: Runtime, conversation_id: int) -> int | None:
    """Call from the close action, in its transaction, once the conversation is closed.

    Records the close for the reports and queues the survey when one is due;
    returns the survey's interaction id (delivered after commit), or None.
    """
    from hub.reports import CsatSettings

    conversation = session.get(Conversation, conversation_id)
    if conversation is None or conversation.status != ConversationStatus.CLOSED:
        return None
    rollup.record_closure(session, conversation.id, conversation.closed_at or utcnow())
    settings = runtime.settings.section("csat", CsatSettings)
    if not settings.enabled:
        return None
    now = utcnow()
    recent = session.scalar(
        select(func.count())
        .select_from(CsatSurvey)
        .where(
            CsatSurvey.customer_id == conversation.customer_id,
            CsatSurvey.sent_at > now - timedelta(days=settings.cooldown_days),
        )
    )
    if recent:
        return None
    channel = _last_channel(session, conversation.id)
    if channel is None or channel not in runtime.registry.senders:
        return None
    token = secrets.token_urlsafe(24)
    link = f"{runtime.hub.app.public_base_url.rstrip('/')}/csat/{token}"
    try:
        interaction_id = queue_reply(
            session,
            runtime.registry.senders,
            conversation_id=conversation.id,
            channel=channel,
            text=survey_text(channel, link),
            subject="How did we do?",
            author_id=None,
        )
    except ReplyError:
        return None  # no address on that channel: no survey, the close stands
    session.add(
        CsatSurvey(
            conversation_id=conversation.id,
            customer_id=conversation.customer_id,
            channel=channel.value,
            token=token,
            sent_at=now,
            survey_interaction_id=interaction_id,
        )
    )
    # queue_reply's interaction reopened nothing (outbound), but it must stay closed.
    session.execute(
        update(Conversation)
        .where(Conversation.id == conversation.id)
        .values(status=ConversationStatus.CLOSED.value, closed_at=conversation.closed_at or now)
    )
    session.flush()
    database, senders = runtime.database, runtime.registry.senders
    after_commit(session, lambda: _deliver(database, senders, interaction_id))
    return interaction_id


def _deliver(database: Database, senders: Mapping[Channel, Sender], interaction_id: int) -> None:
    deliver(database, senders, interaction_id)


def _last_channel(session: Session, conversation_id: int) -> Channel | None:
    rows = session.execute(
        select(
            Interaction.id,
            Interaction.conversation_id,
            Interaction.occurred_at,
            Interaction.channel,
            Interaction.direction,
            Interaction.kind,
            Interaction.status,
            Interaction.author_id,
            Interaction.provider_metadata,
        )
        .where(Interaction.conversation_id == conversation_id, Interaction.direction == Direction.INBOUND.value)
        .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
        .limit(50)
    )
    for r in rows:
        row = rollup.Row(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8] or {})
        if rollup.is_contact(row) and row.channel in SURVEY_CHANNEL:
            return SURVEY_CHANNEL[row.channel]
    return None


@dataclass(frozen=True)
class Answer:
    survey_id: int
    conversation_id: int
    score: int
    flagged: bool
    reopened: bool


def survey_for(session: Session, token: str) -> CsatSurvey | None:
    return session.scalar(select(CsatSurvey).where(CsatSurvey.token == token))


def record_answer(session: Session, settings: CsatSettings, token: str, score: int, comment: str) -> Answer:
    """The answer given on the survey page: on the timeline, in the figures, and acted on when low."""
    survey = survey_for(session, token)
    if survey is None:
        raise SurveyError("token", "no such survey")
    if survey.answered_at is not None:
        raise SurveyError("token", "this survey has been answered already")
    if not 1 <= score <= 5:
        raise SurveyError("score", "must be a whole number from 1 to 5")
    comment = comment.strip()[:2000]
    address = session.scalar(select(Interaction.to_address).where(Interaction.id == survey.survey_interaction_id))
    now = utcnow()
    text = f"Satisfaction survey: {score} out of 5" + (f"\n{comment}" if comment else "")
    result = ingest(
        session,
        ChannelEvent(
            # Answered on Corridor's page, not by email: "other", from the customer's address.
            channel=Channel.OTHER,
            external_id=f"csat-answer:{survey.id}",
            occurred_at=now,
            direction=Direction.INBOUND,
            sender=Party(address=address or "", kind=IdentityKind.EMAIL if address and "@" in address else None),
            text=text,
            raw=json.dumps({"csat": {"survey": survey.id, "score": score, "comment": comment}}).encode(),
            raw_content_type="application/json",
            metadata={"csat_score": score},
            # An answer never reopens the conversation it rates; a low score may, below.
            opens_conversation=False,
            conversation_id=survey.conversation_id,
        ),
        source="csat",
    )
    if result.error:
        raise SurveyError("score", f"the answer could not be stored: {result.error}")
    return _settle(session, settings, survey, score, comment, result.interaction_id, now)


def _settle(
    session: Session,
    settings: CsatSettings,
    survey: CsatSurvey,
    score: int,
    comment: str,
    answer_interaction_id: int | None,
    now: object,
) -> Answer:
    survey.answered_at = utcnow()
    survey.score = score
    survey.comment = comment
    survey.answer_interaction_id = answer_interaction_id
    low = score <= settings.low_score and settings.low_score_action != "none"
    survey.flagged = low
    reopened = False
    if low and settings.low_score_action == "reopen":
        reopened = bool(
            session.execute(
                update(Conversation)
                .where(
                    Conversation.id == survey.conversation_id, Conversation.status == ConversationStatus.CLOSED.value
                )
                .values(status=ConversationStatus.OPEN.value, closed_at=None)
            ).rowcount  # type: ignore[attr-defined]
        )
    session.flush()
    touched = [survey.conversation_id]
    if answer_interaction_id is not None:
        own = session.scalar(select(Interaction.conversation_id).where(Interaction.id == answer_interaction_id))
        if own is not None:
            touched.append(own)
    rollup.refresh_conversations(session, touched)
    return Answer(survey.id, survey.conversation_id, score, survey.flagged, reopened)


def parse_reply(text: str) -> tuple[int, str] | None:
    """A text message that answers a survey: "4", "4/5", "5 thanks!"; None for anything else."""
    match = _REPLY.match(text or "")
    if match is None:
        return None
    return int(match.group(1)), (match.group(2) or "").strip()


def match_answers(session: Session, settings: CsatSettings) -> int:
    """Recognise text replies to SMS/WhatsApp surveys among new interactions; how many were answers.

    Runs in the worker before the rollups, so an answer is never counted as a contact.
    """
    state = load_state(session, "reports", STATE_KEY) or {}
    after = int(state.get("interaction_id", 0))
    newest = session.scalar(select(func.max(Interaction.id))) or after
    found = 0
    pending = session.scalar(
        select(func.count())
        .select_from(CsatSurvey)
        .where(
            CsatSurvey.answered_at.is_(None),
            CsatSurvey.channel.in_([Channel.SMS.value, Channel.WHATSAPP.value]),
            CsatSurvey.sent_at > utcnow() - timedelta(days=settings.answer_days),
        )
    )
    if pending:
        replies = session.execute(
            select(Interaction.id, Interaction.customer_id, Interaction.occurred_at, Interaction.text)
            .where(
                Interaction.id > after,
                Interaction.id <= newest,
                Interaction.direction == Direction.INBOUND.value,
                Interaction.channel.in_([Channel.SMS.value, Channel.WHATSAPP.value]),
            )
            .order_by(Interaction.id)
        ).all()
        for interaction_id, customer_id, occurred_at, text in replies:
            parsed = parse_reply(text)
            if parsed is None:
                continue
            survey = session.scalar(
                select(CsatSurvey)
                .where(
                    CsatSurvey.customer_id == customer_id,
                    CsatSurvey.answered_at.is_(None),
                    CsatSurvey.sent_at <= occurred_at,
                    CsatSurvey.sent_at > occurred_at - timedelta(days=settings.answer_days),
                )
                .order_by(CsatSurvey.sent_at.desc())
                .limit(1)
            )
            if survey is None:
                continue
            _close_stray(session, interaction_id, survey.conversation_id)
            _settle(session, settings, survey, parsed[0], parsed[1], interaction_id, occurred_at)
            found += 1
    save_state(session, "reports", STATE_KEY, {"interaction_id": int(newest)})
    return found


def _close_stray(session: Session, interaction_id: int, survey_conversation_id: int) -> None:
    """An answer to a closed conversation's survey started a conversation of its own: close that one again."""
    own = session.scalar(select(Interaction.conversation_id).where(Interaction.id == interaction_id))
    if own is None or own == survey_conversation_id:
        return
    others = session.scalar(
        select(func.count()).where(Interaction.conversation_id == own, Interaction.id != interaction_id)
    )
    if not others:
        session.execute(
            update(Conversation)
            .where(Conversation.id == own)
            .values(status=ConversationStatus.CLOSED.value, closed_at=utcnow())
        )
