"""Demo data: a support team's last six months, through the real write path.

``corridor demo`` (and ``make run``) fills an empty Corridor with customers of
a fictional home-and-garden shop, Larkspur, who wrote, called, texted and
chatted about orders, refunds, late deliveries, logins and bills. Nothing here
writes to the timeline directly: every event is a :class:`ChannelEvent` or an
:class:`InteractionUpdate` with a raw payload shaped like the provider's (an
RFC 822 message, a Twilio webhook form, a chat frame), ingested by
:func:`hub.ingest.ingest_many`, and every phone number linked to a customer
known by email is linked with :func:`hub.customers.add_identity`, as an agent
would. So the demo also exercises journal, dedupe, identity, threading and
search the way production traffic does.

The data is deterministic per seed (people, addresses, stories, ids), and
placed relative to *now*, so the newest conversations are always minutes to
hours old. Loading it again soon after adds nothing: the ids repeat and the
pipeline drops them as duplicates. (Days later, the stories that had not
happened yet at the first load arrive as new events.)

Its showcase is Maria Keller: she emails about a late order, calls the next
day from a phone an agent linked to her, then writes in the web chat. The three
land in one conversation, which is the point of Corridor.

Phone numbers come from ranges regulators reserve for fiction: NANP 555-0100
to 555-0199, Ofcom's drama numbers (020 7946 0xxx, 07700 900xxx), the
Bundesnetzagentur's Filmrufnummern (Berlin 030 23125 xxx and four other
cities), Arcep's 01 99 00 xx xx and ACMA's 0491 570 006-159. Emails use
example.com, example.org and example.net (RFC 2606).

Where each part lives: ``personas`` (the shop, the regions, the invented
people and the plan they fill), ``payloads`` (what the providers send),
``story`` (one conversation as it is written), ``stories`` (the stories and
each person's history), ``showcase`` (Maria, Tomás, and the senders that are
not people) and ``loader`` (:func:`load_demo`, which ingests the plan).
"""

from __future__ import annotations

from hub.demo.loader import (
    CLOSE_AFTER,
    DEMO_AGENT_EMAIL,
    DEMO_PASSWORD,
    DEMO_SUPERVISOR_EMAIL,
    MAX_CUSTOMERS,
    load_demo,
)
from hub.demo.personas import SHOWCASE_EMAIL, SHOWCASE_ORDER

__all__ = [
    "CLOSE_AFTER",
    "DEMO_AGENT_EMAIL",
    "DEMO_PASSWORD",
    "DEMO_SUPERVISOR_EMAIL",
    "MAX_CUSTOMERS",
    "SHOWCASE_EMAIL",
    "SHOWCASE_ORDER",
    "load_demo",
]
