"""Step 3, identity: normalise each event's customer address and find or create the customer.

Addresses are normalised by :mod:`hub.identity` (email: casefolded local
part and IDNA domain; phone: E.164 with the configured default region, the
raw value kept). An address that cannot be used still gets its event stored,
under a customer of its own, with the problem as a defect. A mail system's
report (a bounce) belongs to the customer of the message it references. The
first event of a batch that names an unknown identity creates its customer;
a concurrent writer that created the same identity first wins, and the
customer made here is removed again.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select

from hub.events import ChannelEvent, IdentityKind, Party
from hub.identity import InvalidAddress, NormalisedAddress, display_name_for, normalise
from hub.ingest.pipeline import BatchState, Pending
from hub.ingest.statements import CUSTOMER, IDENTITY, chunks, insert_ignoring_conflicts, insert_returning_ids, pairs_in
from hub.models import Identity, Interaction


def pending(state: BatchState, index: int, event: ChannelEvent, journal_id: int, fingerprint: str | None) -> Pending:
    """The event on its way, with its normalised customer address and the defects found so far."""
    address, defects = _address_of(state, event)
    return Pending(index, event, journal_id, address, list(event.defects) + defects, fingerprint)


def resolve_customers(state: BatchState, pending: list[Pending]) -> None:
    """Set every pending event's customer and identity, creating those not known yet."""
    # A mail system's report (a bounce) is about the customer of the
    # message it references, and belongs on their timeline.
    system = [p for p in pending if p.address.kind is IdentityKind.SYSTEM and p.event.thread_refs]
    if system:
        owners = _reference_owners(state, system)
        for p in system:
            channel = p.event.channel.value
            owner = next((owners[(channel, r)] for r in p.event.thread_refs if (channel, r) in owners), None)
            if owner is not None:
                p.customer_id, p.identity_id = owner
        pending = [p for p in pending if not p.customer_id]
    keys = sorted({(p.address.kind.value, p.address.value) for p in pending})
    found = _identities(state, keys)
    missing = [k for k in keys if k not in found]
    if missing:
        # The first event of a batch names a new customer, as it would one by one.
        by_key: dict[tuple[str, str], NormalisedAddress] = {}
        for p in pending:
            by_key.setdefault((p.address.kind.value, p.address.value), p.address)
        customer_ids = insert_returning_ids(
            state.conn,
            CUSTOMER,
            [{"display_name": display_name_for(by_key[k])[:200], "created_at": state.now} for k in missing],
        )
        insert_ignoring_conflicts(
            state.session,
            IDENTITY,
            [
                {
                    "customer_id": customer_id,
                    "kind": k[0],
                    "value": k[1],
                    "raw_value": by_key[k].raw[:320],
                    "created_at": state.now,
                }
                for k, customer_id in zip(missing, customer_ids, strict=True)
            ],
        )
        found.update(_identities(state, missing))
        # A concurrent writer created some of these identities first; the
        # customers made for them here are orphans.
        orphans = [cid for k, cid in zip(missing, customer_ids, strict=True) if found[k][1] != cid]
        if orphans:
            state.conn.execute(delete(CUSTOMER).where(CUSTOMER.c.id.in_(orphans)))
    for p in pending:
        p.identity_id, p.customer_id = found[(p.address.kind.value, p.address.value)]


def _address_of(state: BatchState, event: ChannelEvent) -> tuple[NormalisedAddress, list[str]]:
    party = event.customer_party
    problem = "no customer address" if party is None else None
    if party is not None:
        try:
            return normalise(party, event.channel, state.config.default_region), []
        except InvalidAddress as exc:
            problem = str(exc)
    # Keep the event, under a customer of its own, with the problem shown:
    # a provider's message must never be dropped for a bad address.
    raw = party.address if party else ""
    placeholder = Party(
        address=f"unknown:{event.channel.value}:{event.external_id}",
        name=(party.name if party and party.name else raw) or "Unknown sender",
        kind=IdentityKind.WITHHELD,
    )
    address = normalise(placeholder, event.channel, state.config.default_region)
    return address, [f"unusable customer address {raw!r}: {problem}"]


def _reference_owners(state: BatchState, pending: list[Pending]) -> dict[tuple[str, str], tuple[int, int | None]]:
    keys = sorted({(p.event.channel.value, ref) for p in pending for ref in p.event.thread_refs})
    owners: dict[tuple[str, str], tuple[int, int | None]] = {}
    for chunk in chunks(keys):
        rows = state.conn.execute(
            select(
                Interaction.channel, Interaction.external_id, Interaction.customer_id, Interaction.identity_id
            ).where(pairs_in(Interaction.channel, Interaction.external_id, chunk))
        )
        for channel, external_id, customer_id, identity_id in rows:
            owners[(channel, external_id)] = (customer_id, identity_id)
    return owners


def _identities(state: BatchState, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, int]]:
    found: dict[tuple[str, str], tuple[int, int]] = {}
    for chunk in chunks(keys):
        rows = state.conn.execute(
            select(Identity.kind, Identity.value, Identity.id, Identity.customer_id).where(
                pairs_in(Identity.kind, Identity.value, chunk)
            )
        )
        for kind, value, identity_id, customer_id in rows:
            found[(kind, value)] = (identity_id, customer_id)
    return found
