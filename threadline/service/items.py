"""A thread's items that are not messages: function calls and their outputs, and the calls
of the service's own tools, as the Responses and Conversations APIs give and show them.

They are kept in the thread, in order among its messages (`Message.item`), so that a
conversation lists them where they were said and a later prompt reads them there; the
Assistants API, which has no such items, skips them. A function call the service's model
made gets an item when its run waits for the call's output or its response ends with it; a
call a client replays (the openai-agents Runner sends its whole history each turn) and every
output a client gives are items of the request that gives them. A call of the service's own
tools (file_search, code_interpreter, MCP) gets one item, the call with its outcome, once its
round of calls is done; an OpenAPI tool's call gets two, the call and its answer, as Foundry's
agents show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from threadline.domain.clock import now
from threadline.domain.errors import InvalidRequest
from threadline.domain.ids import IdKind, new_id
from threadline.domain.limits import Limits, check_string
from threadline.domain.records import Message, Obj, ToolCall
from threadline.service.objects import user_message
from threadline.service.requests import MessageCreate
from threadline.tools.mcp import CALL_HEADERS

ITEM_TYPES = ("function_call", "function_call_output")
_FIELDS = {
    "function_call": {"type", "call_id", "name", "arguments", "id", "status"},
    "function_call_output": {"type", "call_id", "output", "id", "status"},
}


def read_item(raw: dict[str, Any], param: str, limits: Limits) -> Obj:
    """A `function_call` or `function_call_output` item as given, checked; the `id` and
    `status` a client may echo back from an earlier answer are not kept (the item gets an id
    of its own in the thread it joins)."""
    kind = raw["type"]
    unknown = set(raw) - _FIELDS[kind]
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidRequest(f"Unknown parameter: '{param}.{name}'.", param=f"{param}.{name}")
    required = ("call_id", "name", "arguments") if kind == "function_call" else ("call_id",)
    for key in required:
        value = raw.get(key)
        if not isinstance(value, str) or (key != "arguments" and not value):
            raise InvalidRequest(
                f"Missing required parameter: '{param}.{key}'.", param=f"{param}.{key}"
            )
    if kind == "function_call":
        check_string(raw["arguments"], limits.message_chars, f"{param}.arguments")
        return {
            "type": kind,
            "call_id": raw["call_id"],
            "name": raw["name"],
            "arguments": raw["arguments"],
        }
    output = raw.get("output")
    if not isinstance(output, str):
        raise InvalidRequest(
            f"Invalid '{param}.output': a string is expected.", param=f"{param}.output"
        )
    check_string(output, limits.message_chars, f"{param}.output")
    return {"type": kind, "call_id": raw["call_id"], "output": output}


def item_record(
    thread_id: str, item: Obj, run_id: str | None = None, item_id: str | None = None
) -> Message:
    """The thread's record of an item: a call is the assistant's, an output its client's."""
    created = now()
    is_output = item["type"] == "function_call_output"
    return {
        "id": item_id or new_id(IdKind.FUNCTION_OUTPUT if is_output else IdKind.FUNCTION_CALL),
        "created_at": created,
        "thread_id": thread_id,
        "role": "user" if is_output else "assistant",
        "content": [],
        "assistant_id": None,
        "run_id": run_id,
        "attachments": [],
        "metadata": {},
        "status": "completed",
        "incomplete_details": None,
        "completed_at": created,
        "incomplete_at": None,
        "item": item,
    }


# The item type of each tool whose calls are items, and the prefix of their ids.
_SERVICE_ITEMS = {
    "file_search": ("file_search_call", "fs_"),
    "code_interpreter": ("code_interpreter_call", "ci_"),
    "mcp": ("mcp_call", "mcp_"),
    "openapi": ("openapi_call", "oa_"),
}
# The answer of an OpenAPI call is an item of its own, after its call.
OPENAPI_OUTPUT = "openapi_call_output"


def call_item_id(call: Mapping[str, Any]) -> str:
    """The item of a call the service's model made has the id its response shows it by."""
    kind = call.get("type")  # a streamed piece of a function call may not say
    if kind in _SERVICE_ITEMS:
        return _SERVICE_ITEMS[kind][1] + str(call["id"])
    return f"fc_{call['id']}"


def service_call_items(thread_id: str, run_id: str, calls: list[ToolCall]) -> list[Message]:
    """The calls of a round that the service's own tools made, each with its outcome, as
    items of the thread (`{"type": "file_search_call", "call": <the call>}`). An MCP call its
    client refused was not made, and one still waiting for approval not yet."""
    items: list[Message] = []
    for call in calls:
        if call["type"] not in _SERVICE_ITEMS or "output" not in call:
            continue
        if call.get("approved") is False:
            continue
        # Headers an approval sent (credentials, often) stay with the run's step alone.
        kept = {key: value for key, value in call.items() if key != CALL_HEADERS}
        kind = _SERVICE_ITEMS[call["type"]][0]
        items.append(
            item_record(thread_id, {"type": kind, "call": kept}, run_id, call_item_id(call))
        )
        if call["type"] == "openapi":
            answer = {"type": OPENAPI_OUTPUT, "call": kept}
            items.append(item_record(thread_id, answer, run_id, openapi_output_id(call)))
    return items


def openapi_output_id(call: Mapping[str, Any]) -> str:
    return f"{call_item_id(call)}_output"


def item_ids_of_call(call: Mapping[str, Any]) -> list[str]:
    """The ids of the items a call of a run left in its thread."""
    ids = [call_item_id(call)]
    if call.get("type") == "openapi":
        ids.append(openapi_output_id(call))
    return ids


def call_items(thread_id: str, run_id: str, calls: list[ToolCall]) -> list[Message]:
    """The function calls a run or a response ended a round with, as items of its thread."""
    return [
        item_record(
            thread_id,
            {
                "type": "function_call",
                "call_id": call["id"],
                "name": call["name"],
                "arguments": call["arguments"],
            },
            run_id,
            call_item_id(call),
        )
        for call in calls
        if call["type"] == "function"
    ]


def output_items(thread_id: str, run_id: str, calls: list[ToolCall]) -> list[Message]:
    """The outputs a client submitted for a run's function calls, as items of its thread."""
    return [
        item_record(
            thread_id,
            {"type": "function_call_output", "call_id": call["id"], "output": call["output"]},
            run_id,
        )
        for call in calls
        if call["type"] == "function"
    ]


@dataclass
class GivenItems:
    """Items a request adds, in order: messages (as a message request) and other items."""

    entries: list[MessageCreate | Obj] = field(default_factory=list)

    @property
    def messages(self) -> list[MessageCreate]:
        return [entry for entry in self.entries if isinstance(entry, MessageCreate)]

    def records(self, thread_id: str) -> list[Message]:
        return [
            user_message(thread_id, entry)
            if isinstance(entry, MessageCreate)
            else item_record(thread_id, entry)
            for entry in self.entries
        ]
