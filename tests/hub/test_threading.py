"""One timeline per customer: who is who, and which conversation an interaction continues."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select

from hub.events import Channel, Direction, IdentityKind, InteractionKind, InteractionUpdate
from hub.ingest import ingest
from hub.models import Conversation, ConversationStatus, Customer, Identity, Interaction
from hub.runtime import Runtime
from tests.hub.events import at, event, put


def test_an_email_and_a_later_call_from_the_linked_phone_are_one_conversation(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str]
) -> None:
    [email] = put(runtime, event(Channel.EMAIL, "Maria.Keller@Example.com", hours=0, subject="Order 48213 late"))
    linked = client.post(
        f"/api/customers/{email.customer_id}/identities",
        json={"kind": "phone", "value": "(415) 555-0142"},
        headers=auth,
    )
    assert linked.status_code == 201
    assert linked.json["value"] == "+14155550142"

    [call] = put(runtime, event(Channel.VOICE, "+14155550142", hours=20, kind=InteractionKind.CALL))
    [chat] = put(
        runtime,
        event(Channel.CHAT, "maria.keller@example.com", hours=30, sender_kind=IdentityKind.EMAIL, session="chat-1"),
    )
    assert call.customer_id == chat.customer_id == email.customer_id
    assert call.conversation_id == chat.conversation_id == email.conversation_id

    timeline = client.get(f"/api/customers/{email.customer_id}/timeline", headers=auth).json["interactions"]
    assert [i["channel"] for i in timeline] == ["chat", "voice", "email"]  # newest first
    assert {i["conversation_id"] for i in timeline} == {email.conversation_id}


def test_a_call_from_an_unknown_number_starts_a_new_customer(runtime: Runtime) -> None:
    [email] = put(runtime, event(Channel.EMAIL, "ana@example.com", hours=0))
    [call] = put(runtime, event(Channel.VOICE, "+442079460123", hours=1, kind=InteractionKind.CALL))
    assert call.customer_id != email.customer_id
    assert call.conversation_id != email.conversation_id
    with runtime.database.read() as session:
        identity = session.scalars(select(Identity).where(Identity.customer_id == call.customer_id)).one()
        assert (identity.kind, identity.value) == ("phone", "+442079460123")


def test_emails_are_one_identity_whatever_the_case_or_idna_form(runtime: Runtime) -> None:
    results = put(
        runtime,
        event(Channel.EMAIL, "Jörg@Bücher.DE", hours=0),
        event(Channel.EMAIL, "jörg@xn--bcher-kva.de", hours=1),
    )
    assert results[0].customer_id == results[1].customer_id
    with runtime.database.read() as session:
        identity = session.scalars(select(Identity)).one()
    assert identity.value == "jörg@xn--bcher-kva.de"
    assert identity.raw_value == "Jörg@Bücher.DE"  # as written, kept


def test_phones_are_e164_with_the_configured_region(make_app: object) -> None:
    app = make_app(identity={"default_region": "DE"})  # type: ignore[operator]
    runtime: Runtime = app.extensions["corridor"]
    results = put(
        runtime,
        event(Channel.SMS, "030 901820 11", hours=0),
        event(Channel.VOICE, "+49 30 90182011", hours=1, kind=InteractionKind.CALL),
        event(Channel.WHATSAPP, "whatsapp:+493090182011", hours=2),
    )
    assert len({r.customer_id for r in results}) == 1
    assert len({r.conversation_id for r in results}) == 1


def test_withheld_short_code_and_alphanumeric_senders_never_join_customers(runtime: Runtime) -> None:
    results = put(
        runtime,
        event(Channel.VOICE, "withheld:CA1", hours=0, kind=InteractionKind.CALL, sender_kind=IdentityKind.WITHHELD),
        event(Channel.VOICE, "withheld:CA2", hours=1, kind=InteractionKind.CALL, sender_kind=IdentityKind.WITHHELD),
        event(Channel.SMS, "72975", hours=2, sender_kind=IdentityKind.SHORT_CODE),
        event(Channel.SMS, "MyBank", hours=3, sender_kind=IdentityKind.ALPHANUMERIC),
        event(Channel.SMS, "+14155550100", hours=4),
    )
    assert len({r.customer_id for r in results}) == 5
    assert len({r.conversation_id for r in results}) == 5


def test_the_open_conversation_continues_within_the_window_only(runtime: Runtime) -> None:
    first, within, after_gap = put(
        runtime,
        event(Channel.EMAIL, "ana@example.com", hours=0),
        event(Channel.SMS, "ana@example.com", hours=71, sender_kind=IdentityKind.EMAIL),
        event(Channel.EMAIL, "ana@example.com", hours=71 + 73),
    )
    assert first.conversation_id == within.conversation_id
    assert after_gap.conversation_id != first.conversation_id
    assert after_gap.customer_id == first.customer_id


def test_explicit_references_win_even_outside_the_window(runtime: Runtime) -> None:
    original, unrelated, reply = put(
        runtime,
        event(Channel.EMAIL, "ana@example.com", hours=0, external_id="<a1@mail.example.com>"),
        event(Channel.EMAIL, "ana@example.com", hours=500, external_id="<b1@mail.example.com>"),
        event(
            Channel.EMAIL, "ana@example.com", hours=510, external_id="<a2@mail.example.com>",
            thread_refs=("<a1@mail.example.com>",),
        ),
    )  # fmt: skip
    assert reply.conversation_id == original.conversation_id
    assert unrelated.conversation_id != original.conversation_id


def test_a_subject_match_alone_never_joins_threads(runtime: Runtime) -> None:
    one, two = put(
        runtime,
        event(Channel.EMAIL, "ana@example.com", hours=0, subject="Refund"),
        event(Channel.EMAIL, "bo@example.com", hours=1, subject="Refund"),
    )
    assert one.conversation_id != two.conversation_id


def test_a_chat_session_keeps_its_conversation(runtime: Runtime) -> None:
    results = put(
        runtime,
        event(Channel.CHAT, "visitor-7f3a", hours=0, session="s-1"),
        event(Channel.CHAT, "visitor-7f3a", hours=200, session="s-1"),
    )
    assert results[0].conversation_id == results[1].conversation_id


def test_a_chat_session_never_continues_another_customers_conversation(runtime: Runtime) -> None:
    """A widget that gives the next visitor the same session id: each customer keeps their own conversation."""
    alice, bob = put(
        runtime,
        event(Channel.CHAT, "alice@example.com", hours=0, sender_kind=IdentityKind.EMAIL, session="widget-1"),
        event(Channel.CHAT, "bob@example.com", hours=1, sender_kind=IdentityKind.EMAIL, session="widget-1"),
    )
    [later] = put(
        runtime, event(Channel.CHAT, "bob@example.com", hours=2, sender_kind=IdentityKind.EMAIL, session="widget-1")
    )
    [alice_again] = put(
        runtime, event(Channel.CHAT, "alice@example.com", hours=3, sender_kind=IdentityKind.EMAIL, session="widget-1")
    )
    assert alice.customer_id != bob.customer_id
    assert bob.conversation_id not in {alice.conversation_id, None}
    assert later.conversation_id == bob.conversation_id  # Bob's own open conversation continues
    assert alice_again.conversation_id == alice.conversation_id
    with runtime.database.read() as session:
        conversations = session.scalars(select(Conversation).order_by(Conversation.id)).all()
        assert [c.customer_id for c in conversations] == [alice.customer_id, bob.customer_id]
        for result in (alice, bob, later, alice_again):
            interaction = session.get(Interaction, result.interaction_id)
            assert interaction is not None
            assert interaction.customer_id == result.customer_id
            conversation = session.get(Conversation, interaction.conversation_id)
            assert conversation is not None
            assert conversation.customer_id == interaction.customer_id
        bobs = session.get(Interaction, bob.interaction_id)
        assert bobs is not None
        assert bobs.defects == ["session 'widget-1' is another customer's conversation; not continued there"]


def test_a_customer_writing_into_a_closed_conversation_reopens_it(runtime: Runtime) -> None:
    [first] = put(runtime, event(Channel.EMAIL, "ana@example.com", hours=0, external_id="<c1@x>"))
    with runtime.database.write() as session:
        conversation = session.get(Conversation, first.conversation_id)
        assert conversation is not None
        conversation.status = ConversationStatus.CLOSED
    [answer] = put(runtime, event(Channel.EMAIL, "ana@example.com", hours=5, thread_refs=("<c1@x>",)))
    assert answer.conversation_id == first.conversation_id
    with runtime.database.read() as session:
        assert session.get(Conversation, first.conversation_id).status == "open"  # type: ignore[union-attr]


def test_an_auto_reply_joins_the_latest_conversation_but_never_opens_one(runtime: Runtime) -> None:
    [alone] = put(runtime, event(Channel.EMAIL, "ooo@example.com", hours=0, opens_conversation=False))
    assert alone.conversation_id is None
    assert alone.interaction_id is not None  # still on the timeline
    [real] = put(runtime, event(Channel.EMAIL, "ana@example.com", hours=0))
    [auto] = put(runtime, event(Channel.EMAIL, "ana@example.com", hours=400, opens_conversation=False))
    assert auto.conversation_id == real.conversation_id


def test_a_batch_threads_like_the_same_events_one_by_one(runtime: Runtime) -> None:
    batch = put(
        runtime,
        event(Channel.EMAIL, "ana@example.com", hours=0),
        event(Channel.SMS, "ana@example.com", hours=1, sender_kind=IdentityKind.EMAIL),
        event(Channel.EMAIL, "bo@example.com", hours=2),
        event(Channel.EMAIL, "ana@example.com", hours=100),
    )
    assert batch[0].conversation_id == batch[1].conversation_id
    assert batch[2].customer_id != batch[0].customer_id
    assert batch[3].conversation_id != batch[0].conversation_id
    with runtime.database.read() as session:
        assert len(session.scalars(select(Customer)).all()) == 2
        assert len(session.scalars(select(Conversation)).all()) == 3


def test_an_unusable_address_is_kept_with_a_defect_flag(runtime: Runtime) -> None:
    [result] = put(runtime, event(Channel.EMAIL, "undisclosed-recipients:;", hours=0))
    assert result.error is None
    with runtime.database.read() as session:
        interaction = session.get(Interaction, result.interaction_id)
        assert interaction is not None
        assert any("undisclosed-recipients" in d for d in interaction.defects)


def test_delivery_status_only_moves_forward(runtime: Runtime) -> None:
    [sent] = put(runtime, event(Channel.SMS, "+14155550100", direction=Direction.OUTBOUND, external_id="SM1"))

    def status(value: str, **extra: object) -> InteractionUpdate:
        return InteractionUpdate(
            channel=Channel.SMS, external_id="SM1", update_id=f"SM1:{value}", occurred_at=at(1), status=value,
            **extra,  # type: ignore[arg-type]
        )  # fmt: skip

    put(runtime, status("delivered"), status("sent"), status("queued"))
    with runtime.database.read() as session:
        assert session.get(Interaction, sent.interaction_id).status == "delivered"  # type: ignore[union-attr]
    put(runtime, status("undelivered", error_code="30003", error_message="Unreachable destination handset"))
    put(runtime, status("read"))
    with runtime.database.read() as session:
        interaction = session.get(Interaction, sent.interaction_id)
        assert interaction is not None
        assert (interaction.status, interaction.error_code) == ("undelivered", "30003")


def test_an_update_before_its_interaction_is_deferred_then_applied_on_replay(runtime: Runtime) -> None:
    from hub.journal import replay

    early = InteractionUpdate(
        channel=Channel.VOICE, external_id="CA9", update_id="CA9:completed", occurred_at=at(1),
        status="completed", duration_seconds=42,
    )  # fmt: skip
    [deferred] = put(runtime, early)
    assert deferred.deferred
    put(runtime, event(Channel.VOICE, "+14155550100", external_id="CA9", kind=InteractionKind.CALL))
    # The journal's replay parses the raw payload again; register a parser for
    # this test's source the way a connector does.
    runtime.registry.add_parser("test", lambda raw, context: [early])
    [outcome] = replay(runtime.database, runtime.registry, [deferred.journal_id])
    assert outcome.ok
    with runtime.database.write() as session:
        call = session.scalars(select(Interaction).where(Interaction.external_id == "CA9")).one()
        assert (call.status, call.duration_seconds) == ("completed", 42)
        again = ingest(session, early, source="test")
    assert again.duplicate


def test_a_bounce_lands_on_the_customer_it_is_about_and_fails_the_message(runtime: Runtime) -> None:
    [sent] = put(
        runtime,
        event(Channel.EMAIL, "ana@example.com", direction=Direction.OUTBOUND, external_id="<r1@corridor.test>"),
    )
    bounce = event(
        Channel.EMAIL, "MAILER-DAEMON@mx.example.net", hours=1, sender_kind=IdentityKind.SYSTEM,
        thread_refs=("<r1@corridor.test>",), opens_conversation=False,
        updates=(InteractionUpdate(channel=Channel.EMAIL, external_id="<r1@corridor.test>", update_id="bounce:1",
                                   occurred_at=at(1), status="failed", error_code="5.1.1",
                                   error_message="user unknown"),),
    )  # fmt: skip
    [report] = put(runtime, bounce)
    assert report.customer_id == sent.customer_id
    assert report.conversation_id == sent.conversation_id
    with runtime.database.read() as session:
        message = session.get(Interaction, sent.interaction_id)
        assert message is not None
        assert (message.status, message.error_code) == ("failed", "5.1.1")
        assert session.query(Customer).count() == 1  # no MAILER-DAEMON customer
