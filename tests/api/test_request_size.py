"""Caps on a request's body (413) and head (431), at their edges and against the probes that
found them missing (a 100 MB body, a 1 MB header, 100,000 headers).

No client SDK sends such requests, so they go over raw sockets (exact bytes, and a head sent
without its body) or httpx. Edges are tested on a server of this module's own with small caps;
the probes against the shared server at its defaults. Each refusal is checked for its status,
an OpenAI-shaped body, and that the database holds what it held before.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest
from support.errors import assert_error_body
from support.live import Databases, configured_server
from support.scripted_model import ScriptedModelServer
from support.server import ServerProcess
from support.stored import stored_rows

BODY_CAP = 1000
HEAD_CAP = 2048
HEADER_COUNT_CAP = 20
DEFAULT_BODY_CAP = 32 * 1024 * 1024


@pytest.fixture(scope="module")
def capped(
    databases: Databases,
    tmp_path_factory: pytest.TempPathFactory,
    scripted_model: ScriptedModelServer,
) -> Iterator[ServerProcess]:
    caps = {
        "THREADLINE_MAX_BODY_BYTES": str(BODY_CAP),
        "THREADLINE_MAX_HEADER_BYTES": str(HEAD_CAP),
        "THREADLINE_MAX_HEADER_COUNT": str(HEADER_COUNT_CAP),
    }
    folder = tmp_path_factory.mktemp("capped")
    with configured_server(databases, folder, scripted_model.base_url, caps) as process:
        yield process


# -- a raw HTTP/1.1 client -----------------------------------------------------------------------


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def error(self, status: int) -> dict[str, object]:
        assert self.headers["content-type"] == "application/json"
        return assert_error_body(json.loads(self.body), status, self.status)


def connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return sock


def read_answer(sock: socket.socket) -> Answer:
    """One response, read to its Content-Length (every answer here has one)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines)}
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside an answer"
        body += chunk
    return Answer(int(status_line.split(" ")[1]), headers, body[:length])


def read_to_end(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def request(method: str, path: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def create_thread(body: bytes) -> bytes:
    length = ("Content-Length", str(len(body)))
    return request("POST", "/v1/threads", [("Content-Type", "application/json"), length], body)


def padded(size: int) -> bytes:
    """A valid thread-creation body of exactly `size` bytes (JSON allows trailing spaces)."""
    body = b'{"metadata": {"k": "v"}}'
    return body + b" " * (size - len(body))


def chunked(body: bytes, piece: int = 256) -> bytes:
    pieces = [body[i : i + piece] for i in range(0, len(body), piece)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


# -- body ----------------------------------------------------------------------------------------


def test_body_at_the_cap_is_accepted_and_one_byte_more_is_refused(capped: ServerProcess) -> None:
    with connect(capped) as sock:
        sock.sendall(create_thread(padded(BODY_CAP)))
        accepted = read_answer(sock)
        before = stored_rows(capped.database_url)
        sock.sendall(create_thread(padded(BODY_CAP + 1)))
        refused = read_answer(sock)
        sock.sendall(request("GET", "/health", []))
        after = read_answer(sock)  # the same connection serves the next request

    assert accepted.status == 200, accepted.body
    assert json.loads(accepted.body)["metadata"] == {"k": "v"}
    error = refused.error(413)
    assert error["code"] == "request_too_large" and str(BODY_CAP) in str(error["message"])
    assert after.status == 200
    assert stored_rows(capped.database_url) == before


def test_declared_length_over_the_cap_is_refused_before_the_body_is_sent(
    capped: ServerProcess,
) -> None:
    before = stored_rows(capped.database_url)
    head = request(
        "POST",
        "/v1/threads",
        [("Content-Type", "application/json"), ("Content-Length", str(BODY_CAP + 1))],
    )

    with connect(capped) as sock:
        sock.sendall(head)  # and not one byte of the body
        refused = read_answer(sock)

    assert refused.error(413)["code"] == "request_too_large"
    assert stored_rows(capped.database_url) == before


def test_chunked_body_is_refused_once_it_passes_the_cap(capped: ServerProcess) -> None:
    """No Content-Length to go by: counted as it arrives."""
    before = stored_rows(capped.database_url)
    encoding = [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]

    with connect(capped) as sock:
        sock.sendall(request("POST", "/v1/threads", encoding, chunked(padded(BODY_CAP))))
        accepted = read_answer(sock)
        before = stored_rows(capped.database_url)
        sock.sendall(request("POST", "/v1/threads", encoding, chunked(padded(BODY_CAP + 1))))
        refused = read_answer(sock)
        sock.sendall(request("GET", "/health", []))
        after = read_answer(sock)

    assert accepted.status == 200, accepted.body
    assert refused.error(413)["code"] == "request_too_large"
    assert after.status == 200
    assert stored_rows(capped.database_url) == before


def test_expect_continue_over_the_cap_is_refused_and_closed(capped: ServerProcess) -> None:
    """A client waiting for `100 Continue` may never send the body: the connection cannot
    go on, so the answer says so and the server closes it."""
    head = request(
        "POST",
        "/v1/threads",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(BODY_CAP + 1)),
            ("Expect", "100-continue"),
        ],
    )

    with connect(capped) as sock:
        sock.sendall(head)
        refused = read_answer(sock)
        rest = read_to_end(sock)

    assert refused.error(413)["code"] == "request_too_large"
    assert refused.headers["connection"] == "close"
    assert rest == b""


def test_probe_a_100_mb_declared_body_is_refused_at_once(server: ServerProcess) -> None:
    before = stored_rows(server.database_url)
    head = request(
        "POST",
        "/v1/threads",
        [("Content-Type", "application/json"), ("Content-Length", str(100 * 1024 * 1024))],
    )

    with connect(server) as sock:
        sock.sendall(head)
        refused = read_answer(sock)

    error = refused.error(413)
    assert str(DEFAULT_BODY_CAP) in str(error["message"])
    assert stored_rows(server.database_url) == before


def test_probe_a_streamed_body_past_the_default_cap_is_refused(server: ServerProcess) -> None:
    """Sent by httpx as a stream (chunked): the server counts it, answers 413 while the
    client is still sending, and the client reads that answer."""
    before = stored_rows(server.database_url)
    piece = b" " * (1024 * 1024)

    def body() -> Iterator[bytes]:
        yield b'{"metadata": {}}'
        for _ in range(40):  # 40 MiB
            yield piece

    response = httpx.post(
        f"{server.base_url}/threads",
        content=body(),
        headers={"content-type": "application/json"},
        timeout=60,
    )

    assert_error_body(response.json(), 413, response.status_code)
    assert stored_rows(server.database_url) == before
    assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200


# -- head ----------------------------------------------------------------------------------------


def _head_of(size: int) -> bytes:
    """A request whose head counts exactly `size` bytes: its target and, for each header,
    name + value + 4 (`": "` and CRLF)."""
    fixed = len("/health") + len("host") + len("127.0.0.1") + 4 + len("x-pad") + 4
    return request("GET", "/health", [("X-Pad", "p" * (size - fixed))])


def test_head_at_the_cap_is_accepted_and_one_byte_more_is_refused(capped: ServerProcess) -> None:
    with connect(capped) as sock:
        sock.sendall(_head_of(HEAD_CAP))
        accepted = read_answer(sock)
    with connect(capped) as sock:
        sock.sendall(_head_of(HEAD_CAP + 1))
        refused = read_answer(sock)
        rest = read_to_end(sock)

    assert accepted.status == 200
    error = refused.error(431)
    assert error["code"] == "headers_too_large" and str(HEAD_CAP) in str(error["message"])
    assert refused.headers["connection"] == "close" and rest == b""


def test_header_count_at_the_cap_is_accepted_and_one_more_is_refused(
    capped: ServerProcess,
) -> None:
    def with_headers(count: int) -> bytes:  # Host is one of them
        return request("GET", "/health", [(f"X-{i}", "v") for i in range(count - 1)])

    with connect(capped) as sock:
        sock.sendall(with_headers(HEADER_COUNT_CAP))
        accepted = read_answer(sock)
    with connect(capped) as sock:
        sock.sendall(with_headers(HEADER_COUNT_CAP + 1))
        refused = read_answer(sock)

    assert accepted.status == 200
    error = refused.error(431)
    assert error["code"] == "headers_too_large" and str(HEADER_COUNT_CAP) in str(error["message"])


def test_the_target_counts_toward_the_head(capped: ServerProcess) -> None:
    with connect(capped) as sock:
        sock.sendall(request("GET", "/health?" + "q" * HEAD_CAP, []))
        refused = read_answer(sock)

    refused.error(431)


def test_probe_a_1_mb_header_is_refused(server: ServerProcess) -> None:
    """Read through httpx, as a client would: the answer arrives whole even though the
    server stops parsing long before the header ends."""
    before = stored_rows(server.database_url)

    response = httpx.post(
        f"{server.base_url}/threads",
        json={},
        headers={"x-probe": "a" * 1_000_000},
        timeout=60,
    )

    error = assert_error_body(response.json(), 431, response.status_code)
    assert error["code"] == "headers_too_large"
    assert stored_rows(server.database_url) == before


def test_probe_100_000_headers_are_refused(server: ServerProcess) -> None:
    before = stored_rows(server.database_url)
    headers = [(f"X-{i}", "v") for i in range(100_000)]
    body = b"{}"
    headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]

    with connect(server) as sock:
        sock.sendall(request("POST", "/v1/threads", headers, body))
        refused = read_answer(sock)
        rest = read_to_end(sock)

    assert refused.error(431)["code"] == "headers_too_large"
    assert rest == b""
    assert stored_rows(server.database_url) == before
