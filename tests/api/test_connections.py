"""Connections: an idle keep-alive connection outlives the clients' own idle expiry (httpx,
under the openai SDK, keeps one 5 s), so a client reusing it never finds it closed under it."""

from __future__ import annotations

import socket
import time

from support.server import ServerProcess

REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _answer(connection: socket.socket) -> bytes:
    connection.sendall(REQUEST)
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
        piece = connection.recv(4096)
        if not piece:
            return answer  # the server closed the connection
        answer += piece
    return answer


def test_an_idle_connection_still_answers_after_the_clients_idle_expiry(
    server: ServerProcess,
) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        assert _answer(connection).startswith(b"HTTP/1.1 200")
        time.sleep(6)  # past httpx's 5 s, and past uvicorn's own default keep-alive
        assert _answer(connection).startswith(b"HTTP/1.1 200")
