"""The stories people tell support, and each person's history of them over the last six months."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from hub.demo.personas import _PRODUCTS, SHOP, _ascii, _Demo, _Persona
from hub.demo.story import _Story
from hub.events import Channel

#: How far back the invented history reaches.
HISTORY = timedelta(days=180)


# -- the stories -----------------------------------------------------------------------


@dataclass(frozen=True)
class _StoryKind:
    write: Callable[[_Story], None]
    #: Needs: "email", "phone", "whatsapp", "chat".
    needs: frozenset[str] = frozenset()
    #: Whether it can be someone's first contact (it must start with them,
    #: on a channel that carries their name).
    opens: bool = True
    #: Starts with the customer calling (when they have a phone): the only
    #: way a person known by nothing but a phone number gets in touch first.
    calls_first: bool = False

    def fits(self, person: _Persona, *, first: bool) -> bool:
        has = {
            "email": person.email is not None,
            "phone": person.phone is not None,
            "whatsapp": person.whatsapp,
            "chat": person.chat,
        }
        if first and not self.opens:
            return False
        if first and person.opener is Channel.VOICE and not self.calls_first:
            return False
        return all(has[n] for n in self.needs) and person.visitor_id is None


def _product(story: _Story) -> tuple[str, str, str]:
    name, price = story.rng.choice(_PRODUCTS)
    return name, story.demo.order(story.rng), f"{story.p.region.currency}{price}"


def _late_delivery(s: _Story) -> None:
    product, order, _ = _product(s)
    carrier = s.p.region.carrier
    s.customer_writes(
        f"Where is my order #{order}?",
        s.rng.choice(
            (
                f"Hello,\n\nI ordered the {product} (order #{order}) two weeks ago and the {carrier} tracking has "
                "said 'in transit' for six days now. Can you tell me what is going on?",
                f"Hi there,\n\nmy order #{order} was supposed to arrive on Friday. Nothing came and the tracking "
                "link doesn't load. Could you check where it is?",
            )
        ),
        f"Hi, my order #{order} still hasn't arrived and the tracking hasn't moved in days. Can you check?",
    )
    s.wait(40, 300)
    s.agent_replies(
        f"Hi {s.p.first_name},\n\nsorry about the wait. {carrier} tell us the parcel for order #{order} was held "
        "at their depot after a scanning fault; it is back on the road and should reach you within two working "
        "days. If it hasn't by then, reply here and we'll send a replacement straight away.",
        f"Hi {s.p.first_name}, sorry! {carrier} held #{order} at their depot; it's moving again and should arrive "
        "within 2 working days. If not, just reply and we'll send a replacement.",
    )
    if s.rng.random() < 0.6:
        s.wait_hours(26, 50)
        s.customer_writes("", "It arrived this morning. Thanks for chasing it!", "Arrived today, thank you!")


def _refund(s: _Story) -> None:
    product, order, price = _product(s)
    if s.p.phone:
        s.call_in(s.rng.randint(180, 560))
        s.wait(1, 6)
        s.note(
            f"Caller returned the {product} (#{order}) three weeks ago; refund was stuck in review. "
            f"Released {price} to the original card."
        )
        s.wait(10, 90)
        text = (
            f"{SHOP}: we've issued your refund of {price} for order #{order}. It can take 3-5 working days "
            "to show on your statement."
        )
        if s.p.email and s.rng.random() < 0.5:
            s.channel = Channel.EMAIL
            s.email_out(
                f"Hi {s.p.first_name},\n\nas promised on the phone: your refund of {price} for order "
                f"#{order} has been issued today. It can take 3-5 working days to appear."
            )
        else:
            s.message_out(Channel.SMS, text)
        return
    s.customer_writes(
        f"Refund for order #{order}",
        f"Hello,\n\nI sent the {product} back on the 3rd (order #{order}) and the return shows as received, "
        "but I still haven't had my refund.",
        f"I returned order #{order} weeks ago and still no refund?",
    )
    s.wait(60, 240)
    s.agent_replies(
        f"Hi {s.p.first_name},\n\nthank you for your patience. The refund of {price} was waiting for a warehouse "
        "check that had been completed but not recorded. I've released it now; it will show within 3-5 working "
        "days.",
        f"Hi {s.p.first_name}, refund of {price} for #{order} released today, 3-5 working days to show.",
    )


def _account_access(s: _Story) -> None:
    if s.p.chat:
        s.chat(
            [
                ("c", "Hi, I can't log in to my account. The password reset email never arrives."),
                ("a", f"Hi {s.p.first_name}, I'm {s.agent}. Let me look. Which email address do you use with us?"),
                ("c", f"{s.p.email}"),
                (
                    "a",
                    "Thanks. Our resets to that address were being deferred by your provider. I've sent a new "
                    "link just now; it's valid for an hour. Could you check your inbox (and spam)?",
                ),
                ("c", "Got it, I'm in. Thank you!"),
                ("a", "Great. Anything else I can help with?"),
            ],
            page="/account/login",
        )
        return
    s.customer_writes(
        "Can't log in",
        "Hello,\n\nI've tried to reset my password three times but the email never arrives. Can you help?",
        "Hi, password reset for my Larkspur account never arrives. Can you help?",
    )
    s.wait(30, 200)
    s.agent_replies(
        f"Hi {s.p.first_name},\n\nour reset emails to your address were being deferred. I've sent a fresh link "
        "that is valid for one hour; please check your spam folder too.",
        f"Hi {s.p.first_name}, I've sent a fresh reset link to the email on your account, valid for 1 hour.",
    )


def _double_charge(s: _Story) -> None:
    product, order, price = _product(s)
    s.customer_writes(
        f"Charged twice for order #{order}",
        f"Hi,\n\nmy card statement shows two payments of {price} for order #{order} ({product}). "
        "Please refund the duplicate.",
        f"I've been charged {price} twice for order #{order}. Please refund one.",
    )
    s.wait(45, 240)
    s.agent_replies(
        f"Hi {s.p.first_name},\n\none of the two is a card pre-authorisation from your first attempt at checkout. "
        "It was never collected and your bank will release it within 7 days.",
        f"Hi {s.p.first_name}, one of the two is a pre-authorisation that was never collected; your bank "
        "releases it within 7 days.",
    )
    if s.p.phone and s.rng.random() < 0.7:
        s.next_day()
        s.call_in(s.rng.randint(200, 480))
        s.wait(2, 8)
        s.note(f"Bank says both {price} charges are settled, not pending. Refunded the duplicate manually.")
        s.wait(5, 30)
        s.message_out(
            Channel.SMS,
            f"{SHOP}: the duplicate payment of {price} for order #{order} has been refunded. Sorry for the trouble.",
        )


def _damaged(s: _Story) -> None:
    product, order, _ = _product(s)
    if s.p.whatsapp:
        s.channel = Channel.WHATSAPP
        s.message_in(
            Channel.WHATSAPP,
            f"Hi, my {product} from order #{order} arrived broken. Photos attached.",
            photos=s.rng.randint(1, 3),
        )
    else:
        s.customer_writes(
            f"Damaged item, order #{order}",
            f"Hello,\n\nthe {product} from order #{order} arrived today with a crack along one side. "
            "The box looked fine. What can you do?",
            f"My {product} from order #{order} arrived damaged. What now?",
        )
    s.wait(20, 180)
    s.agent_replies(
        f"Hi {s.p.first_name},\n\nI'm sorry it arrived like that. A replacement for order #{order} leaves our "
        "warehouse tomorrow; there's no need to send the damaged one back.",
        f"So sorry, {s.p.first_name}! A replacement for #{order} ships tomorrow; no need to return the damaged one.",
    )


def _missed_call(s: _Story) -> None:
    _, order, _ = _product(s)
    s.call_in(0, answered=False)
    s.wait(1, 3)
    s.voicemail(
        s.rng.choice(
            (
                f"Hi, this is {s.p.name} calling about order {order}. The delivery driver left it at the wrong "
                "address. Please call me back when you can. Thanks.",
                f"Hello, {s.p.first_name} here, order number {order}. I'd like to change the delivery day if "
                "possible. Call me back please.",
            )
        )
    )
    s.wait_hours(14, 20)
    s.call_out(s.rng.randint(120, 400))
    s.wait(1, 5)
    s.note(f"Called back about #{order}; sorted with the courier, customer happy.")


def _address_change(s: _Story) -> None:
    _, order, _ = _product(s)
    s.message_in(Channel.SMS, f"Hi, can I still change the delivery address for order #{order}? I'm moving on Monday.")
    s.wait(15, 120)
    s.message_out(
        Channel.SMS, f"Hi {s.p.first_name}, yes if it hasn't shipped. Reply with the new address and we'll update it."
    )
    s.wait(5, 60)
    s.message_in(Channel.SMS, "14 Station Road, flat 3. Thanks!")
    s.wait(10, 60)
    s.message_out(Channel.SMS, f"Done: order #{order} now goes to 14 Station Road, flat 3.")


def _delivery_slot(s: _Story) -> None:
    _, order, _ = _product(s)
    fails = s.rng.random() < 0.2
    s.message_out(
        Channel.SMS,
        f"{SHOP}: order #{order} arrives tomorrow between 10:00 and 14:00. Reply 2 to pick another day.",
        fails=fails,
    )
    if not fails and s.rng.random() < 0.5:
        s.wait(5, 120)
        s.message_in(Channel.SMS, "2")
        s.wait(5, 40)
        s.message_out(Channel.SMS, f"No problem: order #{order} is now booked for Friday, 10:00-14:00.")


def _product_question(s: _Story) -> None:
    product, _, price = _product(s)
    if s.p.chat:
        s.chat(
            [
                ("c", f"Hello! Is the {product} suitable for outdoor use all year?"),
                (
                    "a",
                    f"Hi {s.p.first_name}, it's fine outdoors from spring to autumn. We recommend a cover "
                    "or storing it inside over winter.",
                ),
                ("c", "Ok. And is it in stock?"),
                ("a", f"Yes, it ships within 2 days. It's {price} with free delivery."),
                ("c", "Perfect, thanks."),
            ],
            page="/products/" + _ascii(product.split("(")[0])[:24],
        )
        return
    s.customer_writes(
        f"Question about the {product}",
        f"Hello,\n\nbefore I order: can the {product} stay outside all year round?",
        f"Can the {product} stay outside all year?",
    )
    s.wait(30, 200)
    s.agent_replies(
        f"Hi {s.p.first_name},\n\nit's fine outdoors from spring to autumn; over winter we recommend a cover.",
        "Fine outdoors spring to autumn; in winter use a cover or keep it inside.",
    )


def _invoice(s: _Story) -> None:
    _, order, _ = _product(s)
    s.channel = Channel.EMAIL
    s.email_in(
        f"Invoice for order #{order}",
        f"Hello,\n\ncould you send me a VAT invoice for order #{order}? It's for my business.",
    )
    s.wait(60, 400)
    s.email_out(
        f"Hi {s.p.first_name},\n\nyou can download the invoice for order #{order} from "
        f"https://www.larkspur.example.com/account/orders/{order}/invoice at any time."
    )


def _returns(s: _Story) -> None:
    product, order, _ = _product(s)
    s.customer_writes(
        "How do I return an item?",
        f"Hi,\n\nthe {product} (order #{order}) doesn't fit the space after all. How do I send it back?",
        f"How do I return the {product} from order #{order}?",
    )
    s.wait(30, 200)
    s.agent_replies(
        f"Hi {s.p.first_name},\n\nno problem: here is your prepaid return label for order #{order}: "
        f"https://www.larkspur.example.com/returns/{order}. Drop the parcel at any {s.p.region.carrier} point "
        "within 30 days.",
        f"Hi {s.p.first_name}, your return label for #{order}: https://www.larkspur.example.com/returns/{order}",
    )


def _anonymous_chat(s: _Story) -> None:
    country = s.rng.choice(("Norway", "Iceland", "Switzerland"))
    s.chat(
        [
            ("c", f"hi, do you ship to {country}?"),
            (
                "a",
                f"Hi! Not yet, I'm afraid: we deliver to the UK, EU, US and Australia. {country} is planned "
                "for next year.",
            ),
            ("c", "ok thanks"),
        ],
        page="/help/delivery",
    )


_STORIES = (
    _StoryKind(_late_delivery),
    _StoryKind(_refund, calls_first=True),
    _StoryKind(_account_access),
    _StoryKind(_double_charge),
    _StoryKind(_damaged),
    _StoryKind(_missed_call, frozenset({"phone"}), calls_first=True),
    _StoryKind(_address_change, frozenset({"phone"}), opens=False),
    _StoryKind(_delivery_slot, frozenset({"phone"}), opens=False),
    _StoryKind(_product_question),
    _StoryKind(_invoice, frozenset({"email"})),
    _StoryKind(_returns),
)
_OPENING_STORIES = tuple(s for s in _STORIES if s.opens)


def _write_histories(demo: _Demo, people: Sequence[_Persona]) -> None:
    """Each person's conversations, spread over the last six months."""
    for person in people:
        rng = demo.rng_for(f"{person.name}/{person.email or person.phone or person.visitor_id}")
        if person.visitor_id is not None:
            start = demo.now - timedelta(days=rng.uniform(1.5, 120))
            _anonymous_chat(_Story(demo, person, demo.business(person.region, start, rng), rng=rng))
            continue
        count = rng.choices((1, 2, 3, 4, 5), weights=(2, 4, 4, 3, 1))[0]
        # The first contact is at least a day and a half old, so it has
        # happened even after being moved into the person's waking hours.
        oldest = rng.uniform(1.5, HISTORY.days)
        starts = sorted([oldest, *(rng.uniform(0.1, oldest) for _ in range(count - 1))])
        not_before = demo.now - HISTORY
        for index, days_ago in enumerate(reversed(starts)):
            start = demo.business(person.region, max(demo.now - timedelta(days=days_ago), not_before), rng)
            # The first contact is on the channel that introduces them; later
            # ones on whichever channel they pick that day.
            channel = rng.choice(person.messaging) if index and person.messaging else None
            story = _Story(demo, person, start, rng=rng, channel=channel)
            stories = _OPENING_STORIES if index == 0 else _STORIES
            usable = [s for s in stories if s.fits(person, first=index == 0)]
            rng.choice(usable).write(story)
            # The next conversation starts after this one has gone quiet
            # for longer than the continuation window, or it would continue it.
            not_before = story.t + demo.window + timedelta(days=2)
            if not_before > demo.now:
                break
