"""Threads and messages as the Conversations API shows them: a thread is a `conversation`, a
message a `message` item whose parts are `input_text` (a user's) or `output_text` (an
assistant's, with its annotations), and images `input_image`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from threadline.domain.records import Message, Obj, Page, Thread


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
    data = [item(message) for message in messages]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": False,
    }


def deleted(conversation_id: str) -> Obj:
    return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}
