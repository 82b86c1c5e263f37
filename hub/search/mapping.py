"""What an engine index holds: the strict mapping, its analyzers, and the document of an interaction.

Both engines (Elasticsearch and OpenSearch) take the same index body; nothing
here depends on a client.

Why these fields:

* ids (``id``, ``customer_id``, ``conversation_id``), ``channel``,
  ``direction``, ``kind``, ``status``, ``agent_id`` and the time are filters
  and facets; ``occurred_us`` (microseconds, as the database keeps them) plus
  ``id`` is the newest-first order, the same as the database's, so a page
  boundary means the same on every backend.
* ``subject`` and ``text`` are what people search; one analyzer for every
  language (Unicode words, lower case, ASCII folding: "Größe" finds "grosse"),
  no stemming, because support mail arrives in every language and the wrong
  stemmer does more harm than none. ``.exact`` sub-fields keep the accents, so
  an exact spelling ranks first.
* ``addresses``: email addresses as prefixes of the whole address, the way
  people type them ("maria.keller@"), and as words ("keller").
* ``phones``: every phone number on the interaction in its international and
  national digits, as prefixes: "+49 30 2312…", "030 2312…" and "0049 30 2312…"
  all find +49 30 23125042, however the number was written.
* ``order_numbers``: digit runs of four or more in subject and text, so
  "#48213" and "48213" are one exact term.
* ``transcript``: the text of calls and voicemail (a transcript is appended to
  the call's text), so a search can be limited to what was said.
* ``attachment_names``: file names, searchable as words.
* ``fingerprint``: a digest of the rest, which `corridor search check` compares
  with the database to find stale documents.

``dynamic: strict``: a field not listed here is refused, so provider metadata
can never explode the mapping.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import AttachmentRecord, Identity, Interaction

#: Order-number-like tokens: a run of at least four digits, with or without "#".
_ORDER_NUMBER = re.compile(r"(?<![\w])#?(\d{4,20})(?![\w])")
_PHONE_ADDRESS = re.compile(r"^(?:whatsapp:)?\+?[\d\s().\-/]{5,}$")

_KEYWORD = {"type": "keyword"}
_LONG = {"type": "long"}

ANALYSIS: dict[str, Any] = {
    "char_filter": {
        "corridor_digits": {"type": "pattern_replace", "pattern": "[^0-9]", "replacement": ""},
        # The standard tokenizer keeps "maria.keller" whole; an address's words are its parts.
        "corridor_address_parts": {"type": "pattern_replace", "pattern": "[._@+\\-]", "replacement": " "},
    },
    "filter": {
        "corridor_prefixes": {"type": "edge_ngram", "min_gram": 1, "max_gram": 64},
        "corridor_digit_prefixes": {"type": "edge_ngram", "min_gram": 3, "max_gram": 20},
    },
    "analyzer": {
        "corridor_text": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "asciifolding"]},
        "corridor_exact": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase"]},
        "corridor_address": {
            "type": "custom",
            "tokenizer": "keyword",
            "filter": ["lowercase", "asciifolding", "corridor_prefixes"],
        },
        "corridor_address_words": {
            "type": "custom",
            "char_filter": ["corridor_address_parts"],
            "tokenizer": "standard",
            "filter": ["lowercase", "asciifolding"],
        },
        "corridor_address_search": {"type": "custom", "tokenizer": "keyword", "filter": ["lowercase", "asciifolding"]},
        "corridor_phone": {
            "type": "custom",
            "char_filter": ["corridor_digits"],
            "tokenizer": "keyword",
            "filter": ["corridor_digit_prefixes"],
        },
        "corridor_phone_search": {"type": "custom", "char_filter": ["corridor_digits"], "tokenizer": "keyword"},
    },
}

_TEXT = {
    "type": "text",
    "analyzer": "corridor_text",
    "fields": {"exact": {"type": "text", "analyzer": "corridor_exact"}},
}

MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "id": _LONG,
        "customer_id": _LONG,
        "conversation_id": _LONG,
        "channel": _KEYWORD,
        "direction": _KEYWORD,
        "kind": _KEYWORD,
        "status": _KEYWORD,
        "agent_id": _LONG,
        "occurred_at": {"type": "date"},
        "occurred_us": _LONG,
        "subject": _TEXT,
        "text": _TEXT,
        "transcript": {"type": "text", "analyzer": "corridor_text"},
        "addresses": {
            "type": "text",
            "analyzer": "corridor_address",
            "search_analyzer": "corridor_address_search",
            "fields": {"words": {"type": "text", "analyzer": "corridor_address_words"}},
        },
        "phones": {"type": "text", "analyzer": "corridor_phone", "search_analyzer": "corridor_phone_search"},
        "order_numbers": _KEYWORD,
        "attachment_names": {"type": "text", "analyzer": "corridor_text"},
        "fingerprint": {"type": "keyword"},
    },
}


def index_body(*, shards: int, replicas: int, loading: bool) -> dict[str, Any]:
    """Settings and mappings of a new index; ``loading`` for a bulk load (no refresh, no replicas)."""
    settings: dict[str, Any] = {
        "number_of_shards": shards,
        "number_of_replicas": 0 if loading else replicas,
        "analysis": ANALYSIS,
    }
    if loading:
        settings["refresh_interval"] = "-1"
    return {"settings": settings, "mappings": MAPPINGS}


def phone_variants(address: str) -> list[str]:
    """The forms of a phone number people type: international digits, with 00, and national digits."""
    raw = address.removeprefix("whatsapp:").strip()
    if not _PHONE_ADDRESS.match(address.strip()):
        return []
    variants = [raw]
    try:
        number = phonenumbers.parse(raw if raw.startswith("+") else f"+{raw}", None)
    except phonenumbers.NumberParseException:
        return variants
    if phonenumbers.is_possible_number(number):
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        variants += [e164, f"00{e164[1:]}", national]
    return list(dict.fromkeys(variants))


def order_numbers(*texts: str) -> list[str]:
    """Order-number-like tokens ("#48213" and "48213" are both "48213")."""
    found: dict[str, None] = {}
    for value in texts:
        for match in _ORDER_NUMBER.finditer(value):
            found[match.group(1)] = None
    return list(found)[:100]


def occurred_us(moment: datetime) -> int:
    """A time as integer microseconds since the epoch: exact, and ordered like the database's times."""
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def fingerprint(document: dict[str, Any]) -> str:
    """A digest of a document's content (without its fingerprint)."""
    content = {k: v for k, v in document.items() if k != "fingerprint"}
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:24]


#: What a document is built from: the interaction's columns and its identity's normalised value.
_COLUMNS = (
    Interaction.id,
    Interaction.customer_id,
    Interaction.conversation_id,
    Interaction.channel,
    Interaction.direction,
    Interaction.kind,
    Interaction.status,
    Interaction.author_id,
    Interaction.occurred_at,
    Interaction.subject,
    Interaction.text,
    Interaction.from_address,
    Interaction.to_address,
    Identity.value.label("identity"),
)


def documents(session: Session, interaction_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The documents of these interactions as the database holds them now; missing ids are absent."""
    found: dict[int, dict[str, Any]] = {}
    unique = sorted(set(interaction_ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        rows = session.execute(
            select(*_COLUMNS)
            .outerjoin(Identity, Identity.id == Interaction.identity_id)
            .where(Interaction.id.in_(chunk))
        ).all()
        found.update(_build(session, rows))
    return found


def documents_after(session: Session, after_id: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
    """The next ``limit`` interactions' documents in id order after ``after_id`` (keyset, for a rebuild or a check)."""
    rows = session.execute(
        select(*_COLUMNS)
        .outerjoin(Identity, Identity.id == Interaction.identity_id)
        .where(Interaction.id > after_id)
        .order_by(Interaction.id)
        .limit(limit)
    ).all()
    return sorted(_build(session, rows).items())


def _build(session: Session, rows: Sequence[Any]) -> dict[int, dict[str, Any]]:
    if not rows:
        return {}
    names: dict[int, list[str]] = defaultdict(list)
    ids = [row.id for row in rows]
    for interaction_id, filename in session.execute(
        select(AttachmentRecord.interaction_id, AttachmentRecord.filename)
        .where(AttachmentRecord.interaction_id.in_(ids))
        .order_by(AttachmentRecord.id)
    ):
        names[interaction_id].append(filename)
    return {row.id: document(row, names.get(row.id, [])) for row in rows}


def document(row: Any, attachment_names: list[str]) -> dict[str, Any]:
    """The engine document of one interaction row (with :data:`_COLUMNS`' fields) and its fingerprint."""
    addresses = [row.from_address or "", row.to_address or "", row.identity or ""]
    emails = sorted({a.strip().lower() for a in addresses if "@" in a})
    phones: list[str] = []
    for address in addresses:
        for variant in phone_variants(address):
            if variant not in phones:
                phones.append(variant)
    moment: datetime = row.occurred_at
    doc: dict[str, Any] = {
        "id": row.id,
        "customer_id": row.customer_id,
        "conversation_id": row.conversation_id,
        "channel": str(row.channel),
        "direction": str(row.direction),
        "kind": str(row.kind),
        "status": row.status,
        "agent_id": row.author_id,
        "occurred_at": moment.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "occurred_us": occurred_us(moment),
        "subject": row.subject or "",
        "text": row.text or "",
        "transcript": (row.text or "") if row.channel == "voice" else "",
        "addresses": emails,
        "phones": phones,
        "order_numbers": order_numbers(row.subject or "", row.text or ""),
        "attachment_names": attachment_names,
    }
    doc["fingerprint"] = fingerprint(doc)
    return doc
