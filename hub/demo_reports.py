"""Demo data for the dashboard, on top of ``hub.demo``: agents on conversations, and satisfaction surveys.

``hub.demo`` already gives six months of realistic response times, channel
switching and repeat contacts (its stories reply after hours, move from email
to a call to the chat, and come back). What it lacks for the dashboard is
*who* answered (no conversation is assigned) and *how satisfied* customers
were (no surveys). :func:`add_report_demo` adds both, deterministically per
seed, the way they would have happened:

* each conversation is assigned to one of the demo agents (the agent or the
  supervisor), two to one, as a team lead takes the odd one;
* each closed conversation of the last six months gets a survey five minutes
  after it closed, on the channel the customer last used, unless the customer
  had one within the cool-down (30 days): the survey and about 70 % of the
  answers go through the write path (``hub.ingest``) as interactions, with
  scores from mostly-satisfied to a few angry ones; low scores are flagged.

Then the rollups are rebuilt, so the dashboard shows it at once. Call it
after ``load_demo`` (``corridor demo`` should; see the reports README).
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from hub.events import Channel, ChannelEvent, DeliveryStatus, Direction, Party
from hub.ingest import ingest_many
from hub.models import Agent, Conversation, ConversationStatus, CsatSurvey, Interaction, utcnow
from hub.reports import CsatSettings, rollup
from hub.reports.csat import SURVEY_CHANNEL, survey_text
from hub.runtime import Runtime

SCORES = [5] * 45 + [4] * 30 + [3] * 12 + [2] * 8 + [1] * 5
COMMENTS = {
    5: ["Quick and friendly, thank you!", "Sorted in one go.", ""],
    4: ["Good, took a little while.", ""],
    3: ["Fine in the end, but I had to ask twice.", ""],
    2: ["I had to explain everything again on the phone.", "Too slow."],
    1: ["Nobody read my first email.", "Still waiting for the refund."],
}
ANSWERED = 0.7
HISTORY = timedelta(days=183)


def add_report_demo(runtime: Runtime, *, seed: int = 7, echo: Callable[[str], None] = print) -> str:
    """Assign the demo's conversations and add its satisfaction surveys; returns a summary line."""
    rng = random.Random(seed)  # noqa: S311 -- reproducible demo data, not secrets
    settings = runtime.settings.section("csat", CsatSettings)
    now = utcnow()
    with runtime.database.write() as session:
        if session.scalar(select(CsatSurvey.id).limit(1)) is not None:
            return "Report demo data present already."
        agents = list(session.scalars(select(Agent.id).where(Agent.active.is_(True)).order_by(Agent.id)))
        if not agents:
            return "No agents: load the demo first."
        conversations = list(session.execute(select(Conversation.id).order_by(Conversation.id)).scalars())
        for cid in conversations:
            # Two to one for the first agent (the demo agent), the rest for the others.
            chosen = agents[0] if rng.random() < 2 / 3 or len(agents) == 1 else rng.choice(agents[1:])
            session.execute(update(Conversation).where(Conversation.id == cid).values(assignee_id=chosen))
        closed = session.execute(
            select(Conversation.id, Conversation.customer_id, Conversation.closed_at)
            .where(Conversation.status == ConversationStatus.CLOSED.value, Conversation.closed_at > now - HISTORY)
            .order_by(Conversation.closed_at)
        ).all()
        last_survey: dict[int, datetime] = {}
        surveys = answers = 0
        for cid, customer_id, closed_at in closed:
            assert closed_at is not None
            previous = last_survey.get(customer_id)
            if previous is not None and closed_at - previous < timedelta(days=settings.cooldown_days):
                continue
            last = session.execute(
                select(Interaction.channel, Interaction.from_address, Interaction.to_address)
                .where(Interaction.conversation_id == cid, Interaction.direction == Direction.INBOUND.value)
                .order_by(Interaction.occurred_at.desc())
                .limit(1)
            ).first()
            if last is None or last.channel not in SURVEY_CHANNEL:
                continue
            channel = SURVEY_CHANNEL[last.channel]
            customer_address, our_address = last.from_address, last.to_address or "support@larkspur.example.com"
            sent_at = closed_at + timedelta(minutes=5)
            token = secrets.token_urlsafe(24)
            link = f"{runtime.hub.app.public_base_url.rstrip('/')}/csat/{token}"
            items = [
                ChannelEvent(
                    channel=channel,
                    external_id=f"demo-csat-survey-{cid}",
                    occurred_at=sent_at,
                    direction=Direction.OUTBOUND,
                    sender=Party(our_address),
                    recipients=(Party(customer_address),),
                    subject="How did we do?" if channel is Channel.EMAIL else "",
                    text=survey_text(channel, link),
                    raw=json.dumps({"demo_csat_survey": cid}).encode(),
                    raw_content_type="application/json",
                    delivery_status=DeliveryStatus.DELIVERED,
                    conversation_id=cid,
                )
            ]
            score: int | None = None
            comment = ""
            answered_at = None
            if rng.random() < ANSWERED:
                score = rng.choice(SCORES)
                comment = rng.choice(COMMENTS[score])
                answered_at = sent_at + timedelta(minutes=rng.randint(2, 600))
                by_text = channel is not Channel.EMAIL
                items.append(
                    ChannelEvent(
                        channel=channel if by_text else Channel.OTHER,
                        external_id=f"demo-csat-answer-{cid}",
                        occurred_at=answered_at,
                        direction=Direction.INBOUND,
                        sender=Party(customer_address),
                        text=f"{score} {comment}".strip()
                        if by_text
                        else f"Satisfaction survey: {score} out of 5" + (f"\n{comment}" if comment else ""),
                        raw=json.dumps({"demo_csat_answer": cid, "score": score}).encode(),
                        raw_content_type="application/json",
                        opens_conversation=False,
                        conversation_id=cid,
                    )
                )
            results = ingest_many(session, items, source="demo.csat")
            if any(r.error for r in results):
                continue
            # The pipeline stamps a touched closed conversation with the time of ingest; it closed back then.
            session.execute(
                update(Conversation)
                .where(Conversation.id == cid)
                .values(status=ConversationStatus.CLOSED.value, closed_at=closed_at)
            )
            session.add(
                CsatSurvey(
                    conversation_id=cid,
                    customer_id=customer_id,
                    channel=channel.value,
                    token=token,
                    sent_at=sent_at,
                    survey_interaction_id=results[0].interaction_id,
                    answered_at=answered_at,
                    score=score,
                    comment=comment,
                    answer_interaction_id=results[1].interaction_id if len(results) > 1 else None,
                    flagged=score is not None and score <= settings.low_score,
                )
            )
            last_survey[customer_id] = closed_at
            surveys += 1
            answers += score is not None
        session.flush()
        rollup.rebuild(session)
    line = f"Report demo: {len(conversations)} conversations assigned, {surveys} surveys, {answers} answers."
    echo(line)
    return line
