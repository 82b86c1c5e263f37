"""Attachments: the bytes Corridor keeps, served to agents who may read the customer.

Inline images of an email (``cid:``) are shown from here, so displaying a
message never asks another server for anything.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Response, abort
from flask.typing import ResponseReturnValue

from hub.models import AttachmentBlob, AttachmentRecord
from hub.runtime import current_runtime
from hub.web.access import requires
from hub.web.api.blueprint import api

#: Shown in the page (inline images); anything else is downloaded. SVG can
#: carry script and remote references, so it is downloaded too.
_INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"})


@api.get("/attachments/<int:attachment_id>")
@requires("customers.read")
def get_attachment(attachment_id: int) -> ResponseReturnValue:
    """An attachment's bytes, as a download (images inline), never sniffed or run."""
    with current_runtime().database.read() as session:
        record = session.get(AttachmentRecord, attachment_id)
        if record is None or record.sha256 is None:
            abort(404, description=f"no stored attachment {attachment_id}")
        blob = session.get(AttachmentBlob, record.sha256)
        if blob is None:
            abort(404, description=f"no stored attachment {attachment_id}")
        content_type = record.content_type.lower().split(";")[0].strip()
        inline = content_type in _INLINE_TYPES
        response = Response(blob.content, content_type=content_type if inline else "application/octet-stream")
        response.headers["Content-Disposition"] = _disposition(record.filename, inline)
        response.headers["X-Content-Type-Options"] = "nosniff"
        # Opened directly, it is still no page: no script, nothing loaded.
        response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response.headers["Cache-Control"] = "private, max-age=3600"
        return response


def _disposition(filename: str, inline: bool) -> str:
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename) or "file"
    return f"{'inline' if inline else 'attachment'}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
