"""The blob store's conformance suite, run against a local directory and against a real
S3-compatible server (moto's, started by the session), plus what only one of them does.

Interrupted writes are real ones: a file-size limit (RLIMIT_FSIZE) makes the kernel refuse
a write part-way, as a full disk would.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from pathlib import Path

import pytest
from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]
from botocore.exceptions import ClientError  # type: ignore[import-untyped]
from support.s3_server import S3Server

from tests.store.conftest import Runner
from threadline.config import Settings
from threadline.store.blobs import BlobMissing, BlobStore, LocalBlobStore, blob_store_for
from threadline.store.blobs_s3 import S3BlobStore

MiB = 1024 * 1024
KEY = "proj_x/file-abc"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with S3Server(tmp_path_factory.mktemp("s3") / "moto.log") as server:
        yield server


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The server, with its credentials where the store looks for them (the environment)."""
    for name, value in S3Server.aws_env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    return s3_server


def s3_store(s3: S3Server, transfer_config: TransferConfig | None = None) -> S3BlobStore:
    """A store on a new bucket of its own, under a key prefix."""
    return S3BlobStore(
        s3.create_bucket(),
        prefix="deployment-a",
        endpoint_url=s3.endpoint_url,
        region=s3.region,
        transfer_config=transfer_config,
        session=s3.session(),
    )


@pytest.fixture(params=["local", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "files")
    return s3_store(request.getfixturevalue("s3"))


def spooled(tmp_path: Path, data: bytes, name: str = "upload.part") -> Path:
    """An upload as the API leaves it: a finished file on disk."""
    path = tmp_path / name
    path.write_bytes(data)
    return path


async def collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


def files_under(root: Path) -> list[str]:
    """Every file below `root`, hidden ones too, as key-like paths."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# The conformance suite: what every store does.


def test_a_multi_megabyte_file_round_trips(blobs: BlobStore, tmp_path: Path, run: Runner) -> None:
    data = os.urandom(3 * MiB + 17)
    source = spooled(tmp_path, data)

    run(blobs.put_file(KEY, source))

    assert not source.exists(), "the store takes the spooled file over"
    assert run(blobs.exists(KEY))
    assert run(blobs.read(KEY)) == data
    chunks = run(collect(blobs.stream(KEY, chunk_size=MiB)))
    assert [len(chunk) for chunk in chunks] == [MiB, MiB, MiB, 17]
    assert b"".join(chunks) == data


def test_an_empty_file_round_trips(blobs: BlobStore, tmp_path: Path, run: Runner) -> None:
    run(blobs.put_file(KEY, spooled(tmp_path, b"")))
    run(blobs.put_bytes("proj_x/file-empty", b""))

    for key in (KEY, "proj_x/file-empty"):
        assert run(blobs.exists(key))
        assert run(blobs.read(key)) == b""
        assert run(collect(blobs.stream(key))) == []


def test_writing_a_key_again_replaces_its_bytes(
    blobs: BlobStore, tmp_path: Path, run: Runner
) -> None:
    run(blobs.put_bytes(KEY, b"first version"))
    run(blobs.put_bytes(KEY, b"second"))
    assert run(blobs.read(KEY)) == b"second"

    run(blobs.put_file(KEY, spooled(tmp_path, b"third, from a file")))

    assert run(blobs.read(KEY)) == b"third, from a file"
    assert b"".join(run(collect(blobs.stream(KEY, chunk_size=4)))) == b"third, from a file"


def test_keys_name_separate_blobs(blobs: BlobStore, run: Runner) -> None:
    keys = ["proj_a/file-1", "proj_b/file-1", "proj_a/file-2", "proj_é/fichier-ü", "top-level"]
    for key in keys:
        run(blobs.put_bytes(key, key.encode()))

    assert [run(blobs.read(key)) for key in keys] == [key.encode() for key in keys]


def test_a_missing_key_is_reported_as_missing(blobs: BlobStore, run: Runner) -> None:
    assert not run(blobs.exists(KEY))
    with pytest.raises(BlobMissing) as missing:
        run(blobs.read(KEY))
    assert missing.value.key == KEY
    with pytest.raises(BlobMissing):
        run(collect(blobs.stream(KEY)))


def test_a_key_above_or_below_a_blob_is_missing(blobs: BlobStore, run: Runner) -> None:
    """On a filesystem `proj_x` is a directory and `proj_x/file-abc/more` runs through a file;
    neither is a blob, on either store."""
    run(blobs.put_bytes(KEY, b"bytes"))

    for key in ("proj_x", f"{KEY}/more"):
        assert not run(blobs.exists(key))
        with pytest.raises(BlobMissing):
            run(blobs.read(key))
        run(blobs.delete(key))
    assert run(blobs.read(KEY)) == b"bytes"


def test_deleting_is_idempotent(blobs: BlobStore, run: Runner) -> None:
    run(blobs.put_bytes(KEY, b"bytes"))

    run(blobs.delete(KEY))
    assert not run(blobs.exists(KEY))
    with pytest.raises(BlobMissing):
        run(blobs.read(KEY))
    run(blobs.delete(KEY))
    run(blobs.delete("proj_x/never-written"))


def test_a_stream_reads_the_version_it_opened(blobs: BlobStore, run: Runner) -> None:
    """A download in progress is not spliced with a newer upload (or cut by a delete)."""
    old = os.urandom(3 * MiB)
    run(blobs.put_bytes(KEY, old))

    async def read_across_an_overwrite() -> bytes:
        chunks = blobs.stream(KEY, chunk_size=MiB)
        first = await anext(chunks)
        await blobs.put_bytes(KEY, b"new")
        rest = [chunk async for chunk in chunks]
        return first + b"".join(rest)

    assert run(read_across_an_overwrite()) == old
    assert run(blobs.read(KEY)) == b"new"


def test_a_stream_abandoned_early_can_be_closed(blobs: BlobStore, run: Runner) -> None:
    run(blobs.put_bytes(KEY, os.urandom(2 * MiB)))

    async def take_one_chunk() -> int:
        chunks = blobs.stream(KEY, chunk_size=MiB)
        assert isinstance(chunks, AsyncGenerator)
        first = await anext(chunks)
        await chunks.aclose()
        return len(first)

    assert run(take_one_chunk()) == MiB
    run(blobs.delete(KEY))
    assert not run(blobs.exists(KEY))


def test_a_missing_source_stores_nothing(blobs: BlobStore, tmp_path: Path, run: Runner) -> None:
    with pytest.raises(FileNotFoundError):
        run(blobs.put_file(KEY, tmp_path / "never-spooled"))

    assert not run(blobs.exists(KEY))
    if isinstance(blobs, LocalBlobStore):
        assert not blobs.root.exists() or files_under(blobs.root) == []


ESCAPING_KEYS = [
    "../outside",
    "proj_x/../../outside",
    "proj_x/..",
    "/etc/passwd",
    "proj_x\\..\\outside",
    "proj_x/file\x00.txt",
    "",
    "proj_x//file",
    "proj_x/",
    "./proj_x",
    "proj_x/.",
    ".hidden",
    "k" * 1025,
]


@pytest.mark.parametrize("key", ESCAPING_KEYS)
def test_keys_that_could_escape_are_refused(
    blobs: BlobStore, tmp_path: Path, run: Runner, key: str
) -> None:
    source = spooled(tmp_path, b"bytes")
    before = files_under(tmp_path)

    for attempt in (
        blobs.put_file(key, source),
        blobs.put_bytes(key, b"bytes"),
        blobs.read(key),
        blobs.exists(key),
        blobs.delete(key),
        collect(blobs.stream(key)),
    ):
        with pytest.raises(ValueError, match="blob key"):
            run(attempt)

    assert files_under(tmp_path) == before
    assert source.exists()


# The local directory.


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes past `limit` bytes into any file fail with EFBIG, part-way, as on a full disk.
    (SIGXFSZ, which would kill the process instead, is ignored meanwhile.)"""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def other_filesystem(tmp_path: Path) -> Path:
    """A folder on another filesystem than `tmp_path`, where a rename cannot reach."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a filesystem of its own")
    folder = shm / f"threadline-blobs-{os.getpid()}-{tmp_path.name}"
    folder.mkdir()
    return folder


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[Path]:
    folder = other_filesystem(tmp_path)
    try:
        yield folder
    finally:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


def test_local_blobs_are_files_under_the_key(tmp_path: Path, run: Runner) -> None:
    store = LocalBlobStore(tmp_path / "not" / "made" / "yet")
    source = spooled(tmp_path, b"bytes")
    inode = source.stat().st_ino

    run(store.put_file(KEY, source))

    stored = tmp_path / "not/made/yet/proj_x/file-abc"
    assert stored.read_bytes() == b"bytes"
    assert stored.stat().st_ino == inode, "on one filesystem the upload is moved, not copied"
    assert files_under(store.root) == [KEY]


def test_a_file_from_another_filesystem_is_copied(
    tmp_path: Path, elsewhere: Path, run: Runner
) -> None:
    store = LocalBlobStore(tmp_path / "files")
    data = os.urandom(2 * MiB + 5)
    source = spooled(elsewhere, data)

    run(store.put_file(KEY, source))

    assert not source.exists()
    assert run(store.read(KEY)) == data
    assert files_under(store.root) == [KEY]


def test_an_interrupted_write_leaves_the_old_blob_and_no_debris(
    tmp_path: Path, run: Runner
) -> None:
    store = LocalBlobStore(tmp_path / "files")
    run(store.put_bytes(KEY, b"old"))

    with file_size_limit(MiB), pytest.raises(OSError, match="too large"):
        run(store.put_bytes(KEY, os.urandom(3 * MiB)))
    with file_size_limit(MiB), pytest.raises(OSError, match="too large"):
        run(store.put_bytes("proj_x/file-new", os.urandom(3 * MiB)))

    assert run(store.read(KEY)) == b"old"
    assert not run(store.exists("proj_x/file-new"))
    assert files_under(store.root) == [KEY]


def test_an_interrupted_copy_leaves_nothing_and_keeps_the_source(
    tmp_path: Path, elsewhere: Path, run: Runner
) -> None:
    store = LocalBlobStore(tmp_path / "files")
    source = spooled(elsewhere, os.urandom(3 * MiB))

    with file_size_limit(MiB), pytest.raises(OSError, match="too large"):
        run(store.put_file(KEY, source))

    assert not run(store.exists(KEY))
    assert files_under(store.root) == []
    assert source.stat().st_size == 3 * MiB, "the caller still has the upload to clean up"


# The S3-compatible store.


def test_a_big_file_is_uploaded_in_parts(s3: S3Server, tmp_path: Path, run: Runner) -> None:
    parts = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    store = s3_store(s3, transfer_config=parts)
    data = os.urandom(11 * MiB)

    run(store.put_file(KEY, spooled(tmp_path, data)))

    head = s3.client().head_object(Bucket=store.bucket, Key=store.object_key(KEY))
    assert head["ETag"].endswith('-3"'), "a multipart upload's ETag counts its parts"
    assert run(store.read(KEY)) == data


def test_objects_live_under_the_prefix(s3: S3Server, run: Runner) -> None:
    store = s3_store(s3)

    run(store.put_bytes(KEY, b"bytes"))

    listed = s3.client().list_objects_v2(Bucket=store.bucket)
    assert [item["Key"] for item in listed["Contents"]] == ["deployment-a/proj_x/file-abc"]


def test_the_bucket_is_not_created_by_the_store(s3: S3Server, run: Runner) -> None:
    store = S3BlobStore("never-created", endpoint_url=s3.endpoint_url, region=s3.region)

    with pytest.raises(ClientError, match="NoSuchBucket"):
        run(store.put_bytes(KEY, b"bytes"))


# Settings and the factory.


@pytest.mark.parametrize(
    ("database_url", "directory"),
    [
        ("sqlite:////srv/threadline/threadline.db", "/srv/threadline/threadline-files"),
        ("sqlite:///./threadline.db", "threadline-files"),
        ("sqlite:///data/app.db", "data/threadline-files"),
        ("sqlite://", "threadline-files"),
        ("postgresql://db.internal/threadline", "threadline-files"),
    ],
)
def test_files_live_beside_the_sqlite_database_by_default(
    database_url: str, directory: str
) -> None:
    assert Settings(database_url=database_url).files_directory() == Path(directory)


def test_the_default_directory_follows_a_database_chosen_later() -> None:
    settings = Settings().with_database("sqlite:////var/lib/tl/tl.db")

    assert settings.files_directory() == Path("/var/lib/tl/threadline-files")


def test_file_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("THREADLINE_FILES_DIR", "THREADLINE_MAX_FILE_BYTES"):
        monkeypatch.delenv(name, raising=False)
    assert Settings.from_env().max_file_bytes == 536_870_912
    monkeypatch.setenv("THREADLINE_FILES_DIR", "/mnt/files")
    monkeypatch.setenv("THREADLINE_MAX_FILE_BYTES", "1048576")

    settings = Settings.from_env()

    assert settings.files_directory() == Path("/mnt/files")
    assert settings.max_file_bytes == 1_048_576
    assert settings.files_s3_bucket is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"THREADLINE_FILES_S3_PREFIX": "tl"}, "THREADLINE_FILES_S3_BUCKET is not"),
        ({"THREADLINE_FILES_S3_ENDPOINT_URL": "http://s3"}, "THREADLINE_FILES_S3_BUCKET is not"),
        (
            {"THREADLINE_FILES_S3_BUCKET": "b", "THREADLINE_FILES_DIR": "/mnt"},
            "both set",
        ),
        (
            {"THREADLINE_FILES_S3_BUCKET": "b", "THREADLINE_FILES_S3_ENDPOINT_URL": "s3.local"},
            "must be an http",
        ),
        ({"THREADLINE_MAX_FILE_BYTES": "0"}, "at least 1"),
    ],
)
def test_file_settings_that_would_mislead_are_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(SystemExit, match=message):
        Settings.from_env()


def test_the_factory_picks_the_local_directory_without_a_bucket(tmp_path: Path) -> None:
    store = blob_store_for(Settings(database_url=f"sqlite:///{tmp_path}/threadline.db"))

    assert isinstance(store, LocalBlobStore)
    assert store.root == tmp_path / "threadline-files"


def test_the_factory_picks_s3_with_credentials_from_the_environment(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch, run: Runner
) -> None:
    bucket = s3.create_bucket()
    monkeypatch.setenv("THREADLINE_FILES_S3_BUCKET", bucket)
    monkeypatch.setenv("THREADLINE_FILES_S3_PREFIX", "/tenant/")
    monkeypatch.setenv("THREADLINE_FILES_S3_ENDPOINT_URL", s3.endpoint_url)
    monkeypatch.setenv("THREADLINE_FILES_S3_REGION", s3.region)

    store = blob_store_for(Settings.from_env())
    run(store.put_bytes(KEY, b"bytes"))

    assert isinstance(store, S3BlobStore)
    listed = s3.client().list_objects_v2(Bucket=bucket)
    assert [item["Key"] for item in listed["Contents"]] == ["tenant/proj_x/file-abc"]
    assert run(store.read(KEY)) == b"bytes"
