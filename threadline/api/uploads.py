"""Reads a multipart upload (`POST /files`) into a temporary file, counting its bytes.

Starlette parses the form (with python-multipart, streamed: a part past a megabyte goes to
a temporary file, never held in memory); the file part is then copied to a named temporary
file the blob store can take whole. A client that goes away mid-upload leaves neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

from starlette.datastructures import UploadFile
from starlette.requests import Request

from threadline.domain.errors import InvalidRequest
from threadline.service.files import Upload

COPY_CHUNK = 1 << 20


def _spool(source: IO[bytes]) -> tuple[Path, int]:
    handle, name = tempfile.mkstemp(prefix="threadline-upload-")
    try:
        with os.fdopen(handle, "wb") as target:
            source.seek(0)
            shutil.copyfileobj(source, target, COPY_CHUNK)
            size = target.tell()
    except BaseException:
        os.unlink(name)
        raise
    return Path(name), size


@contextlib.asynccontextmanager
async def received_upload(request: Request) -> AsyncIterator[Upload]:
    """The upload's file, purpose and name; its spooled bytes are removed on the way out."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidRequest(
            "Uploads are sent as multipart/form-data with the fields 'file' and 'purpose'.",
            param="file",
        )
    async with request.form(max_files=1, max_fields=16) as form:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise InvalidRequest("Missing required parameter: 'file'.", param="file")
        for field in form:
            if field.startswith("expires_after"):
                raise InvalidRequest(
                    "expires_after on files is not supported yet.",
                    param="expires_after",
                    code="unsupported_parameter",
                )
        purpose = form.get("purpose")
        named = form.get("filename")
        filename = named if isinstance(named, str) and named else part.filename
        path, size = await asyncio.to_thread(_spool, part.file)
    try:
        yield Upload(
            filename=filename or "",
            purpose=purpose if isinstance(purpose, str) else "",
            path=path,
            size=size,
        )
    finally:
        path.unlink(missing_ok=True)
