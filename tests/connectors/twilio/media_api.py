"""A loopback HTTP server standing in for Twilio's media API: recordings and message media.

Twilio's cloud cannot run here, so this serves what it would at the same
paths (``/2010-04-01/Accounts/<sid>/Recordings/<RE...>.mp3``,
``.../Messages/<MM...>/Media/<ME...>``), over real HTTP: it checks HTTP Basic
credentials as Twilio does (401 without the account SID and auth token), 404
for a file it does not have (a deleted recording), and can answer a media URL
as Twilio does, with a redirect to its storage provider that needs no
credentials. Every request is recorded, with the credentials it carried.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.connectors.twilio.samples import ACCOUNT_SID, AUTH_TOKEN

STORAGE_PREFIX = "/storage/"


@dataclass
class MediaRequest:
    path: str
    #: The (user, password) of the Authorization header, or None.
    credentials: tuple[str, str] | None


@dataclass
class MediaApi:
    """The server's files and what it was asked; ``url`` is its base URL."""

    url: str = ""
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    requests: list[MediaRequest] = field(default_factory=list)
    #: Serve message media as Twilio does: a redirect to storage (no credentials needed there).
    redirect_media: bool = True
    #: Seconds to wait before answering (a provider that does not answer in time).
    delay: float = 0.0

    def recording_url(self, recording_sid: str) -> str:
        """The RecordingUrl Twilio posts (without the format)."""
        return f"{self.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}"

    def add_recording(self, recording_sid: str, content: bytes) -> str:
        self.files[f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}.mp3"] = (content, "audio/mpeg")
        return self.recording_url(recording_sid)

    def add_media(self, message_sid: str, media_sid: str, content: bytes, content_type: str) -> str:
        path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message_sid}/Media/{media_sid}"
        self.files[path] = (content, content_type)
        return self.url + path

    def delete_everything(self) -> None:
        """What Twilio does when the account's retention deletes the recordings."""
        self.files.clear()

    def asked_for(self, fragment: str) -> int:
        return sum(1 for r in self.requests if fragment in r.path)


def _credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user, password


@contextmanager
def media_api() -> Iterator[MediaApi]:
    """The stand-in, on a free loopback port, for the duration of the block."""
    api = MediaApi()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            credentials = _credentials(self.headers.get("Authorization"))
            api.requests.append(MediaRequest(self.path, credentials))
            if api.delay:
                time.sleep(api.delay)
            if self.path.startswith(STORAGE_PREFIX):
                # Twilio's storage provider: a signed, short-lived URL, no credentials.
                self._file(self.path.removeprefix(STORAGE_PREFIX.rstrip("/")))
                return
            if credentials != (ACCOUNT_SID, AUTH_TOKEN):
                self._answer(401, b'{"code": 20003, "message": "Authenticate"}', "application/json")
                return
            if api.redirect_media and "/Media/" in self.path and self.path in api.files:
                self.send_response(307)
                self.send_header("Location", f"{api.url}{STORAGE_PREFIX.rstrip('/')}{self.path}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._file(self.path)

        def _file(self, path: str) -> None:
            found = api.files.get(path)
            if found is None:
                self._answer(
                    404, b'{"code": 20404, "message": "The requested resource was not found"}', "application/json"
                )
            else:
                self._answer(200, *found)

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="twilio-media-api", daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
