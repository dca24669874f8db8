"""The test suite's scripted model server in a process of its own, with a stopwatch.

`python -m bench.model_server` serves `tests/support/scripted_model.ScriptedModelServer`
(unscripted model names get an instant echo) and adds, under `/bench/`:

- `POST /bench/script`: queue `Reply` steps for a model name (`{"model", "text", "delay",
  "chunks", "repeat"}`);
- `GET /bench/records?prefix=P`: hand over (and forget) what was recorded for the model names
  starting with P: when each chat-completion request arrived and when its response ended
  (the model's own time), and, for model names starting with `stamp-`, when each streamed
  text chunk was sent.

A model named `tools-K-...` (and not scripted) runs a tool loop without any scripting, so
that any number of concurrent runs can share it: while the conversation holds fewer than K
tool answers after its last user message, it calls the first tool the request offers (with
`{}` as arguments, one call per round; `file_search`, which needs its queries, is given the
last user message as its one query, and `code_interpreter` that message as its code); then
it answers `read N tool answers`. It decides from
the request alone, so a run that loses a round's answer gets a reply that says so.

Stamps are `time.perf_counter()`, which on Linux is CLOCK_MONOTONIC, one clock for every
process on the machine, so they compare with the client's own stamps.

`ModelServer` starts and drives that process from the harness.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.common import Child, clean_environment, use_test_support

STAMPED_PREFIX = "stamp-"
TOOLS_PREFIX = "tools-"
FILE_SEARCH = "file_search"
CODE_INTERPRETER = "code_interpreter"


def tools_model(rounds: int, name: str) -> str:
    """The name of a model that calls the first offered tool `rounds` times, then answers."""
    return f"{TOOLS_PREFIX}{rounds}-{name}"


def tool_answers_read(text: str) -> int | None:
    """How many tool answers a `tools-K-...` model's reply says it read."""
    words = text.split()
    if len(words) == 4 and words[0] == "read" and words[1].isdigit():
        return int(words[1])
    return None


@dataclass
class Record:
    model: str = ""
    arrived: float = 0.0
    ended: float = 0.0
    chunks: list[tuple[float, str]] = field(default_factory=list)


def _chunk_text(body: bytes) -> str:
    """The text content of one SSE `data:` frame of a chat-completion stream."""
    text = ""
    for line in body.decode(errors="replace").splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        payload = json.loads(line[6:])
        for choice in payload.get("choices") or []:
            text += (choice.get("delta") or {}).get("content") or ""
    return text


class Stopwatch:
    """ASGI middleware: stamps each chat-completion request and its streamed chunks."""

    def __init__(self, app: ASGIApp, records: list[Record], lock: threading.Lock):
        self.app = app
        self.records = records
        self.lock = lock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/chat/completions":
            await self.app(scope, receive, send)
            return
        record = Record(arrived=time.perf_counter())
        body: list[bytes] = []
        stamped: bool | None = None

        async def receive_body() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body.append(message.get("body", b""))
            return message

        async def send_stamped(message: Message) -> None:
            nonlocal stamped
            if message["type"] == "http.response.body":
                sent = time.perf_counter()
                if stamped is None:
                    record.model = str(json.loads(b"".join(body) or b"{}").get("model", ""))
                    stamped = record.model.startswith(STAMPED_PREFIX)
                if stamped:
                    text = _chunk_text(message.get("body", b""))
                    if text:
                        record.chunks.append((sent, text))
            await send(message)

        await self.app(scope, receive_body, send_stamped)
        record.ended = time.perf_counter()
        with self.lock:
            self.records.append(record)


def _tool_answers(body: dict[str, Any]) -> int:
    """Tool answers in a chat-completion request after its last user message."""
    answers = 0
    for message in body.get("messages") or []:
        if message.get("role") == "user":
            answers = 0
        elif message.get("role") == "tool":
            answers += 1
    return answers


def _last_user_text(body: dict[str, Any]) -> str:
    """The text of a chat-completion request's last user message (its text parts joined)."""
    text = ""
    for message in body.get("messages") or []:
        if message.get("role") != "user":
            continue
        content = message.get("content") or ""
        if isinstance(content, str):
            text = content
        else:
            text = " ".join(part.get("text", "") for part in content if part.get("type") == "text")
    return text


def _tool_arguments(function: str, body: dict[str, Any]) -> dict[str, Any]:
    """What a `tools-K-...` model calls a tool with: nothing, except for file_search, which
    searches for what the user asked, and the code interpreter, which runs it."""
    if function == FILE_SEARCH:
        return {"queries": [_last_user_text(body)]}
    if function == CODE_INTERPRETER:
        return {"code": _last_user_text(body)}
    return {}


def _serve() -> None:
    use_test_support()
    from support.scripted_model import CallTools, Reply, ScriptedModelServer, Step, ToolCall

    def tool_loop(model: str, body: dict[str, Any]) -> Step | None:
        """The next step of a `tools-K-...` model (None for any other name)."""
        rounds = model.removeprefix(TOOLS_PREFIX).split("-", 1)[0]
        if not model.startswith(TOOLS_PREFIX) or not rounds.isdigit():
            return None
        answers = _tool_answers(body)
        offered = body.get("tools") or []
        if answers < int(rounds) and offered:
            function = offered[0]["function"]["name"]
            return CallTools([ToolCall(function, _tool_arguments(function, body))])
        return Reply(f"read {answers} tool answers")

    class BenchModelServer(ScriptedModelServer):
        def __init__(self) -> None:
            super().__init__()
            self.records: list[Record] = []
            self.records_lock = threading.Lock()
            self._app.router.routes.extend(
                [
                    Route("/bench/script", self._bench_script, methods=["POST"]),
                    Route("/bench/records", self._bench_records, methods=["GET"]),
                ]
            )
            self._app.add_middleware(Stopwatch, records=self.records, lock=self.records_lock)

        def _take_step(self, model: str, body: dict[str, Any], request: Request) -> Step | None:
            scripted = super()._take_step(model, body, request)
            return scripted if scripted is not None else tool_loop(model, body)

        async def _bench_script(self, request: Request) -> Response:
            spec = await request.json()
            reply = Reply(
                spec["text"], chunks=spec.get("chunks"), delay=float(spec.get("delay", 0.0))
            )
            self.script(spec["model"], *[reply] * int(spec.get("repeat", 1)))
            return JSONResponse({"ok": True})

        async def _bench_records(self, request: Request) -> Response:
            prefix = request.query_params.get("prefix", "")
            with self.records_lock:
                taken = [r for r in self.records if r.model.startswith(prefix)]
                self.records[:] = [r for r in self.records if not r.model.startswith(prefix)]
            return JSONResponse(
                [
                    {"model": r.model, "arrived": r.arrived, "ended": r.ended, "chunks": r.chunks}
                    for r in taken
                ]
            )

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with BenchModelServer() as server:
        print(f"READY {server.base_url}", flush=True)
        stop.wait()


@dataclass(frozen=True)
class ModelRecord:
    model: str
    arrived: float
    ended: float
    chunks: list[tuple[float, str]]

    @property
    def seconds(self) -> float:
        return self.ended - self.arrived


class ModelServer(Child):
    """The harness's handle on a `python -m bench.model_server` process."""

    def __init__(self, workdir: Path):
        argv = [sys.executable, "-m", "bench.model_server"]
        super().__init__(argv, clean_environment(), workdir / "model-server.log", "model server")
        self.base_url = ""

    def __enter__(self) -> ModelServer:
        import subprocess

        process = self.spawn(stdout=subprocess.PIPE)
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"model server did not start: {self.log_tail()}")
        self.base_url = line.removeprefix("READY ")
        return self

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")

    def script(
        self,
        model: str,
        text: str,
        *,
        delay: float = 0.0,
        repeat: int = 1,
        chunks: int | None = None,
    ) -> None:
        spec: dict[str, Any] = {"model": model, "text": text, "delay": delay, "repeat": repeat}
        if chunks is not None:
            spec["chunks"] = chunks
        httpx.post(f"{self.root}/bench/script", json=spec, timeout=30).raise_for_status()

    def records(self, prefix: str) -> list[ModelRecord]:
        response = httpx.get(f"{self.root}/bench/records", params={"prefix": prefix}, timeout=30)
        response.raise_for_status()
        return [
            ModelRecord(
                r["model"], r["arrived"], r["ended"], [(t, text) for t, text in r["chunks"]]
            )
            for r in response.json()
        ]


if __name__ == "__main__":
    _serve()
