"""Builders of the wire objects the service stores and returns, field for field."""

from __future__ import annotations

from threadline.domain.clock import now
from threadline.domain.ids import IdKind, new_id
from threadline.domain.records import Obj
from threadline.service.requests import MessageCreate


def text_content(value: str) -> Obj:
    return {"type": "text", "text": {"value": value, "annotations": []}}


def message_content(request: MessageCreate) -> list[Obj]:
    if isinstance(request.content, str):
        return [text_content(request.content)]
    parts: list[Obj] = []
    for part in request.content:
        if part.type == "text":
            parts.append(text_content(part.text))
        else:
            parts.append(part.model_dump())
    return parts


def user_message(thread_id: str, request: MessageCreate) -> Obj:
    created = now()
    return {
        "id": new_id(IdKind.MESSAGE),
        "object": "thread.message",
        "created_at": created,
        "thread_id": thread_id,
        "role": request.role,
        "content": message_content(request),
        "assistant_id": None,
        "run_id": None,
        "attachments": [a.model_dump() for a in request.attachments or []],
        "metadata": request.metadata or {},
        "status": "completed",
        "incomplete_details": None,
        "completed_at": created,
        "incomplete_at": None,
    }


def assistant_message(run: Obj, text: str, status: str = "completed") -> Obj:
    created = now()
    return {
        "id": new_id(IdKind.MESSAGE),
        "object": "thread.message",
        "created_at": created,
        "thread_id": run["thread_id"],
        "role": "assistant",
        "content": [text_content(text)] if text else [],
        "assistant_id": run["assistant_id"],
        "run_id": run["id"],
        "attachments": [],
        "metadata": {},
        "status": status,
        "incomplete_details": None,
        "completed_at": created if status == "completed" else None,
        "incomplete_at": created if status == "incomplete" else None,
    }


def run_step(run: Obj, step_type: str, details: Obj) -> Obj:
    return {
        "id": new_id(IdKind.STEP),
        "object": "thread.run.step",
        "created_at": now(),
        "run_id": run["id"],
        "assistant_id": run["assistant_id"],
        "thread_id": run["thread_id"],
        "type": step_type,
        "status": "in_progress",
        "cancelled_at": None,
        "completed_at": None,
        "expired_at": None,
        "failed_at": None,
        "last_error": None,
        "step_details": details,
        "usage": None,
        "metadata": {},
    }


def deleted(object_id: str, kind: str) -> Obj:
    return {"id": object_id, "object": f"{kind}.deleted", "deleted": True}
