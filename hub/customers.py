"""Customers: lookup, identities added or removed by hand, merge and unmerge.

Merging is the operation support tools most often get wrong: they delete the
losing record and cannot undo. Here a merge moves identities, conversations
and interactions in one transaction, keeps the merged customer as a redirect,
records exactly which rows moved, and can be undone. Both directions are
idempotent. Services flush; the caller commits.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from typing import Any

import phonenumbers
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.events import Channel, IdentityKind, Party
from hub.identity import InvalidAddress, normalise, normalise_email, normalise_phone
from hub.live import AGENTS, publish
from hub.models import (
    AuditRecord,
    Conversation,
    Customer,
    CustomerMerge,
    Identity,
    Interaction,
    utcnow,
)
from hub.search import outbox


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    """The change contradicts the data (an identity that belongs to someone else)."""


def audit(
    session: Session,
    actor_id: int | None,
    action: str,
    target_type: str,
    target_id: int,
    **details: Any,
) -> None:
    session.add(
        AuditRecord(
            actor_id=actor_id,
            action=action,
            target_type=target_type,
            target_id=target_id,
            details=details,
        )
    )


def resolve(session: Session, customer_id: int) -> Customer:
    """The live customer behind an id, following merge redirects."""
    seen: set[int] = set()
    customer = session.get(Customer, customer_id)
    while customer is not None and customer.merged_into_id is not None:
        if customer.id in seen:  # never loops, but a corrupt chain must not hang a request
            break
        seen.add(customer.id)
        customer = session.get(Customer, customer.merged_into_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id}")
    return customer


#: What a phone number typed into a search box may hold besides digits.
_PHONE_LIKE = re.compile(r"\+?[\d\s().\-/]{5,}")


def like_pattern(text: str, *, anywhere: bool) -> str:
    """A LIKE pattern (escape character ``\\``) matching ``text`` literally: ``%`` and ``_`` are not wildcards."""
    escaped = text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
    return f"%{escaped}%" if anywhere else f"{escaped}%"


def typed_phone(text: str, default_region: str) -> str | None:
    """The E.164 form of a phone number as people type it ("030 2312 5042", "+49 (30) 23125042"), or None."""
    if not _PHONE_LIKE.fullmatch(text.strip()):
        return None
    try:
        return normalise_phone(text, default_region)
    except InvalidAddress:
        return None


#: Seconds the regions of known phone numbers are reused before they are read again.
_REGIONS_TTL = 300.0
_regions_cache: dict[str, tuple[float, tuple[str, ...]]] = {}


def known_phone_regions(session: Session, *, fresh: bool = False) -> tuple[str, ...]:
    """The regions of the country codes among the customers' phone numbers (cached a few minutes).

    A number typed without a country code is read in the deployment's region
    first; a German customer's "030 23125042" on a US deployment is found by
    reading it in the regions Corridor already has customers in.
    """
    key = str(session.get_bind().engine.url)
    now = time.monotonic()
    cached = _regions_cache.get(key)
    if cached is not None and cached[0] > now and not fresh:
        return cached[1]
    prefixes = session.scalars(
        select(func.substr(Identity.value, 1, 4)).where(Identity.kind == IdentityKind.PHONE).distinct()
    )
    regions: set[str] = set()
    for prefix in prefixes:
        digits = prefix.lstrip("+")
        for length in range(1, min(3, len(digits)) + 1):
            if digits[:length].isdigit():
                regions.update(
                    r for r in phonenumbers.region_codes_for_country_code(int(digits[:length])) if r != "001"
                )
    found = tuple(sorted(regions))
    _regions_cache[key] = (now + _REGIONS_TTL, found)
    return found


def phone_candidates(session: Session, text: str, default_region: str, *, fresh: bool = False) -> list[str]:
    """The E.164 numbers ``text`` can mean: in the default region first, then in the regions of known numbers.

    Raises InvalidAddress when it is a phone number in none of them.
    """
    found: list[str] = []
    with contextlib.suppress(InvalidAddress):
        found.append(normalise_phone(text, default_region))
    written = text.strip()
    if not written.startswith(("+", "00")):
        for region in known_phone_regions(session, fresh=fresh):
            if region == default_region.upper():
                continue
            try:
                parsed = phonenumbers.parse(written, region)
            except phonenumbers.NumberParseException:
                continue
            # Valid, not merely possible: read in the wrong region most
            # digit strings are possible somewhere.
            if phonenumbers.is_valid_number(parsed):
                number = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
                if number not in found:
                    found.append(number)
    if not found:
        if not fresh and not written.startswith(("+", "00")):
            return phone_candidates(session, text, default_region, fresh=True)
        # The message of the deployment's own region, as before.
        normalise_phone(text, default_region)
    return found


def find_customers(
    session: Session,
    *,
    email: str | None = None,
    phone: str | None = None,
    name: str | None = None,
    default_region: str = "US",
    limit: int = 20,
) -> list[Customer]:
    """Customers by exact email or phone (normalised), or by name prefix."""
    if email:
        kind, values = IdentityKind.EMAIL, [normalise_email(email)]
    elif phone:
        kind, values = IdentityKind.PHONE, phone_candidates(session, phone, default_region)
        if not _customers_by(session, kind, values, limit) and not phone.strip().startswith(("+", "00")):
            # The regions are cached: a customer from a new country may be
            # what this number is; read them again before saying "none".
            values = phone_candidates(session, phone, default_region, fresh=True)
    elif name:
        pattern = like_pattern(name.strip().lower(), anywhere=False)
        return list(
            session.scalars(
                select(Customer)
                .where(
                    Customer.merged_into_id.is_(None),
                    func.lower(Customer.display_name).like(pattern, escape="\\"),
                )
                .order_by(Customer.display_name, Customer.id)
                .limit(limit)
            )
        )
    else:
        raise ValueError("give email, phone or name")
    return _customers_by(session, kind, values, limit)


def _customers_by(session: Session, kind: IdentityKind, values: list[str], limit: int) -> list[Customer]:
    """The customers with any of ``values``, in the order of ``values`` (the likeliest reading first)."""
    rows = {i.value: i.customer_id for i in session.scalars(
        select(Identity).where(Identity.kind == kind, Identity.value.in_(values))
    )}  # fmt: skip
    found: list[Customer] = []
    for value in values:
        if value in rows:
            customer = resolve(session, rows[value])
            if customer not in found:
                found.append(customer)
    return found[:limit]


@dataclass(frozen=True)
class CustomerSummary:
    customer: Customer
    identities: list[Identity]
    conversations: list[Conversation]
    interaction_count: int


def summary(session: Session, customer_id: int) -> CustomerSummary:
    customer = resolve(session, customer_id)
    identities = list(
        session.scalars(select(Identity).where(Identity.customer_id == customer.id).order_by(Identity.id))
    )
    conversations = list(
        session.scalars(
            select(Conversation)
            .where(Conversation.customer_id == customer.id)
            .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        )
    )
    count = session.scalar(select(func.count()).select_from(Interaction).where(Interaction.customer_id == customer.id))
    return CustomerSummary(customer, identities, conversations, int(count or 0))


def add_identity(
    session: Session,
    customer_id: int,
    kind: IdentityKind,
    address: str,
    *,
    actor_id: int | None,
    default_region: str,
) -> Identity:
    """Link an address to a customer (the phone of a customer known by email).

    Adding an address the customer already has returns it unchanged. An
    address that belongs to another customer is a Conflict: merging is the
    deliberate way to join two customers.
    """
    customer = resolve(session, customer_id)
    channel = {IdentityKind.EMAIL: Channel.EMAIL, IdentityKind.CHAT_VISITOR: Channel.CHAT}.get(kind, Channel.SMS)
    normalised = normalise(Party(address=address, kind=kind), channel, default_region)
    if normalised.kind is not kind:
        raise InvalidAddress(f"{address!r} is a {normalised.kind}, not a {kind}")
    existing = session.scalar(
        select(Identity).where(Identity.kind == normalised.kind, Identity.value == normalised.value)
    )
    if existing is not None:
        if existing.customer_id == customer.id:
            return existing
        raise Conflict(f"{normalised.value} belongs to customer {existing.customer_id}; merge the customers instead")
    identity = Identity(customer_id=customer.id, kind=normalised.kind, value=normalised.value, raw_value=address)
    session.add(identity)
    session.flush()
    audit(session, actor_id, "identity.add", "customer", customer.id, identity_id=identity.id,
          kind=identity.kind, value=identity.value)  # fmt: skip
    return identity


def remove_identity(session: Session, customer_id: int, identity_id: int, *, actor_id: int | None) -> None:
    """Unlink an address. Past interactions stay on the timeline."""
    customer = resolve(session, customer_id)
    identity = session.get(Identity, identity_id)
    if identity is None or identity.customer_id != customer.id:
        raise NotFound(f"customer {customer.id} has no identity {identity_id}")
    unlinked = list(session.scalars(select(Interaction.id).where(Interaction.identity_id == identity.id)))
    session.execute(update(Interaction).where(Interaction.identity_id == identity.id).values(identity_id=None))
    # Their documents carried the identity's address.
    outbox.queue(session, unlinked)
    audit(session, actor_id, "identity.remove", "customer", customer.id, identity_id=identity.id,
          kind=identity.kind, value=identity.value)  # fmt: skip
    session.delete(identity)
    session.flush()


def merge(session: Session, source_id: int, target_id: int, *, actor_id: int | None) -> CustomerMerge:
    """Merge customer ``source`` into ``target``; idempotent.

    Everything of the source moves in this transaction; the source stays as a
    redirect. Merging a customer already merged into the target returns the
    existing merge.
    """
    source = session.get(Customer, source_id)
    if source is None:
        raise NotFound(f"no customer {source_id}")
    target = resolve(session, target_id)
    if source.merged_into_id is not None:
        if resolve(session, source.id).id == target.id:
            existing = session.scalar(
                select(CustomerMerge)
                .where(CustomerMerge.source_id == source.id, CustomerMerge.undone_at.is_(None))
                .order_by(CustomerMerge.id.desc())
            )
            if existing is not None:
                return existing
        raise Conflict(f"customer {source.id} is already merged into customer {source.merged_into_id}")
    if source.id == target.id:
        raise Conflict("a customer cannot be merged into itself")

    def ids(model: Any) -> list[int]:
        return list(session.scalars(select(model.id).where(model.customer_id == source.id).order_by(model.id)))

    moved = {
        "identity": ids(Identity),
        "conversation": ids(Conversation),
        "interaction": ids(Interaction),
    }
    for model in (Identity, Conversation, Interaction):
        session.execute(update(model).where(model.customer_id == source.id).values(customer_id=target.id))
    # The moved interactions' documents name the target now.
    outbox.queue(session, moved["interaction"])
    source.merged_into_id = target.id
    record = CustomerMerge(source_id=source.id, target_id=target.id, merged_by_id=actor_id, moved=moved)
    session.add(record)
    session.flush()
    audit(session, actor_id, "customer.merge", "customer", target.id, source_id=source.id,
          merge_id=record.id, moved={k: len(v) for k, v in moved.items()})  # fmt: skip
    # Announced last (it takes the feed's ordering lock until the commit); webhooks read it too.
    publish(session, AGENTS, "customer.merged", _merge_data(record))
    return record


def unmerge(session: Session, merge_id: int, *, actor_id: int | None) -> CustomerMerge:
    """Undo a merge: exactly the rows that moved go back; idempotent.

    Interactions that arrived after the merge stay with the target: they were
    threaded into its conversations, and splitting those is an agent's call.
    """
    record = session.get(CustomerMerge, merge_id)
    if record is None:
        raise NotFound(f"no merge {merge_id}")
    if record.undone_at is not None:
        return record
    source = session.get(Customer, record.source_id)
    assert source is not None
    if source.merged_into_id != record.target_id:
        raise Conflict(f"customer {source.id} is no longer merged into {record.target_id}")
    later = session.scalar(
        select(CustomerMerge.id).where(
            CustomerMerge.source_id == record.target_id,
            CustomerMerge.undone_at.is_(None),
            CustomerMerge.id > record.id,
        )
    )
    if later is not None:
        raise Conflict(f"undo merge {later} first: customer {record.target_id} was merged on since")
    for key, model in (("identity", Identity), ("conversation", Conversation), ("interaction", Interaction)):
        moved_ids = record.moved.get(key, [])
        for start in range(0, len(moved_ids), 500):
            session.execute(
                update(model).where(model.id.in_(moved_ids[start : start + 500])).values(customer_id=source.id)
            )
    outbox.queue(session, record.moved.get("interaction", []))
    source.merged_into_id = None
    record.undone_at = utcnow()
    session.flush()
    audit(session, actor_id, "customer.unmerge", "customer", record.target_id, source_id=source.id,
          merge_id=record.id)  # fmt: skip
    publish(session, AGENTS, "customer.unmerged", _merge_data(record))
    return record


def _merge_data(record: CustomerMerge) -> dict[str, Any]:
    return {
        "merge_id": record.id,
        "customer_id": record.target_id,
        "source_id": record.source_id,
        "target_id": record.target_id,
        "moved": {k: len(v) for k, v in record.moved.items()},
    }
