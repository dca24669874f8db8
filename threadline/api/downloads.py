"""A File's bytes as a download (`/files/{id}/content`, `/containers/{id}/files/{id}/content`).

The name goes in `Content-Disposition` both ways: `filename` with what Latin-1 can hold (a
header's bytes are Latin-1: a name beyond it would fail the response) and `filename*`, the
name itself in UTF-8 (RFC 6266), which clients prefer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

from starlette.responses import StreamingResponse

from threadline.domain.records import FileRecord


def download(record: FileRecord, chunks: AsyncIterator[bytes]) -> StreamingResponse:
    name = record["filename"]
    plain = name.encode("latin-1", "replace").decode("latin-1").replace('"', "'")
    headers = {
        "content-length": str(record["bytes"]),
        "content-disposition": (
            f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"
        ),
    }
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)
