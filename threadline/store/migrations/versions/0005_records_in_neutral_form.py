"""Stored records in the format-neutral form: the store no longer keeps OpenAI Assistants-v2
wire JSON but what every wire format is rendered from, so the Azure AI Agents and OpenAI
shapes are both made at the edge and neither is the other's translation. Every body of
assistants, threads, messages, runs and run steps, and every run event's data, is rewritten:
`object` dropped, and the nested wire shapes (`function`, `json_schema`, the content parts'
`text` / `image_file` / `image_url`, `message_creation`, `required_action`, the deltas'
`delta`) flattened. The mapping is written out here, not imported: a migration is history,
and must convert what it found even after the service's own code has moved on.

Rows are read in batches of `BATCH` on `seq`, so a large database is never held in memory
whole, and a row is written only when its body changed: a body already in the form a
direction writes is left as it is, in both directions.

SQLite: the engine alembic is handed (`store.engine.create_sqlite_engine`) has SQLAlchemy's
default JSON codec, not the store's (`json_codec`, set on the store's own dialect in
`store.drivers`). Bodies are therefore read and written as text here, by the store's rule:
orjson, and the standard library for what orjson refuses (integers beyond 64 bits, which
`json_codec.loads` then reads back exactly). PostgreSQL keeps JSONB, handed back as Python
objects.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 500

Obj = dict[str, Any]
# A body's converter; run events' take the event's name too.
Convert = Callable[[Any], Any]
ConvertEvent = Callable[[str, Any], Any]

_TOOL_FUNCTION_KEYS = ("name", "description", "parameters", "strict")
_CALL_FUNCTION_KEYS = ("name", "arguments", "output")


# -- shared helpers ------------------------------------------------------------------------


def _lift(obj: Obj, key: str) -> Obj:
    """`obj` with the keys of the object under `key` in its place."""
    lifted: Obj = {}
    for name, value in obj.items():
        if name == key and isinstance(value, dict):
            lifted.update(value)
        else:
            lifted[name] = value
    return lifted


def _nest(obj: Obj, key: str, keys: Iterable[str]) -> Obj:
    """`obj` with its `keys` (those present) gathered under `key`, where the first was."""
    keys = tuple(keys)
    inner = {name: obj[name] for name in keys if name in obj}
    nested: Obj = {}
    for name, value in obj.items():
        if name in keys:
            nested.setdefault(key, inner)
        else:
            nested[name] = value
    nested.setdefault(key, inner)
    return nested


def _without_object(obj: Obj) -> Obj:
    return {name: value for name, value in obj.items() if name != "object"}


def _with_object(obj: Obj, kind: str) -> Obj:
    """`obj` with `"object": kind`, after its `id` as the wire has it."""
    shaped: Obj = {} if "id" in obj else {"object": kind}
    for name, value in obj.items():
        if name == "object":
            continue
        shaped[name] = value
        if name == "id":
            shaped["object"] = kind
    return shaped


def _id_of(obj: Obj) -> Obj:
    return {"id": obj["id"]} if "id" in obj else {}


def _each(values: Any, convert: Callable[[Any], Any]) -> Any:
    return [convert(value) for value in values] if isinstance(values, list) else values


def _is(obj: Any, type_: str) -> bool:
    return isinstance(obj, dict) and obj.get("type") == type_


# -- wire -> neutral -----------------------------------------------------------------------


def _tool_up(tool: Any) -> Any:
    if _is(tool, "function") and isinstance(tool.get("function"), dict):
        return _lift(tool, "function")
    return tool


def _response_format_up(response_format: Any) -> Any:
    if _is(response_format, "json_schema") and isinstance(response_format.get("json_schema"), dict):
        return _lift(response_format, "json_schema")
    return response_format


def _tool_choice_up(tool_choice: Any) -> Any:
    if _is(tool_choice, "function") and isinstance(tool_choice.get("function"), dict):
        return _lift(tool_choice, "function")
    return tool_choice


def _part_up(part: Any) -> Any:
    if _is(part, "text") and isinstance(part.get("text"), dict):
        flat: Obj = {}
        for name, value in part.items():
            if name == "text":
                flat["text"] = value.get("value", "")
                flat["annotations"] = value.get("annotations", [])
            elif name != "annotations":
                flat[name] = value
        return flat
    for kind in ("image_file", "image_url"):
        if _is(part, kind) and isinstance(part.get(kind), dict):
            return _lift(part, kind)
    return part


def _call_up(call: Any) -> Any:
    """A tool call as a neutral `ToolCall`, with its `output` (null until submitted)."""
    if _is(call, "function") and isinstance(call.get("function"), dict):
        flat = _lift(call, "function")
        flat.setdefault("output", None)
        return flat
    return call


def _pending_up(required_action: Any) -> Any:
    if not isinstance(required_action, dict):
        return None
    submit = required_action.get("submit_tool_outputs")
    calls = submit.get("tool_calls", []) if isinstance(submit, dict) else []
    pending = []
    for call in calls:
        flat = _call_up(call)
        if isinstance(flat, dict):
            flat = {name: value for name, value in flat.items() if name != "output"}
        pending.append(flat)
    return pending


def _assistant_up(body: Obj) -> Obj:
    flat = _without_object(body)
    if "tools" in flat:
        flat["tools"] = _each(flat["tools"], _tool_up)
    if "response_format" in flat:
        flat["response_format"] = _response_format_up(flat["response_format"])
    return flat


def _thread_up(body: Obj) -> Obj:
    return _without_object(body)


def _message_up(body: Obj) -> Obj:
    flat = _without_object(body)
    if "content" in flat:
        flat["content"] = _each(flat["content"], _part_up)
    return flat


def _run_up(body: Obj) -> Obj:
    flat: Obj = {}
    for name, value in body.items():
        if name == "object":
            continue
        if name == "required_action":
            flat["pending_tool_calls"] = _pending_up(value)
        elif name == "tools":
            flat[name] = _each(value, _tool_up)
        elif name == "response_format":
            flat[name] = _response_format_up(value)
        elif name == "tool_choice":
            flat[name] = _tool_choice_up(value)
        else:
            flat[name] = value
    flat.setdefault("pending_tool_calls", None)
    return flat


def _step_details_up(details: Any) -> Any:
    if _is(details, "message_creation") and isinstance(details.get("message_creation"), dict):
        return _lift(details, "message_creation")
    if _is(details, "tool_calls") and "tool_calls" in details:
        return {**details, "tool_calls": _each(details["tool_calls"], _call_up)}
    return details


def _step_up(body: Obj) -> Obj:
    flat = _without_object(body)
    if "step_details" in flat:
        flat["step_details"] = _step_details_up(flat["step_details"])
    return flat


def _delta_part_up(part: Any) -> Any:
    if _is(part, "text") and isinstance(part.get("text"), dict):
        return {**part, "text": part["text"].get("value", "")}
    return _part_up(part)


def _message_delta_up(data: Obj) -> Obj:
    flat: Obj = {}
    for name, value in data.items():
        if name == "object":
            continue
        if name == "delta" and isinstance(value, dict):
            for key, part in value.items():
                flat[key] = _each(part, _delta_part_up) if key == "content" else part
        else:
            flat[name] = value
    return flat


def _piece_up(piece: Any) -> Any:
    if _is(piece, "function") and isinstance(piece.get("function"), dict):
        return _lift(piece, "function")
    return piece


def _step_delta_up(data: Obj) -> Obj:
    delta = data.get("delta")
    if not (isinstance(delta, dict) and _is(delta.get("step_details"), "tool_calls")):
        return _without_object(data)
    details: Obj = delta["step_details"]
    flat: Obj = {}
    for name, value in data.items():
        if name == "object":
            continue
        if name == "delta":
            for key, inner in delta.items():
                if key == "step_details":
                    flat["tool_calls"] = _each(details.get("tool_calls", []), _piece_up)
                else:
                    flat[key] = inner
        else:
            flat[name] = value
    return flat


def _event_up(event: str, data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    if event == "thread.created":
        return _thread_up(data)
    if event == "thread.message.delta":
        return _message_delta_up(data)
    if event.startswith("thread.message."):
        return _message_up(data)
    if event == "thread.run.step.delta":
        return _step_delta_up(data)
    if event.startswith("thread.run.step."):
        return _step_up(data)
    if event.startswith("thread.run."):
        return _run_up(data)
    return data


# -- neutral -> wire -----------------------------------------------------------------------


def _tool_down(tool: Any) -> Any:
    if _is(tool, "function") and "function" not in tool:
        return _nest(tool, "function", _TOOL_FUNCTION_KEYS)
    return tool


def _response_format_down(response_format: Any) -> Any:
    if (
        _is(response_format, "json_schema")
        and "json_schema" not in response_format
        and len(response_format) > 1
    ):
        schema = {name: value for name, value in response_format.items() if name != "type"}
        return {"type": "json_schema", "json_schema": schema}
    return response_format


def _tool_choice_down(tool_choice: Any) -> Any:
    if _is(tool_choice, "function") and "function" not in tool_choice and "name" in tool_choice:
        return _nest(tool_choice, "function", ("name",))
    return tool_choice


def _part_down(part: Any) -> Any:
    if _is(part, "text") and isinstance(part.get("text"), str):
        nested: Obj = {}
        for name, value in part.items():
            if name == "text":
                nested["text"] = {"value": value, "annotations": part.get("annotations", [])}
            elif name != "annotations":
                nested[name] = value
        return nested
    if _is(part, "image_file") and "image_file" not in part:
        return _nest(part, "image_file", ("file_id", "detail"))
    if _is(part, "image_url") and "image_url" not in part:
        return _nest(part, "image_url", ("url", "detail"))
    return part


def _call_down(call: Any) -> Any:
    """A step's tool call in the wire shape: `output` under `function`, null until given."""
    if _is(call, "function") and "function" not in call:
        nested = _nest(call, "function", _CALL_FUNCTION_KEYS)
        nested["function"].setdefault("output", None)
        return nested
    return call


def _required_action_down(pending: Any) -> Any:
    if not isinstance(pending, list):
        return None
    calls = [
        _nest(call, "function", ("name", "arguments")) if _is(call, "function") else call
        for call in pending
    ]
    return {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": calls}}


def _assistant_down(body: Obj) -> Obj:
    nested = _with_object(body, "assistant")
    if "tools" in nested:
        nested["tools"] = _each(nested["tools"], _tool_down)
    if "response_format" in nested:
        nested["response_format"] = _response_format_down(nested["response_format"])
    return nested


def _thread_down(body: Obj) -> Obj:
    return _with_object(body, "thread")


def _message_down(body: Obj) -> Obj:
    nested = _with_object(body, "thread.message")
    if "content" in nested:
        nested["content"] = _each(nested["content"], _part_down)
    return nested


def _run_down(body: Obj) -> Obj:
    nested: Obj = {}
    for name, value in _with_object(body, "thread.run").items():
        if name == "pending_tool_calls":
            nested["required_action"] = _required_action_down(value)
        elif name == "tools":
            nested[name] = _each(value, _tool_down)
        elif name == "response_format":
            nested[name] = _response_format_down(value)
        elif name == "tool_choice":
            nested[name] = _tool_choice_down(value)
        else:
            nested[name] = value
    nested.setdefault("required_action", None)
    return nested


def _step_details_down(details: Any) -> Any:
    if _is(details, "message_creation") and "message_creation" not in details:
        return _nest(details, "message_creation", ("message_id",))
    if _is(details, "tool_calls") and "tool_calls" in details:
        return {**details, "tool_calls": _each(details["tool_calls"], _call_down)}
    return details


def _step_down(body: Obj) -> Obj:
    nested = _with_object(body, "thread.run.step")
    if "step_details" in nested:
        nested["step_details"] = _step_details_down(nested["step_details"])
    return nested


def _delta_part_down(part: Any) -> Any:
    if _is(part, "text") and isinstance(part.get("text"), str):
        # The service wrote every text delta with its (always empty) annotations.
        return {**part, "text": {"value": part["text"], "annotations": []}}
    return _part_down(part)


def _message_delta_down(data: Obj) -> Obj:
    if "delta" in data:
        return _with_object(data, "thread.message.delta")
    delta = {
        name: _each(value, _delta_part_down) if name == "content" else value
        for name, value in data.items()
        if name not in ("id", "object")
    }
    return _with_object({**_id_of(data), "delta": delta}, "thread.message.delta")


def _piece_down(piece: Any) -> Any:
    if _is(piece, "function") and "function" not in piece:
        return _nest(piece, "function", _CALL_FUNCTION_KEYS)
    return piece


def _step_delta_down(data: Obj) -> Obj:
    if "delta" in data or "tool_calls" not in data:
        return _with_object(data, "thread.run.step.delta")
    delta: Obj = {}
    for name, value in data.items():
        if name == "tool_calls":
            pieces = _each(value, _piece_down)
            delta["step_details"] = {"type": "tool_calls", "tool_calls": pieces}
        elif name not in ("id", "object"):
            delta[name] = value
    return _with_object({**_id_of(data), "delta": delta}, "thread.run.step.delta")


def _event_down(event: str, data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    if event == "thread.created":
        return _thread_down(data)
    if event == "thread.message.delta":
        return _message_delta_down(data)
    if event.startswith("thread.message."):
        return _message_down(data)
    if event == "thread.run.step.delta":
        return _step_delta_down(data)
    if event.startswith("thread.run.step."):
        return _step_down(data)
    if event.startswith("thread.run."):
        return _run_down(data)
    return data


# -- the rows ------------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    """JSON text as the store writes it on SQLite (`threadline.json_codec.dumps`)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def _rewrite(table_name: str, column: str, convert: ConvertEvent) -> None:
    """Pass every row of the table through `convert`, `BATCH` rows at a time in `seq`
    order; write back only the rows it changed."""
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    value_type: sa.types.TypeEngine[Any] = sa.Text() if sqlite else JSONB()
    table = sa.table(
        table_name,
        sa.column("seq", sa.BigInteger()),
        sa.column("event", sa.String()),
        sa.column(column, value_type),
    )
    event = table.c.event if table_name == "run_events" else sa.literal_column("''", sa.String())
    rows_from = sa.select(table.c.seq, event, table.c[column]).order_by(table.c.seq).limit(BATCH)
    first = rows_from
    following = rows_from.where(table.c.seq > sa.bindparam("last_seq"))
    update = (
        sa.update(table)
        .where(table.c.seq == sa.bindparam("row_seq"))
        .values({column: sa.bindparam("new_value", type_=value_type)})
    )
    last: int | None = None
    while True:
        if last is None:
            rows = bind.execute(first).all()
        else:
            rows = bind.execute(following, {"last_seq": last}).all()
        changed = []
        for seq, name, stored in rows:
            value = json.loads(stored) if sqlite else stored
            new = convert(name, value)
            if new != value:
                changed.append({"row_seq": seq, "new_value": _dumps(new) if sqlite else new})
        if changed:
            bind.execute(update, changed)
        if len(rows) < BATCH:
            return
        last = rows[-1][0]


def _bodies(convert: Convert) -> ConvertEvent:
    return lambda _event, body: convert(body) if isinstance(body, dict) else body


def upgrade() -> None:
    _rewrite("assistants", "body", _bodies(_assistant_up))
    _rewrite("threads", "body", _bodies(_thread_up))
    _rewrite("messages", "body", _bodies(_message_up))
    _rewrite("runs", "body", _bodies(_run_up))
    _rewrite("run_steps", "body", _bodies(_step_up))
    _rewrite("run_events", "data", _event_up)


def downgrade() -> None:
    _rewrite("assistants", "body", _bodies(_assistant_down))
    _rewrite("threads", "body", _bodies(_thread_down))
    _rewrite("messages", "body", _bodies(_message_down))
    _rewrite("runs", "body", _bodies(_run_down))
    _rewrite("run_steps", "body", _bodies(_step_down))
    _rewrite("run_events", "data", _event_down)
