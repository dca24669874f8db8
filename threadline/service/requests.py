"""The inputs of each use case, in the OpenAI Assistants v2 wire shape.

Models are strict and closed (`extra="forbid"`): an unknown or ill-typed field is refused
before anything is stored, as the hosted API does.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from threadline.domain.errors import InvalidRequest

Metadata = dict[str, str]


def _integral(value: Any) -> Any:
    """JSON has one kind of number: a client that builds its body from floats (JavaScript,
    or a Python `float`) sends 256 as `256.0`, and means 256. A fractional number (`256.5`)
    is left as it is, for the strict integer check to refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Integer = Annotated[int, BeforeValidator(_integral)]

# The openai SDK's `ReasoningEffort`, every value of it.
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def invalid_request(invalid: ValidationError, prefix: str) -> InvalidRequest:
    """The 400 for a part of a request (`prefix`) checked after it was read, as a whole
    request's is worded: its first problem, named by its path from the request's top."""
    error = invalid.errors()[0]
    where = prefix + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
    )
    if error["type"] == "extra_forbidden":
        return InvalidRequest(f"Unrecognized request argument supplied: {where}", param=where)
    return InvalidRequest(f"Invalid '{where}': {error['msg']}.", param=where)


class FunctionDefinition(Closed):
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(Closed):
    type: Literal["function"]
    function: FunctionDefinition


class CodeInterpreterTool(Closed):
    type: Literal["code_interpreter"]


class FileSearchRankingOptions(Closed):
    ranker: Literal["auto", "default_2024_08_21"] | None = None
    score_threshold: Annotated[float, Field(ge=0, le=1)]


class FileSearchOptions(Closed):
    max_num_results: Annotated[Integer, Field(ge=1, le=50)] | None = None
    ranking_options: FileSearchRankingOptions | None = None


class FileSearchTool(Closed):
    """Checked as the SDKs' schema says even though the tool itself is then refused (not
    supported yet): a client learns of every problem with its request, in order."""

    type: Literal["file_search"]
    file_search: FileSearchOptions | None = None


ToolName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]


class OpenApiAuth(Closed):
    type: Literal["anonymous", "connection", "managed_identity"]
    security_scheme: dict[str, Any] | None = None


class OpenApiFunction(Closed):
    """As `azure-ai-agents`' `OpenApiTool` sends it. `functions` is what the service answers
    with (the spec's operations as functions): a client that sends an agent's tools back as
    it read them sends it too, and it is made anew from the spec."""

    name: ToolName
    description: str | None = None
    spec: dict[str, Any]
    auth: OpenApiAuth
    default_params: list[str] | None = None
    functions: list[dict[str, Any]] | None = None


class OpenApiTool(Closed):
    type: Literal["openapi"]
    openapi: OpenApiFunction


class ConnectedAgentDetails(Closed):
    id: str
    name: ToolName
    description: str


class ConnectedAgentTool(Closed):
    type: Literal["connected_agent"]
    connected_agent: ConnectedAgentDetails


class McpTool(Closed):
    type: Literal["mcp"]
    server_label: ToolName
    server_url: str
    allowed_tools: list[str] | None = None


Tool = Annotated[
    FunctionTool
    | CodeInterpreterTool
    | FileSearchTool
    | OpenApiTool
    | ConnectedAgentTool
    | McpTool,
    Field(discriminator="type"),
]


class TextFormat(Closed):
    type: Literal["text", "json_object"]


class JsonSchema(Closed):
    """Stored and served back, so held to the shape the SDKs read back: an unchecked one
    (no name, `strict: "yes"`) makes a client with strict response validation raise on
    every later retrieve."""

    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str | None = None
    # `schema` is the wire name; as a field name it would shadow `BaseModel.schema`.
    json_schema: Annotated[dict[str, Any] | None, Field(alias="schema")] = None
    strict: bool | None = None


class JsonSchemaFormat(Closed):
    type: Literal["json_schema"]
    json_schema: JsonSchema


ResponseFormat = (
    Literal["auto"] | Annotated[TextFormat | JsonSchemaFormat, Field(discriminator="type")]
)


class NamedFunction(Closed):
    name: str


class FunctionChoice(Closed):
    type: Literal["function"]
    function: NamedFunction


class BuiltinToolChoice(Closed):
    type: Literal["file_search", "code_interpreter"]


ToolChoice = Literal["none", "auto", "required"] | FunctionChoice | BuiltinToolChoice


class TruncationStrategy(Closed):
    type: Literal["auto", "last_messages"]
    last_messages: Annotated[Integer, Field(ge=1)] | None = None


class CodeInterpreterResources(Closed):
    file_ids: list[str] = Field(default_factory=list, max_length=20)


class FileSearchResources(Closed):
    vector_store_ids: list[str] = Field(default_factory=list, max_length=1)
    vector_stores: list[dict[str, Any]] | None = None


class McpResource(Closed):
    """An MCP server's headers and approval rule for a run (`azure-ai-agents`' `McpTool`),
    and the connection whose secret its requests carry (`tools/mcp.py`)."""

    server_label: ToolName
    headers: dict[str, str] = Field(default_factory=dict)
    require_approval: str | dict[str, Any] = "always"
    project_connection_id: Annotated[str, Field(min_length=1)] | None = None


class ToolResources(Closed):
    code_interpreter: CodeInterpreterResources | None = None
    file_search: FileSearchResources | None = None
    mcp: list[McpResource] | None = None


class TextPart(Closed):
    type: Literal["text"]
    text: str


_DATA_IMAGE = re.compile(r"data:image/[a-zA-Z0-9.+-]+;base64,[A-Za-z0-9+/]+={0,2}\Z")


def _image_url(url: str) -> str:
    """The URL goes to the model as it is: one that is neither a web address nor an inline
    image would only fail later, inside a run, where the user cannot see why."""
    if url.startswith("data:"):
        if _DATA_IMAGE.match(url):
            return url
    else:
        # Non-ASCII is fine (an internationalised host or path); spaces and control
        # characters are not part of any URL.
        if url.isprintable() and not any(char.isspace() for char in url):
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") and parts.hostname:
                return url
    raise PydanticCustomError(
        "url_invalid",
        "expected an http or https URL, or an image as a data URL "
        "(data:image/<type>;base64,<data>)",
    )


class ImageUrl(Closed):
    url: Annotated[str, AfterValidator(_image_url)]
    detail: Literal["auto", "low", "high"] = "auto"


class ImageUrlPart(Closed):
    type: Literal["image_url"]
    image_url: ImageUrl


class ImageFile(Closed):
    file_id: str
    detail: Literal["auto", "low", "high"] = "auto"


class ImageFilePart(Closed):
    type: Literal["image_file"]
    image_file: ImageFile


ContentPart = Annotated[TextPart | ImageUrlPart | ImageFilePart, Field(discriminator="type")]


class AttachmentTool(Closed):
    type: Literal["code_interpreter", "file_search"]


class Attachment(Closed):
    """A file for the message's tools: OpenAI's by `file_id`, Azure's also by `data_source`
    (`{"uri", "type"}`). Taken in both shapes so that the service can say what it cannot do
    yet, rather than answer a generic validation error."""

    file_id: str | None = None
    data_source: dict[str, Any] | None = None
    tools: list[AttachmentTool] = Field(default_factory=list)


class MessageCreate(Closed):
    role: Literal["user", "assistant"]
    content: str | Annotated[list[ContentPart], Field(min_length=1)]
    attachments: list[Attachment] | None = None
    metadata: Metadata | None = None


class MetadataUpdate(Closed):
    metadata: Metadata | None = None


class AssistantFields(Closed):
    name: Annotated[str, Field(max_length=256)] | None = None
    description: Annotated[str, Field(max_length=512)] | None = None
    instructions: str | None = None  # its length: `Limits.instructions_chars`
    tools: list[Tool] | None = None
    tool_resources: ToolResources | None = None
    metadata: Metadata | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: ReasoningEffort | None = None


class AssistantCreate(AssistantFields):
    model: Annotated[str, Field(min_length=1)]


class AssistantUpdate(AssistantFields):
    model: Annotated[str, Field(min_length=1)] | None = None


class ThreadCreate(Closed):
    messages: list[MessageCreate] | None = None
    metadata: Metadata | None = None
    tool_resources: ToolResources | None = None


class ThreadUpdate(Closed):
    metadata: Metadata | None = None
    tool_resources: ToolResources | None = None


class RunOptions(Closed):
    """What a run may override of its assistant, shared by create run and create-and-run."""

    assistant_id: str
    model: str | None = None
    instructions: str | None = None
    tools: list[Tool] | None = None
    metadata: Metadata | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    # Any positive number: a self-hosted model's window may be small, and a run whose
    # budget is spent ends `incomplete`, whatever the number.
    max_prompt_tokens: Annotated[Integer, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[Integer, Field(ge=1)] | None = None
    truncation_strategy: TruncationStrategy | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool = True
    response_format: ResponseFormat | None = None
    stream: bool | None = None
    # The Azure client sends it (`{}` for a toolset of functions) with every toolset.
    tool_resources: ToolResources | None = None


class RunCreate(RunOptions):
    additional_instructions: str | None = None
    additional_messages: list[MessageCreate] | None = None
    include: list[str] | None = None
    reasoning_effort: ReasoningEffort | None = None


class ThreadAndRunCreate(RunOptions):
    thread: ThreadCreate | None = None


class ToolOutput(Closed):
    tool_call_id: str
    output: str = ""
    # `azure-ai-agents` 1.2 names the item's kind.
    type: Literal["function_call_output"] | None = None


class ToolApproval(Closed):
    """The client's decision on a call that waits for approval (an MCP call), with headers
    for that call alone."""

    tool_call_id: str
    approve: bool
    headers: dict[str, str] | None = None


class ToolOutputsSubmit(Closed):
    """Outputs of function calls, or approvals of calls that wait for them: what the run
    waits for decides which it takes."""

    tool_outputs: list[ToolOutput] = Field(default_factory=list)
    tool_approvals: list[ToolApproval] | None = None
    stream: bool | None = None
