"""A Twilio HTTP transport that records requests and answers from a script.

This is the test suite's one fake, and only because Twilio's cloud is
unreachable from here: everything above the transport -- ``twilio.rest.Client``,
its URL building, form encoding, authentication and its turning of error answers
into ``TwilioRestException`` -- is Twilio's real code, passed this client as
``Client(sid, token, http_client=RecordingHttpClient())``.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from twilio.http import HttpClient
from twilio.http.response import Response


@dataclass
class RecordedRequest:
    """One request the Twilio client made."""

    method: str
    url: str
    data: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    auth: tuple[str, str] | None = None


class RecordingHttpClient(HttpClient):  # type: ignore[misc]  # HttpClient is untyped
    """Records every request; answers with queued responses, else a queued message.

    ``fail_with`` makes the next request raise instead (a network failure).
    """

    def __init__(self) -> None:
        super().__init__(logging.getLogger("tests.twilio.http"), is_async=False)
        self.requests: list[RecordedRequest] = []
        self._answers: deque[Response] = deque()
        self.fail_with: BaseException | None = None

    def answer(self, status: int, payload: dict[str, Any]) -> None:
        """Queue the answer to the next request, as Twilio would send it."""
        self._answers.append(Response(status, json.dumps(payload)))

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        self.requests.append(
            RecordedRequest(
                method=method.upper(),
                url=uri,
                data=dict(data or {}),
                params=dict(params or {}),
                auth=auth,
            )
        )
        if self.fail_with is not None:
            raise self.fail_with
        if self._answers:
            return self._answers.popleft()
        return Response(201, json.dumps(_created_message(uri, data or {})))


def _created_message(uri: str, data: dict[str, object]) -> dict[str, Any]:
    """What Twilio answers to a successful Messages.json POST (the fields used)."""
    account_sid = uri.split("/Accounts/", 1)[1].split("/", 1)[0]
    return {
        "sid": "SM" + "0123456789abcdef" * 2,
        "account_sid": account_sid,
        "to": data.get("To"),
        "from": data.get("From"),
        "body": data.get("Body"),
        "status": "queued",
        "num_segments": "1",
        "num_media": "0",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "error_code": None,
        "error_message": None,
    }
