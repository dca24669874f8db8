"""The records the service keeps, in no wire format's shape.

An assistant, a thread, a message with its content parts, a run, a run step and an event of
a run's log are stored as these records and passed between the layers as they are; each
wire format renders them at its edge (`api/assistants_v2/render.py` for the Assistants API
and its Azure variant), so a second wire format can render the same threads and runs.

They are TypedDicts, not classes: a record is read from a JSON body on every query and
answered as JSON, and a dict costs nothing to convert either way (a run's context reads
hundreds of messages). What differs from the Assistants shape is what is that format's own:
no `object` key, content parts and tool calls flat (`{"type": "text", "text": ...}`,
`{"id", "type", "name", "arguments", "output"}`), a run's calls awaiting outputs as
`pending_tool_calls` rather than `required_action`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, NotRequired, TypedDict, TypeVar

# A record's JSON as stored, where no one type fits (a change of some fields, an event's
# data, a wire object).
Obj = dict[str, Any]
Metadata = dict[str, str]


class FunctionTool(TypedDict):
    type: Literal["function"]
    name: str
    description: NotRequired[str]
    parameters: NotRequired[Obj]
    strict: NotRequired[bool]


# A tool as an assistant or run holds it: a function, or a built-in tool as its own type
# says (`{"type": "file_search", ...}`).
Tool = Obj


class TextPart(TypedDict):
    type: Literal["text"]
    text: str
    annotations: list[Obj]


class ImageFilePart(TypedDict):
    type: Literal["image_file"]
    file_id: str
    detail: NotRequired[str]


class ImageUrlPart(TypedDict):
    type: Literal["image_url"]
    url: str
    detail: NotRequired[str]


ContentPart = TextPart | ImageFilePart | ImageUrlPart


class ToolCall(TypedDict):
    """A model's call of a tool; `output` once its result is known."""

    id: str
    type: str
    name: str
    arguments: str
    output: NotRequired[str | None]


class Usage(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class LastError(TypedDict):
    code: str
    message: str


class Assistant(TypedDict):
    id: str
    created_at: int
    name: str | None
    description: str | None
    model: str
    instructions: str | None
    tools: list[Tool]
    tool_resources: Obj
    metadata: Metadata
    temperature: float | None
    top_p: float | None
    # "auto", or `{"type": "text" | "json_object"}`, or `{"type": "json_schema", "name",
    # "schema"?, "description"?, "strict"?}`.
    response_format: str | Obj
    reasoning_effort: str | None


class Thread(TypedDict):
    id: str
    created_at: int
    metadata: Metadata
    tool_resources: Obj
    # The code interpreter's files of the thread (path to file id) and how many sandboxes
    # it has had (`tools/code_interpreter/tool.py`); the service's own, never rendered.
    code_sandbox: NotRequired[Obj]


class Message(TypedDict):
    id: str
    created_at: int
    thread_id: str
    role: Literal["user", "assistant"]
    content: list[ContentPart]
    assistant_id: str | None
    run_id: str | None
    attachments: list[Obj]
    metadata: Metadata
    status: Literal["in_progress", "incomplete", "completed"]
    incomplete_details: Obj | None
    completed_at: int | None
    incomplete_at: int | None
    # An item of the thread that is not a message, as the Responses API gives it: a function
    # call (`type`, `call_id`, `name`, `arguments`) or its output (`type`, `call_id`,
    # `output`). It is kept in the thread's order among the messages, so that a later prompt
    # reads it where it was said, and the Assistants API, which has no such items, skips it.
    item: NotRequired[Obj]


def item_kind(message: Message) -> str | None:
    """None for a message; the item's type otherwise."""
    item = message.get("item")
    return str(item["type"]) if item else None


class Run(TypedDict):
    id: str
    created_at: int
    assistant_id: str
    thread_id: str
    status: str
    started_at: int | None
    expires_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    # The function calls the run waits for outputs of, while `requires_action`.
    pending_tool_calls: list[ToolCall] | None
    last_error: LastError | None
    model: str
    instructions: str
    tools: list[Tool]
    metadata: Metadata
    usage: Usage | None
    temperature: float | None
    top_p: float | None
    max_prompt_tokens: int | None
    max_completion_tokens: int | None
    truncation_strategy: Obj
    incomplete_details: Obj | None
    response_format: str | Obj
    # "none" | "auto" | "required", or `{"type": "function", "name": N}`.
    tool_choice: str | Obj
    parallel_tool_calls: bool
    reasoning_effort: str | None
    tool_resources: Obj
    # The run whose connected-agent call started this one (absent on runs a client made,
    # and on those stored before connected agents).
    parent_run_id: NotRequired[str | None]
    # The project the run was made in, for what its tools may reach (absent on runs stored
    # before tools needed it: the store's column says).
    project: NotRequired[str]
    # What the run's steps show besides their own fields (`include[]` at creation: the
    # file_search results' content), never rendered on the run itself.
    include: NotRequired[list[str]]
    # Present on a run made through the Responses API (`"responses"`), with what only a
    # response has (`service/responses.py`): absent on Assistants runs.
    surface: NotRequired[str]
    response: NotRequired[ResponseFields]


class ResponseFields(TypedDict):
    """What a response keeps beside its run: the response it continues, the conversation it
    was given (None for a thread of its own), whether it is kept once answered and ran in the
    background, its `text` settings as sent, the messages its input added, and the step that
    carries its input's function call outputs (the model reads it as the run's own work)."""

    previous_response_id: str | None
    conversation: str | None
    store: bool
    background: bool
    text: Obj
    input_message_ids: list[str]
    input_step_id: str | None
    # Who the end user is, and the prompt-cache key, as the client gave them: shown back on
    # the response (the hosted service uses them for abuse checks and cache routing).
    identity: NotRequired[dict[str, str]]
    # "disabled": a prompt that would leave out any of the conversation fails the response
    # instead of dropping its oldest messages ("auto").
    truncation: NotRequired[Literal["auto", "disabled"]]
    # How many calls of the service's own tools the response may make in all; None: no cap.
    max_tool_calls: NotRequired[int | None]
    # The request's tools as it gave them (shown back; the run holds them as it runs them),
    # and what its output items show besides their own fields (`include`).
    tools: NotRequired[list[Obj]]
    include: NotRequired[list[str]]
    # The Foundry agent version that answered (`{"type": "agent_reference", "name",
    # "version"}`), when the request named one.
    agent: NotRequired[Obj]


class MessageCreation(TypedDict):
    type: Literal["message_creation"]
    message_id: str


class ToolCalls(TypedDict):
    type: Literal["tool_calls"]
    tool_calls: list[ToolCall]


class Activities(TypedDict):
    """What the service did for the run besides calling the model and tools: listing an MCP
    server's tools (`{"type": "mcp_list_tools", "id", "server_label", "tools"}`)."""

    type: Literal["activities"]
    activities: list[Obj]


StepDetails = MessageCreation | ToolCalls | Activities


class RunStep(TypedDict):
    id: str
    created_at: int
    run_id: str
    assistant_id: str
    thread_id: str
    type: Literal["message_creation", "tool_calls", "activities"]
    status: str
    cancelled_at: int | None
    completed_at: int | None
    expired_at: int | None
    failed_at: int | None
    last_error: LastError | None
    step_details: StepDetails
    usage: Usage | None
    metadata: Metadata


class MessageDelta(TypedDict):
    """Text added to a message: `content` holds `{"index", "type": "text", "text"}` pieces."""

    id: str
    content: list[Obj]


class StepDelta(TypedDict):
    """Tool calls as they stream: `{"index", "id"? (first piece), "type", "name"?,
    "arguments"}` pieces."""

    id: str
    tool_calls: list[Obj]


class FileRecord(TypedDict):
    """An uploaded file (its bytes live in the blob store under `blob_key`, never rendered)."""

    id: str
    created_at: int
    bytes: int
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"]
    status_details: str | None
    expires_at: int | None
    blob_key: str


class VectorStore(TypedDict):
    """A vector store as stored; its `status`, `file_counts` and `usage_bytes` are counted
    from its files when read (`VectorStoreView`), so no write races another to keep them."""

    id: str
    created_at: int
    name: str | None
    metadata: Metadata
    # `{"anchor": "last_active_at", "days": N}`, or None for a store that never expires.
    expires_after: Obj | None
    expires_at: int | None
    last_active_at: int


class FileCounts(TypedDict):
    in_progress: int
    completed: int
    failed: int
    cancelled: int
    total: int


class VectorStoreView(VectorStore):
    status: Literal["expired", "in_progress", "completed"]
    file_counts: FileCounts
    usage_bytes: int


# A vector store file's attribute values, as the wire format allows them.
Attributes = dict[str, str | float | bool]


class VectorStoreFile(TypedDict):
    """A file of a vector store: `id` is the file's id."""

    id: str
    vector_store_id: str
    created_at: int
    status: Literal["in_progress", "completed", "cancelled", "failed"]
    last_error: LastError | None
    usage_bytes: int
    # `{"type": "static", "static": {"max_chunk_size_tokens", "chunk_overlap_tokens"}}`.
    chunking_strategy: Obj
    attributes: Attributes
    batch_id: str | None
    # A note on what was indexed (an image-only PDF: nothing), for the run steps and logs.
    note: NotRequired[str | None]


class FileBatch(TypedDict):
    id: str
    vector_store_id: str
    created_at: int
    status: Literal["in_progress", "completed", "cancelled", "failed"]


class FileBatchView(FileBatch):
    file_counts: FileCounts


class Job(TypedDict):
    """A claimed piece of background work: what to do (`kind`, `body`), and how many times
    it has been claimed (this time included), so work that keeps killing its worker stops."""

    id: str
    kind: str
    body: Obj
    attempts: int


class SearchHit(TypedDict):
    """A piece of a file that a search found, best first."""

    file_id: str
    filename: str
    score: float
    text: str
    attributes: Attributes


@dataclass(frozen=True)
class PageRequest:
    limit: int = 20
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None


R = TypeVar("R")


@dataclass
class Page(Generic[R]):
    data: list[R] = field(default_factory=list)
    has_more: bool = False


@dataclass(frozen=True)
class RunEvent:
    """One entry of a run's event log: what happened (`thread.run.completed`,
    `thread.message.delta`, ...: the domain's names for it, which the Assistants API's
    stream happens to use as they are), the record it carries (a run, step or message as it
    then was, a thread, or a delta) and its sequence number in the log."""

    event: str
    data: Any
    seq: int = 0
