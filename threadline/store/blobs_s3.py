"""File bytes in an S3-compatible object store (AWS S3, MinIO, Ceph, R2...), for deployments
where the API and worker processes run on many machines and no directory is shared.

boto3, the AWS SDK, does the protocol: request signing, the credential chain (the standard
`AWS_*` environment variables, config files, instance roles — credentials are never stored in
the database or in Threadline's settings), retries, and multipart uploads of big files through
its transfer manager. boto3 is synchronous, so each call runs in a thread
(`asyncio.to_thread`): an async SDK (aiobotocore) would pin botocore to its own narrow range of
versions, and a blob costs only a few calls, each spent waiting on the network with the GIL
released, while the transfer manager already sends a big file's parts on threads of its own.
A boto3 client is safe to share between threads; one is made per store.

The bucket is not created here: it must exist (with the access policy and lifecycle the
operator wants) before the service starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from threadline.store.blobs import DEFAULT_CHUNK_SIZE, BlobMissing, check_chunk_size, check_key

# The error codes S3 answers for an absent object: GetObject says NoSuchKey, HeadObject (which
# has no body) only its status.
_ABSENT = {"NoSuchKey", "404", "NotFound"}


def _absent(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in _ABSENT


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        transfer_config: TransferConfig | None = None,
        session: boto3.session.Session | None = None,
    ):
        """`prefix` puts every key under a folder of the bucket (`threadline/`), so that one
        bucket can serve several deployments; `endpoint_url` names an S3-compatible server.
        `transfer_config` tunes multipart uploads (boto3's defaults otherwise). `session` is
        the boto3 session the client is made from (one for a named profile, or one shared by
        many stores, which then load the service's description once); by default a new one,
        which finds credentials along the standard chain."""
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.transfer_config = transfer_config or TransferConfig()
        # The pool holds a connection for each of the transfer manager's threads besides the
        # ones that concurrent downloads and small requests take.
        pool = self.transfer_config.max_request_concurrency + 16
        self.client: Any = (session or boto3.session.Session()).client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(retries={"mode": "standard"}, max_pool_connections=pool),
        )

    def object_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def put_file(self, key: str, source: Path) -> None:
        await asyncio.to_thread(self._put_file, self.object_key(key), Path(source))

    async def put_bytes(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(
            self.client.put_object, Bucket=self.bucket, Key=self.object_key(key), Body=data
        )

    async def read(self, key: str) -> bytes:
        body = await asyncio.to_thread(self._open, key)
        try:
            data: bytes = await asyncio.to_thread(body.read)
            return data
        finally:
            body.close()

    async def stream(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        check_chunk_size(chunk_size)
        body = await asyncio.to_thread(self._open, key)
        try:
            while chunk := await asyncio.to_thread(body.read, chunk_size):
                yield chunk
        finally:
            # Abandoned early, the connection is closed rather than drained.
            body.close()

    async def delete(self, key: str) -> None:
        # S3 answers a delete of an absent key with success already.
        await asyncio.to_thread(
            self.client.delete_object, Bucket=self.bucket, Key=self.object_key(key)
        )

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._exists, self.object_key(key))

    def _put_file(self, object_key: str, source: Path) -> None:
        if not source.is_file():
            raise FileNotFoundError(f"no file to upload at {source}")
        self.client.upload_file(str(source), self.bucket, object_key, Config=self.transfer_config)
        source.unlink()

    def _open(self, key: str) -> Any:
        """The object's body, a stream still to be read (botocore's `StreamingBody`)."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _absent(exc):
                raise BlobMissing(key) from exc
            raise
        return response["Body"]

    def _exists(self, object_key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if _absent(exc):
                return False
            raise
        return True
