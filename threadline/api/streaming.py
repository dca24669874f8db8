"""Server-sent events in the format the SDKs parse: `id`, `event`, `data`, then `done`."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

from starlette.responses import StreamingResponse

from threadline import json_codec
from threadline.api.errors import error_object
from threadline.domain.records import RunEvent
from threadline.service.run_events import ENDING_EVENTS, EventBatches, RunVanished

# A comment line with no blank line after it: bytes that keep proxies and client read
# timeouts from giving up on a quiet stream, and that end no event. Followed by a blank line
# it would be an event of its own, which the SDKs' parsers reject (the openai SDK reads it
# as an event with empty data, azure-ai-agents as one with no type).
KEEPALIVE = b": keep-alive\n"
_DONE = "event: done\ndata: [DONE]\n\n"


# Line breaks to Unicode but not to SSE, which JSON text may hold raw inside a string: a
# client that splits lines the Unicode way (httpx's `iter_lines`, Python's `splitlines`)
# would cut the event's data in two, so they go out escaped, as the standard library wrote
# them before.
_UNICODE_LINE_BREAKS = re.compile("[\u0085\u2028\u2029]")


def _escaped(match: re.Match[str]) -> str:
    return f"\\u{ord(match[0]):04x}"


def _data(value: object) -> str:
    return _UNICODE_LINE_BREAKS.sub(_escaped, json_codec.dumps(value))


def event_data(value: object) -> str:
    """A frame's `data`, for a wire format that writes its frames itself."""
    return _data(value)


# A run's event as a wire format writes it: the data of its frame.
EventRenderer = Callable[[RunEvent], object]


def _frame(event: RunEvent, render: EventRenderer) -> str:
    return f"id: {event.seq}\nevent: {event.event}\ndata: {_data(render(event))}\n\n"


async def _frames(batches: EventBatches, render: EventRenderer) -> AsyncIterator[bytes]:
    """One write per batch of events: each write is a system call and wakes the client.
    The batch that ends the run carries `done` in the same write."""
    ended = False
    try:
        async for batch in batches:
            if not batch:
                yield KEEPALIVE
                continue
            frames = "".join(_frame(event, render) for event in batch)
            ended = batch[-1].event in ENDING_EVENTS
            yield (frames + _DONE if ended else frames).encode()
    except RunVanished as gone:
        error = error_object(f"Run {gone} no longer exists.", "invalid_request_error")
        yield f"event: error\ndata: {_data(error)}\n\n".encode()
        return
    if not ended:  # the run had ended before the read: its log held nothing more
        yield _DONE.encode()


def sse_response(batches: EventBatches, render: EventRenderer) -> StreamingResponse:
    return StreamingResponse(
        _frames(batches, render),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
