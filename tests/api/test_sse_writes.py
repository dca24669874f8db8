"""How a run's events are cut into writes: one per batch, and the batch that ends the run
carries `done` with it, so a stream's end is one system call and one wake-up of the client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from threadline.api.streaming import sse_response
from threadline.domain.records import RunEvent
from threadline.service.run_events import EventBatches

DONE = b"event: done\ndata: [DONE]\n\n"


def _writes(batches: EventBatches) -> list[bytes]:
    async def collect() -> list[bytes]:
        body = sse_response(batches, lambda event: event.data).body_iterator
        return [chunk if isinstance(chunk, bytes) else chunk.encode() async for chunk in body]

    return asyncio.run(collect())


def test_the_batch_that_ends_the_run_and_done_go_out_in_one_write() -> None:
    async def batches() -> AsyncIterator[list[RunEvent]]:
        yield [RunEvent("thread.run.created", {"id": "run_1"}, 1)]
        yield [
            RunEvent("thread.message.delta", {"id": "msg_1"}, 2),
            RunEvent("thread.run.completed", {"id": "run_1"}, 3),
        ]

    writes = _writes(batches())

    assert len(writes) == 2
    assert writes[0] == b'id: 1\nevent: thread.run.created\ndata: {"id":"run_1"}\n\n'
    assert writes[1].startswith(b"id: 2\nevent: thread.message.delta\n")
    assert writes[1].endswith(b'event: thread.run.completed\ndata: {"id":"run_1"}\n\n' + DONE)


def test_a_run_that_had_ended_before_the_read_gets_done_alone() -> None:
    async def batches() -> AsyncIterator[list[RunEvent]]:
        return
        yield  # makes this an async generator that yields nothing

    assert _writes(batches()) == [DONE]
