"""The floor: a bare ASGI app doing the least an HTTP append can do, served like Threadline.

`python -m bench.floor_app --port P --database PATH` serves, with the same uvicorn settings as
`threadline serve`:

- `POST /v1/threads/{thread_id}/messages`: parse the JSON body, build the same message object
  Threadline builds, and INSERT it as one row of Threadline's own `messages` table (its
  schema and indexes, created from `threadline.store.schema`) into a SQLite file with the
  PRAGMAs Threadline's store sets (WAL, synchronous=FULL), committed before the answer;
  answer with the message's JSON;
- `POST /v1/threads/runs` (with `--model-url`): INSERT a `queued` row into Threadline's `runs`
  table, committed before the answer; then, after answering, send the chat-completion request
  to the model (one aiohttp session, streamed, read to its end, as Threadline's provider
  does) and UPDATE the row to `completed`, committed without a sync (as Threadline commits
  its engine's progress): the least a run against a remote model can cost;
- `POST /v1/noop`, `GET /v1/noop`: answer `{}` without touching the database.

No framework, no validation, no thread hop for the database: what is left is HTTP on
uvicorn plus durable single-row writes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
import uvicorn
from starlette.types import Receive, Scope, Send

from bench.common import Child, clean_environment, free_port, wait_healthy

_INSERT = "INSERT INTO messages (id, thread_id, run_id, body) VALUES (?, ?, ?, ?)"
_INSERT_RUN = "INSERT INTO runs (id, thread_id, project, status, body) VALUES (?, ?, ?, ?, ?)"
_COMPLETE_RUN = "UPDATE runs SET status = 'completed', body = ? WHERE id = ?"
_JSON = [(b"content-type", b"application/json")]


def _prepare(database: Path) -> sqlite3.Connection:
    from threadline.store.schema import messages, runs

    engine = sa.create_engine(f"sqlite:///{database}")
    messages.metadata.create_all(engine, tables=[messages, runs])
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


def _write(connection: sqlite3.Connection, sql: str, *params: Any) -> None:
    connection.execute("BEGIN")
    connection.execute(sql, params)
    connection.execute("COMMIT")


class _Runs:
    """A run per request: one row, one streamed model call, the row completed."""

    def __init__(self, connection: sqlite3.Connection, model_url: str):
        self.connection = connection
        self.model_url = model_url
        self.session: aiohttp.ClientSession | None = None
        self.carried: set[asyncio.Task[None]] = set()

    def start(self, request: dict[str, Any]) -> bytes:
        run = {
            "id": f"run_{secrets.token_urlsafe(18)}",
            "object": "thread.run",
            "thread_id": f"thread_{secrets.token_urlsafe(18)}",
            "model": request["model"],
            "status": "queued",
        }
        _write(
            self.connection,
            _INSERT_RUN,
            run["id"],
            run["thread_id"],
            "default",
            "queued",
            json.dumps(run),
        )
        task = asyncio.create_task(self._carry(run, request["content"]))
        self.carried.add(task)
        task.add_done_callback(self.carried.discard)
        return json.dumps(run).encode()

    async def _carry(self, run: dict[str, Any], content: str) -> None:
        if self.session is None:
            # As Threadline's provider: no cap on connections to the model.
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        body = {
            "model": run["model"],
            "messages": [{"role": "user", "content": content}],
            "stream": True,
        }
        async with self.session.post(f"{self.model_url}/chat/completions", json=body) as answer:
            answer.raise_for_status()
            reply = b"".join([chunk async for chunk in answer.content.iter_any()])
        run.update(status="completed", reply_bytes=len(reply))
        # Not synced, as Threadline's engine does not sync its progress either.
        self.connection.execute("PRAGMA synchronous=NORMAL")
        _write(self.connection, _COMPLETE_RUN, json.dumps(run), run["id"])
        self.connection.execute("PRAGMA synchronous=FULL")


def make_app(database: Path, model_url: str | None = None) -> Any:
    connection = _prepare(database)
    runs = _Runs(connection, model_url) if model_url else None

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
        elif scope["method"] == "POST" and path == "/v1/threads/runs" and runs is not None:
            answer = runs.start(json.loads(body))
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

    def __init__(self, workdir: Path, model_url: str | None = None):
        self.port = free_port()
        self.database = workdir / f"floor-{self.port}.db"
        argv = [sys.executable, "-m", "bench.floor_app", "--port", str(self.port)]
        argv += ["--database", str(self.database)]
        if model_url is not None:
            argv += ["--model-url", model_url]
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
    parser.add_argument("--model-url", default=None, help="the model for POST /v1/threads/runs")
    args = parser.parse_args()
    # The settings `threadline serve` runs uvicorn with (see threadline/cli.py).
    uvicorn.run(
        make_app(args.database, args.model_url),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
