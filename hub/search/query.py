"""From what a user typed to an engine query, and from the engine's answer to hits, facets and cursors.

The syntax is the embedded backends': words, ``"quoted phrases"`` and
``prefix*``, every term required; nothing a user types is a syntax error,
because the query string never reaches a query parser: each term becomes a
structured clause. Two kinds of term exist only here, because the index knows
more than the embedded ones: a run that looks like a phone number ("+49 30
2312", "030 2312-50") matches the interaction's phone numbers as a prefix (or
the same digits in the text), and a word with an ``@`` ("maria.keller@")
matches its email addresses as a prefix (or the same words in the text).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hub.pagination import InvalidCursor, decode_cursor, encode_cursor
from hub.search import InvalidQuery, SearchHit, SearchQuery, safe_snippet
from hub.search.mapping import occurred_us

#: The engine marks highlights with these; private-use characters, so no
#: text contains them by accident, and the engine keeps them (it trims some
#: control characters at a fragment's start).
HIGHLIGHT_START = "\ue000"
HIGHLIGHT_END = "\ue001"

#: The histogram intervals the facets offer.
INTERVALS = ("day", "week", "month")

_PHRASE = re.compile(r'"([^"]*)"')
_PHONE_RUN = re.compile(r"(?<![\w+])\+?\d[\d\s().\-/]{3,}\d(?![\w])")
_ADDRESS = re.compile(r"[\w.+\-]*\w@[\w.\-]*|@[\w.\-]*\w")
_WORD = re.compile(r"\w+\*?", re.UNICODE)

#: Where words are looked for, with how much a match there counts.
TEXT_FIELDS = ["subject^2", "subject.exact^3", "text", "text.exact^1.5", "attachment_names", "addresses.words"]
PHRASE_FIELDS = ["subject^2", "text", "attachment_names"]
PREFIX_FIELDS = ("subject", "text", "attachment_names", "addresses.words")


@dataclass(frozen=True, slots=True)
class Term:
    #: "word", "phrase", "prefix", "phone" or "address".
    kind: str
    value: str


def parse_terms(text: str) -> list[Term]:
    """The terms of what a user typed, in order of kind; raises InvalidQuery when there are none."""
    terms: list[Term] = []

    def take_phrases(match: re.Match[str]) -> str:
        words = re.findall(r"\w+", match.group(1), re.UNICODE)
        if words:
            terms.append(Term("phrase", " ".join(words)))
        return " "

    rest = _PHRASE.sub(take_phrases, text).replace('"', " ")

    def take_phones(match: re.Match[str]) -> str:
        run = match.group(0)
        digits = re.sub(r"\D", "", run)
        # Four digits or more and some separator or a +: a plain long number
        # ("48213") stays a word, where order numbers are found.
        if len(digits) >= 5 and (run.startswith("+") or not run.isdigit()):
            terms.append(Term("phone", run.strip()))
            return " "
        return run

    rest = _PHONE_RUN.sub(take_phones, rest)

    def take_addresses(match: re.Match[str]) -> str:
        terms.append(Term("address", match.group(0).lower()))
        return " "

    rest = _ADDRESS.sub(take_addresses, rest)
    for word in _WORD.findall(rest):
        if word.endswith("*"):
            body = word.rstrip("*")
            if body:
                terms.append(Term("prefix", body))
        else:
            terms.append(Term("word", word))
    if not terms:
        raise InvalidQuery("q: nothing to search for; type at least one word")
    return terms


def fold(word: str) -> str:
    """A word as the index's analyzer keeps it: lower case, accents folded ("Größe" -> "grosse")."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _clause(term: Term) -> dict[str, Any]:
    if term.kind == "word":
        should: list[dict[str, Any]] = [{"multi_match": {"query": term.value, "fields": TEXT_FIELDS}}]
        if term.value.isdigit() and len(term.value) >= 4:
            should.append({"term": {"order_numbers": term.value}})
        return {"bool": {"should": should, "minimum_should_match": 1}}
    if term.kind == "phrase":
        return {"multi_match": {"query": term.value, "type": "phrase", "fields": PHRASE_FIELDS}}
    if term.kind == "prefix":
        folded = fold(term.value)
        return {
            "bool": {
                "should": [{"prefix": {name: {"value": folded}}} for name in PREFIX_FIELDS],
                "minimum_should_match": 1,
            }
        }
    words = " ".join(re.findall(r"\w+", term.value, re.UNICODE))
    if term.kind == "phone":
        return {
            "bool": {
                "should": [
                    {"match": {"phones": term.value}},
                    {"multi_match": {"query": words, "type": "phrase", "fields": PHRASE_FIELDS}},
                ],
                "minimum_should_match": 1,
            }
        }
    should = [{"match": {"addresses": term.value}}]
    if words:
        should.append({"multi_match": {"query": words, "type": "phrase", "fields": PHRASE_FIELDS}})
    return {"bool": {"should": should, "minimum_should_match": 1}}


@dataclass(frozen=True, slots=True)
class Filters:
    """What a search narrows by, besides the text: the engine's view of a SearchQuery."""

    channels: tuple[str, ...] = ()
    direction: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    customer_id: int | None = None
    kinds: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    agent_ids: tuple[int, ...] = ()

    @classmethod
    def of(cls, query: SearchQuery) -> Filters:
        return cls(
            channels=query.channels,
            direction=query.direction,
            since=query.since,
            until=query.until,
            customer_id=query.customer_id,
            kinds=query.kinds,
            statuses=query.statuses,
            agent_ids=query.agent_ids,
        )


def query_clause(text: str, filters: Filters) -> dict[str, Any]:
    """The ``query`` of a search: every term required, the filters as non-scoring filters."""
    must = [_clause(term) for term in parse_terms(text)]
    conditions: list[dict[str, Any]] = []
    if filters.channels:
        conditions.append({"terms": {"channel": list(filters.channels)}})
    if filters.direction:
        conditions.append({"term": {"direction": filters.direction}})
    if filters.kinds:
        conditions.append({"terms": {"kind": list(filters.kinds)}})
    if filters.statuses:
        # "none" is the facet's name for an interaction without a status.
        known = [s for s in filters.statuses if s != "none"]
        either: list[dict[str, Any]] = [{"terms": {"status": known}}] if known else []
        if "none" in filters.statuses:
            either.append({"bool": {"must_not": {"exists": {"field": "status"}}}})
        conditions.append({"bool": {"should": either, "minimum_should_match": 1}})
    if filters.agent_ids:
        conditions.append({"terms": {"agent_id": list(filters.agent_ids)}})
    if filters.customer_id is not None:
        conditions.append({"term": {"customer_id": filters.customer_id}})
    bounds: dict[str, int] = {}
    if filters.since:
        bounds["gte"] = occurred_us(filters.since)
    if filters.until:
        bounds["lt"] = occurred_us(filters.until)
    if bounds:
        conditions.append({"range": {"occurred_us": bounds}})
    return {"bool": {"must": must, "filter": conditions}}


NEWEST_SORT: list[dict[str, Any]] = [{"occurred_us": "desc"}, {"id": "desc"}]
RELEVANCE_SORT: list[dict[str, Any]] = [{"_score": "desc"}, {"id": "desc"}]

#: Stored fields a hit needs; the text itself comes back highlighted.
HIT_SOURCE = ["id", "customer_id", "conversation_id", "channel", "direction", "kind", "status", "agent_id",
              "occurred_at", "subject"]  # fmt: skip

HIGHLIGHT: dict[str, Any] = {
    "pre_tags": [HIGHLIGHT_START],
    "post_tags": [HIGHLIGHT_END],
    "fields": {"text": {"number_of_fragments": 1, "fragment_size": 160, "no_match_size": 160}},
}


def facet_aggregations(interval: str) -> dict[str, Any]:
    """Counts per channel, direction, status and agent, and a histogram of ``interval`` (day, week, month)."""
    return {
        "channel": {"terms": {"field": "channel", "size": 50}},
        "direction": {"terms": {"field": "direction", "size": 10}},
        "status": {"terms": {"field": "status", "size": 50, "missing": ""}},
        "agent": {"terms": {"field": "agent_id", "size": 100}},
        "histogram": {
            "date_histogram": {
                "field": "occurred_at",
                "calendar_interval": interval,
                "time_zone": "UTC",
                "min_doc_count": 1,
            }
        },
    }


@dataclass
class Facets:
    """Counts of the matches by value; the histogram's keys are the starts of its buckets (UTC)."""

    channel: dict[str, int] = field(default_factory=dict)
    direction: dict[str, int] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    agent: dict[str, int] = field(default_factory=dict)
    histogram: list[tuple[datetime, int]] = field(default_factory=list)
    interval: str = "day"


def facets_from(aggregations: dict[str, Any], interval: str) -> Facets:
    def terms(name: str) -> dict[str, int]:
        return {str(b["key"]): int(b["doc_count"]) for b in aggregations[name]["buckets"]}

    status = {k or "none": v for k, v in terms("status").items()}
    return Facets(
        channel=terms("channel"),
        direction=terms("direction"),
        status=status,
        agent=terms("agent"),
        histogram=[
            (datetime.fromtimestamp(b["key"] / 1000, tz=UTC), int(b["doc_count"]))
            for b in aggregations["histogram"]["buckets"]
        ],
        interval=interval,
    )


def hit_from(raw: dict[str, Any]) -> SearchHit:
    source = raw["_source"]
    fragments = raw.get("highlight", {}).get("text") or [""]
    marked = fragments[0].replace("\x02", "").replace("\x03", "")
    snippet = safe_snippet(marked).replace(HIGHLIGHT_START, "<mark>").replace(HIGHLIGHT_END, "</mark>")
    return SearchHit(
        interaction_id=int(source["id"]),
        customer_id=int(source["customer_id"]),
        conversation_id=source.get("conversation_id"),
        channel=source["channel"],
        direction=source["direction"],
        occurred_at=datetime.fromisoformat(source["occurred_at"].replace("Z", "+00:00")),
        subject=source.get("subject") or "",
        snippet=snippet,
    )


def search_after(cursor: str | None, order: str) -> list[Any] | None:
    """The engine's ``search_after`` for an API cursor.

    Newest first, the cursor is the one the embedded backends issue (the time
    and id of the page's last hit), so the two kinds of backend page alike;
    by relevance it carries the last score and id.
    """
    if not cursor:
        return None
    if order == "relevance":
        try:
            score, last_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            return [float(score), int(last_id)]
        except (ValueError, TypeError, binascii.Error):
            raise InvalidCursor(cursor) from None
    moment, last_id = decode_cursor(cursor)
    return [occurred_us(moment), last_id]


def next_cursor(last: dict[str, Any], order: str) -> str:
    """The API cursor after the hit ``last`` (its ``sort`` values)."""
    first, last_id = last["sort"]
    if order == "relevance":
        raw = json.dumps([first, last_id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    seconds, micro = divmod(int(first), 1_000_000)
    return encode_cursor(datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=micro), int(last_id))
