"""An OpenAI-compatible upstream (OpenAI, Azure OpenAI, Ollama, vLLM, llama.cpp server, ...).

Retries are the `openai` client's own: exponential backoff with jitter on 408/409/429/5xx,
connection errors and timeouts, honouring `Retry-After`. What is left when they run out is
mapped to the run's `last_error` code here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import openai
from openai.types.chat import ChatCompletionChunk

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
        )
        self._context_window = context_window

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        try:
            chunks = await self._client.chat.completions.create(
                **_request_body(request), stream=True, stream_options={"include_usage": True}
            )
            async for chunk in chunks:
                converted = _convert(chunk)
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
    body: dict[str, Any] = {"model": request.model, "messages": request.messages}
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


def _convert(chunk: ChatCompletionChunk) -> ChatChunk | None:
    usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens) if chunk.usage else None
    if not chunk.choices:
        return ChatChunk(usage=usage) if usage else None
    choice = chunk.choices[0]
    tool_calls = tuple(
        ToolCallDelta(
            index=call.index,
            id=call.id,
            name=call.function.name if call.function else None,
            arguments=(call.function.arguments or "") if call.function else "",
        )
        for call in choice.delta.tool_calls or []
    )
    finish = choice.finish_reason if choice.finish_reason in _FINISH_REASONS else None
    return ChatChunk(
        text=choice.delta.content or "",
        tool_calls=tool_calls,
        finish_reason=cast(FinishReason | None, finish),
        usage=usage,
    )


def _message(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return f"The model provider answered: {error['message']}"
    return f"The model provider failed: {exc.message}"
