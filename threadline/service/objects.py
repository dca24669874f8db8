"""Builders of the records the service stores, field for field (`domain/records.py`)."""

from __future__ import annotations

from typing import Literal

from threadline.domain.clock import now
from threadline.domain.ids import IdKind, new_id
from threadline.domain.records import (
    ContentPart,
    Message,
    Obj,
    Run,
    RunStep,
    StepDetails,
    TextPart,
    Tool,
)
from threadline.service.requests import (
    FunctionChoice,
    MessageCreate,
    ResponseFormat,
    ToolChoice,
)
from threadline.service.requests import Tool as ToolRequest


def text_part(value: str) -> TextPart:
    return {"type": "text", "text": value, "annotations": []}


def message_content(request: MessageCreate) -> list[ContentPart]:
    if isinstance(request.content, str):
        return [text_part(request.content)]
    parts: list[ContentPart] = []
    for part in request.content:
        if part.type == "text":
            parts.append(text_part(part.text))
        elif part.type == "image_file":
            file = part.image_file
            parts.append({"type": "image_file", "file_id": file.file_id, "detail": file.detail})
        else:
            image = part.image_url
            parts.append({"type": "image_url", "url": image.url, "detail": image.detail})
    return parts


def tool_record(tool: ToolRequest) -> Tool:
    """A function flat, as every wire format's tool call names it; a built-in tool as sent."""
    if tool.type == "function":
        return {"type": "function", **tool.function.model_dump(exclude_none=True)}
    return tool.model_dump(exclude_none=True)


def response_format_record(response_format: ResponseFormat | None) -> str | Obj | None:
    """A JSON schema flat (`{"type": "json_schema", "name", "schema", ...}`), as sent: keys
    left out stay out, rather than come back as nulls the user never set."""
    if response_format is None or isinstance(response_format, str):
        return response_format
    if response_format.type == "json_schema":
        schema = response_format.json_schema.model_dump(by_alias=True, exclude_unset=True)
        return {"type": "json_schema", **schema}
    return response_format.model_dump(exclude_unset=True)


def tool_choice_record(choice: ToolChoice) -> str | Obj:
    if isinstance(choice, str):
        return choice
    if isinstance(choice, FunctionChoice):
        return {"type": "function", "name": choice.function.name}
    return choice.model_dump()


def user_message(thread_id: str, request: MessageCreate) -> Message:
    created = now()
    return {
        "id": new_id(IdKind.MESSAGE),
        "created_at": created,
        "thread_id": thread_id,
        "role": request.role,
        "content": message_content(request),
        "assistant_id": None,
        "run_id": None,
        "attachments": [a.model_dump(exclude_none=True) for a in request.attachments or []],
        "metadata": request.metadata or {},
        "status": "completed",
        "incomplete_details": None,
        "completed_at": created,
        "incomplete_at": None,
    }


def assistant_message(
    run: Run, text: str, status: Literal["in_progress", "incomplete", "completed"] = "completed"
) -> Message:
    created = now()
    return {
        "id": new_id(IdKind.MESSAGE),
        "created_at": created,
        "thread_id": run["thread_id"],
        "role": "assistant",
        "content": [text_part(text)] if text else [],
        "assistant_id": run["assistant_id"],
        "run_id": run["id"],
        "attachments": [],
        "metadata": {},
        "status": status,
        "incomplete_details": None,
        "completed_at": created if status == "completed" else None,
        "incomplete_at": created if status == "incomplete" else None,
    }


def run_step(run: Run, details: StepDetails) -> RunStep:
    return {
        "id": new_id(IdKind.STEP),
        "created_at": now(),
        "run_id": run["id"],
        "assistant_id": run["assistant_id"],
        "thread_id": run["thread_id"],
        "type": details["type"],
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
