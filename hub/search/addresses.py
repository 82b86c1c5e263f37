"""Phone numbers and email addresses typed into a search, as the identities they name (database backends).

Agents paste a number the way it was written ("030 2312 5042", "+49 (30)
23125042") or an address ("Maria.Keller@Example.com", "maria.keller@", "@example.com").
The words index holds the interactions' text, not their addresses, so on the
database backends such a term is read as the customer identities it names
(``identity``, unique by kind and normalised value), and it finds the
interactions from and to them: calls, texts and mails alike. An engine indexes
the addresses themselves and reads the same terms on its own (``hub.search.query``).

* A whole number is normalised as the customer directory normalises it: in
  the deployment's region, then in the regions of the numbers already known.
* A number that starts with + or 00 and names nobody whole is read as the
  start of numbers ("+49 30 2312").
* A whole address is normalised (case, IDNA); a partial one is the start of
  addresses, and "@domain" finds that domain's addresses.
* A term that names no identity stays in the words, as a phrase of its
  digits or words: the number or address may be written in a message's text.
  (PostgreSQL's parser reads "555-0177" in a text as 555 and -0177, so there a
  number written with hyphens is not found this way.)
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from hub.customers import like_pattern, phone_candidates
from hub.events import IdentityKind
from hub.identity import InvalidAddress, normalise_email
from hub.search import AddressTerm, InvalidQuery, SearchQuery
from hub.search.query import Term, parse_terms
from hub.search.rows import identities

_WHOLE_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def with_addresses(session: Session, query: SearchQuery, default_region: str) -> SearchQuery:
    """``query`` with its phone and address terms taken out of the text and into ``addresses``."""
    try:
        terms = parse_terms(query.text)
    except InvalidQuery:
        return query  # the backend says what is wrong with it
    if not any(term.kind in ("phone", "address") for term in terms):
        return query
    words: list[str] = []
    addresses: list[AddressTerm] = []
    for term in terms:
        if term.kind in ("phone", "address"):
            found = next((a for a in _readings(session, term, default_region) if _names_someone(session, a)), None)
            if found is not None:
                addresses.append(found)
                continue
            parts = re.findall(r"\w+", term.value, re.UNICODE)
            if parts:
                words.append(f'"{" ".join(parts)}"')
        elif term.kind == "phrase":
            words.append(f'"{term.value}"')
        elif term.kind == "prefix":
            words.append(f"{term.value}*")
        else:
            words.append(term.value)
    return replace(query, text=" ".join(words), addresses=query.addresses + tuple(addresses))


def _readings(session: Session, term: Term, default_region: str) -> list[AddressTerm]:
    """What ``term`` can mean, most exact first."""
    typed = term.value
    if term.kind == "phone":
        readings = []
        try:
            numbers = phone_candidates(session, typed, default_region)
        except InvalidAddress:
            numbers = []
        if numbers:
            readings.append(AddressTerm(typed, IdentityKind.PHONE, values=tuple(numbers)))
        digits = re.sub(r"\D", "", typed)
        if typed.startswith("+"):
            readings.append(AddressTerm(typed, IdentityKind.PHONE, pattern=f"+{digits}%"))
        elif typed.startswith("00"):
            readings.append(AddressTerm(typed, IdentityKind.PHONE, pattern=f"+{digits[2:]}%"))
        return readings
    readings = []
    if _WHOLE_EMAIL.fullmatch(typed):
        with contextlib.suppress(InvalidAddress):
            readings.append(AddressTerm(typed, IdentityKind.EMAIL, values=(normalise_email(typed),)))
    # "maria.keller@" is the start of addresses; "@example.com" is a domain, anywhere after the local part.
    pattern = like_pattern(typed.lower(), anywhere=typed.startswith("@"))
    readings.append(AddressTerm(typed, IdentityKind.EMAIL, pattern=pattern))
    return readings


def _names_someone(session: Session, address: AddressTerm) -> bool:
    params: dict[str, Any] = {}
    return bool(session.execute(text(f"SELECT EXISTS ({identities(address, params, '')})"), params).scalar_one())
