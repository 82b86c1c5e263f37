"""The email parser against the message shapes real mailboxes hold.

Each fixture in ``fixtures/`` is one message written the way the named client
or server writes it (its headers, folding, transfer encoding and CRLF line
ends). Each test checks what a support agent gets on the timeline: readable
text, who wrote, what the message answers, its files, and the flags that keep
auto-replies and bounces from opening conversations.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from connectors.email import parse
from connectors.email.parse import addresses, parse_message, structure
from hub.events import (
    Attachment,
    Channel,
    ChannelEvent,
    DeliveryStatus,
    Direction,
    IdentityKind,
    InteractionUpdate,
    Party,
)

FIXTURES = Path(__file__).parent / "fixtures"
MAILBOX = "support@corridor.example"
#: When the IMAP server says the message arrived (its INTERNALDATE).
RECEIVED_AT = datetime(2024, 3, 22, 12, 0, tzinfo=UTC)


def read(name: str) -> ChannelEvent:
    raw = (FIXTURES / name).read_bytes()
    return parse_message(raw, received_at=RECEIVED_AT, mailbox_address=MAILBOX)


def customer(address: str, name: str = "") -> Party:
    return Party(address=address, name=name, kind=IdentityKind.EMAIL)


def test_multipart_alternative_gives_the_plain_text_and_the_html() -> None:
    event = read("multipart_alternative.eml")

    assert event.channel is Channel.EMAIL
    assert event.direction is Direction.INBOUND
    assert event.external_id == "CAH7x9kQ2Vd+Fm3rT0p8sJ1wZbN5u6Yc4LqXh=eP0aB_kD9gR2w@mail.gmail.com"
    assert event.sender == customer("jane.doe@example.org", "Jane Doe")
    assert event.recipients == (customer(MAILBOX, "Corridor Support"),)
    assert event.subject == "Order #4711 arrived damaged"
    assert event.occurred_at == datetime(2024, 3, 4, 9, 12, 31, tzinfo=UTC)
    assert event.text == (
        "Hello,\n\nmy order #4711 arrived today but the lid of the kettle is cracked.\n"
        "Could you send a replacement?\n\nThanks,\nJane"
    )
    assert event.reply_text == ""  # nothing quoted: the whole text is new
    assert "<div>my order #4711 arrived today but the lid of the kettle is cracked.</div>" in event.html
    assert event.opens_conversation
    assert event.delivery_status is DeliveryStatus.RECEIVED
    assert event.defects == ()
    assert event.raw == (FIXTURES / "multipart_alternative.eml").read_bytes()
    assert event.raw_content_type == "message/rfc822"
    assert json.loads(json.dumps(event.metadata)) == {
        "message_id": event.external_id,
        "in_reply_to": None,
        "references_count": 0,
        "from": "Jane Doe <jane.doe@example.org>",
        "to": [MAILBOX],
        "cc": [],
        "auto_reply": False,
        "bounce": False,
    }


def test_html_only_message_is_converted_to_text_and_sanitised() -> None:
    event = read("html_only.eml")

    assert event.subject == "Rückfrage zur Rechnung RE-2024-0815"
    assert event.sender == customer("max.mustermann@example.net", "Max Mustermann")
    assert "auf der Rechnung RE-2024-0815 fehlt die Umsatzsteuer." in event.text
    assert "Wasserkocher  39,90 €" in event.text  # the table stays a table
    assert event.text.endswith("Viele Grüße\nMax Mustermann")
    # Neither the stylesheet, the page title nor the script is text the customer wrote.
    for leaked in ("color: #333", "Kontaktformular", "document.cookie"):
        assert leaked not in event.text
    assert "<b>RE-2024-0815</b>" in event.html
    for dangerous in ("<script", "javascript:", "onclick", "<style"):
        assert dangerous not in event.html
    assert event.defects == ()


def test_iso_2022_jp_message_reads_as_japanese() -> None:
    event = read("iso_2022_jp.eml")

    assert event.subject == "ご注文の件"
    assert event.sender == customer("taro.yamada@example.jp", "山田 太郎")
    assert "注文番号 4711 の商品がまだ届いていません。" in event.text
    # Circled digits as Windows writes them (outside ISO-2022-JP proper).
    assert "① 配送状況\n② 返金の可否" in event.text
    assert event.occurred_at == datetime(2024, 3, 6, 0, 15, 42, tzinfo=UTC)
    assert event.defects == ()


def test_windows_1252_message_keeps_its_typographic_characters() -> None:
    event = read("windows_1252.eml")

    assert event.subject == "“Premium” plan price"
    assert event.sender == customer("renee.fournier@example.fr", "Renée Fournier")
    assert "the “Premium” plan costs €49 – but I was charged €59." in event.text
    assert "Please refund the difference to Renée’s card." in event.text
    # Outlook's Message-IDs hold "$" signs and are kept exactly.
    assert event.external_id == "000b01da7091$4e5f6a70$eb1e3f50$@example.fr"
    assert event.defects == ()


def test_misspelt_and_unknown_charsets_are_read_and_reported() -> None:
    event = read("unknown_charset.eml")

    assert event.subject == "Fråga om leverans"
    assert event.sender == customer("bjorn.astrom@example.se", "Björn Åström")
    assert "Jag har fortfarande inte fått mitt paket, ordernummer 4711." in event.text
    assert "Skickat från min telefon. Detta meddelande har genomsökts av virusskyddet." in event.text
    assert "\ufffd" not in event.text
    assert any("'uft-8'" in defect and "utf-8" in defect for defect in event.defects)
    assert any("'x-mac-klingon'" in defect and "cp1252" in defect for defect in event.defects)


def test_quoted_printable_soft_line_breaks_are_joined() -> None:
    event = read("quoted_printable.eml")

    assert event.sender == customer("amelie.laurent@example.fr", "Amélie Laurent")
    assert (
        "Je n’ai toujours pas reçu le remboursement de 24,99 € pour la commande n° 4711. Pouvez-vous vérifier ?"
        in event.text
    )
    assert event.text.endswith("Cordialement,\nAmélie")
    assert event.defects == ()


def test_base64_body_is_decoded() -> None:
    event = read("base64_body.eml")

    assert event.subject == "Заказ 4711"
    assert event.sender == customer("anna.ivanova@example.ru", "Анна Иванова")
    assert "Заказ 4711 пришёл без зарядного устройства.\nПришлите, пожалуйста." in event.text
    assert event.text.endswith("Отправлено с iPhone")
    assert event.defects == ()


def test_inline_image_is_an_inline_attachment_the_html_refers_to() -> None:
    event = read("inline_image.eml")

    assert event.text == "Here is the crack in the lid:\n\n[photo]\n\nTom"
    (image,) = event.attachments
    assert image.filename == "crack.png"
    assert image.content_type == "image/png"
    assert image.inline
    assert image.content_id == "6A1D5C2E-8B7F-4E3A-9D2C-1F0E9D8C7B6A@example.com"
    assert image.content is not None
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert image.size == len(image.content) == 73
    assert 'src="cid:6A1D5C2E-8B7F-4E3A-9D2C-1F0E9D8C7B6A@example.com"' in event.html


def test_attachments_without_filename_get_a_name_from_their_type() -> None:
    event = read("attachment_without_filename.eml")

    assert event.text == "Scanned document from MFP-3F (2nd floor). Delivery note for order 4711."
    pdf, forwarded = event.attachments
    assert (pdf.filename, pdf.content_type, pdf.inline) == ("attachment-1.pdf", "application/pdf", False)
    assert pdf.content is not None
    assert pdf.content.startswith(b"%PDF-1.4")
    assert pdf.size == len(pdf.content)
    assert (forwarded.filename, forwarded.content_type) == ("attachment-2.eml", "message/rfc822")
    assert forwarded.content is not None
    assert b"Message-ID: <dispatch-4711@example.com>" in forwarded.content
    assert b"Dispatched today with the courier." in forwarded.content


def test_message_without_date_takes_the_received_time() -> None:
    event = read("no_date.eml")

    assert event.occurred_at == RECEIVED_AT
    assert any("no Date" in defect for defect in event.defects)
    assert "Message: Please call me back about my warranty claim." in event.text
    # A web form writes From itself and puts the customer in Reply-To.
    assert event.sender == customer("forms@example.com", "Contact Form")
    assert event.metadata["reply_to"] == ["lukas.meier@example.ch"]


def test_message_without_subject_has_an_empty_subject() -> None:
    event = read("no_subject.eml")

    assert event.subject == ""
    assert event.text == "is my package coming today?"
    assert event.sender == customer("15555550123@mms.example-carrier.com")
    assert event.occurred_at == datetime(2024, 3, 13, 17, 34, 56, tzinfo=UTC)
    assert event.defects == ()


def test_malformed_reply_to_does_not_cost_the_message() -> None:
    event = read("malformed_reply_to.eml")

    assert event.sender == customer("priya.natarajan@example.in", "Priya Natarajan")
    assert event.text == "Please change the invoice address on my account to 12 MG Road, Bengaluru."
    assert event.subject == "Invoice address change"
    assert "reply_to" not in event.metadata
    assert any("Reply-To has no usable address" in defect for defect in event.defects)


def test_reply_to_stands_in_for_a_from_without_address() -> None:
    raw = (
        b"From: Priya Natarajan\r\n"
        b"Reply-To: Priya Natarajan <priya.natarajan@example.in>\r\n"
        b"To: support@corridor.example\r\n"
        b"Subject: Invoice\r\n"
        b"Message-ID: <no-from-address@example.in>\r\n"
        b"\r\n"
        b"Hello\r\n"
    )
    event = parse_message(raw, received_at=RECEIVED_AT, mailbox_address=MAILBOX)

    assert event.sender == customer("priya.natarajan@example.in", "Priya Natarajan")
    assert any("sender taken from Reply-To" in defect for defect in event.defects)


def test_long_references_chain_keeps_in_reply_to_first_and_every_id_once() -> None:
    event = read("long_references.eml")

    parent = "thread-32.1709115200@example.org"
    earlier = [
        f"thread-{n:02d}.{1709000000 + n * 3600}@{'corridor.example' if n % 2 else 'example.org'}" for n in range(1, 32)
    ]
    assert event.thread_refs == (parent, *earlier)
    assert event.metadata["references_count"] == 32
    assert event.metadata["in_reply_to"] == parent
    assert event.text == "Still waiting for the replacement lid."


def test_exchange_message_ids_are_kept_exactly() -> None:
    event = read("exchange_message_id.eml")

    # Exchange folds the Message-ID onto its own line; case is significant.
    assert event.external_id == "AM0PR04MB6466E4C0C6A1B2D0F3E8F2A1C9A40@AM0PR04MB6466.eurprd04.prod.outlook.com"
    assert event.thread_refs == ("000001da7701$2c3d4e50$84b7eaf0$@corridor.example",)
    assert event.sender == customer("Stefan.Koch@contoso-example.com", "Koch, Stefan")
    assert event.subject == "RE: Quote Q-2024-117"
    assert event.text == "We accept the quote. Please send the order confirmation to purchasing.\n\nStefan Koch"


def test_auto_reply_never_opens_a_conversation() -> None:
    event = read("auto_reply.eml")

    assert not event.opens_conversation
    assert event.metadata["auto_reply"] is True
    assert event.metadata["bounce"] is False
    assert event.metadata["auto_reply_reason"] == "Auto-Submitted: auto-replied"
    assert event.thread_refs == ("corridor.reply.9f8e7d6c@corridor.example",)
    assert event.text.startswith("I am out of the office until 25 March")
    assert event.updates == ()


def test_dsn_bounce_fails_the_message_it_reports_on() -> None:
    event = read("dsn_bounce.eml")

    assert not event.opens_conversation
    assert event.metadata["bounce"] is True
    assert event.metadata["auto_reply"] is False  # a bounce, not an out-of-office
    assert event.metadata["bounced_recipients"] == ["jane.doe@example.org"]
    assert event.updates == (
        InteractionUpdate(
            channel=Channel.EMAIL,
            external_id="corridor.reply.5a4b3c2d@corridor.example",
            update_id="bounce:20240318101502.4TvXyZ1B2cz9sWb@mail.corridor.example",
            occurred_at=datetime(2024, 3, 18, 10, 15, 2, tzinfo=UTC),
            status=DeliveryStatus.FAILED,
            error_code="5.1.1",
            error_message=(
                "jane.doe@example.org: 550 5.1.1 <jane.doe@example.org>: Recipient address rejected: "
                "User unknown in virtual mailbox table"
            ),
            metadata={"bounce_message_id": "20240318101502.4TvXyZ1B2cz9sWb@mail.corridor.example"},
        ),
    )
    # It threads into the conversation of the failed reply, and the agent reads why.
    assert event.thread_refs[0] == "corridor.reply.5a4b3c2d@corridor.example"
    assert "Recipient address rejected: User unknown" in event.text
    assert [a.filename for a in event.attachments] == ["attachment-1.txt", "attachment-2.eml"]


def test_classic_mailer_daemon_bounce_is_recognised() -> None:
    raw = (
        b"Return-Path: <>\r\n"
        b"Date: 18 Mar 2024 10:20:00 -0000\r\n"
        b"From: MAILER-DAEMON@mx.example.net\r\n"
        b"To: support@corridor.example\r\n"
        b"Subject: failure notice\r\n"
        b"Message-ID: <qmail-bounce-1@mx.example.net>\r\n"
        b"\r\n"
        b"Hi. This is the qmail-send program at mx.example.net.\r\n"
        b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        b"This is a permanent error; I've given up. Sorry it didn't work out.\r\n"
        b"\r\n"
        b"<old.customer@example.net>:\r\n"
        b"203.0.113.9 does not like recipient.\r\n"
        b"Remote host said: 550 5.1.1 mailbox unavailable\r\n"
        b"Giving up on 203.0.113.9.\r\n"
        b"\r\n"
        b"--- Below this line is a copy of the message.\r\n"
        b"\r\n"
        b"From: Corridor Support <support@corridor.example>\r\n"
        b"Message-ID: <corridor.reply.0ld0ne@corridor.example>\r\n"
        b"Subject: Re: Your account\r\n"
    )
    event = parse_message(raw, received_at=RECEIVED_AT, mailbox_address=MAILBOX)

    assert not event.opens_conversation
    assert event.metadata["bounce"] is True
    (update,) = event.updates
    assert update.external_id == "corridor.reply.0ld0ne@corridor.example"
    assert update.status == DeliveryStatus.FAILED
    assert update.error_code == "5.1.1"
    assert update.error_message is not None
    assert "550 5.1.1 mailbox unavailable" in update.error_message


def test_bounces_come_from_a_mail_system_not_from_a_customer() -> None:
    dsn = read("dsn_bounce.eml")
    classic = parse_message(
        b"From: MAILER-DAEMON@mx.example.net\r\nSubject: failure notice\r\nMessage-ID: <b1@mx.example.net>\r\n"
        b"\r\n<old.customer@example.net>:\r\n550 5.1.1 mailbox unavailable\r\n",
        received_at=RECEIVED_AT,
        mailbox_address=MAILBOX,
    )

    # SYSTEM tells the hub to file the report under the customer of the
    # message it reports on, instead of making the mail server a customer.
    assert dsn.sender == Party("MAILER-DAEMON@mail.corridor.example", "", IdentityKind.SYSTEM)
    assert classic.sender == Party("MAILER-DAEMON@mx.example.net", "", IdentityKind.SYSTEM)


def test_a_delivery_report_without_a_sender_address_is_still_the_mail_system() -> None:
    raw = (
        (FIXTURES / "dsn_bounce.eml")
        .read_bytes()
        .replace(b"From: MAILER-DAEMON@mail.corridor.example (Mail Delivery System)", b"From: MAILER-DAEMON")
    )
    event = parse_message(raw, received_at=RECEIVED_AT, mailbox_address=MAILBOX)

    assert event.sender is not None
    assert (event.sender.address, event.sender.kind) == ("MAILER-DAEMON", IdentityKind.SYSTEM)
    assert event.updates[0].external_id == "corridor.reply.5a4b3c2d@corridor.example"


def test_a_person_writing_from_postmaster_stays_a_person() -> None:
    raw = (
        b"From: Postmaster <postmaster@example.net>\r\nSubject: Question about your SPF record\r\n"
        b"Message-ID: <pm-1@example.net>\r\n\r\nYour SPF record lists an old address.\r\n"
    )
    event = parse_message(raw, received_at=RECEIVED_AT, mailbox_address=MAILBOX)

    assert event.sender == customer("postmaster@example.net", "Postmaster")
    assert event.opens_conversation


def test_outlook_reply_separates_the_new_text_from_the_quoted_block() -> None:
    event = read("outlook_reply.eml")

    assert event.reply_text == "Thanks, the new password works.\n\nBest regards\nTom"
    assert "We have reset your password." in event.text  # the history stays searchable
    assert event.thread_refs == ("corridor.reply.1b2c3d4e@corridor.example",)
    assert event.subject == "RE: Password reset"


def test_gmail_reply_drops_the_attribution_and_quoted_lines() -> None:
    event = read("gmail_reply.eml")

    assert event.reply_text == "The new lid arrived and fits perfectly. Thank you!\n\nJane"
    assert "> Hello Jane, a replacement lid is on its way." in event.text
    assert event.thread_refs == ("corridor.reply.5a4b3c2d@corridor.example",)
    assert event.occurred_at == datetime(2024, 3, 20, 10, 47, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attribution", "is_history"),
    [
        ("Jane Doe <jane.doe@example.org> wrote:", True),  # Thunderbird's one-line form
        ("jane.doe@example.org schrieb:   ", True),  # blanks after the colon
        ("Jane Doe <jane.doe@example.org> wrote: see below", False),  # text follows: the customer's words
        ("The courier wrote:", False),  # no address: the customer's words
    ],
)
def test_a_one_line_attribution_above_quoted_lines_is_history(attribution: str, is_history: bool) -> None:
    raw = (
        "From: Jane Doe <jane.doe@example.org>\r\nTo: support@corridor.example\r\nSubject: Re: lid\r\n"
        "Message-ID: <one-line-attribution@example.org>\r\n\r\n"
        f"Thanks, it fits.\r\n\r\n{attribution}\r\n> Your replacement lid is on its way.\r\n"
    ).encode()

    event = parse_message(raw, received_at=RECEIVED_AT, mailbox_address=MAILBOX)

    if is_history:
        assert event.reply_text == "Thanks, it fits."
    else:
        assert event.reply_text == f"Thanks, it fits.\n\n{attribution.rstrip()}"


def test_html_only_gmail_reply_drops_the_gmail_quote() -> None:
    raw = (
        b"From: Jane Doe <jane.doe@example.org>\r\n"
        b"To: support@corridor.example\r\n"
        b"Subject: Re: Order #4711\r\n"
        b"Message-ID: <html-only-reply@mail.gmail.com>\r\n"
        b"Content-Type: text/html; charset=UTF-8\r\n"
        b"\r\n"
        b'<div dir="ltr"><div>Fits perfectly, thanks!</div></div><br><div class="gmail_quote">'
        b'<div dir="ltr" class="gmail_attr">On Mon, Mar 18, 2024 at 11:15 AM Corridor Support wrote:<br></div>'
        b'<blockquote class="gmail_quote">Hello Jane, a replacement lid is on its way.</blockquote></div>\r\n'
    )
    event = parse_message(raw, received_at=RECEIVED_AT, mailbox_address=MAILBOX)

    assert event.reply_text == "Fits perfectly, thanks!"
    assert "Hello Jane, a replacement lid is on its way." in event.text


def test_broken_header_block_is_repaired_and_the_ids_recovered() -> None:
    event = read("malformed_headers.eml")

    assert event.external_id == "20240321121415.ABCD1234@mail.example.es"
    assert event.thread_refs == (
        "corridor.reply.77aa88bb@corridor.example",
        "CAH7x9kQ2Vd+Fm3rT0p8sJ1wZbN5u6Yc4LqXh=eP0aB_kD9gR2w@mail.gmail.com",
        "corridor.reply.66ff77aa@corridor.example",
    )
    assert event.subject == "Re: Devolución pedido 4711"
    # The headers after the broken fold did not leak into the body.
    assert event.text == "Hola,\nel paquete de devolución salió ayer.\nCarlos"
    assert any("broken folding" in defect for defect in event.defects)
    assert any("blanks before the colon" in defect for defect in event.defects)


def test_ids_are_recovered_by_pattern_when_the_mime_parser_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(source: bytes, defects: list[str]) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(parse, "_parse_mime", crash)
    raw = (FIXTURES / "gmail_reply.eml").read_bytes()
    event = parse_message(raw, received_at=RECEIVED_AT, mailbox_address=MAILBOX)

    assert event.external_id == "CAH7x9kTz3Qm1=Yw8pLr5vN2cB0dF6gHj4KsXe9uA7iO3tR1wMg@mail.gmail.com"
    assert event.thread_refs == ("corridor.reply.5a4b3c2d@corridor.example",)
    assert event.subject == "Re: Order #4711 arrived damaged"
    assert "The new lid arrived and fits perfectly." in event.text
    assert event.occurred_at == RECEIVED_AT
    assert any("RecursionError" in defect for defect in event.defects)


def test_mail_sent_from_the_mailbox_is_outbound_to_the_customer() -> None:
    raw = (
        b"From: Corridor Support <Support@Corridor.Example>\r\n"
        b"To: Jane Doe <jane.doe@example.org>\r\n"
        b"Cc: orders@corridor.example\r\n"
        b"Subject: Re: Order #4711 arrived damaged\r\n"
        b"Date: Mon, 18 Mar 2024 10:15:00 +0000\r\n"
        b"Message-ID: <sent-from-outlook@corridor.example>\r\n"
        b"\r\n"
        b"A replacement lid is on its way.\r\n"
    )
    event = parse_message(raw, received_at=RECEIVED_AT, mailbox_address=MAILBOX)

    assert event.direction is Direction.OUTBOUND
    assert event.customer_party == customer("jane.doe@example.org", "Jane Doe")
    assert event.delivery_status is DeliveryStatus.SENT


def test_message_without_message_id_gets_a_stable_synthetic_id() -> None:
    raw = b"From: jane.doe@example.org\r\nTo: support@corridor.example\r\nSubject: hi\r\n\r\nNo id here.\r\n"
    first = parse_message(raw, received_at=RECEIVED_AT, mailbox_address=MAILBOX)
    again = parse_message(raw, received_at=datetime(2024, 4, 1, tzinfo=UTC), mailbox_address=MAILBOX)
    other = parse_message(raw.replace(b"hi", b"hello"), received_at=RECEIVED_AT, mailbox_address=MAILBOX)

    assert first.external_id == again.external_id  # a refetch deduplicates
    assert first.external_id != other.external_id
    assert first.external_id.startswith("sha256:")
    assert first.external_id.endswith("@corridor.invalid")
    assert any("no Message-ID" in defect for defect in first.defects)


def test_date_far_after_arrival_is_not_trusted() -> None:
    raw = (
        b"From: jane.doe@example.org\r\nDate: Fri, 1 Jan 2038 00:00:00 +0000\r\n"
        b"Message-ID: <clock@example.org>\r\n\r\nMy clock is wrong.\r\n"
    )
    event = parse_message(raw, received_at=RECEIVED_AT, mailbox_address=MAILBOX)

    assert event.occurred_at == RECEIVED_AT
    assert any("after the mailbox received it" in defect for defect in event.defects)


def test_latin1_label_on_utf8_text_is_read_as_utf8() -> None:
    raw = (
        b"From: jane.doe@example.org\r\nMessage-ID: <label@example.org>\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\n"
    ) + "Café crème, s’il vous plaît".encode()
    event = parse_message(raw, received_at=RECEIVED_AT, mailbox_address=MAILBOX)

    assert event.text == "Café crème, s’il vous plaît"
    assert any("the text is UTF-8" in defect for defect in event.defects)


@pytest.mark.parametrize("raw", [b"", b"\r\n  \r\n", b"hello there, not a message", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_input_that_is_not_an_email_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError, match="not an email message"):
        parse_message(raw, received_at=RECEIVED_AT, mailbox_address=MAILBOX)


def test_text_with_a_colon_under_its_first_line_is_still_not_an_email() -> None:
    with pytest.raises(ValueError, match="not an email message"):
        parse_message(b"Call me back please\r\nNote: after six\r\n", received_at=RECEIVED_AT, mailbox_address=MAILBOX)


# -- shapes from real mailboxes that earlier versions misread ---------------------


def test_headers_after_a_separator_line_are_read_and_the_line_flagged() -> None:
    event = read("headers_after_a_separator_line.eml")

    assert event.sender == customer("lena.vogel@example.de", "Lena Vogel")
    assert event.subject == "Fwd: my order 48213"
    assert event.external_id == "5f1c2a9e-3b7d-4e21-9c0a-7d2e4b8f1a63@example.de"
    assert event.text.startswith("Hello,\n\nmy order 48213 has still not arrived.")
    assert event.defects == (
        "the message starts with '---- Original email message ----', not a header; read from the headers after it",
    )
    assert event.raw == (FIXTURES / "headers_after_a_separator_line.eml").read_bytes()


def test_raw_gb2312_headers_are_read_in_the_charset_the_message_declares() -> None:
    event = read("raw_gb2312_headers.eml")

    assert event.subject == "转发：订单 48213 没有收到"
    assert event.sender == customer("wang.fang@example.cn", "王芳")
    assert event.text.startswith("您好，我的订单 48213 还没有收到")
    assert event.defects == ("headers: undeclared 8-bit text read as gb18030 (the charset the message declares)",)


def test_raw_shift_jis_subject_is_read_in_its_detected_charset() -> None:
    # The body is ISO-2022-JP, which cannot read the header's Shift_JIS bytes.
    event = read("raw_shift_jis_subject.eml")

    assert event.subject == "ご注文の商品がまだ届きません"
    assert event.text == "注文番号 48213 の商品がまだ届いていません。"
    assert event.defects == ("headers: undeclared 8-bit text read as cp932 (detected)",)


def test_raw_utf8_in_a_header_is_utf8_whatever_the_body_declares() -> None:
    raw = (
        (
            b"From: jane.doe@example.org\r\nMessage-ID: <raw-utf8@example.org>\r\n"
            b"Content-Type: text/plain; charset=gb2312\r\nSubject: "
        )
        + "Größe 42, bitte".encode()
        + b"\r\n\r\nhello\r\n"
    )
    event = parse_message(raw, received_at=RECEIVED_AT, mailbox_address=MAILBOX)

    assert event.subject == "Größe 42, bitte"


def test_latin1_raw_header_bytes_still_read_as_windows_1252() -> None:
    raw = (
        b"From: jane.doe@example.org\r\nMessage-ID: <raw-latin@example.org>\r\nSubject: caf\xe9 cr\xe8me\r\n\r\nhi\r\n"
    )
    event = parse_message(raw, received_at=RECEIVED_AT, mailbox_address=MAILBOX)

    assert event.subject == "café crème"


def test_an_attachment_name_in_raw_utf8_is_kept() -> None:
    event = read("raw_utf8_attachment_filename.eml")

    assert [(a.filename, a.content) for a in event.attachments] == [("ciële.txt", b"ci\xc3\xable")]


def test_an_address_without_angle_brackets_is_the_sender() -> None:
    event = read("from_without_angle_brackets.eml")

    assert event.sender == customer("bb@bug.com", "Big Bug")
    assert event.defects == ("From: an address without angle brackets; the words around it read as the name",)


def test_parts_written_with_another_boundary_than_declared_are_read() -> None:
    event = read("boundary_mismatch.eml")

    assert event.text == "Please send me a return label for order 48213."
    assert [(a.filename, a.content_type, a.content[:8]) for a in event.attachments] == [
        ("receipt.pdf", "application/pdf", b"%PDF-1.4")
    ]
    assert "multipart/mixed: the parts use another boundary than the one declared; read with theirs" in event.defects


def test_nul_in_the_subject_and_body_is_removed_and_flagged_by_field() -> None:
    event = read("nul_in_subject_and_body.eml")

    assert (event.subject, event.text) == ("refund please", "I want my money back.")
    assert "Subject: NUL or unpaired surrogate characters removed" in event.defects
    assert "body: NUL or unpaired surrogate characters removed" in event.defects


@pytest.mark.parametrize(
    ("header", "field"),
    [
        (b"Subject: =?utf-7?Q?a+2AA-b?=", "Subject"),  # UTF-7 decodes to an unpaired surrogate
        (b"Cc: =?utf-7?Q?Ann+2AA-?= <ann@example.org>", "Cc"),
        (b"References: <ref\x00@example.org>", "References"),
    ],
)
def test_unstorable_characters_in_headers_are_replaced_and_flagged_by_field(header: bytes, field: str) -> None:
    raw = b"From: jane.doe@example.org\r\nMessage-ID: <unstorable@example.org>\r\n" + header + b"\r\n\r\nhi\r\n"
    event = parse_message(raw, received_at=RECEIVED_AT, mailbox_address=MAILBOX)

    assert f"{field}: NUL or unpaired surrogate characters removed" in event.defects
    stored = json.dumps([event.subject, [p.name for p in event.recipients], list(event.thread_refs)])
    assert "\\u0000" not in stored
    assert "\\ud800" not in stored


# -- robustness -----------------------------------------------------------------

HEADER_NAMES = [
    b"From", b"To", b"Cc", b"Reply-To", b"Sender", b"Subject", b"Date", b"Message-ID", b"In-Reply-To",
    b"References", b"Content-Type", b"Content-Transfer-Encoding", b"Content-Disposition", b"MIME-Version",
    b"Auto-Submitted", b"Precedence", b"X-Autoreply", b"List-Id", b"Content-ID", b"X-Mailer",
]  # fmt: skip
HEADER_VALUE_SAMPLES = [
    b"Jane <jane@example.org>", b"=?uft-8?B?w6k=?=", b"=?x-unknown?Q?caf=E9?= <a@b>", b"<a@b> <c@d",
    b'multipart/mixed; boundary="b"', b"multipart/report; report-type=delivery-status; boundary=b",
    b"text/plain; charset=utf-7", b"text/html; charset=iso-2022-jp", b"base64", b"quoted-printable",
    b"Mon, 32 Foo 99999 99:99:99 +9999", b"attachment; filename*=utf-8''%E2%82%AC.pdf", b"\xff\xfe\x00",
]  # fmt: skip
header_value = st.one_of(st.sampled_from(HEADER_VALUE_SAMPLES), st.binary(max_size=60))
header_line = st.builds(lambda name, value: name + b": " + value + b"\r\n", st.sampled_from(HEADER_NAMES), header_value)
mime_body = st.lists(
    st.one_of(
        st.binary(max_size=120),
        st.sampled_from([b"--b\r\n", b"--b--\r\n", b"\r\n", b"Content-Type: message/rfc822\r\n\r\n", b"=?", b"\x1b$B"]),
    ),
    max_size=12,
).map(b"".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=st.lists(header_line, min_size=1, max_size=12),
    separator=st.sampled_from([b"\r\n", b"", b"\n"]),
    body=mime_body,
)
def test_any_message_with_a_header_block_parses_with_defects_instead_of_raising(
    headers: list[bytes], separator: bytes, body: bytes
) -> None:
    raw = b"".join(headers) + separator + body
    event = parse_message(raw, received_at=RECEIVED_AT, mailbox_address=MAILBOX)

    assert event.external_id
    assert event.occurred_at.tzinfo is not None
    # Everything must be storable: valid UTF-8, no NUL (PostgreSQL rejects it), JSON metadata.
    texts = [event.text, event.reply_text, event.html, event.subject, *event.defects, *event.thread_refs]
    texts += [p.address + p.name for p in (*event.recipients, *([event.sender] if event.sender else []))]
    texts += [a.filename for a in event.attachments]
    for text in texts:
        text.encode("utf-8")
        assert "\x00" not in text
    json.dumps(event.metadata)
    assert all(isinstance(a, Attachment) and a.size == len(a.content or b"") for a in event.attachments)


ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
atom = st.text(ATEXT, min_size=1, max_size=8)
dot_atom = st.lists(atom, min_size=1, max_size=3).map(".".join)
address = st.builds(lambda local, domain: f"{local}@{domain}", dot_atom, dot_atom)
display_name = st.lists(atom, min_size=1, max_size=3).map(" ".join)
mailbox = st.one_of(
    address,
    st.builds(lambda a: f"<{a}>", address),
    st.builds(lambda name, a, gap: f"{name}{gap}<{a}>", display_name, address, st.sampled_from([" ", "", "  "])),
)


@settings(max_examples=300, deadline=None)
@given(mailboxes=st.lists(mailbox, min_size=1, max_size=4), separator=st.sampled_from([", ", ",", " , "]))
def test_the_fast_address_reader_agrees_with_the_policy_parser(mailboxes: list[str], separator: str) -> None:
    raw_value = separator.join(mailboxes)
    assume("=?" not in raw_value)  # an encoded word's opening: left to the policy
    header = policy.default.header_factory("To", raw_value)

    fast = addresses._simple_addresses(raw_value)

    assert fast is not None
    assert fast == [(a.display_name, a.addr_spec) for a in header.addresses]
    assert ", ".join(f"{n} <{a}>" if n else a for n, a in fast) == str(header)


@pytest.mark.parametrize(
    "raw_value",
    [
        '"Doe, Jane" <jane@example.org>',
        "=?utf-8?q?J=C3=B6rg?= <joerg@example.de>",
        "Jörg <joerg@example.de>",
        "jane@example.org (Jane Doe)",
        "J. Doe <jane@example.org>",
        "undisclosed-recipients:;",
        "jane@[192.0.2.1]",
        "Jane <jane@example.org",
        "jane@example.org,",
    ],
)
def test_anything_but_plain_addresses_goes_to_the_policy_parser(raw_value: str) -> None:
    assert addresses._simple_addresses(raw_value) is None


CONTENT_TYPE_SAMPLES = [
    b"text/plain; charset=UTF-8; format=flowed; delsp=yes",
    b'text/plain; CHARSET="iso-8859-1"; charset=utf-8',
    b"text/plain; charset*=utf-8''%E2%82%AC; name*0=a; name*1=b.pdf",
    b"multipart/report; report-type=delivery-status; boundary=b",
    b'application/pdf; name="receipt.pdf"',
    b"text/plain; charset",
    b'text/plain;;; =;charset="unterminated',
]
content_type = st.one_of(st.sampled_from(CONTENT_TYPE_SAMPLES), st.binary(max_size=60))


@settings(max_examples=300, deadline=None)
@given(
    value=content_type,
    more=st.lists(header_line, max_size=6),
    name=st.sampled_from(["charset", "CHARSET", "format", "delsp", "report-type", "name", "boundary"]),
)
def test_parts_answer_header_and_parameter_questions_as_the_stdlib_does(
    value: bytes, more: list[bytes], name: str
) -> None:
    # The parser remembers each part's headers and Content-Type parameters
    # (structure._Part); what it remembers must be what a plain Message says.
    raw = b"Content-Type: " + value.replace(b"\r", b"").replace(b"\n", b"") + b"\r\n" + b"".join(more) + b"\r\nbody"
    remembering = BytesParser(structure._Part, policy=policy.compat32).parsebytes(raw)
    plain = BytesParser(policy=policy.compat32).parsebytes(raw)
    assert isinstance(remembering, structure._Part)
    assert not isinstance(plain, structure._Part)

    for _ in range(2):  # the second time from what the part remembered
        assert structure._param(remembering, name) == structure._param(plain, name)
        assert structure._content_type(remembering) == structure._content_type(plain)
        for header in {*(line.split(b":", 1)[0].decode() for line in more), "Content-Type", "content-type", "X-No"}:
            assert structure._raw_header(remembering, header) == structure._raw_header(plain, header)
