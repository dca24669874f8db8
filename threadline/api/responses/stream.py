"""A response's stream: its run's event log as `response.*` events.

The run's log says what the worker did (`thread.message.delta`, `thread.run.step.delta`,
...); this maps it, in order, to the events the Responses API streams, numbering them
(`sequence_number`) and giving each output item its index as it first appears. The last
event carries the response as stored, read when the run has settled, so a client's
`get_final_response()` equals a later `retrieve`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from threadline.api.errors import error_object
from threadline.api.responses import render
from threadline.api.streaming import KEEPALIVE, event_data
from threadline.domain.records import Message, Obj, Run, RunEvent
from threadline.service.responses import ResponseView
from threadline.service.run_events import EventBatches, RunVanished

_ENDINGS = {
    "thread.run.completed": "response.completed",
    "thread.run.incomplete": "response.incomplete",
    "thread.run.failed": "response.failed",
    "thread.run.expired": "response.failed",
    # No event of the Responses stream says `cancelled`: the response it carries does.
    "thread.run.cancelled": "response.failed",
}

# How the stream reads the response once its run has settled.
ReadView = Callable[[str], Awaitable[ResponseView | None]]


# The built-in tools' calls, whose items stream events of their own kind.
_BUILTIN = ("file_search", "code_interpreter", "mcp", "openapi")


class _Mapper:
    def __init__(self) -> None:
        self.sequence = 0
        self.indexes: dict[str, int] = {}  # output item (message or call id) -> index
        # A call's pieces name it by the step's id and the call's place in the step.
        self.calls: dict[tuple[str, int], str] = {}
        # A built-in tool's call as its pieces (or its step, made with it) told it so far.
        self.built: dict[tuple[str, int], Obj] = {}
        # Calls whose items are done (their outcome streamed) and activities shown.
        self.done: set[str] = set()
        self.started = False
        self.include: list[str] = []
        self.container_id = ""

    def _event(self, kind: str, **fields: Any) -> Obj:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def _index(self, item_id: str) -> tuple[int, bool]:
        """The item's output index, and whether it is new."""
        if item_id in self.indexes:
            return self.indexes[item_id], False
        self.indexes[item_id] = len(self.indexes)
        return self.indexes[item_id], True

    def map(self, event: RunEvent) -> list[Obj]:
        name, data = event.event, event.data
        if name == "thread.run.created":
            self.include = list(data.get("response", {}).get("include") or [])
            self.container_id = data["thread_id"]
            return [self._event("response.created", response=render.response(data))]
        if name == "thread.run.in_progress" and not self.started:
            self.started = True
            return [self._event("response.in_progress", response=render.response(data))]
        if name == "thread.message.created":
            return self._message_added(data)
        if name == "thread.message.delta":
            return self._text_delta(data)
        if name in ("thread.message.completed", "thread.message.incomplete"):
            return self._message_done(data)
        if name == "thread.run.step.created":
            self._learn_step(data)
            return []
        if name == "thread.run.step.delta":
            return self._call_pieces(data)
        if name == "thread.run.step.completed":
            kind = data["step_details"]["type"]
            if kind == "tool_calls":
                return self._calls_done(data["step_details"]["tool_calls"])
            if kind == "activities":
                return self._activities(data["step_details"]["activities"])
        return []

    def _message_added(self, message: Message) -> list[Obj]:
        index, new = self._index(message["id"])
        if not new:
            return []  # announced again by a worker that took the run over
        item = {**render.output_message(message), "content": [], "status": "in_progress"}
        part = render.output_text({"text": ""})
        return [
            self._event("response.output_item.added", output_index=index, item=item),
            self._event(
                "response.content_part.added",
                item_id=message["id"],
                output_index=index,
                content_index=0,
                part=part,
            ),
        ]

    def _text_delta(self, delta: Obj) -> list[Obj]:
        index = self.indexes.get(delta["id"])
        if index is None:
            return []
        return [
            self._event(
                "response.output_text.delta",
                item_id=delta["id"],
                output_index=index,
                content_index=0,
                delta=piece["text"],
                logprobs=[],
            )
            for piece in delta["content"]
            if piece.get("type") == "text" and piece.get("index") == 0 and piece.get("text")
        ]

    def _message_done(self, message: Message) -> list[Obj]:
        events = self._message_added(message)
        index = self.indexes[message["id"]]
        item = render.output_message(message)
        part = item["content"][0] if item["content"] else render.output_text({"text": ""})
        if not item["content"]:
            item["content"] = [part]
        return [
            *events,
            self._event(
                "response.output_text.done",
                item_id=message["id"],
                output_index=index,
                content_index=0,
                text=part["text"],
                logprobs=[],
            ),
            self._event(
                "response.content_part.done",
                item_id=message["id"],
                output_index=index,
                content_index=0,
                part=part,
            ),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def _call_pieces(self, delta: Obj) -> list[Obj]:
        events: list[Obj] = []
        for piece in delta["tool_calls"]:
            if piece.get("type") in _BUILTIN:
                events += self._builtin_piece(delta["id"], piece)
                continue
            if piece.get("type") != "function":
                continue
            place = (delta["id"], piece["index"])
            if "id" in piece:
                self.calls[place] = call_id = piece["id"]
                index, _ = self._index(call_id)
                call = {"id": call_id, "name": piece.get("name", ""), "arguments": ""}
                item = render.function_call(call, "in_progress")
                events.append(
                    self._event("response.output_item.added", output_index=index, item=item)
                )
            elif place in self.calls:
                call_id = self.calls[place]
                index = self.indexes[call_id]
            else:
                continue
            if piece.get("arguments"):
                events.append(
                    self._event(
                        "response.function_call_arguments.delta",
                        item_id=f"fc_{call_id}",
                        output_index=index,
                        delta=piece["arguments"],
                    )
                )
        return events

    def _calls_done(self, calls: list[Obj]) -> list[Obj]:
        events: list[Obj] = []
        for call in calls:
            if call["type"] in _BUILTIN and call["id"] not in self.done:
                events += self._builtin_done(call)
            if call["type"] != "function":
                continue
            index, new = self._index(call["id"])
            item = render.function_call(call)
            if new:
                added = {**item, "arguments": "", "status": "in_progress"}
                events.append(
                    self._event("response.output_item.added", output_index=index, item=added)
                )
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    name=call["name"],
                    arguments=call["arguments"],
                )
            )
            events.append(self._event("response.output_item.done", output_index=index, item=item))
        return events

    # -- the built-in tools' calls ----------------------------------------------------------

    def _learn_step(self, step: Obj) -> None:
        """A step made with its calls (an MCP call its client decided): what its outcome's
        piece does not repeat."""
        details = step["step_details"]
        if details["type"] != "tool_calls":
            return
        for index, call in enumerate(details["tool_calls"]):
            if call["type"] in _BUILTIN:
                self.built[(step["id"], index)] = dict(call)

    def _item(self, call: Obj) -> Obj | None:
        return render.call_item(call, "in_progress", self.container_id, self.include)

    def _builtin_piece(self, step_id: str, piece: Obj) -> list[Obj]:
        """A piece of a built-in call: its first announces a file search's or code's item
        (an MCP call's waits for its outcome: it may be an approval request instead); its
        code streams; its outcome ends it."""
        place = (step_id, piece["index"])
        call = self.built.get(place)
        events: list[Obj] = []
        if call is None:
            if "id" not in piece:
                return []
            call = self.built[place] = {
                "id": piece["id"],
                "type": piece["type"],
                "name": "",
                "arguments": "",
            }
            if piece["type"] != "mcp":
                events += self._builtin_added(call)
        for key in ("name", "arguments", "input"):
            if piece.get(key):
                call[key] = call.get(key, "") + piece[key]
        if piece["type"] == "code_interpreter" and piece.get("input"):
            item = self._item(call)
            assert item is not None
            events.append(
                self._event(
                    "response.code_interpreter_call_code.delta",
                    item_id=item["id"],
                    output_index=self.indexes[call["id"]],
                    delta=piece["input"],
                )
            )
        if piece.get("output") is not None:
            outcome = {k: v for k, v in piece.items() if k not in ("index", "id")}
            call.update(outcome)
            events += self._builtin_done(call)
        return events

    def _builtin_added(self, call: Obj) -> list[Obj]:
        """The call's item announced, in progress, with the event that says so."""
        start = {k: v for k, v in call.items() if k not in ("output", "failed", "tool_error")}
        item = self._item(start)
        if item is None:
            return []
        index, new = self._index(call["id"])
        if not new:
            return []
        if item["type"] == "openapi_call":
            # Its answer's item follows it, as the stored response has them.
            self._index(render.openapi_call_output(call)["id"])
        events = [self._event("response.output_item.added", output_index=index, item=item)]
        if item["type"] != "openapi_call":  # whose items have no events of their own
            progress = f"response.{item['type']}.in_progress"
            events.append(self._event(progress, item_id=item["id"], output_index=index))
        return events

    def _builtin_done(self, call: Obj) -> list[Obj]:
        """The call's item ended: the events of its kind, then the item as stored."""
        item = self._item(call)
        self.done.add(call["id"])
        if item is None:  # a call its client refused: not made, not shown
            return []
        if item["type"] == "mcp_approval_request":
            index, _ = self._index(call["id"])
            return [
                self._event("response.output_item.added", output_index=index, item=item),
                self._event("response.output_item.done", output_index=index, item=item),
            ]
        events = self._builtin_added(call)
        index = self.indexes[call["id"]]
        at = {"item_id": item["id"], "output_index": index}
        kind = item["type"]
        if kind == "file_search_call":
            events.append(self._event("response.file_search_call.searching", **at))
            events.append(self._event("response.file_search_call.completed", **at))
        elif kind == "code_interpreter_call":
            code = item["code"] or ""
            events.append(self._event("response.code_interpreter_call_code.done", code=code, **at))
            events.append(self._event("response.code_interpreter_call.interpreting", **at))
            events.append(self._event("response.code_interpreter_call.completed", **at))
        elif kind == "mcp_call":
            arguments = item["arguments"]
            events.append(self._event("response.mcp_call_arguments.delta", delta=arguments, **at))
            events.append(
                self._event("response.mcp_call_arguments.done", arguments=arguments, **at)
            )
            ended = "failed" if item["status"] == "failed" else "completed"
            events.append(self._event(f"response.mcp_call.{ended}", **at))
        events.append(self._event("response.output_item.done", output_index=index, item=item))
        if kind == "openapi_call":
            answer = render.openapi_call_output(call)
            index, _ = self._index(answer["id"])
            for name in ("response.output_item.added", "response.output_item.done"):
                events.append(self._event(name, output_index=index, item=answer))
        return events

    def _activities(self, activities: list[Obj]) -> list[Obj]:
        """An MCP server's tools, listed when the run began."""
        events: list[Obj] = []
        for activity in activities:
            if activity.get("type") != "mcp_list_tools" or activity["id"] in self.done:
                continue
            self.done.add(activity["id"])
            index, _ = self._index(activity["id"])
            item = render.mcp_list_tools(activity)
            at = {"item_id": item["id"], "output_index": index}
            events += [
                self._event(
                    "response.output_item.added", output_index=index, item={**item, "tools": []}
                ),
                self._event("response.mcp_list_tools.in_progress", **at),
                self._event("response.mcp_list_tools.completed", **at),
                self._event("response.output_item.done", output_index=index, item=item),
            ]
        return events

    def ending(self, name: str, run: Run, view: ResponseView | None) -> Obj:
        shown = render.response_of(view) if view is not None else render.response(run)
        return self._event(_ENDINGS[name], response=shown)


def _frame(event: Obj) -> bytes:
    return f"event: {event['type']}\ndata: {event_data(event)}\n\n".encode()


async def response_events(
    batches: EventBatches, read: ReadView, starting_after: int = -1
) -> AsyncIterator[bytes]:
    """The stream's bytes, one write per batch of the run's events.

    `starting_after`: a resumed stream's last event seen. The run's log is mapped again from
    its start, so every event keeps its number and each item its index, and only the events
    after that one are sent."""
    mapper = _Mapper()
    try:
        async for batch in batches:
            if not batch:
                yield KEEPALIVE
                continue
            out: list[Obj] = []
            for event in batch:
                if event.event in _ENDINGS:
                    view = await read(event.data["id"])
                    out.append(mapper.ending(event.event, event.data, view))
                else:
                    out.extend(mapper.map(event))
            out = [event for event in out if event["sequence_number"] > starting_after]
            if out:
                yield b"".join(_frame(event) for event in out)
    except RunVanished as gone:
        error = error_object(f"Response {gone} no longer exists.", "invalid_request_error")
        yield _frame({"type": "error", "sequence_number": mapper.sequence, **error})
