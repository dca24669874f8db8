"""Threads, messages and runs as the Responses API shows them: a thread is a `conversation`,
a message a `message` item whose parts are `input_text` (a user's) or `output_text` (an
assistant's, with its annotations), and images `input_image`; a response's run is a
`response` whose output items are its steps' messages and function calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from threadline.domain.records import Message, Obj, Page, Run, Thread
from threadline.service.responses import ResponseView


def conversation(thread: Thread) -> Obj:
    return {
        "id": thread["id"],
        "object": "conversation",
        "created_at": thread["created_at"],
        "metadata": thread["metadata"],
    }


def _annotation(annotation: Mapping[str, Any]) -> Obj:
    """Flat, as the Responses format writes them (`file_id` beside `type`)."""
    kind = annotation["type"]
    if kind == "file_citation":
        return {
            "type": "file_citation",
            "file_id": annotation["file_id"],
            "filename": annotation.get("filename", ""),
            "index": annotation.get("end_index", 0),
        }
    if kind == "file_path":
        return {
            "type": "container_file_citation",
            "container_id": "",
            "file_id": annotation["file_id"],
            "filename": str(annotation.get("text", "")).rsplit("/", 1)[-1],
            "start_index": annotation.get("start_index", 0),
            "end_index": annotation.get("end_index", 0),
        }
    return dict(annotation)


def _part(part: Mapping[str, Any], role: str) -> Obj:
    kind = part["type"]
    if kind == "text":
        if role == "assistant":
            return {
                "type": "output_text",
                "text": part["text"],
                "annotations": [_annotation(a) for a in part.get("annotations", [])],
                "logprobs": [],
            }
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


def item(message: Message) -> Obj:
    """A message of the thread as a conversation item; one still being written is
    `in_progress`, one cut short `incomplete`."""
    status = message.get("status") or "completed"
    return {
        "type": "message",
        "id": message["id"],
        "status": status if status in ("in_progress", "incomplete") else "completed",
        "role": message["role"],
        "content": [_part(part, message["role"]) for part in message["content"]],
    }


def items_page(page: Page[Message]) -> Obj:
    data = [item(message) for message in page.data]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": page.has_more,
    }


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
        "id": f"fc_{call['id']}",
        "call_id": call["id"],
        "name": call["name"],
        "arguments": call["arguments"],
        "status": status,
    }


def output_text(part: Mapping[str, Any]) -> Obj:
    return {
        "type": "output_text",
        "text": part.get("text", ""),
        "annotations": [_annotation(a) for a in part.get("annotations", [])],
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
        "content": [output_text(part) for part in message["content"] if part["type"] == "text"],
    }


def output_items(view: ResponseView) -> list[Obj]:
    """The run's steps in order: its messages and the function calls it ended with; the
    step holding its input's function call outputs is input, not output."""
    items: list[Obj] = []
    for step in view.steps:
        details = step["step_details"]
        if details["type"] == "message_creation":
            message = view.messages.get(details["message_id"])
            if message is not None:
                items.append(output_message(message))
        elif details["type"] == "tool_calls" and step["id"] != view.fields["input_step_id"]:
            status = "completed" if step["status"] == "completed" else "in_progress"
            items.extend(
                function_call(call, status)
                for call in details["tool_calls"]
                if call["type"] == "function"
            )
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


def _tool(tool: Mapping[str, Any]) -> Obj:
    return {
        "type": "function",
        "name": tool["name"],
        "description": tool.get("description"),
        "parameters": tool.get("parameters"),
        "strict": tool.get("strict"),
    }


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
    return {
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
        "max_tool_calls": None,
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
        "tools": [_tool(tool) for tool in run["tools"] if tool["type"] == "function"],
        "top_p": run["top_p"],
        "truncation": fields.get("truncation", "auto"),
        "usage": _usage(run),
        "user": identity.get("user"),
        "safety_identifier": identity.get("safety_identifier"),
        "prompt_cache_key": identity.get("prompt_cache_key"),
    }


def response_of(view: ResponseView) -> Obj:
    return response(view.run, output_items(view))


def response_deleted(response_id: str) -> Obj:
    return {"id": response_id, "object": "response.deleted", "deleted": True}
