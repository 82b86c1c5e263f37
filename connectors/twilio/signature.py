"""Is this request really from Twilio? ``X-Twilio-Signature`` over the URL it called.

Twilio signs the full URL it requested (scheme, host, port, path, query) plus
the form fields, with the account's auth token. Behind a reverse proxy the URL
Flask sees (``http://127.0.0.1:8000/...``) is not the one Twilio called
(``https://support.example.com/...``), which is why other tools' signature checks
"broke behind proxies" and were switched off. Corridor rebuilds the public URL
from ``[app] public_base_url``; ``X-Forwarded-*`` headers override it only when
the request came straight from a proxy listed in ``[twilio] trusted_proxies``,
because anyone else can send those headers.

The HMAC comparison is done by :class:`twilio.request_validator.RequestValidator`,
which compares in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from twilio.request_validator import (
    RequestValidator,
)

from connectors.twilio.parse import WebhookForm

SIGNATURE_HEADER = "X-Twilio-Signature"

# What a forwarded host may look like: a DNS name or IP, optionally with a port.
# Anything else (paths, credentials, spaces) is ignored rather than spliced into
# the URL.
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_PREFIX = re.compile(r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


class HeaderSource(Protocol):
    """Request headers, looked up by name (werkzeug's are case-insensitive)."""

    def get(self, key: str, /) -> str | None: ...


def _is_trusted(remote_addr: str | None, trusted_proxies: Sequence[str]) -> bool:
    if not remote_addr or not trusted_proxies:
        return False
    try:
        peer = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        # ::ffff:10.0.0.2 is the IPv4 proxy 10.0.0.2 seen through a dual-stack socket.
        peer = peer.ipv4_mapped
    return any(peer in ipaddress.ip_network(proxy, strict=False) for proxy in trusted_proxies)


def _nearest(value: str | None) -> str:
    """The value our own proxy added: the last of a comma-separated list.

    Each proxy appends to ``X-Forwarded-*``; earlier entries came from further
    away (possibly from the client itself) and are not vouched for by the proxy
    we trust.
    """
    if not value:
        return ""
    return value.rsplit(",", 1)[-1].strip()


def _with_port(netloc: str, port: str, scheme: str) -> str:
    if netloc.startswith("[") and "]" in netloc:
        host = netloc[: netloc.index("]") + 1]  # an IPv6 literal has colons of its own
    else:
        host = netloc.partition(":")[0]
    # Twilio signs the URL as it was configured; the validator tries it with and
    # without the default port, so leaving the default out matches both.
    if _DEFAULT_PORTS.get(scheme) == port:
        return host
    return f"{host}:{port}"


def public_url(
    *,
    path: str,
    query_string: str,
    headers: HeaderSource,
    remote_addr: str | None,
    public_base_url: str,
    trusted_proxies: Sequence[str],
) -> str:
    """The URL Twilio called, to check its signature against.

    ``path`` is the request path below the application root (Flask's
    ``request.path``) and ``query_string`` the raw query as received, because
    Twilio signs the URL exactly as it requested it. ``public_base_url`` may
    include a path prefix. ``X-Forwarded-Proto``, ``-Host``, ``-Port`` and
    ``-Prefix`` replace the matching parts of it only when ``remote_addr`` is
    one of ``trusted_proxies``.
    """
    base = urlsplit(public_base_url)
    scheme = base.scheme
    netloc = base.netloc
    prefix = base.path.rstrip("/")
    if _is_trusted(remote_addr, trusted_proxies):
        proto = _nearest(headers.get("X-Forwarded-Proto")).lower()
        if proto in _DEFAULT_PORTS:
            scheme = proto
        host = _nearest(headers.get("X-Forwarded-Host"))
        if host and _HOST.fullmatch(host):
            netloc = host
        port = _nearest(headers.get("X-Forwarded-Port"))
        if port.isdigit() and 0 < int(port) < 65536:
            netloc = _with_port(netloc, port, scheme)
        forwarded_prefix = _nearest(headers.get("X-Forwarded-Prefix"))
        if forwarded_prefix and _PREFIX.fullmatch(forwarded_prefix):
            prefix = forwarded_prefix.rstrip("/")
    url = f"{scheme}://{netloc}{prefix}{path}"
    return f"{url}?{query_string}" if query_string else url


def verify(url: str, body: WebhookForm | bytes, signature: str | None, token: str) -> bool:
    """Whether ``signature`` is Twilio's signature of this request.

    ``body`` is the decoded form of an ``application/x-www-form-urlencoded``
    request, or the raw bytes of a JSON request; Twilio signs a JSON body by
    putting its SHA-256 in the URL's ``bodySHA256`` parameter, so a JSON body
    without one cannot be authenticated and is refused.
    """
    if not signature or not token:
        # An empty token would make the HMAC key public; never accept it.
        return False
    validator = RequestValidator(token)
    if isinstance(body, bytes):
        if "bodySHA256" not in parse_qs(urlsplit(url).query):
            return False
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return bool(validator.validate(url, text, signature))
    # validate() tries the URL with and without its port, computing the HMAC
    # over every field twice. The URL exactly as requested is always one of
    # the two, and the one Twilio signs: checked first, the usual request
    # costs one HMAC, and one that fails it still gets validate()'s verdict.
    # As bytes: compare_digest refuses str with non-ASCII characters, and a
    # forged header may carry them.
    if hmac.compare_digest(validator.compute_signature(url, body).encode(), signature.encode()):
        return True
    return bool(validator.validate(url, body, signature))
