"""Attachments: the bytes Corridor keeps, served to agents who may read the customer.

Files the provider keeps (recordings, MMS media) are fetched on first request
(hub.media) and kept from then on.

Inline images of an email (``cid:``) are shown from here, so displaying a
message never asks another server for anything.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Response, abort
from flask.typing import ResponseReturnValue

from hub.media import MediaUnavailable, open_attachment
from hub.runtime import current_runtime
from hub.web.access import requires
from hub.web.api.blueprint import api
from hub.web.errors import ApiError

#: Shown in the page (inline images); anything else is downloaded. SVG can
#: carry script and remote references, so it is downloaded too.
_INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"})


@api.get("/attachments/<int:attachment_id>")
@requires("customers.read")
def get_attachment(attachment_id: int) -> ResponseReturnValue:
    """An attachment's bytes, as a download (images inline), never sniffed or run.

    A file still at the provider (a recording, MMS media) is fetched with the
    account's credentials and kept; when it cannot be, 404 (gone, or nothing
    fetches it) or 502 (the provider failed) with the reason.
    """
    runtime = current_runtime()
    try:
        stored = open_attachment(runtime.database, runtime.registry.media_fetchers, attachment_id)
    except MediaUnavailable as exc:
        raise ApiError(exc.http_status, None, exc.message) from None
    if stored is None:
        abort(404, description=f"no attachment {attachment_id}")
    content_type = stored.content_type.lower().split(";")[0].strip()
    inline = content_type in _INLINE_TYPES
    response = Response(stored.content, content_type=content_type if inline else "application/octet-stream")
    response.headers["Content-Disposition"] = _disposition(stored.filename, inline)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Opened directly, it is still no page: no script, nothing loaded.
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


def _disposition(filename: str, inline: bool) -> str:
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename) or "file"
    return f"{'inline' if inline else 'attachment'}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
