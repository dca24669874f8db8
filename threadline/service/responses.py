"""Responses: the Responses API's model calls, served as runs.

A response is a run (`resp_` id, `"surface": "responses"`) made from its request alone, with
no assistant: the request's model, instructions, tools and options fill the run as an
assistant's would (`RunService.new_run`, from an assistant record of the request's own), and
the same queue, workers and executor carry it. It runs on a thread: the `conversation` it is
given, the thread of the response it continues (`previous_response_id`), or one of its own.

Its input's messages, function calls and function call outputs join the thread in order
(`service/items.py`); its system and developer messages are added to its instructions.
Function calls end a response (it does not wait for outputs, as an Assistants run does) and
stay in its thread as items; the next response answers them with `function_call_output`
items, and its model reads each call before its output, where they were said. A client that
keeps the history itself (the openai-agents Runner) sends earlier calls back with their
outputs: they are items of its input like its messages.

Built-in tools (file_search, code_interpreter, mcp; `response_tools.py`) run in the run as
they do for an assistant. An MCP call that needs approval ends the response too, with an
approval request; the next response's `mcp_approval_response` items decide it, and the calls
they decide are that response's first round, made before its model is called.

Continuing from a response that is not its thread's latest (a branch) runs on a new thread
made from the history up to that response (`branches.py`): a thread holds one line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol, cast

from pydantic import Field, ValidationError

from threadline.domain.clock import now
from threadline.domain.errors import Conflict, InvalidRequest, NotFound
from threadline.domain.expiry import is_expired
from threadline.domain.ids import IdKind
from threadline.domain.limits import DEFAULT_LIMITS, Limits
from threadline.domain.records import (
    Assistant,
    Message,
    Metadata,
    Obj,
    Page,
    PageRequest,
    ResponseFields,
    Run,
    RunStep,
    Thread,
    ToolCall,
)
from threadline.domain.run_states import TERMINAL_STATUSES, RunStatus, cancel_target, is_active
from threadline.service.branches import branch_thread
from threadline.service.conversations import message_of
from threadline.service.file_refs import attach_files, check_message_refs
from threadline.service.items import ITEM_TYPES, GivenItems, item_ids_of_call, read_item
from threadline.service.messages import append_messages, check_messages
from threadline.service.objects import run_step
from threadline.service.requests import (
    Closed,
    Integer,
    MessageCreate,
    ReasoningEffort,
    RunCreate,
    ThreadCreate,
)
from threadline.service.response_tools import ResponseTools, read_tool_choice, read_tools
from threadline.service.run_events import EventBatches, RunVanished
from threadline.service.run_status import change_status, emit
from threadline.service.runs import RunService
from threadline.service.threads import insert_thread
from threadline.service.unsupported import RESPONSE_INCLUDES, not_yet, refuse_include
from threadline.store.base import Store, StoreTx

SURFACE = "responses"
_INSTRUCTION_ROLES = ("system", "developer")
# The tags of the run request's tools, which the Responses request does not write.
_TOOL_TAGS = ("function", "file_search", "code_interpreter", "mcp", "openapi")


class Reasoning(Closed):
    """How hard a reasoning model thinks: `effort` goes to the upstream as a run's
    `reasoning_effort` does; the summaries of its reasoning are not asked for yet."""

    effort: ReasoningEffort | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class AgentReference(Closed):
    """A Foundry agent (`agent_versions.py`) whose version the response runs: the one named,
    or the agent's latest."""

    type: Literal["agent_reference"]
    name: Annotated[str, Field(min_length=1)]
    version: Annotated[str, Field(min_length=1)] | None = None


class ResponseCreate(Closed):
    # Required unless `agent_reference` names an agent, whose version gives it.
    model: Annotated[str, Field(min_length=1)] | None = None
    input: str | list[Any] | None = None
    instructions: str | None = None
    tools: list[Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    max_output_tokens: Annotated[Integer, Field(ge=1)] | None = None
    metadata: Metadata | None = None
    text: dict[str, Any] | None = None
    conversation: str | dict[str, Any] | None = None
    previous_response_id: str | None = None
    store: bool | None = None
    background: bool | None = None
    stream: bool | None = None
    include: list[str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    reasoning: Reasoning | None = None
    max_tool_calls: Annotated[Integer, Field(ge=1)] | None = None
    user: Annotated[str, Field(max_length=256)] | None = None
    safety_identifier: Annotated[str, Field(max_length=64)] | None = None
    prompt_cache_key: Annotated[str, Field(max_length=256)] | None = None
    agent_reference: AgentReference | None = None
    # Values for the `{{name}}` placeholders of the agent version the request runs
    # (`service/structured_inputs.py`).
    structured_inputs: dict[str, Any] | None = None


class AgentVersions(Protocol):
    """Fills a request that names an agent, or came through an agent's endpoint, with its
    version's settings (`service/agent_versions.py`), and says which version that was, as
    the response shows it (`{"type": "agent_reference", "name", "version"}`)."""

    async def apply(
        self, project: str, request: ResponseCreate, endpoint: str | None = None
    ) -> tuple[ResponseCreate, Obj]: ...


class InputTokensCount(Closed):
    """`POST /responses/input_tokens`: what a response request says of its prompt."""

    model: Annotated[str, Field(min_length=1)] | None = None
    input: str | list[Any] | None = None
    instructions: str | None = None
    tools: list[Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None
    conversation: str | dict[str, Any] | None = None
    previous_response_id: str | None = None
    reasoning: Reasoning | None = None
    truncation: Literal["auto", "disabled"] | None = None
    agent_reference: AgentReference | None = None
    structured_inputs: dict[str, Any] | None = None


@dataclass
class ResponseView:
    """A response as it is read: its run, the run's steps in order, and the messages those
    steps wrote."""

    run: Run
    steps: list[RunStep]
    messages: dict[str, Message] = field(default_factory=dict)

    @property
    def fields(self) -> ResponseFields:
        return self.run["response"]


@dataclass
class _Input:
    """A request's `input`, sorted: what joins the thread, in order (messages, and function
    calls and outputs, with each one's index in `input`), instructions for the run, and
    decisions on the last response's MCP approval requests (`(index, request id, approve)`)."""

    items: GivenItems = field(default_factory=GivenItems)
    indexes: list[int] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)

    approvals: list[tuple[int, str, bool]] = field(default_factory=list)

    @property
    def messages(self) -> list[MessageCreate]:
        return self.items.messages

    def add(self, index: int, entry: MessageCreate | Obj) -> None:
        self.items.entries.append(entry)
        self.indexes.append(index)


def _instruction_text(item: dict[str, Any], param: str) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        texts: list[str] = []
        for index, part in enumerate(content):
            where = f"{param}.content[{index}]"
            if not isinstance(part, dict) or part.get("type") != "input_text":
                raise InvalidRequest(
                    f"Invalid '{where}': a {item['role']} message holds input_text parts.",
                    param=where,
                )
            if not isinstance(part.get("text"), str):
                raise InvalidRequest(f"Missing required parameter: '{where}.text'.", param=where)
            texts.append(part["text"])
        return "\n".join(texts)
    raise InvalidRequest(
        f"Invalid '{param}.content': a string or a non-empty list of parts.",
        param=f"{param}.content",
    )


def _approval(item: dict[str, Any], param: str) -> tuple[str, bool]:
    unknown = set(item) - {"type", "approval_request_id", "approve", "id", "reason"}
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidRequest(f"Unknown parameter: '{param}.{name}'.", param=f"{param}.{name}")
    request_id, approve = item.get("approval_request_id"), item.get("approve")
    if not isinstance(request_id, str) or not request_id:
        where = f"{param}.approval_request_id"
        raise InvalidRequest(f"Missing required parameter: '{where}'.", param=where)
    if not isinstance(approve, bool):
        where = f"{param}.approve"
        raise InvalidRequest(f"Missing required parameter: '{where}'.", param=where)
    if item.get("reason") is not None:
        # The model is told a refused call was not made, in words of the service's own.
        raise not_yet(f"'{param}.reason'", f"{param}.reason", "responses")
    return request_id, approve


def _read_input(raw: str | list[Any] | None, limits: Limits) -> _Input:
    read = _Input()
    if raw is None:
        return read
    if isinstance(raw, str):
        read.add(0, MessageCreate(role="user", content=raw))
        return read
    for index, item in enumerate(raw):
        param = f"input[{index}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"Invalid '{param}': expected an object.", param=param)
        kind = item.get("type", "message")
        if kind in ITEM_TYPES:
            if kind == "function_call_output" and not isinstance(item.get("output"), str):
                raise not_yet(f"'{param}.output' other than a string", f"{param}.output", SURFACE)
            read.add(index, read_item(item, param, limits))
        elif kind == "mcp_approval_response":
            request_id, approve = _approval(item, param)
            read.approvals.append((index, request_id, approve))
        elif kind != "message":
            raise not_yet(f"An input item of type '{kind}'", f"{param}.type", SURFACE)
        elif item.get("role") in _INSTRUCTION_ROLES:
            read.instructions.append(_instruction_text(item, param))
        else:
            read.add(index, message_of(item, param))
    return read


def _check_calls(pending: list[ToolCall], given: _Input) -> None:
    """Every output answers a call made before it (one the last response ended with, or one
    given earlier in the input), once; and every such call is answered."""
    made: dict[str, bool] = {call["id"]: False for call in pending}  # call id -> answered
    for index, entry in zip(given.indexes, given.items.entries, strict=True):
        if isinstance(entry, MessageCreate):
            continue
        param, call_id = f"input[{index}].call_id", entry["call_id"]
        if entry["type"] == "function_call":
            if call_id in made:
                raise InvalidRequest(
                    f"Function call '{call_id}' is given more than once.", param=param
                )
            made[call_id] = False
            continue
        if call_id not in made:
            raise InvalidRequest(
                f"No tool call found for function call output with call_id '{call_id}'.",
                param=param,
            )
        if made[call_id]:
            raise InvalidRequest(
                f"Function call '{call_id}' was given more than one output.", param=param
            )
        made[call_id] = True
    missing = [call_id for call_id, answered in made.items() if not answered]
    if missing:
        raise InvalidRequest(
            f"No tool output found for function call '{missing[0]}'.", param="input"
        )


def _response_format(text: dict[str, Any] | None) -> dict[str, Any] | None:
    if not text:
        return None
    unknown = set(text) - {"format", "verbosity"}
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidRequest(f"Unknown parameter: 'text.{name}'.", param=f"text.{name}")
    if text.get("verbosity") is not None:
        raise not_yet("text.verbosity", "text.verbosity", "responses")
    shape = text.get("format")
    if shape is None:
        return None
    if not isinstance(shape, dict) or shape.get("type") not in (
        "text",
        "json_object",
        "json_schema",
    ):
        kind = shape.get("type") if isinstance(shape, dict) else shape
        raise InvalidRequest(f"Invalid 'text.format.type': '{kind}'.", param="text.format.type")
    if shape["type"] == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {k: v for k, v in shape.items() if k != "type"},
        }
    return dict(shape)


def _param_of(error: Any) -> str:
    """A run request's field as the Responses request names it."""
    parts = [str(part) for part in error["loc"]]
    if parts[:1] == ["tools"] and len(parts) > 2 and parts[2] in _TOOL_TAGS:
        # `tools[0]` (tagged by its type) holds a function's or a search's options nested.
        nested = parts[2] in ("function", "file_search")
        parts = [*parts[:2], *parts[4 if nested else 3 :]]
    else:
        parts = [part for part in parts if part != "function"]
    if parts and parts[0] == "max_completion_tokens":
        parts[0] = "max_output_tokens"
    if parts and parts[0] == "response_format":
        parts = ["text", "format", *parts[1:]]
    path = ""
    for part in parts:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path


def _run_request(request: ResponseCreate, tools: ResponseTools) -> RunCreate:
    choice, _ = read_tool_choice(request.tool_choice, tools)
    body: dict[str, Any] = {
        "assistant_id": "",
        "model": request.model,
        "instructions": request.instructions,
        "metadata": request.metadata,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_completion_tokens": request.max_output_tokens,
        "response_format": _response_format(request.text),
        "tool_choice": choice,
        "reasoning_effort": request.reasoning.effort if request.reasoning else None,
    }
    if request.tools is not None:
        body["tools"] = tools.run_tools
    if tools.request_resources():
        body["tool_resources"] = tools.request_resources()
    if request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    try:
        return RunCreate.model_validate({k: v for k, v in body.items() if v is not None})
    except ValidationError as invalid:
        error = invalid.errors()[0]
        where = _param_of(error)
        raise InvalidRequest(f"Invalid '{where}': {error['msg']}.", param=where) from invalid


def _assistant(model: str) -> Assistant:
    """The assistant a response's run is made from: none of its own settings, so the
    request's stand."""
    return {
        "id": "",
        "created_at": now(),
        "name": None,
        "description": None,
        "model": model,
        "instructions": None,
        "tools": [],
        "tool_resources": {},
        "metadata": {},
        "temperature": None,
        "top_p": None,
        "response_format": "auto",
        "reasoning_effort": None,
    }


def _identity(request: ResponseCreate) -> dict[str, str]:
    named = {
        "user": request.user,
        "safety_identifier": request.safety_identifier,
        "prompt_cache_key": request.prompt_cache_key,
    }
    return {key: value for key, value in named.items() if value is not None}


def _conversation_id(raw: str | dict[str, Any] | None) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    if set(raw) == {"id"} and isinstance(raw["id"], str):
        return str(raw["id"])
    raise InvalidRequest(
        "Invalid 'conversation': a conversation id or {\"id\"}.", param="conversation"
    )


def is_response(run: Run | None, project: str) -> bool:
    return run is not None and run.get("surface") == SURFACE and run.get("project") == project


def ended_with_calls(steps: list[RunStep], run: Run) -> list[ToolCall]:
    """The function calls a response ended with (its last step's), which the next must
    answer; none if it ended otherwise."""
    if run["status"] != RunStatus.COMPLETED.value or not steps:
        return []
    last = steps[-1]
    details = last["step_details"]
    if details["type"] != "tool_calls" or last["id"] == run["response"]["input_step_id"]:
        return []
    return [call for call in details["tool_calls"] if call["type"] == "function"]


def awaits_approval(call: Mapping[str, Any]) -> bool:
    """An MCP call a response ended with, for its client to approve or refuse in the next
    (`mcp_approval_request`): marked with its request's id, not decided, not made."""
    return "approval_request_id" in call and "approved" not in call and call.get("output") is None


def approval_requests(steps: list[RunStep], run: Run) -> list[ToolCall]:
    """The MCP calls a completed response ended with, waiting for approval."""
    if run["status"] != RunStatus.COMPLETED.value or not steps:
        return []
    details = steps[-1]["step_details"]
    if details["type"] != "tool_calls":
        return []
    return [call for call in details["tool_calls"] if awaits_approval(call)]


def _decided(
    asked: list[ToolCall], approvals: list[tuple[int, str, bool]], tools: ResponseTools
) -> list[ToolCall]:
    """The calls the input's approval responses decide, each marked approved or refused:
    every response must answer a request the last response made, once, and the server it
    names must be among this request's tools (the approved call is made with it). A request
    left unanswered is dropped, as the hosted service does."""
    by_id = {str(dict(call)["approval_request_id"]): call for call in asked}
    decided: dict[str, ToolCall] = {}
    for index, request_id, approve in approvals:
        param = f"input[{index}].approval_request_id"
        call = by_id.get(request_id)
        if call is None:
            raise InvalidRequest(
                f"No pending MCP approval request found with id '{request_id}'.", param=param
            )
        if request_id in decided:
            raise InvalidRequest(
                f"MCP approval request '{request_id}' was answered more than once.",
                param=param,
            )
        label = str(dict(call).get("server_label", ""))
        if label not in tools.server_labels():
            raise InvalidRequest(
                f"MCP approval request '{request_id}' is for the server '{label}': give its mcp"
                " tool in 'tools' to make the call.",
                param="tools",
            )
        record: Obj = {
            "id": call["id"],
            "type": "mcp",
            "name": call["name"],
            "arguments": call["arguments"],
            "server_label": label,
            "approval_request_id": request_id,
            "approved": approve,
            "output": None,
        }
        decided[request_id] = cast(ToolCall, record)
    return list(decided.values())


async def _check_tool_refs(tx: StoreTx, project: str, tools: ResponseTools) -> None:
    """The stores a file_search tool searches and the files a container is given: each of
    the project (and a store not expired), or a 400 naming it, as a run's resources are."""
    if tools.stores:
        ids = [ref.store_id for ref in tools.stores]
        found = {store["id"]: store for store in await tx.get_vector_stores(project, ids)}
        for ref in tools.stores:
            store = found.get(ref.store_id)
            if store is None:
                raise InvalidRequest(
                    f"No vector store found with id '{ref.store_id}'.", param=ref.param
                )
            if is_expired(store):
                raise InvalidRequest(
                    f"Vector store '{ref.store_id}' has expired.",
                    param=ref.param,
                    code="vector_store_expired",
                )
    if tools.files:
        ids = [ref.file_id for ref in tools.files]
        known = {file["id"] for file in await tx.get_files(project, ids)}
        for file_ref in tools.files:
            if file_ref.file_id not in known:
                raise InvalidRequest(
                    f"No file found with id '{file_ref.file_id}'.", param=file_ref.param
                )


def _page(messages: list[Message], page: PageRequest) -> Page[Message]:
    """A response's input messages (a few) paged in memory, as the thread's messages are."""
    ordered = messages if page.order == "asc" else list(reversed(messages))
    ids = [message["id"] for message in ordered]
    start, end = 0, len(ordered)
    if page.after is not None and page.after in ids:
        start = ids.index(page.after) + 1
    if page.before is not None and page.before in ids:
        end = ids.index(page.before)
    window = ordered[start:end]
    return Page(window[: page.limit], has_more=len(window) > page.limit)


class PromptCounting(Protocol):
    """Builds and counts a run's first prompt (`engine/input_tokens.py`)."""

    async def prepare(self, model: str) -> None: ...

    async def count(self, tx: StoreTx, run: Run, steps: list[RunStep]) -> int: ...


class InputTokens(Exception):
    """Carries a count out of the transaction it was made in, which it rolls back."""

    def __init__(self, tokens: int):
        super().__init__(tokens)
        self.tokens = tokens


class ResponseService:
    def __init__(
        self,
        store: Store,
        runs: RunService,
        limits: Limits = DEFAULT_LIMITS,
        counter: PromptCounting | None = None,
        agents: AgentVersions | None = None,
    ):
        self.store = store
        self.runs = runs
        self.limits = limits
        self.counter = counter
        self.agents = agents
        # Deletions of responses not to be kept, waiting for them to settle.
        self._forgetting: set[asyncio.Task[None]] = set()

    async def create(
        self,
        project: str,
        request: ResponseCreate,
        counter: PromptCounting | None = None,
        endpoint: str | None = None,
    ) -> Run:
        """The response, queued; `endpoint`: the agent whose endpoint the request came
        through. With `counter`, nothing is kept: what create would write is written, the
        prompt its run would send is counted, and all is rolled back (`InputTokens`)."""
        agent: Obj | None = None
        if request.agent_reference is not None or endpoint is not None:
            if self.agents is None:
                raise not_yet("agent_reference", "agent_reference", SURFACE)
            request, agent = await self.agents.apply(project, request, endpoint)
        elif request.structured_inputs is not None:
            raise InvalidRequest(
                "'structured_inputs' fill an agent version's placeholders: give"
                " 'agent_reference' too.",
                param="structured_inputs",
            )
        if request.model is None:
            raise InvalidRequest("Missing required parameter: 'model'.", param="model")
        model = request.model
        conversation_id = _conversation_id(request.conversation)
        if conversation_id is not None and request.previous_response_id is not None:
            raise InvalidRequest(
                "Give 'conversation' or 'previous_response_id', not both.",
                param="previous_response_id",
            )
        if conversation_id is not None and request.store is False:
            raise InvalidRequest(
                "A response in a conversation is stored with it: 'store' cannot be false.",
                param="store",
            )
        include = refuse_include(request.include, "include", RESPONSE_INCLUDES)
        reasoning = request.reasoning or Reasoning()
        for name in ("summary", "generate_summary"):
            if getattr(reasoning, name) is not None:
                raise not_yet(f"reasoning.{name}", f"reasoning.{name}", "responses")
        given = _read_input(request.input, self.limits)
        check_messages(given.messages, self.limits, "input")
        tools = read_tools(request.tools)
        _, mcp_choice = read_tool_choice(request.tool_choice, tools)
        run_request = _run_request(request, tools)
        await self.runs.check_options(run_request)
        extra = "\n\n".join(given.instructions) or None
        async with self.store.transaction() as tx:
            created: Thread | None = None
            previous: Run | None = None
            if conversation_id is not None:
                thread = await tx.lock_thread(project, conversation_id)
                if thread is None:
                    raise NotFound("conversation", conversation_id)
                previous = await self._latest_run(tx, thread["id"])
                if previous is not None and previous.get("surface") != SURFACE:
                    previous = None
            elif request.previous_response_id is not None:
                previous = await self._require(tx, project, request.previous_response_id)
                thread, branched = await self._continued_thread(tx, project, previous)
                if branched:
                    created = thread
                # Continuing a response of a conversation writes to that conversation.
                conversation_id = previous["response"]["conversation"]
                if conversation_id is not None and request.store is False:
                    raise InvalidRequest(
                        f"Response {previous['id']} is in conversation {conversation_id}, which"
                        " keeps what is said in it: 'store' cannot be false.",
                        param="store",
                    )
            else:
                thread = created = await insert_thread(tx, project, ThreadCreate())
            pending: list[ToolCall] = []
            asked: list[ToolCall] = []
            if previous is not None:
                previous_steps = await tx.steps_of_run(previous["id"])
                pending = ended_with_calls(previous_steps, previous)
                asked = approval_requests(previous_steps, previous)
            _check_calls(pending, given)
            decided = _decided(asked, given.approvals, tools)
            await _check_tool_refs(tx, project, tools)
            await check_message_refs(tx, project, given.messages, "input")
            records = given.items.records(thread["id"])
            await append_messages(tx, thread["id"], records, self.limits, param="input")
            await attach_files(tx, project, thread, given.messages)
            run = self.runs.new_run(
                project,
                thread["id"],
                _assistant(model),
                run_request,
                extra,
                kind=IdKind.RESPONSE,
            )
            if request.tools is not None:
                run["tools"] = tools.run_records(run["tools"])
            if mcp_choice is not None:
                run["tool_choice"] = mcp_choice
            if "file_search" in tools.resources:
                run["tool_resources"] = {
                    **run["tool_resources"],
                    "file_search": tools.resources["file_search"],
                }
            run["surface"] = SURFACE
            run["response"] = {
                "previous_response_id": request.previous_response_id,
                "conversation": conversation_id,
                "store": request.store is not False,
                "background": bool(request.background),
                "text": request.text or {"format": {"type": "text"}},
                "input_message_ids": [record["id"] for record in records],
                "input_step_id": None,
                "identity": _identity(request),
                "truncation": request.truncation or "auto",
                "max_tool_calls": request.max_tool_calls,
                "tools": tools.shown,
                "include": include,
            }
            if agent is not None:
                run["response"]["agent"] = agent
            await self.runs.queue(tx, project, run, created_thread=created)
            if decided:
                # The decided calls are this response's first round, made before the model
                # is called (the executor takes up a round left open).
                round_ = run_step(run, {"type": "tool_calls", "tool_calls": decided})
                await tx.insert_step(round_)
                await emit(tx, run, ("thread.run.step.created", round_))
            if counter is not None:
                raise InputTokens(await counter.count(tx, run, []))
        return run

    async def check_settings(self, request: ResponseCreate) -> None:
        """What `create` checks of a request's model settings and tools before it touches
        the store, for settings kept to be run later (an agent version's definition)."""
        tools = read_tools(request.tools)
        read_tool_choice(request.tool_choice, tools)
        await self.runs.check_options(_run_request(request, tools))

    async def count_input_tokens(
        self, project: str, request: InputTokensCount, endpoint: str | None = None
    ) -> int:
        """The tokens of the prompt the response would send the model first, counted as its
        run would count them (the window of the conversation that fits included); for an
        agent (named, or through its endpoint), the prompt of the version it would run,
        chosen once."""
        given = ResponseCreate.model_validate(request.model_dump(exclude_unset=True))
        if given.agent_reference is not None or endpoint is not None:
            if self.agents is None:
                raise not_yet("agent_reference", "agent_reference", SURFACE)
            filled, _ = await self.agents.apply(project, given, endpoint)
            given = filled.model_copy(update={"agent_reference": None})
        model = given.model
        if model is None and given.previous_response_id is not None:
            async with self.store.transaction(durable=False) as tx:
                model = (await self._require(tx, project, given.previous_response_id))["model"]
        if model is None:
            raise InvalidRequest("Missing required parameter: 'model'.", param="model")
        if self.counter is None:
            raise not_yet("Counting input tokens", "model", "responses")
        await self.counter.prepare(model)
        try:
            await self.create(project, given.model_copy(update={"model": model}), self.counter)
        except InputTokens as counted:
            return counted.tokens
        raise AssertionError("create returns only by raising InputTokens when counting")

    async def _latest_run(self, tx: StoreTx, thread_id: str) -> Run | None:
        latest = await tx.page_runs(thread_id, PageRequest(limit=1, order="desc"))
        return latest.data[0] if latest.data else None

    async def _continued_thread(
        self, tx: StoreTx, project: str, previous: Run
    ) -> tuple[Thread, bool]:
        """The thread a response continuing `previous` runs on: `previous`'s, or, when that
        has gone on since (a branch), a new one made from it; and whether it is new."""
        thread = await tx.lock_thread(project, previous["thread_id"])
        latest = await self._latest_run(tx, previous["thread_id"])
        if thread is None or latest is None:
            raise NotFound("response", previous["id"])
        if latest["id"] == previous["id"]:
            return thread, False
        return await branch_thread(tx, project, thread, previous, self.limits), True

    async def _require(self, tx: StoreTx, project: str, response_id: str) -> Run:
        run = await tx.get_run_by_id(response_id)
        if run is None or not is_response(run, project):
            raise NotFound("response", response_id)
        return run

    async def get(self, project: str, response_id: str) -> ResponseView:
        async with self.store.transaction(durable=False) as tx:
            return await self._view(tx, await self._require(tx, project, response_id))

    async def view_of(self, run_id: str) -> ResponseView | None:
        """A response this request made, as it now is; None once it is gone."""
        async with self.store.transaction(durable=False) as tx:
            run = await tx.get_run_by_id(run_id)
            return await self._view(tx, run) if run is not None else None

    async def _view(self, tx: StoreTx, run: Run) -> ResponseView:
        view = ResponseView(run, await tx.steps_of_run(run["id"]))
        for step in view.steps:
            details = step["step_details"]
            if details["type"] == "message_creation":
                message = await tx.get_message(run["thread_id"], details["message_id"])
                if message is not None:
                    view.messages[message["id"]] = message
        return view

    def follow(self, run_id: str, after_seq: int = 0) -> EventBatches:
        return self.runs.follow_own(run_id, after_seq)

    async def settled(self, run_id: str) -> None:
        """Once the response's run has settled (or is gone)."""
        try:
            async for _ in self.follow(run_id):
                pass
        except RunVanished:
            return

    async def cancel(self, project: str, response_id: str) -> ResponseView:
        async with self.store.transaction() as tx:
            run = await self._require(tx, project, response_id)
            if not run["response"]["background"]:
                raise InvalidRequest(
                    "Only a response created with background=true can be cancelled.",
                    param="response_id",
                )
            if RunStatus(run["status"]) not in TERMINAL_STATUSES:
                await tx.lock_thread(project, run["thread_id"])
                target = cancel_target(RunStatus(run["status"]))
                if await change_status(tx, run, target) is None:
                    raise Conflict(f"Response {response_id} changed while being cancelled.")
        await self.settled(response_id)
        return await self.get(project, response_id)

    async def delete(self, project: str, response_id: str) -> None:
        async with self.store.transaction() as tx:
            run = await self._require(tx, project, response_id)
            if is_active(RunStatus(run["status"])):
                raise Conflict(
                    f"Response {response_id} is still {run['status']}; cancel it first.",
                    param="response_id",
                )
            await self._forget(tx, project, run)

    async def forget(self, project: str, run_id: str) -> None:
        """Once settled, delete a response that is not to be kept (`store: false`)."""
        await self.settled(run_id)
        async with self.store.transaction() as tx:
            run = await tx.get_run_by_id(run_id)
            if run is not None and not is_active(RunStatus(run["status"])):
                await self._forget(tx, project, run)

    def forget_later(self, project: str, run_id: str) -> None:
        """`forget`, for a stream whose client may leave before the response settles."""
        task = asyncio.get_running_loop().create_task(self.forget(project, run_id))
        self._forgetting.add(task)
        task.add_done_callback(self._forgetting.discard)

    async def _forget(self, tx: StoreTx, project: str, run: Run) -> None:
        """The response gone: its run, and, on a thread of its own (not a conversation it was
        given), its input and output messages too, and the thread once no run is left on it.
        A conversation keeps what was said in it."""
        await tx.lock_thread(project, run["thread_id"])
        fields = run["response"]
        if fields["conversation"] is None:
            doomed = list(fields["input_message_ids"])
            for step in await tx.steps_of_run(run["id"]):
                details = step["step_details"]
                if details["type"] == "message_creation":
                    doomed.append(details["message_id"])
                elif details["type"] == "tool_calls":  # the calls it ended with, as items
                    doomed.extend(
                        i for call in details["tool_calls"] for i in item_ids_of_call(call)
                    )
            for message_id in doomed:
                await tx.delete_message(run["thread_id"], message_id)
        await tx.delete_run(run["id"])
        if fields["conversation"] is None and await self._latest_run(tx, run["thread_id"]) is None:
            await tx.delete_thread(project, run["thread_id"])

    async def input_items(self, project: str, response_id: str, page: PageRequest) -> Page[Message]:
        async with self.store.transaction(durable=False) as tx:
            run = await self._require(tx, project, response_id)
            messages = []
            for message_id in run["response"]["input_message_ids"]:
                message = await tx.get_message(run["thread_id"], message_id)
                if message is not None:
                    messages.append(message)
        return _page(messages, page)
