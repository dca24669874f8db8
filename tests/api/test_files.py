"""Files through the openai SDK and over raw HTTP: upload, list, retrieve, content, delete;
the size cap, bad names and purposes, an upload cut off midway, and projects kept apart.

Every refusal checks the OpenAI-shaped body and that nothing was stored: no row (the list
is unchanged) and no bytes (the server's files folder holds what it held).
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import openai
import pytest
from support.errors import assert_error_body, sdk_error
from support.live import ServerFactory
from support.server import ServerProcess

FILE_KEYS = {
    "id",
    "object",
    "bytes",
    "created_at",
    "expires_at",
    "filename",
    "purpose",
    "status",
    "status_details",
}


def _stored_bytes(server: ServerProcess) -> list[Path]:
    folder = server.files_dir
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_upload_list_retrieve_read_and_delete(client: openai.OpenAI) -> None:
    data = b"Threadline keeps files.\n" * 100
    created = client.files.create(file=("notes.txt", data), purpose="assistants")
    raw = client.files.with_raw_response.retrieve(created.id).http_response.json()

    assert set(raw) == FILE_KEYS
    assert created.id.startswith("file-")
    assert (created.object, created.filename, created.purpose) == (
        "file",
        "notes.txt",
        "assistants",
    )
    assert created.bytes == len(data)
    assert created.status == "processed"
    assert client.files.content(created.id).read() == data
    listed = [f.id for f in client.files.list(purpose="assistants", limit=100)]
    assert created.id in listed
    assert created.id not in [f.id for f in client.files.list(purpose="vision", limit=100)]

    deleted = client.files.delete(created.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (created.id, True, "file")
    with pytest.raises(openai.NotFoundError) as missing:
        client.files.retrieve(created.id)
    assert sdk_error(missing.value, 404)["message"] == f"No file found with id '{created.id}'."
    with pytest.raises(openai.NotFoundError):
        client.files.content(created.id)


def test_a_file_named_beyond_latin_1_downloads_under_its_name(client: openai.OpenAI) -> None:
    """A header's bytes are Latin-1: the name goes in `filename*` too, as UTF-8."""
    name = "résumé 履歴書.txt"
    created = client.files.create(file=(name, b"cv"), purpose="assistants")
    answer = client.files.with_raw_response.content(created.id)
    assert answer.http_response.read() == b"cv"
    disposition = answer.http_response.headers["content-disposition"]
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%E5%B1%A5" in disposition


def test_files_are_listed_newest_first_with_exact_cursors(client: openai.OpenAI) -> None:
    ids = [
        client.files.create(file=(f"page-{i}.md", f"# {i}".encode()), purpose="user_data").id
        for i in range(5)
    ]
    first = client.files.list(purpose="user_data", limit=2)
    assert [f.id for f in first.data] == ids[::-1][:2]
    assert first.has_more
    rest = client.files.list(purpose="user_data", limit=100, after=first.data[-1].id)
    assert [f.id for f in rest.data][:3] == ids[::-1][2:]


@pytest.mark.parametrize(
    ("purpose", "message"),
    [
        ("nonsense", "Invalid value for 'purpose': 'nonsense'."),
        ("assistants_output", "Invalid value for 'purpose': 'assistants_output'."),
    ],
)
def test_a_purpose_that_cannot_be_uploaded_is_refused(
    client: openai.OpenAI, server: ServerProcess, purpose: str, message: str
) -> None:
    before = [f.id for f in client.files.list(limit=100)]
    stored = _stored_bytes(server)
    with pytest.raises(openai.BadRequestError) as refused:
        client.files.create(file=("a.txt", b"hello"), purpose=purpose)  # type: ignore[arg-type]
    error = sdk_error(refused.value, 400)
    assert error["param"] == "purpose"
    assert error["message"].startswith(message)
    assert [f.id for f in client.files.list(limit=100)] == before
    assert _stored_bytes(server) == stored


def _multipart(filename: bytes, data: bytes, purpose: bytes = b"assistants") -> tuple[bytes, str]:
    """A form written byte for byte: clients escape control characters in names."""
    boundary = "threadlineformboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n'.encode()
        + purpose
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="'.encode()
        + filename
        + b'"\r\nContent-Type: text/plain\r\n\r\n'
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    "name", [b"../escape.txt", b"dir/a.txt", b"back\\slash.txt", b"bell\x07.txt", b"nul\x00.txt"]
)
def test_a_filename_with_a_path_or_control_characters_is_refused(
    server: ServerProcess, client: openai.OpenAI, name: bytes
) -> None:
    before = [f.id for f in client.files.list(limit=100)]
    stored = _stored_bytes(server)
    body, content_type = _multipart(name, b"hello")
    response = httpx.post(
        f"{server.base_url}/files",
        content=body,
        headers={"content-type": content_type},
        timeout=30,
    )
    error = assert_error_body(response.json(), 400, response.status_code)
    assert error["param"] == "file"
    assert [f.id for f in client.files.list(limit=100)] == before
    assert _stored_bytes(server) == stored


def test_a_request_without_a_file_is_refused(server: ServerProcess) -> None:
    response = httpx.post(
        f"{server.base_url}/files", data={"purpose": "assistants"}, files={}, timeout=30
    )
    error = assert_error_body(response.json(), 400, response.status_code)
    assert error["param"] == "file"


def test_a_file_over_the_cap_is_413_and_leaves_nothing(start_server: ServerFactory) -> None:
    server = start_server(THREADLINE_MAX_FILE_BYTES="1000")
    client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
    with pytest.raises(openai.APIStatusError) as too_big:
        client.files.create(file=("big.txt", b"x" * 1001), purpose="assistants")
    error = sdk_error(too_big.value, 413)
    assert error["code"] == "file_too_large"
    # A body far over the cap is refused before it is read.
    response = httpx.post(
        f"{server.base_url}/files",
        files={"file": ("huge.txt", b"y" * 200_000)},
        data={"purpose": "assistants"},
        timeout=30,
    )
    assert_error_body(response.json(), 413, response.status_code)
    exact = client.files.create(file=("fits.txt", b"z" * 1000), purpose="assistants")
    assert [f.id for f in client.files.list()] == [exact.id]
    assert len(_stored_bytes(server)) == 1


def test_an_upload_cut_off_midway_leaves_no_file_and_no_bytes(
    server: ServerProcess, client: openai.OpenAI
) -> None:
    before = [f.id for f in client.files.list(limit=100)]
    stored = _stored_bytes(server)
    boundary = "threadlineboundary"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="cut.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    declared = len(head) + 2_000_000
    request = (
        "POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(request + head + b"a" * 1_500_000)
    # A request made after the cut one is served once the server has dropped that one.
    assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200
    assert [f.id for f in client.files.list(limit=100)] == before
    assert _stored_bytes(server) == stored


def test_projects_do_not_see_each_other_s_files(server: ServerProcess) -> None:
    upload = httpx.post(
        f"{server.url}/api/projects/alpha/files?api-version=v1",
        files={"file": ("alpha.txt", b"alpha only")},
        data={"purpose": "assistants"},
        timeout=30,
    )
    assert upload.status_code == 200, upload.text
    file_id = upload.json()["id"]
    for path in (f"/v1/files/{file_id}", f"/api/projects/beta/files/{file_id}?api-version=v1"):
        response = httpx.get(f"{server.url}{path}", timeout=30)
        assert_error_body(response.json(), 404, response.status_code)
        response = httpx.delete(f"{server.url}{path}", timeout=30)
        assert_error_body(response.json(), 404, response.status_code)
    own = httpx.get(f"{server.url}/api/projects/alpha/files/{file_id}?api-version=v1", timeout=30)
    assert own.json()["filename"] == "alpha.txt"
