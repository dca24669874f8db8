"""The embedded model's hand-off wakes the event loop once per interval, not once per token,
and passes what came meanwhile on as one chunk."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from threadline.providers.base import ChatChunk, ProviderError, Usage
from threadline.providers.local_llama import _Handoff, _joined


class _CountingLoop:
    """Counts the wake-ups the generation thread asks of the loop, and performs them."""

    def __init__(self) -> None:
        self.wakeups = 0

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        self.wakeups += 1
        callback(*args)


def _pieces(count: int) -> list[ChatChunk]:
    return [ChatChunk(text=f"t{i}") for i in range(count)]


def test_tokens_within_the_interval_wake_the_loop_once_with_the_first() -> None:
    loop = _CountingLoop()
    handoff = _Handoff(cast(asyncio.AbstractEventLoop, loop), interval=60.0)

    for piece in _pieces(10):
        handoff.put(piece)
    handoff.put(None)

    assert loop.wakeups == 2  # the first token, and the end
    assert asyncio.run(handoff.take()) == [*_pieces(10), None]


def test_an_error_wakes_the_loop_at_once() -> None:
    loop = _CountingLoop()
    handoff = _Handoff(cast(asyncio.AbstractEventLoop, loop), interval=60.0)
    failure = ProviderError("server_error", "the local model failed")

    handoff.put(ChatChunk(text="t0"))
    handoff.put(failure)

    assert loop.wakeups == 2
    assert asyncio.run(handoff.take()) == [ChatChunk(text="t0"), failure]


def test_with_no_interval_every_token_wakes_the_loop() -> None:
    loop = _CountingLoop()
    handoff = _Handoff(cast(asyncio.AbstractEventLoop, loop), interval=0.0)

    for piece in _pieces(5):
        handoff.put(piece)

    assert loop.wakeups == 5


def test_the_text_of_one_handoff_goes_on_as_one_chunk() -> None:
    end = ChatChunk(finish_reason="length", usage=Usage(prompt_tokens=3, completion_tokens=10))

    assert _joined([*_pieces(10), end, None]) == [
        ChatChunk(text="".join(f"t{i}" for i in range(10))),
        end,
        None,
    ]


def test_joining_keeps_errors_and_endings_in_their_place() -> None:
    failure = ProviderError("server_error", "the local model failed")

    assert _joined([*_pieces(2), failure, *_pieces(3)]) == [
        ChatChunk(text="t0t1"),
        failure,
        ChatChunk(text="t0t1t2"),
    ]
    assert _joined([None]) == [None]
    assert _joined([]) == []
