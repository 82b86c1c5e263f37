"""HTML from customers, made safe to show and readable as text.

Provider HTML is hostile until proven otherwise: scripts, event handlers,
``javascript:`` links, forms and CSS that overlays the console. ``nh3`` (the
Rust ammonia sanitiser) keeps a conservative allow-list.

Nothing in sanitised HTML loads anything on its own: a remote image is a
tracking pixel as often as a logo (one corpus email made 108 requests when
shown, another reported the recipient's id), so every image source that is
not an inline attachment (``cid:``) is removed, and no attribute or CSS that
could fetch (``srcset``, ``style``, ``background``, ``<style>``, ``<link>``) is
allowed at all. Inline ``cid:`` images are served by Corridor itself, to agents
who are logged in (:func:`inline_images`, ``GET /api/attachments/{id}``). Links
stay: following one is the agent's choice.

This module is part of the connector contract: the email parser and the hub
sanitise with the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import unescape as html_unescape

import lxml.html
import nh3
from inscriptis import Inscriptis
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "div", "em", "font",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre",
    "s", "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "*": {"title", "dir", "lang"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align", "valign"},
    "th": {"colspan", "rowspan", "align", "valign"},
    "font": {"color"},
}
_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}

# html5ever inside nh3 0.3.7 panics on <meta http-equiv="Content-Type"
# content="text/html; charset"> (servo/html5ever#763). No <meta> survives
# sanitising anyway, so each is renamed before nh3 parses it.
_META_TAG = re.compile(r"<meta(?=[\s/>]|$)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LONE_SURROGATES = re.compile(r"[\ud800-\udfff]")

# Quoted history in HTML mail: Gmail, Thunderbird, Yahoo, and cite blockquotes.
_CLASS_QUOTES = ("gmail_quote", "moz-cite-prefix", "yahoo_quoted")
_QUOTE_XPATH = " | ".join(
    [
        *(f"//*[contains(concat(' ', normalize-space(@class), ' '), ' {name} ')]" for name in _CLASS_QUOTES),
        "//blockquote[@type='cite']",
    ]
)
# The default ("relaxed") inscriptis profile indents every <div> by two
# spaces; mail HTML is nested divs all the way down, so text drifts right.
_TEXT_CONFIG = ParserConfig(css=CSS_PROFILES["strict"])


class UnsanitisableHtml(ValueError):
    """The sanitiser could not process this HTML; keep the text, drop the HTML."""


class SanitisedHtml(str):
    """HTML that :func:`sanitise_html` returned, which the hub therefore does not sanitise again.

    The email parser sanitises (in its worker processes during a backfill),
    and sanitising the same HTML again on the write path took ~15 µs of the
    ~200 µs an email costs there, on the one thread every batch goes through.
    Only :func:`sanitise_html` makes one; it survives pickling (the parser
    processes) as the same type.
    """

    __slots__ = ()


def _no_remote_sources(element: str, attribute: str, value: str) -> str | None:
    # Only images fetch by themselves among the allowed tags and attributes;
    # a cid: source is an attachment of the same message.
    if attribute == "src" and not value.strip().lower().startswith("cid:"):
        return None
    return value


#: What could make HTML stored before remote sources were removed fetch
#: something. nh3 writes attributes double-quoted, so HTML from this module
#: never matches (text that mentions "url(" costs one needless pass).
_MAYBE_REMOTE = re.compile(r"""src="(?!cid:)|srcset|background=|poster=|style=|<style|<link|url\(""", re.IGNORECASE)
_CID_SOURCE = re.compile(r"""(<img\b[^>]*?\bsrc=")cid:([^"]+)(")""", re.IGNORECASE)


def without_remote_content(html: str) -> str:
    """Stored HTML with nothing that loads by itself, whenever it was stored.

    HTML sanitised by this module already qualifies and is returned at the
    cost of one search; HTML stored before the rule is sanitised again.
    """
    if not html or not _MAYBE_REMOTE.search(html):
        return html
    try:
        return str(sanitise_html(html))
    except UnsanitisableHtml:
        return ""


def inline_images(html: str, urls: Mapping[str, str]) -> str:
    """``cid:`` image sources replaced by the URLs Corridor serves those attachments at.

    ``urls`` maps a Content-ID (without angle brackets) to its URL; an image
    whose attachment is unknown keeps its ``cid:`` source, which loads nothing.
    """
    if "cid:" not in html or not urls:
        return html

    def replace(match: re.Match[str]) -> str:
        url = urls.get(html_unescape(match.group(2)).strip("<>"))
        return match.group(1) + url + match.group(3) if url else match.group(0)

    return _CID_SOURCE.sub(replace, html)


def _scrub(html: str) -> str:
    return _CONTROL.sub("", _LONE_SURROGATES.sub("\ufffd", html))


def sanitise_html(html: str) -> SanitisedHtml:
    """HTML with everything that could run, track or restyle the console removed.

    Raises UnsanitisableHtml rather than passing anything through unchecked.
    HTML that came from here already is returned as it is.
    """
    if type(html) is SanitisedHtml:
        return html
    if not html.strip():
        return SanitisedHtml()
    source = _META_TAG.sub("<x-meta", _scrub(html))
    try:
        cleaned = nh3.clean(
            source,
            tags=_TAGS,
            attributes=_ATTRIBUTES,
            url_schemes=_URL_SCHEMES,
            link_rel="noopener noreferrer nofollow",
            strip_comments=True,
            clean_content_tags={"script", "style", "title"},
            attribute_filter=_no_remote_sources,
        )
    except Exception as exc:
        raise UnsanitisableHtml(f"{type(exc).__name__}: {exc}") from None
    except BaseException as exc:
        # A Rust panic reaches Python as pyo3's PanicException, a
        # BaseException; contain that one, let KeyboardInterrupt through.
        if type(exc).__name__ != "PanicException":
            raise
        raise UnsanitisableHtml("the sanitiser crashed on this HTML") from None
    return SanitisedHtml(str(cleaned).strip())


def html_to_text(html: str, *, drop_quotes: bool = False) -> str:
    """Readable plain text of an HTML body (tables and lists laid out).

    ``drop_quotes`` leaves out the quoted history mail clients mark up, for the
    new part of a reply. Never raises: unparseable HTML has its tags stripped.
    """
    if not html.strip():
        return ""
    # lxml refuses str input that declares its own encoding.
    source = re.sub(r"^\s*<\?xml[^>]*\?>", "", _scrub(html))
    try:
        tree = lxml.html.document_fromstring(source)
        if drop_quotes:
            for element in tree.xpath(_QUOTE_XPATH):
                element.drop_tree()
        text = str(Inscriptis(tree, _TEXT_CONFIG).get_text())
    except Exception:
        text = re.sub(r"<[^>]*>", " ", source)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())
