"""Email HTML made safe to show to an agent.

Provider HTML is hostile until proven otherwise: scripts, event handlers,
``javascript:`` links, forms and CSS that overlays the console. ``nh3`` (the
Rust ammonia sanitiser) keeps a conservative allow-list. Inline images that
refer to attachments (``cid:``) are kept; the console rewrites them.
"""

from __future__ import annotations

import nh3
from inscriptis import get_text

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


def sanitise_html(html: str) -> str:
    """HTML with everything that could run, track or restyle the console removed."""
    if not html.strip():
        return ""
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML body (tables and lists laid out)."""
    if not html.strip():
        return ""
    return str(get_text(html)).strip()
