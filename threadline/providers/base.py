"""The one interface every model client implements.

Providers stream: a request yields `ChatChunk`s as the model produces them, so that the
engine can record deltas as they arrive. A provider turns its own failures into
`ProviderError` with the `last_error` code the run will carry.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ErrorCode = Literal["server_error", "rate_limit_exceeded", "invalid_prompt"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


@dataclass(frozen=True)
class ChatRequest:
    """A chat completion request in the OpenAI chat format.

    `messages` are chat messages (`{"role": "system"|"user"|"assistant"|"tool", ...}`); a
    message's `content` is a string, or a list of `text` and `image_url` parts, the latter only
    for a model that `sees_images`,
    `tools` are chat tools (`{"type": "function", "function": {...}}`), `tool_choice` is
    "none" | "auto" | "required" | `{"type": "function", "function": {"name": ...}}`.
    """

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool = True
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    response_format: dict[str, Any] | None = None
    # The run's `reasoning_effort`, for upstreams that reason; None leaves it to the model.
    reasoning_effort: str | None = None


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of one tool call; `index` ties the pieces of one call together."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True)
class ChatChunk:
    text: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


class ProviderError(Exception):
    """A model call that failed: `message` is what the run's `last_error` shows its user, so it
    is written for them and carries nothing of the server's insides (paths, stack traces,
    exception text); `detail` is the whole story, for the service's log only."""

    def __init__(self, code: ErrorCode, message: str, detail: str | None = None):
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.detail = detail if detail is not None else message


class ModelProvider(Protocol):
    def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        """Yield chunks; the last carries `finish_reason`, and `usage` where known."""
        ...

    async def prepare(self, model: str) -> None:
        """Have at hand what `count_tokens` needs for `model` (a tokenizer to load), without
        holding up the event loop; called before a run's context is built."""
        ...

    def count_tokens(self, model: str, text: str) -> int:
        """Tokens `text` takes in `model`'s prompt: exact where the tokenizer is at hand."""
        ...

    def context_window(self, model: str) -> int:
        """How many tokens prompt and completion may take together."""
        ...

    def sees_images(self, model: str) -> bool:
        """Whether `model` takes `image_url` parts in a message's content. Asked only for a
        prompt that has images: one for a model that cannot see them carries a text note in
        place of each (`engine/images.py`), since such a model may fail on the parts or,
        worse, answer as if it had seen them."""
        ...

    async def close(self) -> None: ...
