"""Slow clients: a request's head and body must arrive within the read deadline.

Against a server whose deadline is 1 s (`THREADLINE_REQUEST_READ_TIMEOUT_SECONDS`), a bounded
number of raw connections trickle bytes; each is waited on until the server closes it (a
positive event, bounded by a generous limit so a broken server fails rather than hangs). No
test sleeps to show that something did not happen.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from support.live import Databases, configured_server, openai_client
from support.scripted_model import Reply, ScriptedModelServer
from support.server import ServerProcess
from support.stored import stored_rows
from support.waiting import wait_until

READ_TIMEOUT = 1.0
# How long a connection may stay open before the test gives up on the server closing it:
# far beyond the deadline, so that only a server that never closes it fails.
GIVE_UP_SECONDS = 30.0
TRICKLERS = 20


@pytest.fixture(scope="module")
def strict(
    databases: Databases,
    tmp_path_factory: pytest.TempPathFactory,
    scripted_model: ScriptedModelServer,
) -> Iterator[ServerProcess]:
    deadline = {"THREADLINE_REQUEST_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT)}
    folder = tmp_path_factory.mktemp("strict")
    with configured_server(databases, folder, scripted_model.base_url, deadline) as process:
        yield process


@dataclass
class Closed:
    answer: bytes  # what the server sent before closing
    reset: bool  # the close was a reset (the client was sending at that moment)


def trickle(
    port: int, first: bytes, drip: bytes, every: float, connected: threading.Barrier | None = None
) -> Closed:
    """Send `first`, then one byte of `drip` each `every` seconds, until the server closes
    the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(first)
        if connected is not None:
            connected.wait()
        sock.settimeout(every)
        answer = b""
        sent = 0
        deadline = time.monotonic() + GIVE_UP_SECONDS
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if drip:
                    try:
                        sock.send(drip[sent % len(drip) : sent % len(drip) + 1])
                    except OSError:
                        return Closed(answer, reset=True)
                    sent += 1
                continue
            except ConnectionResetError:
                return Closed(answer, reset=True)
            if not chunk:
                return Closed(answer, reset=False)
            answer += chunk
    raise AssertionError(f"the server kept the connection open for {GIVE_UP_SECONDS} s")


def client_connections(server: ServerProcess) -> int:
    """How many clients' TCP connections the server process holds open on its port (its
    listening socket and its own connections to the database not counted)."""
    assert server.process is not None
    folder = f"/proc/{server.process.pid}/fd"
    held = set()
    for fd in os.listdir(folder):
        try:
            held.add(os.readlink(f"{folder}/{fd}"))
        except OSError:
            continue  # closed meanwhile
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                port = int(fields[1].rsplit(":", 1)[1], 16)
                listening = fields[3] == "0A"
                if port == server.port and not listening and f"socket:[{fields[9]}]" in held:
                    count += 1
    return count


HEAD_START = b"POST /v1/threads HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def test_trickling_connections_are_closed_and_others_are_served(strict: ServerProcess) -> None:
    client = openai_client(strict)  # connects at its first request
    baseline = client_connections(strict)  # idle ones other tests' clients left
    before = stored_rows(strict.database_url)
    connected = threading.Barrier(TRICKLERS + 1)

    with ThreadPoolExecutor(TRICKLERS) as pool:
        closing = [
            pool.submit(trickle, strict.port, HEAD_START, b"X-Slow: aaaa\r\n", 0.2, connected)
            for _ in range(TRICKLERS)
        ]
        connected.wait()  # every trickler has sent the start of its head
        held = wait_until(
            lambda: client_connections(strict),
            lambda count: count >= baseline + TRICKLERS,
            "the server to hold every trickling connection",
        )
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "served"}])
        listed = client.beta.threads.messages.list(thread.id).data
        closed = [future.result() for future in closing]
    client.close()

    assert [message.content[0].type for message in listed] == ["text"]
    for each in closed:
        # A client caught sending as the server closed may see a reset instead of the 408.
        if not each.reset:
            assert each.answer.startswith(b"HTTP/1.1 408 "), each.answer[:200]
            assert b'"code":"request_timeout"' in each.answer
    assert sum(not each.reset for each in closed) > 0, "every connection was reset"
    assert stored_rows(strict.database_url)["threads"] == before["threads"] + 1
    assert held >= baseline + TRICKLERS
    wait_until(
        lambda: client_connections(strict),
        lambda count: count <= baseline,
        "the server to let go of every trickling connection",
    )


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(
    strict: ServerProcess,
) -> None:
    closed = trickle(strict.port, b"", b"", 0.2)

    assert closed == Closed(b"", reset=False)


def test_blank_lines_trickled_after_a_request_do_not_hold_the_connection(
    strict: ServerProcess,
) -> None:
    """The parser skips blank lines between requests without beginning one, and each stops
    the keep-alive timer: the read deadline must close the connection all the same."""
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    closed = trickle(strict.port, request, b"\r\n", 0.2)

    assert closed.reset or closed.answer.startswith(b"HTTP/1.1 200 "), closed.answer[:200]
    # No request had begun: nothing to answer (a status line, not the digits anywhere: a
    # request id may hold them).
    assert b"HTTP/1.1 408" not in closed.answer


def test_a_trickling_body_is_refused_and_nothing_is_stored(strict: ServerProcess) -> None:
    before = stored_rows(strict.database_url)
    head = HEAD_START + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"

    closed = trickle(strict.port, head, b" ", 0.2)

    if not closed.reset:
        assert closed.answer.startswith(b"HTTP/1.1 408 "), closed.answer[:200]
    assert stored_rows(strict.database_url) == before
    assert "Traceback" not in strict.log_path.read_text()


def test_an_answer_that_takes_longer_than_the_deadline_is_whole(
    strict: ServerProcess, scripted_model: ScriptedModelServer, model_name: str
) -> None:
    """The deadline is for the request's arrival, not for its answer."""
    scripted_model.script(model_name, Reply("late but whole", delay=3 * READ_TIMEOUT))
    client = openai_client(strict)
    assistant = client.beta.assistants.create(model=model_name)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])

    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        stream.until_done()
        run = stream.get_final_run()

    assert run.status == "completed"
    reply = client.beta.threads.messages.list(thread.id, limit=1).data[0]
    assert reply.content[0].type == "text" and reply.content[0].text.value == "late but whole"


def test_pipelined_requests_are_all_answered(strict: ServerProcess) -> None:
    health = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    closing = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"

    with socket.create_connection(("127.0.0.1", strict.port), timeout=30) as sock:
        sock.sendall(health * 3 + closing)
        answers = b""
        while chunk := sock.recv(65536):
            answers += chunk

    assert answers.count(b"HTTP/1.1 200 OK") == 4


def test_the_sdk_is_unaffected_between_requests(strict: ServerProcess) -> None:
    """Keep-alive connections reused by the SDK across several requests."""
    client = openai_client(strict)
    thread = client.beta.threads.create()
    for index in range(5):
        client.beta.threads.messages.create(thread.id, role="user", content=str(index))

    texts = [
        message.content[0].text.value
        for message in client.beta.threads.messages.list(thread.id, order="asc")
        if message.content[0].type == "text"
    ]
    assert texts == ["0", "1", "2", "3", "4"]
