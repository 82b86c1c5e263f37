"""Where a webhook may be sent: public http(s) addresses only, unless a host is allowed by name.

A subscription URL is an admin's input, but the request leaves from inside
the network Corridor runs in: without a check, ``http://169.254.169.254/`` or
``http://10.0.0.5:9200/`` would make Corridor a proxy into it (SSRF). So:

* only ``http`` and ``https``, no credentials in the URL;
* every address the host resolves to must be public (``is_global``); one
  loopback, private, link-local, multicast or reserved address refuses the
  URL, unless the URL's host is in [webhooks] allowed_hosts;
* the check runs when the subscription is saved and again at every attempt
  (DNS answers change), and the request connects to the address that was
  checked, not to a second lookup of the name (DNS rebinding);
* redirects are not followed (a 3xx is a failed attempt): a public URL could
  otherwise redirect into the private network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

Resolver = Callable[[str, int], Sequence[str]]


class TargetRefused(ValueError):
    """The URL may not be sent to; the message says why."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (an address) and what to ask for (host, path)."""

    scheme: str
    host: str
    port: int
    path: str
    address: str

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetRefused(f"{host} does not resolve: {exc.strerror}") from None
    return sorted({str(info[4][0]) for info in infos})


def _parts(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise TargetRefused("must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("must not carry credentials; the signature authenticates Corridor")
    host = (parts.hostname or "").lower()
    if not host:
        raise TargetRefused("has no host")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port or (443 if scheme == "https" else 80), path


def check_url(url: str, allowed_hosts: Sequence[str], resolver: Resolver | None = None) -> Target:
    """The URL checked and resolved; :class:`TargetRefused` if it may not be sent to."""
    scheme, host, port, path = _parts(url)
    addresses = list((resolver or system_resolver)(host, port))
    if not addresses:
        raise TargetRefused(f"{host} does not resolve")
    if host not in {h.lower().strip("[]") for h in allowed_hosts}:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not ip.is_global or ip.is_multicast:
                raise TargetRefused(
                    f"{host} resolves to {address}, a non-public address; "
                    "add the host to [webhooks] allowed_hosts to allow it"
                )
    return Target(scheme=scheme, host=host, port=port, path=path, address=addresses[0])
