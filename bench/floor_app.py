"""The floor: a bare ASGI app doing the least an HTTP append can do, served like Threadline.

`python -m bench.floor_app --port P --database PATH` serves, with the same uvicorn settings as
`threadline serve`:

- `POST /v1/threads/{thread_id}/messages`: parse the JSON body, build the same message object
  Threadline builds, and INSERT it as one row of Threadline's own `messages` table (its
  schema and indexes, created from `threadline.store.schema`) into a SQLite file with the
  PRAGMAs Threadline's store sets (WAL, synchronous=FULL), committed before the answer;
  answer with the message's JSON;
- `POST /v1/noop`, `GET /v1/noop`: answer `{}` without touching the database.

No framework, no validation, no thread hop for the database: what is left is HTTP on
uvicorn plus one durable single-row insert.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import uvicorn
from starlette.types import Receive, Scope, Send

from bench.common import Child, clean_environment, free_port, wait_healthy

_INSERT = "INSERT INTO messages (id, thread_id, run_id, body) VALUES (?, ?, ?, ?)"
_JSON = [(b"content-type", b"application/json")]


def _prepare(database: Path) -> sqlite3.Connection:
    from threadline.store.schema import messages

    engine = sa.create_engine(f"sqlite:///{database}")
    messages.metadata.create_all(engine, tables=[messages])
    engine.dispose()
    connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA busy_timeout=10000")
    return connection


def _message(thread_id: str, request: dict[str, Any]) -> dict[str, Any]:
    created = int(time.time())
    return {
        "id": f"msg_{secrets.token_urlsafe(18)}",
        "object": "thread.message",
        "created_at": created,
        "thread_id": thread_id,
        "role": request["role"],
        "content": [{"type": "text", "text": {"value": request["content"], "annotations": []}}],
        "assistant_id": None,
        "run_id": None,
        "attachments": [],
        "metadata": request.get("metadata") or {},
        "status": "completed",
        "incomplete_details": None,
        "completed_at": created,
        "incomplete_at": None,
    }


def make_app(database: Path) -> Any:
    connection = _prepare(database)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path: str = scope["path"]
        parts = path.strip("/").split("/")
        if scope["method"] == "POST" and len(parts) == 4 and parts[3] == "messages":
            created = _message(parts[2], json.loads(body))
            connection.execute("BEGIN")
            connection.execute(_INSERT, (created["id"], parts[2], None, json.dumps(created)))
            connection.execute("COMMIT")
            answer = json.dumps(created).encode()
        elif path in ("/v1/noop", "/health"):
            answer = b"{}"
        else:
            await send({"type": "http.response.start", "status": 404, "headers": _JSON})
            await send({"type": "http.response.body", "body": b"{}"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": _JSON})
        await send({"type": "http.response.body", "body": answer})

    return app


class FloorServer(Child):
    """The harness's handle on a `python -m bench.floor_app` process."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        argv = [sys.executable, "-m", "bench.floor_app", "--port", str(self.port)]
        argv += ["--database", str(workdir / f"floor-{self.port}.db")]
        super().__init__(argv, clean_environment(), workdir / f"floor-{self.port}.log", "floor")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FloorServer:
        self.spawn()
        wait_healthy(self, f"{self.url}/health")
        return self


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.floor_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", type=Path, required=True)
    args = parser.parse_args()
    # The settings `threadline serve` runs uvicorn with (see threadline/cli.py).
    uvicorn.run(
        make_app(args.database),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
