"""Text both databases can store: the one check every door runs before its 2xx.

PostgreSQL refuses a NUL character in text, and neither database driver can
encode a lone UTF-16 surrogate (``"\\ud800"``, which JSON's ``\\u`` escapes and
``surrogateescape`` decoding can produce). A payload carrying either used to be
acknowledged, journaled and then fail on every retry, on no timeline: accepted,
then lost. So each entry point decides at the door, before it answers:

* data from a provider that must not be lost (Twilio, email, chat) is made
  storable with :func:`storable`: the offending characters become U+FFFD and the
  event carries a defect naming each field that was repaired;
* a caller that can fix its request (the event API, lookups, forms) is told which
  field is at fault with :func:`check_storable`, a 400 naming it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from hub.events import Attachment, ChannelEvent, InteractionUpdate, Party

#: What neither database stores: NUL (PostgreSQL) and any surrogate code point,
#: which in a Python string is always unpaired (a pair decodes to one character).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"

#: Deepest nesting of JSON a request may carry (metadata, bodies): deeper is
#: a probe, not data, and would exhaust the recursion of every JSON walker.
MAX_DEPTH = 32


class Unstorable(ValueError):
    """A value no database can store as it is; ``field`` names where it is."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def problem(text: str) -> str | None:
    """Why ``text`` cannot be stored as it is, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000)"
    return f"contains a lone surrogate (\\u{ord(found.group()):04x}), which is not text"


def repair(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD."""
    return _UNSTORABLE.sub(REPLACEMENT, text) if _UNSTORABLE.search(text) else text


def depth(value: Any) -> int:
    """How deeply a JSON value nests (a scalar is 0), counted without recursion.

    Stops counting past MAX_DEPTH: that is already too deep.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        if level > MAX_DEPTH:
            return level
        deepest = max(deepest, level)
        stack.extend((child, level) for child in children)
    return deepest


def check_storable(value: Any, field: str) -> None:
    """Raise :class:`Unstorable` naming the first string in a JSON ``value`` that cannot be stored.

    Keys are checked too, and nesting deeper than MAX_DEPTH is refused.
    """
    if depth(value) > MAX_DEPTH:
        raise Unstorable(field, f"is nested more than {MAX_DEPTH} levels deep")
    _check(value, field)


def _check(value: Any, field: str) -> None:
    if isinstance(value, str):
        found = problem(value)
        if found is not None:
            raise Unstorable(field, found)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, field)
            _check(item, f"{field}.{key}" if field else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check(item, f"{field}[{index}]")


_Item = TypeVar("_Item", bound=ChannelEvent | InteractionUpdate)


def storable(item: _Item) -> _Item:
    """``item`` with every string made storable and a defect naming each repaired field.

    The same item when nothing needed repair (the common case costs one regular
    expression search per field). Deterministic, so a provider's retry of the
    same payload dedupes against the first delivery.
    """
    repaired: list[str] = []

    def text(value: str, field: str) -> str:
        if _UNSTORABLE.search(value) is None:
            return value
        repaired.append(field)
        return repair(value)

    def optional(value: str | None, field: str) -> str | None:
        return None if value is None else text(value, field)

    def party(value: Party, field: str) -> Party:
        address, name = text(value.address, f"{field}.address"), text(value.name, f"{field}.name")
        if address is value.address and name is value.name:
            return value
        return dataclasses.replace(value, address=address, name=name)

    def attachment(value: Attachment, field: str) -> Attachment:
        changes: dict[str, Any] = {
            "filename": text(value.filename, f"{field}.filename"),
            "content_type": text(value.content_type, f"{field}.content_type"),
            "url": optional(value.url, f"{field}.url"),
            "content_id": optional(value.content_id, f"{field}.content_id"),
        }
        if all(changes[k] is getattr(value, k) for k in changes):
            return value
        return dataclasses.replace(value, **changes)

    def metadata(value: Mapping[str, Any]) -> Mapping[str, Any]:
        walked: Mapping[str, Any] = _walk_json(value, "metadata", text)
        return walked

    changes: dict[str, Any] = {}

    def field(name: str, convert: Callable[[Any, str], Any]) -> None:
        old = getattr(item, name)
        new = convert(old, name)
        if new is not old:
            changes[name] = new

    field("external_id", text)
    field("metadata", lambda v, _n: metadata(v))
    field("attachments", lambda v, n: _tuple(v, n, attachment))
    if isinstance(item, ChannelEvent):
        for name in ("subject", "text", "reply_text", "html"):
            field(name, text)
        field("session", optional)
        field("thread_refs", lambda v, n: _tuple(v, n, text))
        field("sender", lambda v, n: None if v is None else party(v, "from"))
        field("recipients", lambda v, _n: _tuple(v, "to", party))
        field("updates", lambda v, n: tuple(storable(u) for u in v))
    else:
        field("update_id", text)
        for name in ("status", "error_code", "error_message", "text_append", "new_external_id"):
            field(name, optional)
    if not changes:
        return item
    defects = tuple(f"{name}: NUL or lone surrogate replaced with U+FFFD" for name in repaired)
    if isinstance(item, ChannelEvent):
        changes["defects"] = item.defects + defects
        return dataclasses.replace(item, **changes)
    # An update has no defects of its own; what it changes is in its metadata.
    changes["metadata"] = {**changes.get("metadata", item.metadata), "defects": list(defects)}
    return dataclasses.replace(item, **changes)


_T = TypeVar("_T")


def _tuple(values: tuple[_T, ...], field: str, convert: Callable[[_T, str], _T]) -> tuple[_T, ...]:
    converted = tuple(convert(v, f"{field}[{i}]") for i, v in enumerate(values))
    return values if all(a is b for a, b in zip(converted, values, strict=True)) else converted


def _walk_json(value: Any, field: str, text: Callable[[str, str], str]) -> Any:
    """``value`` with strings (and keys) made storable; the same object when nothing changed."""
    if isinstance(value, str):
        return text(value, field)
    if isinstance(value, Mapping):
        pairs = [
            (text(k, field) if isinstance(k, str) else k, _walk_json(v, f"{field}.{k}", text)) for k, v in value.items()
        ]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(pairs, value.items(), strict=True)):
            return value
        return dict(pairs)
    if isinstance(value, (list, tuple)):
        items = [_walk_json(v, f"{field}[{i}]", text) for i, v in enumerate(value)]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else type(value)(items)
    return value
