"""An OpenAI-compatible upstream (OpenAI, Azure OpenAI, Ollama, vLLM, llama.cpp server, ...).

The chat-completions call is made here, over aiohttp, rather than through the `openai`
client: its layers (request options, an httpx request carried over to aiohttp, response
wrappers) cost 1.5 ms of CPU per streamed call, against 0.5 ms for the same call made
directly (300 calls each to the scripted model server), and that CPU is the service's
overhead on every turn. Retries keep the client's rules, since users know them: up to
`max_retries` more attempts on 408, 409, 429, 5xx, connection errors and timeouts (an
`x-should-retry` header decides first), waiting what `retry-after-ms` or `Retry-After` asks
when it is between 0 and 120 seconds (an upstream asking for longer is not retried), else
0.5 s doubling up to 8 s, less up to a quarter of jitter. What is left when they run out
becomes the run's `last_error` code.

An answer is checked before it counts as one: it must be a stream of chunks (or the whole
completion some upstreams send instead) that ends with a `finish_reason`, whose tool calls
each have a name and an id. Anything else (an HTML page on a 200, a stream broken off, an
error sent after the 200) is a `server_error`, tried again while none of the answer has been
handed on. What the run's user sees of a failure is a short sentence (a status, the first
line of the upstream's reason without paths); what the upstream said is logged at WARNING.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import re
import string
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from threadline.providers.base import (
    ChatChunk,
    ChatRequest,
    ErrorCode,
    FinishReason,
    ProviderError,
    ToolCallDelta,
    Usage,
)

_FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter"}
_RETRIED_STATUSES = {408, 409, 429}
_INITIAL_RETRY_DELAY = 0.5
_MAX_RETRY_DELAY = 8.0
_MAX_RETRY_AFTER = 120.0
_BODY_END_SECONDS = 0.1
# What a user is shown of an upstream's reason, and what the log keeps of a body.
_SUMMARY_CHARACTERS = 200
_LOGGED_BYTES = 2000
# File paths in an upstream's message: absolute ones (POSIX or Windows), and relative ones
# of three parts or more ("llama_cpp/server/app.py"); URLs and media types stay.
_PATH = re.compile(
    r"(?<![\w/:.\-])(?:[A-Za-z]:[\\/]|[\\/])[^\s\"'<>()\[\],;]+"
    r"|(?<![\w/:.\-])[\w.\-]+(?:[\\/][\w.\-]+){2,}"
)
_EXCEPTION_PREFIX = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception)\s*:\s*")
# `count_tokens`: deleting ASCII letters and whitespace leaves the digits, the marks and the
# non-ASCII characters; each framed message is counted this many tokens beyond its text.
_WORDS_AND_SPACES = str.maketrans("", "", string.ascii_letters + string.whitespace)
_FRAMING_TOKENS = 4

log = logging.getLogger(__name__)


class OpenAICompatibleProvider:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        max_retries: int = 4,
        timeout: float = 120.0,
        context_window: int = 128_000,
        chat_url: str | None = None,
        key_header: str | None = None,
    ):
        """`timeout` bounds connecting and each wait for the model's next bytes, not the
        whole answer, which may stream for longer. `chat_url` is the whole URL of the
        chat-completions call where it is not `{base_url}/chat/completions`, and
        `key_header` the header that carries the key as it is, where it is not sent as
        `Authorization: Bearer` (Azure OpenAI: see `azure_openai`)."""
        self._url = chat_url or base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if api_key:
            if key_header:
                self._headers[key_header] = api_key
            else:
                self._headers["Authorization"] = f"Bearer {api_key}"
        self._max_retries = max_retries
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._context_window = context_window
        self._proxy, self._proxy_auth = _proxy_for(self._url)
        self._session: aiohttp.ClientSession | None = None

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        """The answer, checked as it comes: a call that fails before any of the answer has
        been handed on is tried again like any transient failure (the upstream's own word
        on retrying is kept), and one that fails after cannot be, since the engine has
        recorded what came."""
        body = json.dumps(_request_body(request)).encode()
        attempt = 0
        while True:
            response, attempt = await self._open(request.model, body, attempt)
            handed_on = False
            try:
                async with contextlib.aclosing(_answer(response)) as chunks:
                    async for chunk in chunks:
                        handed_on = True
                        yield chunk
                return
            except ProviderError as exc:
                retry = (
                    isinstance(exc, _BadAnswer)
                    and exc.transient
                    and not handed_on
                    and attempt < self._max_retries
                )
                delay = _retry_delay(attempt, {}) if retry else None
                _log_failure(request.model, attempt, exc.detail, delay)
                if delay is None:
                    raise
            finally:
                response.release()
            await asyncio.sleep(delay)
            attempt += 1

    async def prepare(self, model: str) -> None:
        """Nothing to load: counts are estimated."""

    def count_tokens(self, model: str, text: str) -> int:
        """An estimate that errs high, since the upstream's tokenizer is not at hand and a
        count that errs low lets a prompt overflow the model's window or a token budget
        stretch past its cap, where one that errs high only makes truncation keep a little
        less.

        Byte-level BPE tokenizers spend a token per 3 to 4 characters of ordinary words, but
        about one per digit or punctuation mark (some split every digit) and one per byte
        or two of non-ASCII text (CJK, emoji), so those are counted apart: words and spaces
        at a third of a token a character, each digit or mark as a token, each non-ASCII
        byte as a token (no token is shorter than a byte). Each text is counted as one
        message of a chat prompt, so it also carries its share of the chat template's
        framing: the role markers and separators around a message (about five tokens in
        ChatML and Llama 3 templates, partly counted by the caller) and the prompt's own
        opening and the assistant's turn marker. A text made almost only of numbers
        separated by spaces can still be under-counted where a tokenizer gives every digit
        and space a token, and so can a template's own hidden system prompt.

        Only operations that run in C: the context builder counts every message of a run's
        window on every turn."""
        if text.isascii():
            non_ascii_chars = non_ascii_bytes = 0
            ascii_chars = len(text)
        else:
            ascii_chars = len(text.encode("ascii", "ignore"))
            non_ascii_chars = len(text) - ascii_chars
            non_ascii_bytes = len(text.encode("utf-8", "surrogatepass")) - ascii_chars
        dense = len(text.translate(_WORDS_AND_SPACES)) - non_ascii_chars
        return -(-(ascii_chars - dense) // 3) + dense + non_ascii_bytes + _FRAMING_TOKENS

    def context_window(self, model: str) -> int:
        return self._context_window

    def sees_images(self, model: str) -> bool:
        """Yes by default: the upstreams this speaks to mostly serve models that see images
        (GPT-4o and after, vLLM and Ollama vision models), and one that does not answers a
        request with images with an error the run shows. A models file entry says otherwise
        with `vision = false` (`models_file.py`), which `routing.py` applies per name."""
        return True

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _open(
        self, model: str, body: bytes, attempt: int
    ) -> tuple[aiohttp.ClientResponse, int]:
        """The model's response once it has accepted the request, and the attempt it took;
        `attempt` counts the tries already made for this call."""
        session = self._client_session()
        while True:
            may_retry = attempt < self._max_retries
            try:
                response = await session.post(
                    self._url,
                    data=body,
                    headers=self._headers,
                    timeout=self._timeout,
                    proxy=self._proxy,
                    proxy_auth=self._proxy_auth,
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                delay = _retry_delay(attempt, {}) if may_retry else None
                _log_failure(model, attempt, _exception_detail(exc), delay)
                if delay is None:
                    raise _connection_error(exc) from exc
                await asyncio.sleep(delay)
                attempt += 1
                continue
            if response.status < 300:
                return response, attempt
            retry = may_retry and _should_retry(response.status, response.headers)
            delay = _retry_delay(attempt, response.headers) if retry else None
            try:
                payload = await response.read()
            except (aiohttp.ClientError, TimeoutError):
                payload = b""
            finally:
                response.release()
            error = _status_error(response.status, payload)
            _log_failure(model, attempt, error.detail, delay)
            if delay is None:
                raise error
            await asyncio.sleep(delay)
            attempt += 1

    def _client_session(self) -> aiohttp.ClientSession:
        """Made on first use, inside the event loop it belongs to. No cap on connections:
        the worker's concurrency already bounds the calls in flight."""
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self._session


def azure_openai(
    endpoint: str,
    deployment: str,
    api_version: str,
    api_key: str | None,
    *,
    max_retries: int = 4,
    timeout: float = 120.0,
    context_window: int = 128_000,
) -> OpenAICompatibleProvider:
    """An Azure OpenAI deployment: the same chat-completions format at
    `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...`, with the
    key in an `api-key` header. The deployment, not the body's `model`, picks the model."""
    url = URL(endpoint.rstrip("/")) / "openai" / "deployments" / deployment / "chat/completions"
    chat_url = str(url.with_query({"api-version": api_version}))
    return OpenAICompatibleProvider(
        endpoint,
        api_key,
        max_retries=max_retries,
        timeout=timeout,
        context_window=context_window,
        chat_url=chat_url,
        key_header="api-key",
    )


def _proxy_for(url: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """The proxy the environment names for `url` (`HTTPS_PROXY`, `NO_PROXY`, ...), looked up
    once: aiohttp's `trust_env` looks it and `~/.netrc` up on every request, in a thread,
    which added half a millisecond to each call. The CA bundle is the system's, or the one
    `SSL_CERT_FILE` names."""
    try:
        return get_env_proxy_for_url(URL(url))
    except LookupError:
        return None, None


async def _finish_body(content: aiohttp.StreamReader) -> None:
    """Read the body's end after `[DONE]`, so that its connection serves the next call: one
    released before the end is closed, and every call then paid for a new connection. An
    upstream that keeps the body open gets a moment before its connection is dropped."""
    if content.at_eof():
        return
    with contextlib.suppress(TimeoutError, aiohttp.ClientError):
        async with asyncio.timeout(_BODY_END_SECONDS):
            await content.read()


async def _lines(content: aiohttp.StreamReader) -> AsyncGenerator[bytes, None]:
    """Split on newlines however long a line is (aiohttp's own line reader caps them). The
    pieces of a line still open are kept apart and joined once it ends: a line arriving in
    many reads (a whole completion on one line) would otherwise be copied on every read."""
    open_line: list[bytes] = []
    async for data in content.iter_any():
        *lines, rest = data.split(b"\n")
        if lines:
            open_line.append(lines[0])
            lines[0] = b"".join(open_line)
            open_line.clear()
        for line in lines:
            yield line
        if rest:
            open_line.append(rest)
    if open_line:
        yield b"".join(open_line)


def _should_retry(status: int, headers: Mapping[str, str]) -> bool:
    asked = _retry_after(headers)
    if asked is not None and asked > _MAX_RETRY_AFTER:
        return False
    verdict = headers.get("x-should-retry")
    if verdict in ("true", "false"):
        return verdict == "true"
    return status in _RETRIED_STATUSES or status >= 500


def _retry_delay(attempt: int, headers: Mapping[str, str]) -> float:
    asked = _retry_after(headers)
    if asked is not None and 0 < asked <= _MAX_RETRY_AFTER:
        return asked
    delay = min(_INITIAL_RETRY_DELAY * 2.0**attempt, _MAX_RETRY_DELAY)
    return delay * (1 - 0.25 * random.random())


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the upstream asked to wait: `retry-after-ms`, or `Retry-After` in seconds or
    as an HTTP date."""
    try:
        return float(headers["retry-after-ms"]) / 1000
    except (KeyError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    date = email.utils.parsedate_tz(value)
    if date is None:
        return None
    try:
        return email.utils.mktime_tz(date) - time.time()
    except (OverflowError, ValueError):
        return None


def _status_error(status: int, payload: bytes) -> ProviderError:
    code: ErrorCode
    if status == 429:
        code = "rate_limit_exceeded"
    elif status >= 500:
        code = "server_error"
    else:
        code = "invalid_prompt"
    message = _error_message(payload)
    reason = _summary(message) if message is not None else ""
    shown = f"The model server answered HTTP {status}{_phrase(status)}"
    detail = f"HTTP {status}: {_excerpt(payload)}"
    return ProviderError(code, f"{shown}: {reason}" if reason else shown, detail)


def _phrase(status: int) -> str:
    try:
        return f" ({HTTPStatus(status).phrase})"
    except ValueError:
        return ""


def _error_message(payload: bytes | dict[str, Any]) -> str | None:
    """The `message` of an OpenAI-shaped error body (`{"error": {"message": ...}}`), or of a
    bare `{"message": ...}`, or the error when it is a plain string."""
    if isinstance(payload, bytes):
        try:
            body = json.loads(payload)
        except ValueError:
            return None
    else:
        body = payload
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, str):
        return error
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else None


def _summary(message: str) -> str:
    """The upstream's own reason, made fit to show a user: its first line (the rest is
    often a stack trace or a dump of the request), without an exception's class name in
    front, with file paths taken out, and short. Empty when nothing of it is fit."""
    first = next((line.strip() for line in message.splitlines() if line.strip()), "")
    if first.startswith("Traceback"):
        return ""
    first = _EXCEPTION_PREFIX.sub("", first)
    first = _PATH.sub("[path]", first).strip()
    if len(first) > _SUMMARY_CHARACTERS:
        first = first[: _SUMMARY_CHARACTERS - 1].rstrip() + "\u2026"
    return first


def _excerpt(payload: bytes) -> str:
    """The start of a body, for the log."""
    text = payload[:_LOGGED_BYTES].decode("utf-8", "replace")
    return text + ("..." if len(payload) > _LOGGED_BYTES else "")


def _connection_error(exc: BaseException) -> ProviderError:
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        message = "The model server did not answer in time"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        message = "The model server could not be reached"
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        message = "The model server closed the connection before answering"
    else:
        message = "The connection to the model server failed"
    return ProviderError("server_error", message, _exception_detail(exc))


def _exception_detail(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _log_failure(model: str, attempt: int, detail: str, retry_in: float | None) -> None:
    """Every failed try, with what the upstream said: the user sees a summary only."""
    if retry_in is None:
        log.warning("model call for %s failed (try %d): %s", model, attempt + 1, detail)
    else:
        log.warning(
            "model call for %s failed (try %d), trying again in %.1f s: %s",
            model,
            attempt + 1,
            retry_in,
            detail,
        )


def _request_body(request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": request.messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        body["tools"] = request.tools
        body["parallel_tool_calls"] = request.parallel_tool_calls
        if request.tool_choice is not None:
            body["tool_choice"] = request.tool_choice
    # Unset sampling settings are left out, not sent as OpenAI's defaults, so that the
    # upstream's own defaults (a local server's configured temperature) hold.
    optional = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
        "response_format": request.response_format,
        "reasoning_effort": request.reasoning_effort,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


class _BadAnswer(ProviderError):
    """The upstream accepted the call but its answer is not one: `transient` when trying
    again may well get a good one (a proxy's error page, a stream that broke off), not when
    the upstream said what is wrong with the request."""

    def __init__(
        self, message: str, detail: str, *, code: ErrorCode = "server_error", transient: bool = True
    ):
        super().__init__(code, message, detail)
        self.transient = transient


_ENDED_EARLY = "The model server ended the answer early"
_UNREADABLE = "The model server sent an answer that could not be read"


async def _answer(response: aiohttp.ClientResponse) -> AsyncGenerator[ChatChunk, None]:
    """The chunks of an accepted call's answer: a stream of chunks, or the whole completion
    some upstreams send even when asked to stream, or an error."""
    content_type = response.content_type
    try:
        if content_type == "text/event-stream":
            async with contextlib.aclosing(_stream_chunks(response.content)) as chunks:
                async for chunk in chunks:
                    yield chunk
        elif content_type == "application/json":
            for chunk in _whole_completion(await response.read()):
                yield chunk
        else:
            raise _BadAnswer(
                f"The model server answered with {content_type} instead of a stream",
                f"HTTP {response.status} with Content-Type {response.headers.get('Content-Type')}",
            )
    except (aiohttp.ClientError, TimeoutError) as exc:
        message = (
            "The model server did not answer in time"
            if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError)
            else _ENDED_EARLY
        )
        raise _BadAnswer(message, _exception_detail(exc)) from exc


async def _stream_chunks(content: aiohttp.StreamReader) -> AsyncGenerator[ChatChunk, None]:
    state = _AnswerState()
    async with contextlib.aclosing(_lines(content)) as lines:
        async for line in lines:
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                state.end("the stream's [DONE] came before any finish_reason")
                await _finish_body(content)
                return
            try:
                data = json.loads(payload)
            except ValueError as exc:
                detail = f"a data line that is not JSON: {payload[:200]!r}"
                raise _BadAnswer(_UNREADABLE, detail) from exc
            chunk = state.take(data)
            if chunk is not None:
                yield chunk
    state.end("the stream ended before any finish_reason or [DONE]")


def _whole_completion(payload: bytes) -> list[ChatChunk]:
    """A whole `chat.completion` sent in answer to a streamed request, as the chunks its
    stream would have carried; anything else is an error."""
    try:
        body = json.loads(payload)
    except ValueError as exc:
        detail = f"a JSON answer that is not JSON: {_excerpt(payload)}"
        raise _BadAnswer(_UNREADABLE, detail) from exc
    if isinstance(body, dict) and "error" in body:
        raise _reported_error(body)
    choices = body.get("choices") if isinstance(body, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise _BadAnswer(
            "The model server's answer was not a chat completion",
            f"a JSON answer without choices[0].message: {_excerpt(payload)}",
        )
    calls = message.get("tool_calls") or []
    delta = {
        "content": message.get("content"),
        "tool_calls": [
            {**call, "index": call.get("index", index)}
            for index, call in enumerate(calls if isinstance(calls, list) else [])
            if isinstance(call, dict)
        ],
    }
    state = _AnswerState()
    chunk = state.take(
        {
            "choices": [{"index": 0, "delta": delta, "finish_reason": choice["finish_reason"]}]
            if isinstance(choice, dict) and "finish_reason" in choice
            else [{"index": 0, "delta": delta}],
            "usage": body.get("usage"),
        }
    )
    state.end("the completion has no finish_reason")
    return [chunk] if chunk is not None else []


def _reported_error(body: dict[str, Any]) -> _BadAnswer:
    """An error object the upstream sent after accepting the call (in the stream, or as its
    whole answer): a status it carries decides the run's error code as an HTTP status would;
    without one it is the server's own failure, worth trying again."""
    error = body.get("error")
    status = None
    if isinstance(error, dict):
        for key in ("status", "code"):
            value = error.get(key)
            if isinstance(value, int) and 400 <= value < 600:
                status = value
                break
    message = _error_message(body)
    reason = _summary(message) if message is not None else ""
    shown = "The model server reported an error"
    detail = f"an error after the 200: {json.dumps(body)[:_LOGGED_BYTES]}"
    if status is None or status >= 500 or status in _RETRIED_STATUSES:
        code: ErrorCode = "rate_limit_exceeded" if status == 429 else "server_error"
        return _BadAnswer(f"{shown}: {reason}" if reason else shown, detail, code=code)
    return _BadAnswer(
        f"{shown}: {reason}" if reason else shown, detail, code="invalid_prompt", transient=False
    )


@dataclass
class _Call:
    id: str | None = None
    name: str | None = None


class _AnswerState:
    """What one answer has said so far, to check it and to hand on tool calls cleanly.

    In the OpenAI format a tool call's `id` and `function.name` come once, in its first
    delta, and later deltas of the same `index` add only arguments. Some servers
    (llama-cpp-python's) repeat the id and name in every delta; the repeats are dropped
    here, so that each call's id and name are handed on once. An answer is whole only once
    it has a `finish_reason`; by then every call must have both a name and an id, or there
    is nothing to run and nothing to answer it with.
    """

    def __init__(self) -> None:
        self._calls: dict[int, _Call] = {}
        # The upstream's index -> the call its pieces now go to, where the two differ.
        self._indexes: dict[int, int] = {}
        self._finished = False

    def take(self, data: Any) -> ChatChunk | None:
        """The chunk `data` (one decoded stream event) carries, if it carries anything."""
        if not isinstance(data, dict):
            raise _BadAnswer(_UNREADABLE, f"a chunk that is not an object: {str(data)[:200]}")
        if "error" in data:
            raise _reported_error(data)
        try:
            return self._convert(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _BadAnswer(
                _UNREADABLE, f"a malformed chunk ({exc!r}): {json.dumps(data)[:_LOGGED_BYTES]}"
            ) from exc

    def end(self, why: str) -> None:
        """Check that the answer was whole when its stream ended."""
        if not self._finished:
            raise _BadAnswer(_ENDED_EARLY, why)

    def _convert(self, data: dict[str, Any]) -> ChatChunk | None:
        usage = _usage(data.get("usage"))
        choices = data.get("choices") or []
        if not choices:
            return ChatChunk(usage=usage) if usage else None
        choice = choices[0]
        # A stream event that carries a whole `message` instead of a `delta` (as a few
        # servers send their one and only event) is read as the delta it amounts to.
        # An empty `delta` beside a `message` is still the delta: the message repeats it.
        delta = choice.get("delta")
        if delta is None:
            delta = choice.get("message") or {}
        text = delta.get("content") or ""
        if not isinstance(text, str):
            raise ValueError("content is not a string")
        calls = tuple(
            piece for raw in delta.get("tool_calls") or [] if (piece := self._call_piece(raw))
        )
        raw_finish = choice.get("finish_reason")
        finish: FinishReason | None = None
        if raw_finish is not None:
            finish = _finish_reason(raw_finish)
            self._check_calls()
            self._finished = True
        if not (text or calls or finish or usage):
            return None
        return ChatChunk(text=text, tool_calls=calls, finish_reason=finish, usage=usage)

    def _call_piece(self, raw: dict[str, Any]) -> ToolCallDelta | None:
        position = int(raw.get("index") or 0)
        index = self._indexes.get(position, position)
        function = raw.get("function") or {}
        call = self._calls.setdefault(index, _Call())
        new_id = raw.get("id") or None
        if new_id is not None and call.id is not None and str(new_id) != call.id:
            # Another id at an index already taken is another call: some servers give every
            # call index 0. It gets the next free index, and so do the pieces after it.
            index = max(self._calls) + 1
            self._indexes[position] = index
            call = self._calls.setdefault(index, _Call())
        if new_id is not None and call.id is None:
            call.id = str(new_id)
        else:
            new_id = None
        name = function.get("name") or None
        if name is not None and name != call.name:
            # A name differing from the one already given goes on it, as arguments do; one
            # equal to it is the same name said again.
            call.name = (call.name or "") + str(name)
        else:
            name = None
        arguments = function.get("arguments") or ""
        if not isinstance(arguments, str):
            raise ValueError("tool call arguments are not a string")
        if new_id is None and name is None and not arguments:
            return None
        return ToolCallDelta(index=index, id=new_id, name=name, arguments=arguments)

    def _check_calls(self) -> None:
        for index, call in sorted(self._calls.items()):
            if not call.name:
                raise _BadAnswer(
                    "The model server asked for a tool call without a function name",
                    f"tool call {index} has no function name (id {call.id!r})",
                )
            if not call.id:
                raise _BadAnswer(
                    "The model server asked for a tool call without an id",
                    f"tool call {index} ({call.name!r}) has no id",
                )


def _finish_reason(raw: Any) -> FinishReason:
    """The chunk's finish_reason; the legacy "function_call" is "tool_calls", and one not in
    the format (an "error", an "abort") means the answer did not end as an answer."""
    if raw == "function_call":
        return "tool_calls"
    if raw not in _FINISH_REASONS:
        raise _BadAnswer(_ENDED_EARLY, f"finish_reason {raw!r}")
    return cast(FinishReason, raw)


def _usage(raw: Any) -> Usage | None:
    """The chunk's usage when it has whole counts; an upstream's partial usage is ignored,
    and the engine estimates instead."""
    if not isinstance(raw, dict):
        return None
    prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
    if isinstance(prompt, int) and isinstance(completion, int) and prompt >= 0 and completion >= 0:
        return Usage(prompt, completion)
    return None
