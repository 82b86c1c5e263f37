"""Step 2, dedupe: the same message again is one interaction, two messages under one id are two."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select, update

from hub.events import Channel, ChannelEvent
from hub.ingest import ingest, ingest_many
from hub.ingest.dedupe import derived_id, fingerprint
from hub.models import Interaction
from hub.runtime import Runtime
from tests.hub.events import event
from tests.hub.test_ingest_costs import statements_on

REUSED = "reused-id@mailer.example"


def _email(text: str, *, external_id: str = REUSED, sender: str = "ana.lima@example.com") -> ChannelEvent:
    return event(Channel.EMAIL, sender, external_id=external_id, subject="Order 48213", text=text)


ANA = _email("My order 48213 has not arrived.")
# A mailer that reuses ids, or a forwarding tool that keeps the original's.
LEO = _email("Please cancel my subscription.", sender="leo.brandt@example.com")


def _stored(runtime: Runtime, prefix: str = REUSED) -> dict[str, Interaction]:
    with runtime.database.read() as session:
        rows = session.scalars(select(Interaction).where(Interaction.external_id.startswith(prefix, autoescape=True)))
        return {row.external_id: row for row in rows}


def test_two_different_emails_with_one_message_id_are_two_interactions(runtime: Runtime) -> None:
    with runtime.database.write() as session:
        ana = ingest(session, ANA, source="test")
    with runtime.database.write() as session:
        leo = ingest(session, LEO, source="test")

    assert not leo.duplicate
    assert leo.interaction_id != ana.interaction_id
    assert leo.customer_id != ana.customer_id
    leos_id = derived_id(REUSED, fingerprint(LEO) or "")
    assert leos_id == f"{REUSED}#{(fingerprint(LEO) or '')[:12]}"
    stored = _stored(runtime)
    assert set(stored) == {REUSED, leos_id}
    assert stored[REUSED].text == "My order 48213 has not arrived."
    assert stored[REUSED].defects == []
    assert stored[leos_id].text == "Please cancel my subscription."
    assert stored[leos_id].id == leo.interaction_id
    (note,) = stored[leos_id].defects
    assert REUSED in note
    assert leos_id in note


def test_both_messages_delivered_again_stay_exactly_once(runtime: Runtime) -> None:
    with runtime.database.write() as session:
        first = ingest_many(session, [ANA, LEO], source="test")
    with runtime.database.write() as session:
        again = ingest_many(session, [LEO, ANA, LEO, ANA], source="test")
    with runtime.database.write() as session:
        alone = [ingest(session, LEO, source="test"), ingest(session, ANA, source="test")]

    assert [r.duplicate for r in first] == [False, False]
    ana_id, leo_id = (r.interaction_id for r in first)
    assert [r.duplicate for r in again] == [True] * 4
    # The repeats within one batch name no interaction, as for any event.
    assert [r.interaction_id for r in again] == [leo_id, ana_id, None, None]
    assert [(r.duplicate, r.interaction_id) for r in alone] == [(True, leo_id), (True, ana_id)]
    assert len(_stored(runtime)) == 2


def test_the_same_bytes_read_differently_by_a_newer_parser_are_still_one_message(runtime: Runtime) -> None:
    # A resync after a parser change (a charset now read right): the text
    # differs, the message does not.
    reread = replace(ANA, text="My order 48213 hasn’t arrived.")
    assert fingerprint(reread) != fingerprint(ANA)
    assert reread.raw == ANA.raw

    with runtime.database.write() as session:
        first = ingest(session, ANA, source="test")
    with runtime.database.write() as session:
        again = ingest(session, reread, source="test")

    assert (again.duplicate, again.interaction_id) == (True, first.interaction_id)
    assert list(_stored(runtime)) == [REUSED]


def test_a_copy_whose_whitespace_or_case_changed_is_the_same_message(runtime: Runtime) -> None:
    copy = _email("my ORDER 48213\r\n  has not arrived. ")
    assert copy.raw != ANA.raw
    with runtime.database.write() as session:
        results = [ingest(session, ANA, source="test"), ingest(session, copy, source="test")]

    assert [r.duplicate for r in results] == [False, True]
    assert list(_stored(runtime)) == [REUSED]


def test_ids_that_name_one_message_by_construction_are_deduplicated_by_the_id_alone(runtime: Runtime) -> None:
    # Twilio assigns a MessageSid once; a second event under it is Twilio
    # delivering the first again. The email connector's own ids (a hash of
    # the bytes, Gmail's X-GM-MSGID) are in the reserved .invalid domain.
    sms = event(Channel.SMS, "+4915112345678", external_id="SM0123456789abcdef", text="Is it shipped?")
    gmail = _email("No Message-ID here.", external_id="gmail-11bdfc5cae0c8191@corridor.invalid")
    with runtime.database.write() as session:
        first = ingest_many(session, [sms, gmail], source="test")
    with runtime.database.write() as session:
        again = ingest_many(session, [replace(sms, text="Is it shipped??"), replace(gmail, subject="")], source="test")

    assert [(r.duplicate, r.interaction_id) for r in again] == [(True, r.interaction_id) for r in first]


def test_messages_stored_before_fingerprints_are_deduplicated_by_the_id_alone(runtime: Runtime) -> None:
    with runtime.database.write() as session:
        first = ingest(session, ANA, source="test")
        # What a row from before the migration looks like.
        session.execute(update(Interaction).values(fingerprint=None))
    with runtime.database.write() as session:
        again = ingest(session, LEO, source="test")

    assert (again.duplicate, again.interaction_id) == (True, first.interaction_id)


def test_collisions_cost_the_same_statements_for_5_messages_as_for_40(runtime: Runtime) -> None:
    counts = []
    for size in (5, 40):
        ids = [f"reused-{size}-{n}@mailer.example" for n in range(size)]
        with runtime.database.write() as session:
            ingest_many(session, [_email(f"question {n}", external_id=i) for n, i in enumerate(ids)], source="test")
        others = [_email(f"another {n}", external_id=i, sender=f"leo.{size}@example.com") for n, i in enumerate(ids)]
        with statements_on(runtime.database.write_engine) as seen, runtime.database.write() as session:
            results = ingest_many(session, others, source="test")
        assert [(r.duplicate, r.error) for r in results] == [(False, None)] * size
        counts.append(len(seen))
    assert counts[0] == counts[1]
