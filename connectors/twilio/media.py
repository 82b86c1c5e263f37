"""Recordings and MMS/WhatsApp media fetched from Twilio with the account's credentials.

Twilio keeps a call's recording and the pictures of an MMS; a webhook names
them by URL (``RecordingUrl`` with ``.mp3``, ``MediaUrlN``), and Twilio
enforces HTTP Basic authentication on those URLs: the account SID and the
auth token. The URL arrives in a request body, so it is not trusted: the
credentials go only to ``[twilio] api_base_url`` (Twilio's REST API), and only
for this account's own resources (``/2010-04-01/Accounts/<sid>/...``). A URL
anywhere else is refused without being requested.

Twilio answers a media URL with a redirect to a short-lived address at its
storage provider; that address is followed without the credentials (it needs
none, and they must not leave Twilio's API host), over HTTPS only. The whole
fetch is bounded in time (``media_timeout``) and size (``media_max_bytes``).
"""

from __future__ import annotations

import time
from urllib.parse import urljoin, urlsplit

import requests

from connectors.twilio.settings import TwilioSettings, is_loopback
from hub.contract import FetchedMedia, MediaProblem, MediaUnavailable

#: Redirects followed (Twilio sends one, to its storage provider).
MAX_REDIRECTS = 3
_CHUNK = 64 * 1024
_GONE = frozenset({404, 410})
_REFUSED = frozenset({401, 403})


class TwilioMediaFetcher:
    """Fetches a Twilio media URL of this account, with HTTP Basic auth, within limits."""

    def __init__(self, settings: TwilioSettings, token: str, session: requests.Session | None = None) -> None:
        self._account_sid = settings.account_sid
        self._auth = (settings.account_sid, token)
        base = urlsplit(settings.api_base_url)
        self._origin = (base.scheme, base.hostname, base.port)
        self._base_url = settings.api_base_url
        self._own_prefix = f"/2010-04-01/Accounts/{settings.account_sid}/"
        self._max_bytes = settings.media_max_bytes
        self._timeout = settings.media_timeout
        self._session = session or requests.Session()
        # Redirects are followed here, by hand, so that the credentials never
        # ride along to another host; proxies and .netrc from the environment
        # are not consulted for the same reason.
        self._session.trust_env = False

    def fetch(self, url: str) -> FetchedMedia:
        """The file at ``url``; raises :class:`MediaUnavailable` naming what went wrong."""
        what = "recording" if "/Recordings/" in url else "file"
        self._check_own(url)
        deadline = time.monotonic() + self._timeout
        target, authenticated = url, True
        for _ in range(MAX_REDIRECTS + 1):
            response = self._get(target, authenticated, deadline, what)
            with response:
                if response.is_redirect:
                    location = response.headers.get("Location", "")
                    target = urljoin(target, location)
                    authenticated = self._is_own(target)
                    if not authenticated:
                        self._check_storage(target, what)
                    continue
                self._check_status(response, what, authenticated)
                content = self._read(response, deadline, what)
                declared = response.headers.get("Content-Type", "application/octet-stream")
                return FetchedMedia(content=content, content_type=declared)
        raise MediaUnavailable(
            MediaProblem.UNREACHABLE, f"Twilio redirected the {what} more than {MAX_REDIRECTS} times."
        )

    # -- where credentials may go ----------------------------------------------------------

    def _is_own(self, url: str) -> bool:
        parts = urlsplit(url)
        return (
            (parts.scheme, parts.hostname, parts.port) == self._origin
            and not parts.username
            and not parts.password
            and parts.path.startswith(self._own_prefix)
        )

    def _check_own(self, url: str) -> None:
        if not self._is_own(url):
            host = urlsplit(url).hostname or url[:80]
            raise MediaUnavailable(
                MediaProblem.NOT_ALLOWED,
                f"Corridor fetches files only from Twilio's API for this account ({self._base_url}), not from {host}.",
            )

    def _check_storage(self, url: str, what: str) -> None:
        """A redirect off the API host: followed without credentials, over HTTPS (http only loopback to loopback)."""
        parts = urlsplit(url)
        api_on_loopback = self._origin[0] == "http" and is_loopback(self._origin[1] or "")
        plain_allowed = api_on_loopback and parts.scheme == "http" and is_loopback(parts.hostname or "")
        if not parts.hostname or not (parts.scheme == "https" or plain_allowed):
            raise MediaUnavailable(
                MediaProblem.UNREACHABLE, f"Twilio sent the {what} to an address Corridor does not follow ({url[:80]})."
            )

    # -- the request ---------------------------------------------------------------------------

    def _get(self, url: str, authenticated: bool, deadline: float, what: str) -> requests.Response:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._timed_out(what)
        try:
            return self._session.get(
                url,
                auth=self._auth if authenticated else None,
                allow_redirects=False,
                stream=True,
                timeout=(min(remaining, 10.0), remaining),
                headers={"Accept": "*/*"},
            )
        except requests.Timeout:
            raise self._timed_out(what) from None
        except requests.RequestException as exc:
            raise MediaUnavailable(
                MediaProblem.UNREACHABLE,
                f"Twilio could not be reached for the {what} ({type(exc).__name__}).",
            ) from None

    def _check_status(self, response: requests.Response, what: str, authenticated: bool) -> None:
        status = response.status_code
        if status == 200:
            return
        if status in _GONE:
            raise MediaUnavailable(
                MediaProblem.GONE, f"Twilio no longer has this {what} (HTTP {status}): it was deleted there."
            )
        if status in _REFUSED and authenticated:
            raise MediaUnavailable(
                MediaProblem.REFUSED,
                f"Twilio refused Corridor's credentials for this {what} (HTTP {status}): "
                "check [twilio] account_sid and auth_token.",
            )
        raise MediaUnavailable(MediaProblem.UNREACHABLE, f"Twilio answered HTTP {status} for this {what}; try later.")

    def _read(self, response: requests.Response, deadline: float, what: str) -> bytes:
        too_large = MediaUnavailable(
            MediaProblem.TOO_LARGE, f"The {what} is larger than [twilio] media_max_bytes ({self._max_bytes} bytes)."
        )
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise too_large
        body = bytearray()
        try:
            for chunk in response.iter_content(_CHUNK):
                body += chunk
                if len(body) > self._max_bytes:
                    raise too_large
                # The read timeout bounds each wait, not the whole: a server
                # trickling bytes must still finish within media_timeout.
                if time.monotonic() > deadline:
                    raise self._timed_out(what)
        except requests.RequestException:
            raise self._timed_out(what) from None
        return bytes(body)

    def _timed_out(self, what: str) -> MediaUnavailable:
        return MediaUnavailable(
            MediaProblem.UNREACHABLE, f"Twilio did not deliver the {what} within {self._timeout:g} s; try again."
        )
