"""A scripted OpenAI-compatible chat-completions server for deterministic tests.

Threadline's engine talks to models over the OpenAI chat-completions wire format. Real models
are slow and non-deterministic, so the suite points the engine at this server instead: each test
scripts exactly what "the model" answers (text, tool calls, HTTP failures, delays) and can then
assert on the request bodies the engine sent (system prompt, truncation, tool results).

Scripts are keyed by model name, so many tests can share one server as long as each uses a
fresh name from :meth:`ScriptedModelServer.unique_name`. Anything unscripted gets an echo of the
last user message, which keeps simple tests free of scripting boilerplate.

It can also misbehave as real upstreams do, so that the engine's checks of an answer are tested
over the wire: a 200 that is an HTML page (:class:`WrongContentType`), a whole completion sent to
a streamed request (``unstreamed``), a stream cut off before its end (:class:`CutShort`), an error
sent after the 200 (:class:`StreamError`), tool calls without a name or an id, and tool-call
deltas that repeat the call's id and name as llama-cpp-python's server does
(``repeat_id_and_name``).

It serves ``/v1/embeddings`` too (and Azure OpenAI's path for it): unscripted, each input
gets :func:`hashed_embedding`, a deterministic vector of its words; ``Fail``, ``Hang`` and
``WrongContentType`` (any body, e.g. malformed JSON) script its failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeAlias

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = [
    "CallTools",
    "CutShort",
    "Fail",
    "Hang",
    "Received",
    "Reply",
    "ScriptedModelServer",
    "Step",
    "StreamError",
    "ToolCall",
    "WrongContentType",
    "hashed_embedding",
]

_STARTUP_TIMEOUT = 10.0
_SHUTDOWN_TIMEOUT = 10.0
# Hung requests whose client already left must not hold shutdown for long.
_GRACEFUL_SHUTDOWN_SECONDS = 1

# OpenAI's error ``type`` for the statuses tests usually script; others fall back by class.
# The length of the vectors ``/v1/embeddings`` answers with, unless a request asks for another.
EMBEDDING_DIMENSIONS = 64

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


@dataclass(frozen=True)
class Reply:
    """Answer with assistant text.

    ``chunks`` fixes how many pieces a streamed reply is split into (default: one per word), so
    tests can check that deltas are reassembled. ``pause`` sleeps between streamed pieces, so a
    reply can be caught half-written. Token counts override the deterministic defaults when a
    test asserts on usage accounting. ``unstreamed`` answers a streamed request with the whole
    completion as JSON, as some upstreams do; ``usage=False`` leaves usage out of the answer,
    as upstreams that never count do. ``hold``: the stream stops after its first piece until
    the test sets the event, so a test can act while a reply is half-written, whatever the
    machine's speed (a test that holds must set it before it ends).
    """

    text: str
    chunks: int | None = None
    finish_reason: str = "stop"
    delay: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    pause: float = 0.0
    unstreamed: bool = False
    usage: bool = True
    hold: threading.Event | None = None

    def __post_init__(self) -> None:
        if self.chunks is not None and self.chunks < 1:
            raise ValueError("chunks must be at least 1")


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asks for; dict arguments are sent JSON-encoded.

    An empty ``name`` is sent as no name at all, and ``with_id=False`` sends no id: answers a
    broken upstream gives."""

    name: str
    arguments: str | dict[str, Any]
    with_id: bool = True


@dataclass(frozen=True)
class CallTools:
    """Answer with tool calls (several calls form one parallel round).

    ``repeat_id_and_name`` repeats each call's id and name in every delta of it, as
    llama-cpp-python's server does, where OpenAI sends them in the first delta only;
    ``unstreamed`` answers a streamed request with the whole completion; ``usage=False``
    leaves usage out, as for a ``Reply``."""

    calls: list[ToolCall]
    delay: float = 0.0
    repeat_id_and_name: bool = False
    unstreamed: bool = False
    usage: bool = True


@dataclass(frozen=True)
class WrongContentType:
    """Answer 200 with a body that is no chat completion, e.g. a proxy's HTML page."""

    content_type: str = "text/html"
    body: str = "<html><body><h1>Welcome to nginx!</h1></body></html>"


@dataclass(frozen=True)
class CutShort:
    """Stream ``text`` and stop: no ``finish_reason``, no ``[DONE]``, as a stream whose
    server failed mid-answer (an empty ``text`` stops after the first, role-only chunk)."""

    text: str


@dataclass(frozen=True)
class StreamError:
    """Stream ``text``, then an error object in the stream after the 200, then stop, as
    OpenAI and vLLM report a failure found mid-answer."""

    message: str
    text: str = ""


@dataclass(frozen=True)
class Fail:
    """Answer with an HTTP error in OpenAI's error shape, e.g. 429 with ``Retry-After``."""

    status: int
    message: str = "scripted failure"
    headers: dict[str, str] | None = None
    error_type: str | None = None


@dataclass(frozen=True)
class Hang:
    """Sleep before echoing, long enough for cancel and timeout paths to fire first."""

    seconds: float


Step: TypeAlias = Reply | CallTools | Fail | Hang | WrongContentType | CutShort | StreamError


@dataclass(frozen=True)
class Received:
    """What a request carried besides its body: its path, query and headers (names in
    lower case)."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True)
class _StreamedCall:
    call_id: str | None
    name: str
    argument_pieces: list[str]


@dataclass(frozen=True)
class _Answer:
    """One resolved assistant turn, rendered either as a whole body or as an SSE stream."""

    text_pieces: list[str]
    calls: list[_StreamedCall]
    finish_reason: str
    usage: dict[str, int] | None
    pause: float = 0.0
    repeat_id_and_name: bool = False
    hold: threading.Event | None = None


def _words(text: str) -> list[str]:
    """Split into word pieces with whitespace kept, so the pieces join back to ``text``."""
    return re.findall(r"\s*\S+|\s+$", text) or [text]


def _even_pieces(text: str, count: int) -> list[str]:
    size, extra = divmod(len(text), count)
    pieces: list[str] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def _content_text(content: object) -> str:
    """Text of a message ``content``, which may be a string or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    return [message for message in messages if isinstance(message, dict)]


def _default_prompt_tokens(body: dict[str, Any]) -> int:
    """A cheap, deterministic stand-in for tokenising the prompt."""
    characters = sum(len(_content_text(message.get("content"))) for message in _messages(body))
    return characters // 4 + 1


def _echo_text(body: dict[str, Any]) -> str:
    user_texts = [
        _content_text(message.get("content"))
        for message in _messages(body)
        if message.get("role") == "user"
    ]
    return "echo: " + (user_texts[-1] if user_texts else "")


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _reply_answer(reply: Reply, body: dict[str, Any]) -> _Answer:
    pieces = _words(reply.text) if reply.chunks is None else _even_pieces(reply.text, reply.chunks)
    prompt = _default_prompt_tokens(body) if reply.prompt_tokens is None else reply.prompt_tokens
    completion = len(pieces) if reply.completion_tokens is None else reply.completion_tokens
    usage = _usage(prompt, completion) if reply.usage else None
    return _Answer(pieces, [], reply.finish_reason, usage, reply.pause, hold=reply.hold)


def _tool_answer(step: CallTools, body: dict[str, Any]) -> _Answer:
    calls = []
    for call in step.calls:
        arguments = (
            call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
        )
        call_id = f"call_{uuid.uuid4().hex[:24]}" if call.with_id else None
        calls.append(_StreamedCall(call_id, call.name, _words(arguments)))
    completion = sum(len(call.argument_pieces) for call in calls)
    usage = _usage(_default_prompt_tokens(body), completion) if step.usage else None
    return _Answer([], calls, "tool_calls", usage, repeat_id_and_name=step.repeat_id_and_name)


def _call_fields(call: _StreamedCall, arguments: str) -> dict[str, Any]:
    """A tool call's ``id``/``type``/``function``, leaving out the id or name it lacks."""
    function: dict[str, Any] = {"arguments": arguments}
    if call.name:
        function["name"] = call.name
    fields: dict[str, Any] = {"type": "function", "function": function}
    if call.call_id is not None:
        fields["id"] = call.call_id
    return fields


def _error_response(fail: Fail) -> JSONResponse:
    error_type = fail.error_type or _ERROR_TYPES.get(
        fail.status, "server_error" if fail.status >= 500 else "invalid_request_error"
    )
    error = {"message": fail.message, "type": error_type, "param": None, "code": None}
    return JSONResponse({"error": error}, status_code=fail.status, headers=fail.headers)


def _completion_body(answer: _Answer, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(answer.text_pieces) if not answer.calls else None,
    }
    if answer.calls:
        message["tool_calls"] = [
            _call_fields(call, "".join(call.argument_pieces)) for call in answer.calls
        ]
    completion: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": answer.finish_reason,
                "logprobs": None,
            }
        ],
    }
    if answer.usage is not None:
        completion["usage"] = answer.usage
    return completion


def _stream_deltas(answer: _Answer) -> list[dict[str, Any]]:
    """The ``delta`` objects of a stream, in the order OpenAI sends them."""
    if not answer.calls:
        first: dict[str, Any] = {"role": "assistant", "content": ""}
        return [first] + [{"content": piece} for piece in answer.text_pieces]
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": None}]
    for index, call in enumerate(answer.calls):
        deltas.append({"tool_calls": [{"index": index, **_call_fields(call, "")}]})
        for piece in call.argument_pieces:
            if answer.repeat_id_and_name:
                delta = {"index": index, **_call_fields(call, piece)}
            else:
                delta = {"index": index, "function": {"arguments": piece}}
            deltas.append({"tool_calls": [delta]})
    return deltas


async def _sse_events(answer: _Answer, model: str, include_usage: bool) -> AsyncIterator[str]:
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": choices,
            **extra,
        }
        return f"data: {json.dumps(payload)}\n\n"

    for index, delta in enumerate(_stream_deltas(answer)):
        if index > 1 and answer.pause:  # the role chunk and the first piece go at once
            await asyncio.sleep(answer.pause)
        if index == 2 and answer.hold is not None:
            await asyncio.to_thread(answer.hold.wait)
        yield chunk([{"index": 0, "delta": delta, "finish_reason": None}])
    yield chunk([{"index": 0, "delta": {}, "finish_reason": answer.finish_reason}])
    if include_usage and answer.usage is not None:
        yield chunk([], usage=answer.usage)
    yield "data: [DONE]\n\n"


def _chunk_event(model: str, delta: dict[str, Any]) -> str:
    payload = {
        "id": "chatcmpl-broken",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }
    return f"data: {json.dumps(payload)}\n\n"


async def _cut_short_events(text: str, model: str) -> AsyncIterator[str]:
    yield _chunk_event(model, {"role": "assistant", "content": ""})
    for piece in _words(text) if text else []:
        yield _chunk_event(model, {"content": piece})


async def _stream_error_events(step: StreamError, model: str) -> AsyncIterator[str]:
    async for event in _cut_short_events(step.text, model):
        yield event
    error = {"message": step.message, "type": "server_error", "param": None, "code": None}
    yield f"data: {json.dumps({'error': error})}\n\n"


async def _sleep_while_connected(request: Request, seconds: float) -> None:
    """Sleep, but stop early when the client hangs up so abandoned requests don't linger.

    Waits for the server's disconnect message instead of polling for it: a thousand slow
    requests polling every 50 ms kept a core busy that the service under test needed."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while (await request.receive())["type"] != "http.disconnect":
                pass


def hashed_embedding(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """A deterministic stand-in for an embedding: each word (lower-cased) adds 1 to the
    component its hash picks, and the first component is 1 for every text, so that no vector
    is zero. Texts sharing words get similar vectors; the vector is not normalised, as a
    client must not count on an upstream's being."""
    vector = [0.0] * dimensions
    vector[0] = 1.0
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        vector[int.from_bytes(digest, "big") % dimensions] += 1.0
    return vector


def _embeddings_body(body: dict[str, Any], model: str) -> dict[str, Any]:
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else [str(item) for item in raw or []]
    dimensions = body.get("dimensions")
    if not isinstance(dimensions, int) or dimensions < 1:
        dimensions = EMBEDDING_DIMENSIONS
    data = [
        {"object": "embedding", "index": index, "embedding": hashed_embedding(text, dimensions)}
        for index, text in enumerate(inputs)
    ]
    tokens = sum(len(text) // 4 + 1 for text in inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "data": data, "model": model, "usage": usage}


class ScriptedModelServer:
    """Serve scripted chat completions on a free loopback port for the duration of a ``with``.

    Runs uvicorn in a daemon thread with its own event loop, so synchronous tests and a
    threadline server under test can both reach it over real HTTP.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Step]] = {}
        self._requests: dict[str, list[dict[str, Any]]] = {}
        self._authorizations: dict[str, list[str | None]] = {}
        self._received: dict[str, list[Received]] = {}
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.root_url = ""
        self.base_url = ""
        self._app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                # Azure OpenAI's own path for a deployment's chat completions.
                Route(
                    "/openai/deployments/{deployment}/chat/completions",
                    self._chat_completions,
                    methods=["POST"],
                ),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route(
                    "/openai/deployments/{deployment}/embeddings",
                    self._embeddings,
                    methods=["POST"],
                ),
            ]
        )

    def __enter__(self) -> Self:
        # IPPROTO_TCP, not 0: only then does asyncio turn Nagle off on accepted connections,
        # and without that every streamed chunk waits for the client's delayed ACK (~40 ms).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"scripted-model-{port}",
            daemon=True,
        )
        self._socket, self._server, self._thread = sock, server, thread
        thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self._stop()
                raise RuntimeError("scripted model server failed to start")
            time.sleep(0.01)
        self.root_url = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.root_url}/v1"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(_SHUTDOWN_TIMEOUT)
            if self._thread.is_alive():
                raise RuntimeError("scripted model server did not stop")
        if self._socket is not None:
            self._socket.close()
        self._socket = self._server = self._thread = None

    def script(self, model_name: str, *steps: Step) -> None:
        """Queue steps for ``model_name``; calling again appends to what is still queued."""
        with self._lock:
            self._scripts.setdefault(model_name, deque()).extend(steps)

    def requests(self, model_name: str) -> list[dict[str, Any]]:
        """The JSON bodies received for ``model_name``, oldest first."""
        with self._lock:
            return list(self._requests.get(model_name, []))

    def authorizations(self, model_name: str) -> list[str | None]:
        """The ``Authorization`` header of each request for ``model_name``, oldest first."""
        with self._lock:
            return list(self._authorizations.get(model_name, []))

    def received(self, model_name: str) -> list[Received]:
        """Where each request for ``model_name`` was sent and with which headers, oldest
        first: for upstreams that differ in path and headers (Azure OpenAI)."""
        with self._lock:
            return list(self._received.get(model_name, []))

    @staticmethod
    def unique_name(prefix: str = "m") -> str:
        """A model name no other test uses, so tests can share one server without collisions."""
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    def _take_step(self, model: str, body: dict[str, Any], request: Request) -> Step | None:
        received = Received(request.url.path, dict(request.query_params), dict(request.headers))
        with self._lock:
            self._requests.setdefault(model, []).append(body)
            self._authorizations.setdefault(model, []).append(request.headers.get("authorization"))
            self._received.setdefault(model, []).append(received)
            script = self._scripts.get(model)
            return script.popleft() if script else None

    async def _models(self, request: Request) -> Response:
        with self._lock:
            names = list(self._scripts)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "scripted"} for name in names
        ]
        return JSONResponse({"object": "list", "data": data})

    async def _chat_completions(self, request: Request) -> Response:
        body = await request.json()
        model = str(body.get("model", ""))
        step = self._take_step(model, body, request)
        unstreamed = False
        match step:
            case Fail():
                return _error_response(step)
            case WrongContentType():
                return Response(step.body, media_type=step.content_type)
            case CutShort():
                return StreamingResponse(
                    _cut_short_events(step.text, model), media_type="text/event-stream"
                )
            case StreamError():
                return StreamingResponse(
                    _stream_error_events(step, model), media_type="text/event-stream"
                )
            case Reply():
                unstreamed = step.unstreamed
                delay, answer = step.delay, _reply_answer(step, body)
            case CallTools():
                unstreamed = step.unstreamed
                delay, answer = step.delay, _tool_answer(step, body)
            case Hang():
                delay, answer = step.seconds, _reply_answer(Reply(_echo_text(body)), body)
            case None:
                delay, answer = 0.0, _reply_answer(Reply(_echo_text(body)), body)
        if delay > 0:
            await _sleep_while_connected(request, delay)
        if unstreamed or not body.get("stream"):
            return JSONResponse(_completion_body(answer, model))
        stream_options = body.get("stream_options") or {}
        include_usage = bool(stream_options.get("include_usage"))
        return StreamingResponse(
            _sse_events(answer, model, include_usage), media_type="text/event-stream"
        )

    async def _embeddings(self, request: Request) -> Response:
        body = await request.json()
        model = str(body.get("model", ""))
        step = self._take_step(model, body, request)
        match step:
            case Fail():
                return _error_response(step)
            case WrongContentType():
                return Response(step.body, media_type=step.content_type)
            case Hang():
                await _sleep_while_connected(request, step.seconds)
            case None:
                pass
            case _:
                return _error_response(
                    Fail(500, f"{type(step).__name__} is a chat step; /embeddings cannot use it")
                )
        return JSONResponse(_embeddings_body(body, model))
