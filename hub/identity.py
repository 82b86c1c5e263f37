"""Who is this? Address normalisation and the identity -> customer lookup.

Normalisation is the part most support tools get wrong, so it lives here, in one
place, with the reasons:

* Email: the local part is casefolded. RFC 5321 allows case-sensitive local
  parts, but no mail system in use treats ``Ana@`` and ``ana@`` as two people,
  and customers type both. The domain is converted to IDNA so that ``bücher.de``
  and ``xn--bcher-kva.de`` are one address. The address as written is kept.
* Phone: E.164 via ``phonenumbers``, with the configured default region for
  numbers written without a country code. Keeping digits only (a common
  shortcut) turns ``0151 ...`` in Germany and ``+1 151 ...`` into neighbours.
* Short codes, alphanumeric sender ids and withheld callers are not people.
  They get an identity of their own kind, keyed so that two of them never
  resolve to one customer by accident.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers

from hub.events import Channel, IdentityKind, Party


class InvalidAddress(ValueError):
    """An address that cannot be an identity of the kind it claims to be."""


@dataclass(frozen=True, slots=True)
class NormalisedAddress:
    kind: IdentityKind
    value: str
    raw: str
    name: str


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_SHORT_CODE = re.compile(r"^\d{3,8}$")
_WITHHELD_NAMES = {"", "anonymous", "restricted", "unknown", "private", "unavailable", "withheld"}


def normalise_email(address: str) -> str:
    """Canonical form of an email address (casefolded local part, IDNA domain)."""
    address = address.strip().strip("<>").strip()
    if not _EMAIL.match(address):
        raise InvalidAddress(f"not an email address: {address!r}")
    local, _, domain = address.rpartition("@")
    try:
        ascii_domain = domain.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidAddress(f"invalid domain in {address!r}") from None
    return f"{local.casefold()}@{ascii_domain.lower()}"


@functools.lru_cache(maxsize=65_536)
def normalise_phone(number: str, default_region: str) -> str:
    """E.164 for a phone number; raises InvalidAddress when it is not one.

    Cached: parsing with phonenumbers costs ~25 us, the same customers write
    again and again, and the answer for a (number, region) never changes.
    """
    try:
        parsed = phonenumbers.parse(number, default_region.upper())
    except phonenumbers.NumberParseException as exc:
        raise InvalidAddress(f"not a phone number: {number!r} ({exc})") from None
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidAddress(f"not a possible phone number: {number!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _kind_for(channel: Channel, address: str) -> IdentityKind:
    if channel is Channel.EMAIL or "@" in address:
        return IdentityKind.EMAIL
    if channel is Channel.CHAT:
        return IdentityKind.CHAT_VISITOR
    return IdentityKind.PHONE


def normalise(party: Party, channel: Channel, default_region: str) -> NormalisedAddress:
    """The identity a party is, given the channel it spoke on.

    Raises InvalidAddress for an address that fits no identity kind.
    """
    raw = party.address.strip()
    if raw.lower().startswith("whatsapp:"):
        raw = raw[len("whatsapp:") :]
    kind = party.kind or _kind_for(channel, raw)
    if kind is IdentityKind.PHONE and raw.lower() in _WITHHELD_NAMES:
        kind = IdentityKind.WITHHELD
    value: str
    if kind is IdentityKind.EMAIL:
        value = normalise_email(raw)
    elif kind is IdentityKind.PHONE:
        digits = raw.lstrip("+")
        if not raw.startswith("+") and _SHORT_CODE.match(digits) and len(digits) <= 6:
            kind, value = IdentityKind.SHORT_CODE, f"{default_region.upper()}:{digits}"
        else:
            value = normalise_phone(raw, default_region)
    elif kind is IdentityKind.SHORT_CODE:
        # Short codes are national: 12345 in the US and in the UK are different senders.
        value = f"{default_region.upper()}:{raw.lstrip('+')}"
    elif kind is IdentityKind.ALPHANUMERIC or kind is IdentityKind.SYSTEM:
        value = raw.casefold()
    elif kind is IdentityKind.WITHHELD:
        # Every withheld caller is somebody else as far as we can tell: the
        # connector makes the address unique per call, and we keep it so.
        value = raw or "withheld"
    else:
        if not raw:
            raise InvalidAddress(f"empty {kind} address")
        value = raw
    if not value:
        raise InvalidAddress(f"empty {kind} address")
    return NormalisedAddress(kind=kind, value=value, raw=party.address, name=party.name.strip())


def display_name_for(address: NormalisedAddress) -> str:
    """How a new customer is called before an agent knows better."""
    if address.name:
        return address.name
    if address.kind is IdentityKind.PHONE:
        parsed = phonenumbers.parse(address.value)
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    if address.kind is IdentityKind.WITHHELD:
        return "Withheld number"
    if address.kind is IdentityKind.SHORT_CODE:
        return f"Short code {address.value.split(':', 1)[1]}"
    return address.raw.strip()
