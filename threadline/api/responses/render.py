"""Threads, messages and runs as the Responses API shows them: a thread is a `conversation`,
a message a `message` item whose parts are `input_text` (a user's) or `output_text` (an
assistant's, with its annotations), and images `input_image`; a response's run is a
`response` whose output items are its steps' messages and tool calls (`function_call`,
`file_search_call`, `code_interpreter_call`, `mcp_call`, `mcp_approval_request`) and what
loading its tools did (`mcp_list_tools`).

The code interpreter's sandbox is its thread's: the thread's id is the `container_id` its
calls and the files they write name."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from threadline.api.lists import list_body
from threadline.domain.records import Message, Obj, Page, Run, Thread, ToolCall
from threadline.service.items import call_item_id, openapi_output_id
from threadline.service.responses import ResponseView, awaits_approval

# A file_search source marker, whose last part is the file's name (`tools/file_search`).
_MARKER = re.compile(r"【\d+:\d+†([^】]*)】")


def conversation(thread: Thread) -> Obj:
    return {
        "id": thread["id"],
        "object": "conversation",
        "created_at": thread["created_at"],
        "metadata": thread["metadata"],
    }


def _cited_name(annotation: Mapping[str, Any]) -> str:
    if "filename" in annotation:
        return str(annotation["filename"])
    found = _MARKER.fullmatch(str(annotation.get("text", "")))
    return found.group(1) if found else ""


def _annotation(annotation: Mapping[str, Any], container_id: str = "") -> Obj:
    """Flat, as the Responses format writes them (`file_id` beside `type`)."""
    kind = annotation["type"]
    if kind == "file_citation":
        return {
            "type": "file_citation",
            "file_id": annotation["file_id"],
            "filename": _cited_name(annotation),
            "index": annotation.get("end_index", 0),
        }
    if kind == "file_path":
        return {
            "type": "container_file_citation",
            "container_id": container_id,
            "file_id": annotation["file_id"],
            "filename": str(annotation.get("text", "")).rsplit("/", 1)[-1],
            "start_index": annotation.get("start_index", 0),
            "end_index": annotation.get("end_index", 0),
        }
    return dict(annotation)


def _part(part: Mapping[str, Any], role: str, container_id: str = "") -> Obj:
    kind = part["type"]
    if kind == "text":
        if role == "assistant":
            return output_text(part, container_id)
        return {"type": "input_text", "text": part["text"]}
    if kind == "image_file":
        return {
            "type": "input_image",
            "file_id": part["file_id"],
            "image_url": None,
            "detail": part.get("detail", "auto"),
        }
    if kind == "image_url":
        return {
            "type": "input_image",
            "image_url": part["url"],
            "file_id": None,
            "detail": part.get("detail", "auto"),
        }
    return dict(part)


def item(message: Message, include: Sequence[str] = ()) -> Obj:
    """A message of the thread as a conversation item; one still being written is
    `in_progress`, one cut short `incomplete`. A call of the service's own tools shows as
    a response shows it (`include`: the parts of it asked for here)."""
    if "item" in message:
        kept = message["item"]
        if kept["type"] == "openapi_call_output":
            return {**openapi_call_output(kept["call"]), "id": message["id"]}
        if "call" in kept:
            shown = call_item(kept["call"], "completed", message["thread_id"], include)
            return {**(shown or {}), "id": message["id"]}
        return {"id": message["id"], **kept, "status": "completed"}
    status = message.get("status") or "completed"
    return {
        "type": "message",
        "id": message["id"],
        "status": status if status in ("in_progress", "incomplete") else "completed",
        "role": message["role"],
        "content": [
            _part(part, message["role"], message["thread_id"]) for part in message["content"]
        ],
    }


def items_page(page: Page[Message], include: Sequence[str] = ()) -> Obj:
    return list_body(page, lambda message: item(message, include))


def items_list(messages: list[Message]) -> Obj:
    """Items just added, as one whole page."""
    return items_page(Page(data=messages))


def deleted(conversation_id: str) -> Obj:
    return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}


# -- responses -------------------------------------------------------------------------------

_STATUSES = {
    "queued": "queued",
    "in_progress": "in_progress",
    "requires_action": "in_progress",
    "cancelling": "in_progress",
    "cancelled": "cancelled",
    "failed": "failed",
    "expired": "failed",
    "completed": "completed",
    "incomplete": "incomplete",
}
# The run's reasons for ending short, as a response names them.
_INCOMPLETE_REASONS = {"max_completion_tokens": "max_output_tokens"}


def function_call(call: Mapping[str, Any], status: str = "completed") -> Obj:
    return {
        "type": "function_call",
        "id": call_item_id(call),
        "call_id": call["id"],
        "name": call["name"],
        "arguments": call["arguments"],
        "status": status,
    }


def output_text(part: Mapping[str, Any], container_id: str = "") -> Obj:
    return {
        "type": "output_text",
        "text": part.get("text", ""),
        "annotations": [_annotation(a, container_id) for a in part.get("annotations", [])],
        "logprobs": [],
    }


def output_message(message: Message) -> Obj:
    """The run's reply as an output item: its text parts (images it showed are not output
    of this slice)."""
    status = message.get("status") or "completed"
    return {
        "type": "message",
        "id": message["id"],
        "role": "assistant",
        "status": status,
        "content": [
            output_text(part, message["thread_id"])
            for part in message["content"]
            if part["type"] == "text"
        ],
    }


def _queries(arguments: str) -> list[str]:
    """The queries a file_search call searched, as the model wrote them."""
    try:
        parsed: Any = json.loads(arguments or "{}")
    except ValueError:
        return []
    found = parsed.get("queries", parsed.get("query")) if isinstance(parsed, dict) else parsed
    if isinstance(found, str):
        return [found]
    return [q for q in found if isinstance(q, str)] if isinstance(found, list) else []


def _ended(call: Mapping[str, Any]) -> bool:
    return call.get("output") is not None


def file_search_call(call: Mapping[str, Any], include: Sequence[str] = ()) -> Obj:
    """Its results only where the request asked for them (`file_search_call.results`)."""
    status = "in_progress"
    if _ended(call):
        status = "completed" if "results" in call else "failed"
    results = None
    if "file_search_call.results" in include and _ended(call):
        results = [
            {
                "file_id": found["file_id"],
                "filename": found.get("file_name"),
                "score": found.get("score"),
                "text": "".join(part.get("text", "") for part in found.get("content") or []),
                "attributes": found.get("attributes"),
            }
            for found in call.get("results") or []
        ]
    return {
        "type": "file_search_call",
        "id": call_item_id(call),
        "status": status,
        "queries": _queries(call["arguments"]),
        "results": results,
    }


def _code_output(output: Mapping[str, Any]) -> Obj:
    if output.get("type") == "image":
        # The figure is a File: its content is where its bytes are.
        file_id = output["image"]["file_id"]
        return {"type": "image", "url": f"/v1/files/{file_id}/content"}
    return {"type": "logs", "logs": output.get("logs", "")}


def code_interpreter_call(
    call: Mapping[str, Any], container_id: str, include: Sequence[str] = ()
) -> Obj:
    """Its outputs only where the request asked for them (`code_interpreter_call.outputs`)."""
    outputs = None
    if "code_interpreter_call.outputs" in include and _ended(call):
        outputs = [_code_output(output) for output in call.get("outputs") or []]
    return {
        "type": "code_interpreter_call",
        "id": call_item_id(call),
        "status": "completed" if _ended(call) else "in_progress",
        "code": call.get("input", ""),
        "container_id": container_id,
        "outputs": outputs,
    }


def mcp_approval_request(call: Mapping[str, Any]) -> Obj:
    return {
        "type": "mcp_approval_request",
        "id": call["approval_request_id"],
        "name": call["name"],
        "arguments": call["arguments"],
        "server_label": call.get("server_label", ""),
    }


# The JSON-RPC code of an error the server did not give one for (it could not be reached,
# did not answer in time, has no such tool).
_SERVER_ERROR = -32000


def _mcp_error(call: Mapping[str, Any]) -> Obj | None:
    """A failed call's error: the tool's own error result, or why the call could not be
    made."""
    if not call.get("failed"):
        return None
    text = str(call.get("output") or "")
    if call.get("tool_error"):
        return {"type": "mcp_tool_execution_error", "content": [{"type": "text", "text": text}]}
    return {"type": "mcp_protocol_error", "code": _SERVER_ERROR, "message": text}


def mcp_call(call: Mapping[str, Any]) -> Obj | None:
    """What the server answered as `output`, or, for a call that failed, `error`. A call
    its client refused was not made: no item shows it."""
    if call.get("approved") is False:
        return None
    error = _mcp_error(call)
    status = "in_progress"
    if _ended(call):
        status = "failed" if error is not None else "completed"
    return {
        "type": "mcp_call",
        "id": call_item_id(call),
        "name": call["name"],
        "arguments": call["arguments"],
        "server_label": call.get("server_label", ""),
        "output": call.get("output") if error is None else None,
        "error": error,
        "status": status,
        "approval_request_id": call.get("approval_request_id"),
    }


def mcp_list_tools(activity: Mapping[str, Any]) -> Obj:
    return {
        "type": "mcp_list_tools",
        "id": activity["id"],
        "server_label": activity["server_label"],
        "tools": [
            {
                "name": name,
                "input_schema": listed.get("parameters") or {},
                "description": listed.get("description"),
                "annotations": None,
            }
            for name, listed in (activity.get("tools") or {}).items()
        ],
        "error": None,
    }


def openapi_call(call: Mapping[str, Any]) -> Obj:
    """An OpenAPI tool's call, as Foundry's agents show it; its answer is an item of its own
    (`openapi_call_output`)."""
    return {
        "type": "openapi_call",
        "id": call_item_id(call),
        "call_id": call["id"],
        "name": call.get("name", ""),
        "arguments": call.get("arguments", ""),
        "status": "completed" if _ended(call) else "in_progress",
    }


def openapi_call_output(call: Mapping[str, Any]) -> Obj:
    return {
        "type": "openapi_call_output",
        "id": openapi_output_id(call),
        "call_id": call["id"],
        "name": call.get("name", ""),
        "output": call.get("output") or "",
    }


def call_items(
    call: ToolCall | Mapping[str, Any],
    status: str,
    container_id: str,
    include: Sequence[str] = (),
) -> list[Obj]:
    """A tool call's output items: one, or, for an OpenAPI call that was answered, the
    call and its answer."""
    item = call_item(call, status, container_id, include)
    if item is None:
        return []
    if call["type"] == "openapi" and _ended(call):
        return [item, openapi_call_output(call)]
    return [item]


def call_item(
    call: ToolCall | Mapping[str, Any],
    status: str,
    container_id: str,
    include: Sequence[str] = (),
) -> Obj | None:
    """A tool call as the output item of its kind; `status`: a function call's."""
    kind = call["type"]
    if kind == "function":
        return function_call(call, status)
    if kind == "openapi":
        return openapi_call(call)
    if kind == "file_search":
        return file_search_call(call, include)
    if kind == "code_interpreter":
        return code_interpreter_call(call, container_id, include)
    if kind == "mcp":
        return mcp_approval_request(call) if awaits_approval(call) else mcp_call(call)
    return None


def output_items(view: ResponseView, include: Sequence[str] = ()) -> list[Obj]:
    """The run's steps in order: its messages, its tool calls and the function calls it
    ended with, and the tools its MCP servers listed; the step holding its input's function
    call outputs is input, not output. `include`: what the request asked to see besides
    the response's own (`include[]` of a retrieve), with what its creation asked."""
    shown = [*view.fields.get("include", []), *include]
    container_id = view.run["thread_id"]
    items: list[Obj] = []
    for step in view.steps:
        details = step["step_details"]
        if details["type"] == "message_creation":
            message = view.messages.get(details["message_id"])
            if message is not None:
                items.append(output_message(message))
        elif details["type"] == "activities":
            items.extend(
                mcp_list_tools(activity)
                for activity in details["activities"]
                if activity.get("type") == "mcp_list_tools"
            )
        elif details["type"] == "tool_calls" and step["id"] != view.fields["input_step_id"]:
            status = "completed" if step["status"] == "completed" else "in_progress"
            for call in details["tool_calls"]:
                items.extend(call_items(call, status, container_id, shown))
    return items


def _usage(run: Run) -> Obj | None:
    usage = run["usage"]
    if usage is None:
        return None
    return {
        "input_tokens": usage["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": usage["completion_tokens"],
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage["total_tokens"],
    }


def _function_tool(tool: Mapping[str, Any]) -> Obj:
    return {
        "type": "function",
        "name": tool["name"],
        "description": tool.get("description"),
        "parameters": tool.get("parameters"),
        "strict": tool.get("strict"),
    }


def _tool(tool: Mapping[str, Any]) -> Obj:
    """A tool as the request gave it; an MCP server's headers (credentials, often) are
    not shown back."""
    if tool["type"] == "function":
        return _function_tool(tool)
    return {key: value for key, value in tool.items() if key != "headers"}


def _tools(run: Run) -> list[Obj]:
    given = run["response"].get("tools")
    if given is None:  # a response stored before its tools were kept as given
        return [_function_tool(tool) for tool in run["tools"] if tool["type"] == "function"]
    return [_tool(tool) for tool in given]


def _error(run: Run) -> Obj | None:
    if run["status"] == "expired":
        return {"code": "server_error", "message": "The response expired before it ended."}
    error = run["last_error"]
    return {"code": error["code"], "message": error["message"]} if error else None


def _text(fields: Mapping[str, Any]) -> Obj:
    text = dict(fields["text"])
    text.setdefault("format", {"type": "text"})
    text.setdefault("verbosity", None)
    return text


def response(run: Run, output: list[Obj] | None = None) -> Obj:
    """`output`: the response's items (`output_items`); none for the announcements a stream
    makes before any."""
    fields = run["response"]
    incomplete = run["incomplete_details"]
    reason = incomplete["reason"] if incomplete else None
    conversation_id = fields["conversation"]
    identity = fields.get("identity") or {}
    agent = {"agent_reference": fields["agent"]} if "agent" in fields else {}
    return {
        **agent,
        "id": run["id"],
        "object": "response",
        "created_at": run["created_at"],
        "status": _STATUSES.get(run["status"], run["status"]),
        "background": fields["background"],
        "completed_at": run["completed_at"],
        "conversation": {"id": conversation_id} if conversation_id else None,
        "error": _error(run),
        "incomplete_details": (
            {"reason": _INCOMPLETE_REASONS.get(reason, reason)} if reason else None
        ),
        "instructions": run["instructions"] or None,
        "max_output_tokens": run["max_completion_tokens"],
        "max_tool_calls": fields.get("max_tool_calls"),
        "metadata": run["metadata"],
        "model": run["model"],
        "output": output or [],
        "parallel_tool_calls": run["parallel_tool_calls"],
        "previous_response_id": fields["previous_response_id"],
        "reasoning": (
            {"effort": run["reasoning_effort"], "summary": None}
            if run["reasoning_effort"]
            else None
        ),
        "service_tier": "default",
        "store": fields["store"],
        "temperature": run["temperature"],
        "text": _text(fields),
        "tool_choice": run["tool_choice"],
        "tools": _tools(run),
        "top_p": run["top_p"],
        "truncation": fields.get("truncation", "auto"),
        "usage": _usage(run),
        "user": identity.get("user"),
        "safety_identifier": identity.get("safety_identifier"),
        "prompt_cache_key": identity.get("prompt_cache_key"),
    }


def response_of(view: ResponseView, include: Sequence[str] = ()) -> Obj:
    return response(view.run, output_items(view, include))


def response_deleted(response_id: str) -> Obj:
    return {"id": response_id, "object": "response.deleted", "deleted": True}
