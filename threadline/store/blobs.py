"""Where uploaded files' bytes live: one `BlobStore` interface, a local directory behind it by
default, an S3-compatible object store (`blobs_s3.py`) when many machines share the files.

The database holds the file records; a blob holds only bytes, under a key the service makes
(`proj_x/file-abc`). Keys are checked the same way by every store, so a key that works on one
works on the other, and a key can never name a path outside the local store's directory.

The local store writes each blob whole or not at all: the bytes go to a temporary name in the
blob's own directory, are flushed to disk, and are renamed over the key (POSIX rename is
atomic), then the directory is flushed so the rename survives a crash. A reader therefore sees
the old blob or the new one, never a part of one, and an interrupted write leaves nothing
under the key. File IO runs in a thread (`asyncio.to_thread`): a blob may be 512 MB, and the
event loop serves every other request meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from threadline.config import Settings

DEFAULT_CHUNK_SIZE = 1 << 20
# S3's own limit on a key's length; the local store keeps to it too, so keys stay portable.
MAX_KEY_BYTES = 1024
_COPY_BUFFER = 1 << 20


class BlobMissing(LookupError):
    """No blob under the key: its record and its bytes disagree (or it was deleted)."""

    def __init__(self, key: str):
        super().__init__(f"no blob stored under {key!r}")
        self.key = key


class BlobStore(Protocol):
    async def put_file(self, key: str, source: Path) -> None:
        """Store the finished file at `source` (an upload spooled to disk) under `key`,
        replacing what was there. The store takes the file over: on success `source` is gone
        (moved into place, or copied or uploaded and then removed); on failure it is left
        where it was for the caller to remove, and nothing is stored under `key`."""
        ...

    async def put_bytes(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, replacing what was there (files the service writes)."""
        ...

    async def read(self, key: str) -> bytes:
        """The whole blob; raises `BlobMissing`."""
        ...

    def stream(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        """The blob in chunks of at most `chunk_size` bytes (none for an empty blob).

        The blob is opened at the first `__anext__`, which raises `BlobMissing`: a caller that
        must answer 404 before it sends a status line checks `exists` first. Once open, the
        stream reads the version that was current then, even if the key is overwritten or
        deleted meanwhile. Both stores return an async generator: `aclose` it when abandoning
        it early, to let go of the open file or connection at once."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob; a key with no blob is fine (deleting is idempotent)."""
        ...

    async def exists(self, key: str) -> bool: ...


def check_key(key: str) -> str:
    """Refuse keys that could name something other than a blob of this store.

    Segments are separated by `/`; none may be empty or start with `.` (which rules out `.`
    and `..`, and keeps the local store's temporary names, which start with `.`, apart from
    every key). Backslashes and NUL are refused because some filesystems and tools read them
    as separators or ends of names."""
    if not isinstance(key, str) or not key:
        raise ValueError("a blob key must be a non-empty string")
    if "\x00" in key or "\\" in key:
        raise ValueError(f"a blob key may not hold NUL or a backslash: {key!r}")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ValueError(f"a blob key may be at most {MAX_KEY_BYTES} bytes long")
    if key.startswith("/"):
        raise ValueError(f"a blob key may not be absolute: {key!r}")
    for segment in key.split("/"):
        if not segment or segment.startswith("."):
            raise ValueError(f"a blob key's segments may not be empty or start with '.': {key!r}")
    return key


def check_chunk_size(chunk_size: int) -> int:
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    return chunk_size


class LocalBlobStore:
    """Blobs as files under one directory (`THREADLINE_FILES_DIR`), one file per key.

    Empty directories are left behind when their last blob is deleted: removing them would
    race a concurrent `put` into the same directory. A key may not also be a directory of
    other keys (`a` and `a/b`); the service's keys never are."""

    def __init__(self, root: Path | str):
        self.root = Path(root).absolute()

    def path_for(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    async def put_file(self, key: str, source: Path) -> None:
        await asyncio.to_thread(self._put_file, self.path_for(key), Path(source))

    async def put_bytes(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(
            self._write_atomically, self.path_for(key), lambda out: out.write(data)
        )

    async def read(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except _MISSING as exc:
            raise BlobMissing(key) from exc

    async def stream(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        path = self.path_for(key)
        check_chunk_size(chunk_size)
        try:
            file = await asyncio.to_thread(path.open, "rb", buffering=0)
        except _MISSING as exc:
            raise BlobMissing(key) from exc
        try:
            while chunk := await asyncio.to_thread(file.read, chunk_size):
                yield chunk
        finally:
            file.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, self.path_for(key))

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_for(key).is_file)

    def _put_file(self, path: Path, source: Path) -> None:
        # Opened first, so that a missing source fails before anything is made.
        with source.open("rb") as incoming:
            if not _is_regular(incoming):
                raise ValueError(f"{source} is not a regular file")
            self._ensure_directory(path.parent)
            # Flushed before the rename: the key must never name bytes still only in memory.
            os.fsync(incoming.fileno())
            try:
                os.replace(source, path)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                self._write_atomically(
                    path, lambda out: shutil.copyfileobj(incoming, out, _COPY_BUFFER)
                )
                source.unlink()
                return
        _fsync_directory(path.parent)

    def _write_atomically(self, path: Path, fill: Callable[[IO[bytes]], object]) -> None:
        self._ensure_directory(path.parent)
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".part"
        )
        try:
            with os.fdopen(handle, "wb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        _fsync_directory(path.parent)

    def _ensure_directory(self, directory: Path) -> None:
        """Make the missing directories down to `directory`, each flushed into its parent so
        that a blob written into it is not lost with it in a crash."""
        missing: list[Path] = []
        while not directory.is_dir():
            missing.append(directory)
            directory = directory.parent
        for new in reversed(missing):
            with contextlib.suppress(FileExistsError):  # another put made it meanwhile
                new.mkdir()
            _fsync_directory(new.parent)

    @staticmethod
    def _delete(path: Path) -> None:
        # Not flushed: a deletion lost in a crash leaves bytes no record names, which costs
        # space but no correctness.
        if path.is_file():
            path.unlink(missing_ok=True)


# A key whose file is absent, or whose path runs through a blob or ends at a directory of
# other keys: no blob under it, either way.
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


def _is_regular(file: IO[bytes]) -> bool:
    return stat.S_ISREG(os.fstat(file.fileno()).st_mode)


def _fsync_directory(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def blob_store_for(settings: Settings) -> BlobStore:
    """The S3-compatible store when a bucket is set, else the local directory."""
    if settings.files_s3_bucket:
        from threadline.store.blobs_s3 import S3BlobStore  # boto3 loads only when used

        return S3BlobStore(
            bucket=settings.files_s3_bucket,
            prefix=settings.files_s3_prefix,
            endpoint_url=settings.files_s3_endpoint_url,
            region=settings.files_s3_region,
        )
    return LocalBlobStore(settings.files_directory())
