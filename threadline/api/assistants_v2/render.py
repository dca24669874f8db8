"""The records (`domain/records.py`) as the Assistants API v2 writes them, and as its Azure
AI Agents variant does: the one place that knows this wire format's shapes.

What is this format's own: every object names its kind (`"object": "thread.run"`); a text
part nests its text (`{"type": "text", "text": {"value", "annotations"}}`), an image part
its file or URL; a function tool, tool call and named tool choice nest the function
(`{"type": "function", "function": {...}}`), a JSON schema response format its schema; a
run waiting for tool outputs says so as `required_action`; a delta nests what it adds under
`delta`. The Azure variant's run also carries the tool resources it was created with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fastapi import Request

from threadline.api.lists import list_body
from threadline.domain.records import (
    Assistant,
    FileBatchView,
    FileRecord,
    Message,
    Obj,
    Page,
    Run,
    RunEvent,
    RunStep,
    SearchHit,
    Thread,
    Tool,
    ToolCall,
    VectorStoreFile,
    VectorStoreView,
)

R = TypeVar("R")


def _function_tool(tool: Tool) -> Obj:
    if tool["type"] != "function":
        return tool
    return {"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}}


def _response_format(value: str | Obj) -> str | Obj:
    if isinstance(value, dict) and value.get("type") == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {k: v for k, v in value.items() if k != "type"},
        }
    return value


def _tool_choice(value: str | Obj) -> str | Obj:
    if isinstance(value, dict) and value.get("type") == "function":
        return {"type": "function", "function": {"name": value["name"]}}
    return value


def _annotation(annotation: Mapping[str, Any]) -> Obj:
    """A citation nests what it cites under its type (`file_citation: {file_id}`)."""
    kind = annotation["type"]
    rendered = {k: v for k, v in annotation.items() if k != "file_id"}
    if kind == "file_citation":
        rendered["file_citation"] = {"file_id": annotation["file_id"]}
    elif kind == "file_path":
        rendered["file_path"] = {"file_id": annotation["file_id"]}
    return rendered


def _part(part: Mapping[str, Any]) -> Obj:
    kind = part["type"]
    if kind == "text":
        # A delta's piece of text carries no annotations of its own.
        annotations = [_annotation(a) for a in part.get("annotations", [])]
        return {"type": "text", "text": {"value": part["text"], "annotations": annotations}}
    if kind == "image_file":
        image: Obj = {"file_id": part["file_id"]}
        if "detail" in part:
            image["detail"] = part["detail"]
        return {"type": "image_file", "image_file": image}
    if kind == "image_url":
        image = {"url": part["url"]}
        if "detail" in part:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    return dict(part)


# What a tool call of each type shows besides its id and type, as the Assistants API and
# its Azure variant write it: a function's call nests it under `function`; an OpenAPI
# operation's call too (with `openapi`, which `azure-ai-agents` 1.1.0 reads, empty); a
# connected agent's under `connected_agent`, with the sub-run it made; an MCP call is flat.
_FUNCTION_KEYS = ("name", "arguments", "output")
_CONNECTED_AGENT_KEYS = (*_FUNCTION_KEYS, "run_id", "thread_id", "assistant_id")
_MCP_KEYS = ("server_label", *_FUNCTION_KEYS)


def _pick(call: Mapping[str, Any], keys: tuple[str, ...]) -> Obj:
    return {key: call[key] for key in keys if key in call}


def _call_body(call: Mapping[str, Any]) -> Obj:
    kind = call["type"]
    if kind == "function":
        return {"function": _pick(call, _FUNCTION_KEYS)}
    if kind == "openapi":
        return {"openapi": {}, "function": _pick(call, _FUNCTION_KEYS)}
    if kind == "connected_agent":
        return {"connected_agent": _pick(call, _CONNECTED_AGENT_KEYS)}
    if kind == "mcp":
        return _pick(call, _MCP_KEYS)
    if kind == "file_search":
        return {"file_search": _file_search(call)}
    if kind == "code_interpreter":
        return {"code_interpreter": _code_interpreter(call)}
    return {k: v for k, v in call.items() if k not in ("id", "type", "index")}


def _code_interpreter(call: Mapping[str, Any]) -> Obj:
    """The code as `input` and what it gave as `outputs`. A streamed piece carries the part
    of the input it adds, or the outputs once they are known, each with its index."""
    if "index" in call:  # a piece
        piece: Obj = {}
        if "input" in call:
            piece["input"] = call["input"]
        if "outputs" in call:
            piece["outputs"] = [{"index": i, **out} for i, out in enumerate(call["outputs"])]
        return piece
    return {"input": call.get("input", ""), "outputs": list(call.get("outputs") or [])}


def _file_search(call: Mapping[str, Any], include_content: bool = False) -> Obj:
    """What a file_search call found; each result's content only where the run or the
    request asked for it (`include[]`), as the hosted service shows it."""
    found: Obj = {}
    if "ranking_options" in call:
        found["ranking_options"] = call["ranking_options"]
    if "results" in call:
        show = include_content or bool(call.get("show_content"))
        found["results"] = [
            {k: v for k, v in result.items() if show or k != "content"}
            for result in call["results"]
        ]
    return found


def _call(call: ToolCall, include_content: bool = False) -> Obj:
    if call["type"] == "file_search":
        return {
            "id": call["id"],
            "type": "file_search",
            "file_search": _file_search(call, include_content),
        }
    return {"id": call["id"], "type": call["type"], **_call_body(call)}


def _call_piece(piece: Obj) -> Obj:
    """A streamed piece of a tool call: its index, its id with the first piece, and what it
    adds (a function's name and arguments as they stream, an outcome once it is known)."""
    rendered: Obj = {"index": piece["index"]}
    if "id" in piece:
        rendered["id"] = piece["id"]
    rendered["type"] = piece["type"]
    rendered.update(_call_body(piece))
    return rendered


def _required_action(pending: list[ToolCall] | None) -> Obj | None:
    """What the run waits for: outputs of function calls, or (Azure's shape) approvals of
    MCP calls, each as the call was made."""
    if pending is None:
        return None
    if pending and all(call["type"] == "mcp" for call in pending):
        calls = [{"id": c["id"], "type": "mcp", **_call_body(c)} for c in pending]
        return {"type": "submit_tool_approval", "submit_tool_approval": {"tool_calls": calls}}
    calls = [_call(call) for call in pending]
    return {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": calls}}


class AssistantsWire:
    """One flavour of the format: OpenAI's (`azure=False`) or Azure AI Agents'."""

    def __init__(self, *, azure: bool):
        self.azure = azure
        self._renderers: dict[str, Callable[[Any], Obj]] = {
            "thread": self.thread,
            "message": self.message,
            "step": self.step,
            "run": self.run,
        }

    def assistant(self, assistant: Assistant) -> Obj:
        return {
            "id": assistant["id"],
            "object": "assistant",
            **assistant,
            "tools": [_function_tool(tool) for tool in assistant["tools"]],
            "response_format": _response_format(assistant["response_format"]),
        }

    def thread(self, thread: Thread) -> Obj:
        rendered: Obj = {"id": thread["id"], "object": "thread", **thread}
        rendered.pop("code_sandbox", None)
        return rendered

    def message(self, message: Message) -> Obj:
        return {
            "id": message["id"],
            "object": "thread.message",
            **message,
            "content": [_part(part) for part in message["content"]],
        }

    def run(self, run: Run) -> Obj:
        rendered: Obj = {"id": run["id"], "object": "thread.run", **run}
        pending = rendered.pop("pending_tool_calls")
        rendered.pop("parent_run_id", None)
        rendered.pop("project", None)
        rendered.pop("include", None)
        rendered["required_action"] = _required_action(pending)
        rendered["tools"] = [_function_tool(tool) for tool in run["tools"]]
        rendered["response_format"] = _response_format(run["response_format"])
        rendered["tool_choice"] = _tool_choice(run["tool_choice"])
        if not self.azure:
            del rendered["tool_resources"]
        return rendered

    def step(self, step: RunStep, include_content: bool = False) -> Obj:
        details = step["step_details"]
        if details["type"] == "message_creation":
            rendered_details: Obj = {
                "type": "message_creation",
                "message_creation": {"message_id": details["message_id"]},
            }
        elif details["type"] == "activities":
            rendered_details = dict(details)
        else:
            rendered_details = {
                "type": "tool_calls",
                "tool_calls": [_call(call, include_content) for call in details["tool_calls"]],
            }
        return {
            "id": step["id"],
            "object": "thread.run.step",
            **step,
            "step_details": rendered_details,
        }

    def file(self, file: FileRecord) -> Obj:
        rendered: Obj = {"id": file["id"], "object": "file", **file}
        rendered.pop("blob_key")
        return rendered

    def vector_store(self, store: VectorStoreView) -> Obj:
        return {"id": store["id"], "object": "vector_store", **store}

    def vector_store_file(self, file: VectorStoreFile) -> Obj:
        rendered: Obj = {"id": file["id"], "object": "vector_store.file", **file}
        rendered.pop("batch_id")
        rendered.pop("note", None)
        return rendered

    def file_batch(self, batch: FileBatchView) -> Obj:
        return {"id": batch["id"], "object": "vector_store.files_batch", **batch}

    def search_results(self, query: str | list[str], hits: list[SearchHit]) -> Obj:
        data = [
            {
                "file_id": hit["file_id"],
                "filename": hit["filename"],
                "score": hit["score"],
                "attributes": hit["attributes"],
                "content": [{"type": "text", "text": hit["text"]}],
            }
            for hit in hits
        ]
        return {
            "object": "vector_store.search_results.page",
            "search_query": [query] if isinstance(query, str) else query,
            "data": data,
            "has_more": False,
            "next_page": None,
        }

    def event(self, event: RunEvent) -> Obj:
        """The data of a streamed event, by what it carries."""
        name, data = event.event, event.data
        if name == "thread.message.delta":
            content = [{"index": p["index"], **_part(p)} for p in data["content"]]
            return {"id": data["id"], "object": name, "delta": {"content": content}}
        if name == "thread.run.step.delta":
            calls = [_call_piece(piece) for piece in data["tool_calls"]]
            details = {"type": "tool_calls", "tool_calls": calls}
            return {"id": data["id"], "object": name, "delta": {"step_details": details}}
        render = self._renderers.get(_kind(name))
        return render(data) if render is not None else data

    def page(self, page: Page[R], render: Callable[[R], Obj]) -> Obj:
        return list_body(page, render)

    @staticmethod
    def deleted(object_id: str, kind: str) -> Obj:
        return {"id": object_id, "object": f"{kind}.deleted", "deleted": True}


def _kind(event_name: str) -> str:
    """What an event carries, by its name: `thread.created` a thread,
    `thread.message.*` a message, `thread.run.step.*` a step, `thread.run.*` a run."""
    if event_name.startswith("thread.run.step."):
        return "step"
    if event_name.startswith("thread.run."):
        return "run"
    if event_name.startswith("thread.message."):
        return "message"
    return "thread"


OPENAI = AssistantsWire(azure=False)
AZURE = AssistantsWire(azure=True)


async def wire(request: Request) -> AssistantsWire:
    """Azure's flavour on its project paths (`ProjectPaths` notes the project), OpenAI's on
    `/v1`."""
    return AZURE if getattr(request.state, "project", None) is not None else OPENAI
