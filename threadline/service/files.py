"""Files: bytes a user uploads once and names by id in messages, vector stores and tools.

A file is made in two steps that cannot leave half of one behind: its bytes are stored
whole under a new key first, then its row is written; a row that fails to be written takes
its bytes with it. Deleting goes the other way round (row first, bytes after the commit),
so no row ever names bytes that are gone.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from threadline.domain.clock import now
from threadline.domain.errors import InvalidRequest, NotFound, TooLarge
from threadline.domain.ids import IdKind, new_id
from threadline.domain.records import FileRecord, Page, PageRequest
from threadline.store.base import Store
from threadline.store.blobs import BlobStore

log = logging.getLogger(__name__)

# What a user may upload a file for; `assistants_output` is the service's own (files a tool
# wrote), never accepted in an upload.
UPLOAD_PURPOSES = ("assistants", "vision", "batch", "user_data", "fine-tune")
PURPOSES = (*UPLOAD_PURPOSES, "assistants_output")
MAX_FILENAME_CHARS = 255


@dataclass(frozen=True)
class Upload:
    """An upload as received: its bytes spooled to `path` (the caller's to remove)."""

    filename: str
    purpose: str
    path: Path
    size: int


def check_purpose(purpose: str | None, param: str = "purpose") -> str:
    if not purpose:
        raise InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    if purpose not in UPLOAD_PURPOSES:
        allowed = ", ".join(f"'{p}'" for p in UPLOAD_PURPOSES)
        raise InvalidRequest(
            f"Invalid value for '{param}': '{purpose}'. Supported values are: {allowed}.",
            param=param,
            code="invalid_value",
        )
    return purpose


def check_filename(filename: str | None) -> str:
    """A name to show and to keep in a sandbox's folder: no path, no control characters."""
    if not filename or not filename.strip():
        raise InvalidRequest("The uploaded file has no filename.", param="file")
    if "/" in filename or "\\" in filename or any(ord(ch) < 32 for ch in filename):
        raise InvalidRequest(
            "Invalid filename: it may not contain path separators or control characters.",
            param="file",
            code="invalid_value",
        )
    if filename in (".", ".."):
        raise InvalidRequest("Invalid filename.", param="file", code="invalid_value")
    if len(filename) > MAX_FILENAME_CHARS:
        raise InvalidRequest(
            f"Invalid filename: longer than {MAX_FILENAME_CHARS} characters.", param="file"
        )
    return filename


class FileService:
    def __init__(self, store: Store, blobs: BlobStore, max_bytes: int):
        self.store = store
        self.blobs = blobs
        self.max_bytes = max_bytes

    def check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise TooLarge(
                f"The file is larger than the {self.max_bytes} bytes this server accepts "
                "(THREADLINE_MAX_FILE_BYTES).",
                param="file",
                code="file_too_large",
            )

    async def create(self, project: str, upload: Upload) -> FileRecord:
        check_filename(upload.filename)
        check_purpose(upload.purpose)
        self.check_size(upload.size)
        file_id = new_id(IdKind.FILE)
        file = FileRecord(
            id=file_id,
            created_at=now(),
            bytes=upload.size,
            filename=upload.filename,
            purpose=upload.purpose,
            status="processed",
            status_details=None,
            expires_at=None,
            blob_key=f"{project}/{file_id}",
        )
        await self.blobs.put_file(file["blob_key"], upload.path)
        try:
            async with self.store.transaction() as tx:
                await tx.insert_file(project, file)
        except BaseException:
            await self.blobs.delete(file["blob_key"])
            raise
        return file

    async def create_from_bytes(
        self, project: str, filename: str, purpose: str, data: bytes
    ) -> FileRecord:
        """A file the service writes itself (a tool's output)."""
        file_id = new_id(IdKind.FILE)
        file = FileRecord(
            id=file_id,
            created_at=now(),
            bytes=len(data),
            filename=check_filename(filename),
            purpose=purpose,
            status="processed",
            status_details=None,
            expires_at=None,
            blob_key=f"{project}/{file_id}",
        )
        await self.blobs.put_bytes(file["blob_key"], data)
        try:
            async with self.store.transaction() as tx:
                await tx.insert_file(project, file)
        except BaseException:
            await self.blobs.delete(file["blob_key"])
            raise
        return file

    async def get(self, project: str, file_id: str) -> FileRecord:
        async with self.store.transaction(durable=False) as tx:
            file = await tx.get_file(project, file_id)
        if file is None:
            raise NotFound("file", file_id)
        return file

    async def list(
        self, project: str, page: PageRequest, purpose: str | None = None
    ) -> Page[FileRecord]:
        if purpose is not None and purpose not in PURPOSES:
            raise InvalidRequest(f"Invalid value for 'purpose': '{purpose}'.", param="purpose")
        async with self.store.transaction(durable=False) as tx:
            return await tx.page_files(project, page, purpose)

    async def delete(self, project: str, file_id: str) -> None:
        async with self.store.transaction() as tx:
            file = await tx.delete_file(project, file_id)
        if file is None:
            raise NotFound("file", file_id)
        try:
            await self.blobs.delete(file["blob_key"])
        except Exception:
            # The row is gone, so nothing names these bytes: left over, never shown.
            log.exception("file %s: its bytes could not be removed", file_id)

    async def content(self, project: str, file_id: str) -> tuple[FileRecord, AsyncIterator[bytes]]:
        file = await self.get(project, file_id)
        return file, self.blobs.stream(file["blob_key"])

    async def read(self, project: str, file_id: str) -> tuple[FileRecord, bytes]:
        file = await self.get(project, file_id)
        return file, await self.blobs.read(file["blob_key"])
