"""The showcase: Maria Keller's one conversation over three channels, and the customers who are not people."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from hub.demo.payloads import FORM
from hub.demo.personas import _REGION, SHOP, SHOWCASE_EMAIL, SHOWCASE_ORDER, _Demo, _Persona, _sid, _typed
from hub.demo.story import _Story
from hub.events import Channel, ChannelEvent, DeliveryStatus, Direction, IdentityKind, Party

# -- the showcase ----------------------------------------------------------------------


def _maria(demo: _Demo) -> _Persona:
    """Maria Keller: an old exchange, then email -> call -> chat about one late order."""
    berlin = _REGION["DE"]
    maria = _Persona(
        name="Maria Keller",
        region=berlin,
        email=SHOWCASE_EMAIL,
        phone="+493023125042",
        whatsapp=False,
        chat=True,
        opener=Channel.EMAIL,
    )
    demo.used_numbers.add(maria.phone or "")
    demo.used_emails.add(SHOWCASE_EMAIL)

    rng = demo.rng_for(maria.name)
    earlier = _Story(demo, maria, demo.local_time(berlin, demo.now - timedelta(days=96), 19.4), rng=rng)
    earlier.agent = "Jonas"
    earlier.email_in(
        "Exchange for order #47102",
        "Hello,\n\nthe Fern linen duvet cover from order #47102 is the wrong size (I need 155x220). Can I exchange it?",
    )
    earlier.wait(90, 150)
    earlier.email_out(
        "Hi Maria,\n\nof course. I've booked a free collection and the 155x220 cover will be sent "
        "as soon as the courier has picked up the other one."
    )
    earlier.wait_hours(40, 46)
    earlier.email_in("", "Got it, thank you - perfect fit.")

    # Each step lands inside the continuation window of the one before, so
    # with any window of twelve hours or more the email, the call and the chat
    # read as one conversation.
    gap = min(timedelta(hours=22), demo.window * 0.75)
    s = _Story(demo, maria, demo.now - 2 * gap - timedelta(hours=3, minutes=12), rng=rng, channel=Channel.EMAIL)
    s.agent = "Sam"
    s.email_in(
        f"Order #{SHOWCASE_ORDER} - delivery late",
        f"Hello,\n\nmy order #{SHOWCASE_ORDER} (Aster teak garden bench) should have arrived last Thursday. The DHL "
        "tracking has shown 'parcel in transit' for a week and nobody at DHL can tell me more.\n\n"
        "Can you find out where it is? I'd also like to know whether you can send a replacement if it's lost. "
        f"You can reach me on {maria.phone_as_typed} during the day.",
    )
    s.t += timedelta(hours=2, minutes=17)
    s.email_out(
        f"Hi Maria,\n\nthank you for writing, and sorry about the wait. I've opened an investigation with DHL for "
        f"order #{SHOWCASE_ORDER}; they usually answer within a day. I'll get back to you as soon as I hear, "
        "by email or on the number you gave.",
    )
    s.t = s.t - timedelta(hours=2, minutes=17) + gap
    s.call_in(374)
    s.t += timedelta(minutes=3)
    s.note(
        f"Maria called about #{SHOWCASE_ORDER}. DHL confirmed the parcel was damaged at the Leipzig hub. "
        "Sent a replacement bench by express, no charge; she keeps any refund rights if it is late too."
    )
    s.t += timedelta(minutes=38)
    s.message_out(
        Channel.SMS,
        f"{SHOP}: the replacement for order #{SHOWCASE_ORDER} ships today with DHL Express, "
        "tracking JJD0146000062812. Reply here or chat with us if you need anything.",
    )
    s.t = demo.now - timedelta(minutes=24)
    s.latest = demo.now - timedelta(minutes=1)
    s.agent = "Priya"
    s.chat(
        [
            (
                "c",
                f"Hi, it's Maria Keller again (order #{SHOWCASE_ORDER}). DHL says the replacement was delivered "
                "to a neighbour, but not which one?",
            ),
            (
                "a",
                "Hi Maria, I'm Priya. I can see the whole story with the lost bench here. One moment, I'll check "
                "the proof of delivery.",
            ),
            ("c", "Thanks!"),
            ("a", "DHL's proof of delivery says it was left with Weber at number 12, signed at 11:42."),
            ("c", "Perfect, I'll go over now. Thank you for sorting this out so quickly!"),
        ],
        page=f"/account/orders/{SHOWCASE_ORDER}",
    )
    return maria


def _tomas(demo: _Demo) -> _Persona:
    """Tomás Ferreira: an email about a broken planter, continued on WhatsApp with photos."""
    london = _REGION["GB"]
    tomas = _Persona(
        name="Tomás Ferreira",
        region=london,
        email="tomas.ferreira@example.org",
        phone="+447700900123",
        whatsapp=True,
        chat=False,
        opener=Channel.EMAIL,
    )
    demo.used_numbers.add(tomas.phone or "")
    demo.used_emails.add(tomas.email or "")
    rng = demo.rng_for(tomas.name)
    order = demo.order(rng)
    start = demo.local_time(london, demo.now - timedelta(days=6), 18.7)
    s = _Story(demo, tomas, start, rng=rng, channel=Channel.EMAIL)
    s.agent = "Claire"
    s.email_in(
        f"Cracked planter - order #{order}",
        f"Hi,\n\nthe large pot from the Juniper ceramic planter set (order #{order}) arrived cracked. "
        "Can I get a replacement?",
    )
    s.t = demo.local_time(london, s.t + timedelta(hours=14), 9.3)
    s.email_out(
        "Hi Tomás,\n\nI'm sorry to hear that. Could you send us a photo or two? WhatsApp is easiest: message us "
        f"on {_typed(london.our_number)} "
        "from your phone and it will reach me.",
    )
    s.wait_hours(3, 5)
    s.message_in(Channel.WHATSAPP, f"Hi Claire, photos of the cracked pot from order #{order}", photos=2)
    s.wait(20, 40)
    s.message_out(
        Channel.WHATSAPP, "Thanks Tomás, that's clear. A new pot is on its way, no need to return the broken one."
    )
    return tomas


def _withheld_and_short_code(demo: _Demo) -> None:
    """Senders that are not a person: they never join anyone's history."""
    region = _REGION["US"]
    caller = _Persona(
        name="Withheld caller", region=region, email=None, phone=None, whatsapp=False, chat=False, opener=Channel.VOICE
    )
    rng = demo.rng_for("withheld and short code")
    start = demo.local_time(region, demo.now - timedelta(days=4), 11.2)
    s = _Story(demo, caller, start, rng=rng, channel=Channel.VOICE)
    s.call_in(143, withheld=True)

    sender = _Persona(
        name="Short code 72273", region=region, email=None, phone=None, whatsapp=False, chat=False, opener=Channel.SMS
    )
    for days_ago, text in (
        (41, "PARCELNET: Collection booked for return RMA-20931, Thu 10:00-14:00. Reply STOP to opt out."),
        (12, "PARCELNET: Return RMA-21877 collected from Larkspur Returns. Reply STOP to opt out."),
    ):
        at = demo.local_time(region, demo.now - timedelta(days=days_ago), 7.5)
        sid = _sid(rng, "SM")
        form = {
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "Body": text,
            "From": "72273",
            "To": region.our_number,
            "NumSegments": "1",
            "NumMedia": "0",
            "AccountSid": demo.account_sid,
            "ApiVersion": "2010-04-01",
        }
        demo.plan(
            at,
            ChannelEvent(
                channel=Channel.SMS,
                external_id=sid,
                occurred_at=at,
                direction=Direction.INBOUND,
                sender=Party(address="72273", kind=IdentityKind.SHORT_CODE),
                recipients=(Party(address=region.our_number, name=SHOP),),
                text=text,
                metadata={"to": region.our_number, "account_sid": demo.account_sid, "num_segments": 1},
                raw=urlencode(form).encode(),
                raw_content_type=FORM,
                delivery_status=DeliveryStatus.RECEIVED,
            ),
            sender,
        )
