"""Server-sent events in the format the SDKs parse: `id`, `event`, `data`, then `done`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse

from threadline.service.run_events import IDLE, RunVanished
from threadline.store.base import RunEvent


async def _frames(events: AsyncIterator[RunEvent]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            if event is IDLE:
                yield b": keep-alive\n\n"
                continue
            data = json.dumps(event.data)
            yield f"id: {event.seq}\nevent: {event.event}\ndata: {data}\n\n".encode()
    except RunVanished as gone:
        error = {
            "error": {
                "message": f"Run {gone} no longer exists.",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        }
        yield f"event: error\ndata: {json.dumps(error)}\n\n".encode()
        return
    yield b"event: done\ndata: [DONE]\n\n"


def sse_response(events: AsyncIterator[RunEvent]) -> StreamingResponse:
    return StreamingResponse(
        _frames(events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
