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
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import time
from collections.abc import AsyncGenerator, Mapping
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


class OpenAICompatibleProvider:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        max_retries: int = 4,
        timeout: float = 120.0,
        context_window: int = 128_000,
    ):
        """`timeout` bounds connecting and each wait for the model's next bytes, not the
        whole answer, which may stream for longer."""
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._max_retries = max_retries
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._context_window = context_window
        self._proxy, self._proxy_auth = _proxy_for(self._url)
        self._session: aiohttp.ClientSession | None = None

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        body = json.dumps(_request_body(request)).encode()
        response = await self._open(body)
        try:
            async with contextlib.aclosing(_lines(response.content)) as lines:
                async for line in lines:
                    if not line.startswith(b"data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        await _finish_body(response.content)
                        break
                    converted = _convert(json.loads(payload))
                    if converted is not None:
                        yield converted
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderError("server_error", _failure(exc)) from exc
        finally:
            response.release()

    async def prepare(self, model: str) -> None:
        """Nothing to load: counts are estimated."""

    def count_tokens(self, model: str, text: str) -> int:
        """An upper estimate (about 3 characters a token): exact counts come back in `usage`,
        and an estimate that errs high only makes truncation keep a little less."""
        return len(text) // 3 + 1

    def context_window(self, model: str) -> int:
        return self._context_window

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _open(self, body: bytes) -> aiohttp.ClientResponse:
        """The model's streaming response, once it has accepted the request."""
        session = self._client_session()
        attempt = 0
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
                if not may_retry:
                    raise ProviderError("server_error", _failure(exc)) from exc
                await asyncio.sleep(_retry_delay(attempt, {}))
                attempt += 1
                continue
            if response.status < 300:
                return response
            if may_retry and _should_retry(response.status, response.headers):
                response.release()
                await asyncio.sleep(_retry_delay(attempt, response.headers))
                attempt += 1
                continue
            try:
                payload = await response.read()
            except (aiohttp.ClientError, TimeoutError):
                payload = b""
            finally:
                response.release()
            raise _status_error(response.status, payload)

    def _client_session(self) -> aiohttp.ClientSession:
        """Made on first use, inside the event loop it belongs to. No cap on connections:
        the worker's concurrency already bounds the calls in flight."""
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self._session


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
    """Split on newlines however long a line is (aiohttp's own line reader caps them)."""
    rest = b""
    async for data in content.iter_any():
        *lines, rest = (rest + data).split(b"\n")
        for line in lines:
            yield line
    if rest:
        yield rest


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
    if message is None:
        return ProviderError(code, f"The model provider failed: HTTP {status}")
    return ProviderError(code, f"The model provider answered: {message}")


def _error_message(payload: bytes) -> str | None:
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    error = body.get("error", body) if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else None


def _failure(exc: BaseException) -> str:
    detail = str(exc) or type(exc).__name__
    return f"The model provider failed: {detail}"


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
    optional = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
        "response_format": request.response_format,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


def _convert(chunk: dict[str, Any]) -> ChatChunk | None:
    if "error" in chunk:
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise ProviderError("server_error", f"The model provider answered: {message}")
    raw_usage = chunk.get("usage")
    usage = Usage(raw_usage["prompt_tokens"], raw_usage["completion_tokens"]) if raw_usage else None
    choices = chunk.get("choices") or []
    if not choices:
        return ChatChunk(usage=usage) if usage else None
    choice = choices[0]
    delta = choice.get("delta") or {}
    tool_calls = tuple(
        ToolCallDelta(
            index=call.get("index", 0),
            id=call.get("id"),
            name=(call.get("function") or {}).get("name"),
            arguments=(call.get("function") or {}).get("arguments") or "",
        )
        for call in delta.get("tool_calls") or []
    )
    finish = choice.get("finish_reason")
    return ChatChunk(
        text=delta.get("content") or "",
        tool_calls=tool_calls,
        finish_reason=cast(FinishReason, finish) if finish in _FINISH_REASONS else None,
        usage=usage,
    )
