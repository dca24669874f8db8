"""An OpenAI-compatible upstream (OpenAI, Azure OpenAI, Ollama, vLLM, llama.cpp server, ...).

Requests, authentication and retries are the `openai` client's own: exponential backoff with
jitter on 408/409/429/5xx, connection errors and timeouts, honouring `Retry-After`. What is
left when they run out is mapped to the run's `last_error` code here. The streamed chunks
are read as plain JSON: building the client's typed chunk objects cost more CPU than the
rest of a delta's path through the service. The client sends through aiohttp (the SDK's own
option for many concurrent calls): its default transport's connection pool looks over every
connection whenever a call starts or ends, and a thousand calls in flight took a second
longer to complete on two cores.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, cast

import openai

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
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            max_retries=max_retries,
            timeout=timeout,
            http_client=openai.DefaultAioHttpClient(),
        )
        self._context_window = context_window

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        try:
            # The body is already in the wire format, so it goes as `extra_body`, which the
            # client sends as given: its type transform walks every message of the context
            # (a millisecond for a short thread, tens for a long one).
            async with self._client.chat.completions.with_streaming_response.create(
                model=request.model, messages=(), stream=True, extra_body=_request_body(request)
            ) as response:
                async for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    converted = _convert(json.loads(payload))
                    if converted is not None:
                        yield converted
        except openai.RateLimitError as exc:
            raise ProviderError("rate_limit_exceeded", _message(exc)) from exc
        except openai.APIStatusError as exc:
            code: ErrorCode = "server_error" if exc.status_code >= 500 else "invalid_prompt"
            raise ProviderError(code, _message(exc)) from exc
        except openai.APIError as exc:
            raise ProviderError("server_error", _message(exc)) from exc

    def count_tokens(self, model: str, text: str) -> int:
        """An upper estimate (about 3 characters a token): exact counts come back in `usage`,
        and an estimate that errs high only makes truncation keep a little less."""
        return len(text) // 3 + 1

    def context_window(self, model: str) -> int:
        return self._context_window

    async def close(self) -> None:
        await self._client.close()


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


def _message(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return f"The model provider answered: {error['message']}"
    return f"The model provider failed: {exc.message}"
