"""Files kept in an S3-compatible store (`THREADLINE_FILES_S3_BUCKET`), end to end: a real
S3 server the test starts (moto's), a live Threadline server that keeps its files' bytes
there, the openai SDK: upload, read back, index into a vector store, delete."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.live import ServerFactory, openai_client
from support.s3_server import S3Server

DATA = b"The archive in the bucket says the harbour opens at six."


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with S3Server(tmp_path_factory.mktemp("s3") / "moto.log") as server:
        yield server


def _objects(s3: S3Server, bucket: str) -> list[str]:
    listed: dict[str, Any] = s3.client().list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_files_live_in_the_bucket_and_leave_it_when_deleted(
    start_server: ServerFactory, s3: S3Server
) -> None:
    bucket = s3.create_bucket()
    server = start_server(
        THREADLINE_FILES_S3_BUCKET=bucket,
        THREADLINE_FILES_S3_PREFIX="threadline",
        THREADLINE_FILES_S3_ENDPOINT_URL=s3.endpoint_url,
        THREADLINE_FILES_S3_REGION=s3.region,
        AWS_DEFAULT_REGION=s3.region,
        **S3Server.aws_env,
    )
    client = openai_client(server)

    file = client.files.create(file=("harbour.txt", DATA), purpose="assistants")
    assert _objects(s3, bucket) == [f"threadline/default/{file.id}"]
    assert client.files.content(file.id).read() == DATA
    store = client.vector_stores.create(name="from s3", file_ids=[file.id])
    done = client.vector_stores.files.poll(file.id, vector_store_id=store.id, poll_interval_ms=50)
    assert done.status == "completed", done.last_error
    assert [h.file_id for h in client.vector_stores.search(store.id, query="harbour").data] == [
        file.id
    ]

    client.files.delete(file.id)
    assert _objects(s3, bucket) == []
    assert not server.files_dir.exists()
