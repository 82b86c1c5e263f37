"""Agents' email replies: out through a real SMTP server, threaded, and their fate recorded.

The customer writes into the real Dovecot; the intake puts the mail on the
timeline; the agent answers through the API; the reply leaves through the
aiosmtpd server; the customer's answer and the mail system's bounce come back
through Dovecot. Nothing in between is faked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from imapclient import IMAPClient
from sqlalchemy import func, select, update

from connectors.email.sender import SmtpSender, email_references, message_id_for
from connectors.email.settings import MailboxSettings
from hub.events import Attachment, Channel
from hub.models import Customer, OutboundDelivery, Role, utcnow
from hub.outbound import OutboundMessage, SendError
from hub.replies import deliver, due_deliveries
from hub.runtime import Runtime
from tests.conftest import make_agent
from tests.connectors.email.conftest import intake_of, sync
from tests.connectors.email.messages import MAILBOX_ADDRESS, append_all, customer_message
from tests.services import SmtpServer

FIXTURES = Path(__file__).parent / "fixtures"
CUSTOMER = "jane.doe@example.org"
FIRST_ID = "order-4711@example.org"
REPLY = "A replacement lid is on its way."


def received(message: bytes) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(message)
    assert isinstance(parsed, EmailMessage)
    return parsed


def customer_writes(runtime: Runtime, imap: IMAPClient, *messages: bytes) -> None:
    """The customer's mail arrives in the mailbox and the intake reads it."""
    append_all(imap, "INBOX", list(messages))
    sync(intake_of(runtime))


def conversation_of(client: FlaskClient, auth: dict[str, str], email: str = CUSTOMER) -> int:
    (customer,) = client.get("/api/customers", query_string={"email": email}, headers=auth).json["customers"]
    conversations = client.get(f"/api/customers/{customer['id']}", headers=auth).json["conversations"]
    conversation_id: int = conversations[0]["id"]
    return conversation_id


def interactions(client: FlaskClient, auth: dict[str, str], conversation_id: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get(f"/api/conversations/{conversation_id}", headers=auth).json["interactions"]
    return found


def the_reply(client: FlaskClient, auth: dict[str, str], conversation_id: int) -> dict[str, Any]:
    (outbound,) = [i for i in interactions(client, auth, conversation_id) if i["direction"] == "outbound"]
    return outbound


def send_reply(client: FlaskClient, auth: dict[str, str], conversation_id: int) -> Any:
    return client.post(
        f"/api/conversations/{conversation_id}/replies", json={"channel": "email", "text": REPLY}, headers=auth
    )


@pytest.fixture
def conversation(runtime: Runtime, client: FlaskClient, auth: dict[str, str], imap: IMAPClient) -> int:
    """The conversation the customer's first mail opened."""
    customer_writes(
        runtime, imap, customer_message(1, sender=CUSTOMER, message_id=FIRST_ID, subject="Order 4711 arrived damaged")
    )
    return conversation_of(client, auth)


def test_a_reply_goes_out_threaded_and_the_answer_joins_its_conversation_outside_the_window(
    make_email_app: Any, smtp_server: SmtpServer, imap: IMAPClient
) -> None:
    # No continuation window at all: only the references can join the answer
    # to the conversation.
    app = make_email_app(threading={"window_hours": 0})
    runtime: Runtime = app.extensions["corridor"]
    client = app.test_client()
    auth = {"Authorization": f"Bearer {make_agent(runtime, Role.AGENT)}"}
    customer_writes(
        runtime, imap, customer_message(1, sender=CUSTOMER, message_id=FIRST_ID, subject="Order 4711 arrived damaged")
    )
    conversation = conversation_of(client, auth)

    response = send_reply(client, auth, conversation)

    assert response.status_code == 201, response.json
    assert response.json["status"] == "sent"
    (sent,) = smtp_server.wait_for(1)
    mime = received(sent.data)
    message_id = mime["Message-ID"].strip("<>")
    assert (sent.mail_from, sent.rcpt_tos) == (MAILBOX_ADDRESS, (CUSTOMER,))
    assert (mime["From"], mime["To"]) == (MAILBOX_ADDRESS, CUSTOMER)
    assert mime["Subject"] == "Re: Order 4711 arrived damaged"
    assert mime["In-Reply-To"] == f"<{FIRST_ID}>"
    assert mime["References"] == f"<{FIRST_ID}>"
    assert message_id.endswith("@corridor.example")
    body = mime.get_body(("plain",))
    assert body is not None
    assert body.get_content().strip() == REPLY
    reply = the_reply(client, auth, conversation)
    assert reply["external_id"] == message_id  # the hub knows the reply by its Message-ID
    assert reply["status"] == "sent"
    assert reply["metadata"]["in_reply_to"] == FIRST_ID
    assert reply["metadata"]["references"] == [FIRST_ID]

    later = datetime.now(UTC) + timedelta(minutes=1)
    answer = customer_message(
        2, sender=CUSTOMER, message_id="answer@example.org", in_reply_to=message_id, references=[FIRST_ID],
        subject="Re: Order 4711 arrived damaged", body="Thanks, it fits!", date=later,
    )  # fmt: skip
    unrelated = customer_message(
        3,
        sender=CUSTOMER,
        message_id="new-topic@example.org",
        subject="Invoice address",
        date=later + timedelta(hours=1),
    )
    customer_writes(runtime, imap, answer, unrelated)

    ids = [i["external_id"] for i in interactions(client, auth, conversation)]
    assert "answer@example.org" in ids
    # Without references the same customer's next mail starts a new
    # conversation here: the answer joined by its In-Reply-To alone.
    assert "new-topic@example.org" not in ids
    assert sorted(i["external_id"] for i in interactions(client, auth, conversation)) == sorted(
        [FIRST_ID, message_id, "answer@example.org"]
    )


def test_a_bounce_for_the_reply_marks_it_failed_with_the_status_code(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str], imap: IMAPClient, conversation: int
) -> None:
    assert send_reply(client, auth, conversation).status_code == 201
    message_id = the_reply(client, auth, conversation)["external_id"]
    bounce = (FIXTURES / "dsn_bounce.eml").read_bytes().replace(b"corridor.reply.5a4b3c2d@corridor.example",
                                                                  message_id.encode())  # fmt: skip

    customer_writes(runtime, imap, bounce)

    reply = the_reply(client, auth, conversation)
    assert (reply["status"], reply["error_code"]) == ("failed", "5.1.1")
    assert "User unknown in virtual mailbox table" in reply["error_message"]
    # The report itself is on the customer's timeline, in the same conversation.
    report = next(i for i in interactions(client, auth, conversation) if i["metadata"].get("bounce"))
    assert report["external_id"] == "20240318101502.4TvXyZ1B2cz9sWb@mail.corridor.example"
    with runtime.database.read() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 1  # MAILER-DAEMON is nobody's customer


def test_a_temporary_smtp_refusal_keeps_the_reply_queued_and_a_retry_sends_it(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str], smtp_server: SmtpServer, conversation: int
) -> None:
    smtp_server.refuse("451 4.3.0 Temporary failure, try again later")

    response = send_reply(client, auth, conversation)

    assert response.status_code == 202
    assert (response.json["status"], response.json["will_retry"], response.json["error_code"]) == (
        "queued", True, "4.3.0",
    )  # fmt: skip
    queued = the_reply(client, auth, conversation)
    assert queued["status"] == "queued"
    assert queued["error_message"] == "451 4.3.0 Temporary failure, try again later (retrying)"
    assert (smtp_server.refused, smtp_server.messages) == (1, [])

    smtp_server.accept()
    interaction_id = response.json["interaction_id"]
    assert due_deliveries(runtime.database) == []  # backing off
    with runtime.database.write() as session:
        session.execute(update(OutboundDelivery).values(next_attempt_at=utcnow()))
    assert due_deliveries(runtime.database) == [interaction_id]
    outcome = deliver(runtime.database, runtime.registry.senders, interaction_id)

    assert outcome is not None
    assert outcome.status == "sent"
    (sent,) = smtp_server.wait_for(1)
    # The Message-ID comes from the reply's own id, so every attempt carried the same one.
    assert received(sent.data)["Message-ID"] == f"<{queued['external_id']}@corridor.example>"
    assert the_reply(client, auth, conversation)["external_id"] == f"{queued['external_id']}@corridor.example"


def test_a_reply_to_web_form_mail_goes_to_its_reply_to_address(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str], smtp_server: SmtpServer, imap: IMAPClient
) -> None:
    form = customer_message(7, sender="forms@shop.example.org", message_id="form-7@shop.example.org")
    form = form.replace(b"Message-ID:", b"Reply-To: Jane Doe <jane.doe@example.org>\r\nMessage-ID:", 1)
    customer_writes(runtime, imap, form)

    response = send_reply(client, auth, conversation_of(client, auth, "forms@shop.example.org"))

    assert response.status_code == 201
    smtp_server.wait_for(1, timeout=5)
    assert smtp_server.messages[0].rcpt_tos == ("jane.doe@example.org",)


def test_a_permanent_smtp_refusal_fails_the_reply_at_once(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str], smtp_server: SmtpServer, conversation: int
) -> None:
    smtp_server.refuse("550 5.1.1 <jane.doe@example.org>: Recipient address rejected")

    response = send_reply(client, auth, conversation)

    assert response.status_code == 422
    assert response.json["status"] == "failed"
    reply = the_reply(client, auth, conversation)
    assert (reply["status"], reply["error_code"]) == ("failed", "5.1.1")
    assert reply["error_message"] == "550 5.1.1 <jane.doe@example.org>: Recipient address rejected"
    assert due_deliveries(runtime.database, now=utcnow() + timedelta(days=1)) == []  # never retried


def test_an_unreachable_smtp_server_is_retried(
    client: FlaskClient, auth: dict[str, str], smtp_server: SmtpServer, conversation: int
) -> None:
    smtp_server.stop()

    response = send_reply(client, auth, conversation)

    assert response.status_code == 202
    assert (response.json["status"], response.json["error_code"]) == ("queued", "smtp_unreachable")


# -- the message itself, without a server ----------------------------------------


def mailbox(address: str, name: str = "support") -> MailboxSettings:
    return MailboxSettings.from_table(
        0, {"name": name, "host": "mail.example.com", "user": address, "password_env": "X", "address": address}
    )


def outbound(**values: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "interaction_id": 1, "channel": Channel.EMAIL, "external_id": "corridor-5f0c2c9e", "to_address": CUSTOMER,
        "from_address": "support@corridor.example", "subject": "Re: Order 4711", "text": REPLY,
    }  # fmt: skip
    fields.update(values)
    return OutboundMessage(**fields)


def test_the_reply_leaves_from_the_mailbox_the_customer_wrote_to() -> None:
    sender = SmtpSender([mailbox("support@corridor.example"), mailbox("sales@corridor.example", "sales")])

    assert sender.from_address(Channel.EMAIL, CUSTOMER, "Sales@Corridor.Example") == "sales@corridor.example"
    assert sender.from_address(Channel.EMAIL, CUSTOMER, "someone-else@example.org") == "support@corridor.example"
    assert sender.from_address(Channel.EMAIL, CUSTOMER, None) == "support@corridor.example"


def test_only_real_message_ids_become_references() -> None:
    refs = email_references(
        [
            "first@example.org",
            "corridor-7a3e",  # a reply not sent yet: no mail client has seen this id
            "sha256:ab12@corridor.invalid",  # a message that had no Message-ID
            "second@example.org",
        ]
    )
    assert refs == ["first@example.org", "second@example.org"]
    many = email_references([f"m{n}@example.org" for n in range(40)])
    assert (len(many), many[0], many[-1]) == (20, "m0@example.org", "m39@example.org")


def test_the_message_id_is_the_same_for_every_attempt_and_always_well_formed() -> None:
    assert message_id_for("corridor-5f0c2c9e", "corridor.example") == "corridor-5f0c2c9e@corridor.example"
    assert message_id_for("corridor-5f0c2c9e", "corridor.example") == message_id_for(
        "corridor-5f0c2c9e", "corridor.example"
    )
    assert message_id_for("a b<c>@d", "bücher.example") == "a-b-c-d@xn--bcher-kva.example"


def test_html_goes_as_an_alternative_and_attachments_are_attached() -> None:
    sender = SmtpSender([mailbox("support@corridor.example")])
    mime, _ = sender.build(
        outbound(
            html="<p>A replacement lid is on its way.</p>",
            attachments=(Attachment("label.pdf", "application/pdf", 8, content=b"%PDF-1.4"),),
        )
    )

    assert mime.get_content_type() == "multipart/mixed"
    html = mime.get_body(("html",))
    assert html is not None
    assert "<p>A replacement lid is on its way.</p>" in html.get_content()
    (attachment,) = mime.iter_attachments()
    assert (attachment.get_filename(), attachment.get_content()) == ("label.pdf", b"%PDF-1.4")


def test_a_subject_cannot_smuggle_in_headers() -> None:
    sender = SmtpSender([mailbox("support@corridor.example")])
    mime, _ = sender.build(outbound(subject="Re: hi\r\nBcc: everyone@example.org"))

    assert mime["Bcc"] is None
    assert mime["Subject"] == "Re: hi Bcc: everyone@example.org"


def test_a_reply_from_an_unknown_mailbox_fails_permanently() -> None:
    sender = SmtpSender([mailbox("support@corridor.example")])

    with pytest.raises(SendError, match="no configured mailbox sends from") as raised:
        sender.send(outbound(from_address="old@corridor.example"))
    assert raised.value.permanent


# -- internationalized addresses, against real SMTP servers --------------------


def sending_through(server: SmtpServer) -> SmtpSender:
    table = {"smtp_host": server.host, "smtp_port": server.port, "smtp_tls": "none"}
    return SmtpSender([replace(mailbox("support@corridor.example"), **table)])


def test_a_reply_to_an_internationalised_domain_goes_through_a_server_without_smtputf8(
    start_smtp_server: Callable[..., SmtpServer],
) -> None:
    server = start_smtp_server(smtputf8=False)

    sending_through(server).send(outbound(to_address="kunde@bücher.example"))

    (message,) = server.wait_for(1)
    # The domain's ASCII form names the same mailbox and needs nothing of the server.
    assert message.rcpt_tos == ("kunde@xn--bcher-kva.example",)
    assert not message.smtputf8
    assert received(message.data)["To"] == "kunde@xn--bcher-kva.example"


def test_a_reply_to_a_non_ascii_mailbox_name_goes_out_as_internationalized_email(
    start_smtp_server: Callable[..., SmtpServer],
) -> None:
    server = start_smtp_server(smtputf8=True)

    sending_through(server).send(outbound(to_address="jörg@müller.example"))

    (message,) = server.wait_for(1)
    assert message.smtputf8
    assert message.rcpt_tos == ("jörg@xn--mller-kva.example",)
    assert "To: jörg@xn--mller-kva.example\r\n".encode() in message.data


def test_a_non_ascii_mailbox_name_and_a_server_without_smtputf8_fail_the_reply_saying_why(
    start_smtp_server: Callable[..., SmtpServer],
) -> None:
    server = start_smtp_server(smtputf8=False)

    with pytest.raises(SendError) as raised:
        sending_through(server).send(outbound(to_address="jörg@example.de"))

    # Not "unreachable", and not retried for hours: this server can never take it.
    assert raised.value.code == "smtputf8_unsupported"
    assert raised.value.permanent
    assert "jörg@example.de" in str(raised.value)
    assert "SMTPUTF8" in str(raised.value)
    assert server.messages == []


COLLEAGUE = "mia.berg@larkspur.example"


def test_a_colleagues_forward_joins_the_thread_and_the_reply_still_goes_to_the_customer(
    runtime: Runtime,
    client: FlaskClient,
    auth: dict[str, str],
    imap: IMAPClient,
    smtp_server: SmtpServer,
    conversation: int,
) -> None:
    """Mia forwards Jane's mail into Jane's thread: it shows on Jane's story, and answers still go to Jane."""
    assert send_reply(client, auth, conversation).status_code == 201
    (first,) = smtp_server.wait_for(1)
    our_id = received(first.data)["Message-ID"].strip("<>")
    forward = customer_message(
        2, sender=COLLEAGUE, message_id="fwd-1@larkspur.example", in_reply_to=our_id, references=[FIRST_ID],
        subject="Fwd: Order 4711 arrived damaged", body="Jane called too: she needs it before Friday.",
    )  # fmt: skip
    customer_writes(runtime, imap, forward)

    threaded = {i["external_id"]: i for i in interactions(client, auth, conversation)}
    assert "fwd-1@larkspur.example" in threaded  # in Jane's conversation...
    jane = client.get("/api/customers", query_string={"email": CUSTOMER}, headers=auth).json["customers"][0]["id"]
    assert threaded["fwd-1@larkspur.example"]["customer_id"] != jane  # ...filed on Mia, who wrote it...
    story = client.get(f"/api/customers/{jane}/timeline", headers=auth).json["interactions"]
    assert "fwd-1@larkspur.example" in [i["external_id"] for i in story]  # ...and on Jane's timeline too

    # The answer goes to the conversation's customer, not to whoever wrote last.
    assert send_reply(client, auth, conversation).status_code == 201
    (_, second) = smtp_server.wait_for(2)
    assert second.rcpt_tos == (CUSTOMER,)
    assert received(second.data)["To"] == CUSTOMER
    # Unless the agent picks the colleague; an address the conversation never saw is refused.
    to_mia = client.post(f"/api/conversations/{conversation}/replies", headers=auth,
                         json={"channel": "email", "text": "Thanks Mia, on it.", "to": COLLEAGUE.upper()})  # fmt: skip
    assert to_mia.status_code == 201, to_mia.json
    (*_, third) = smtp_server.wait_for(3)
    assert third.rcpt_tos == (COLLEAGUE,)
    stranger = client.post(f"/api/conversations/{conversation}/replies", headers=auth,
                           json={"channel": "email", "text": "Hello", "to": "someone@else.example"})  # fmt: skip
    assert stranger.status_code == 400
    assert stranger.json["error"]["field"] == "to"
    assert len(smtp_server.wait_for(3)) == 3  # nothing sent to the stranger
