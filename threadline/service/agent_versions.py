"""Foundry's new agents: named agents of a project and their numbered, immutable versions
(`domain/agent_versions.py`), and the responses that run them.

A version's definition is checked when it is made as a response request with those settings
would be (`ResponseService.check_settings`: the Responses tool shapes, the tool choice, the
text format, the model's options), so a version that is kept can be run. Only the kind
`prompt` is run here; a hosted container, a workflow, an external or a voice agent is refused
with a 400 naming its kind.

A response that names an agent (`agent_reference`) runs its version's model, instructions,
tools and options; the request's own `input`, `conversation` and per-call options (metadata,
`max_output_tokens`, `stream`, ...) stand. A request that also sets what the version sets
(`model`, `instructions`, `tools`, ...) is refused with a 400 naming the field, rather than
one of the two quietly winning.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from pydantic import Field, ValidationError

from threadline.domain.agent_versions import (
    Agent,
    AgentVersion,
    is_agent_name,
    version_id,
    version_number,
)
from threadline.domain.clock import now
from threadline.domain.errors import InvalidRequest, NotFound
from threadline.domain.limits import check_metadata
from threadline.domain.records import Assistant, Metadata, Obj, Page, PageRequest
from threadline.service.agent_endpoints import (
    check_serves_responses,
    patched_details,
    routed_version,
    routed_versions,
    without_version,
)
from threadline.service.requests import Closed, invalid_request
from threadline.service.responses import Reasoning, ResponseCreate, ResponseService
from threadline.service.structured_inputs import (
    StructuredInput,
    bound_values,
    check_declared,
    filled,
    filled_text,
)
from threadline.service.unsupported import not_yet
from threadline.store.base import Store

_WHERE = "agent definitions"
# Kinds of definition the client knows, none of which this service runs but `prompt`.
_KINDS = ("prompt", "hosted", "workflow", "external", "voice")
# Fields of a prompt definition this service does not carry out yet.
_DEFINITION_NOT_YET = ("rai_config", "harness", "skills")
# What a version sets, which a request naming it may not set too.
_SET_BY_VERSION = (
    "model",
    "instructions",
    "tools",
    "tool_choice",
    "temperature",
    "top_p",
    "text",
    "reasoning",
)


class PromptDefinition(Closed):
    kind: Literal["prompt"]
    model: Annotated[str, Field(min_length=1)]
    instructions: str | None = None
    tools: list[Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    text: dict[str, Any] | None = None
    reasoning: Reasoning | None = None
    structured_inputs: dict[str, StructuredInput] | None = None


class AgentVersionCreate(Closed):
    definition: dict[str, Any]
    description: Annotated[str, Field(max_length=512)] | None = None
    metadata: Metadata | None = None
    # What the hosted service's identity and preview features need; refused when asked for.
    blueprint_reference: dict[str, Any] | None = None
    digital_worker_type: str | None = None
    draft: bool | None = None


def check_agent_name(name: str) -> None:
    if not is_agent_name(name):
        raise InvalidRequest(
            f"Invalid agent name '{name}': use letters, digits and hyphens, starting and ending"
            " with a letter or digit, at most 63 characters.",
            param="agent_name",
        )


def _read_definition(raw: dict[str, Any]) -> PromptDefinition:
    kind = raw.get("kind")
    if kind != "prompt":
        if kind in _KINDS:
            raise InvalidRequest(
                f"Agents of kind '{kind}' are not supported by this service: only 'prompt'"
                " agents are run here.",
                param="definition.kind",
                code="unsupported_value",
            )
        shown = "no kind" if kind is None else f"kind '{kind}'"
        raise InvalidRequest(
            f"Invalid 'definition.kind': {shown}; expected one of {', '.join(_KINDS)}.",
            param="definition.kind",
        )
    for name in _DEFINITION_NOT_YET:
        if raw.get(name) is not None:
            raise not_yet(f"'definition.{name}'", f"definition.{name}", _WHERE)
    try:
        definition = PromptDefinition.model_validate({**raw, "tools": _with_containers(raw)})
    except ValidationError as invalid:
        raise invalid_request(invalid, "definition") from invalid
    check_declared(definition.structured_inputs or {})
    return definition


def _with_containers(raw: dict[str, Any]) -> Any:
    """The definition's tools, a code interpreter without a container given one made for
    it (`auto`), as the hosted service does for agents (a Responses request must name it)."""
    tools = raw.get("tools")
    if not isinstance(tools, list):
        return tools
    return [
        {**tool, "container": {"type": "auto"}}
        if isinstance(tool, dict)
        and tool.get("type") == "code_interpreter"
        and tool.get("container") is None
        else tool
        for tool in tools
    ]


def _settings(definition: PromptDefinition) -> dict[str, Any]:
    """The response request fields a definition sets (those it gives)."""
    return definition.model_dump(exclude_none=True, exclude={"kind", "structured_inputs"})


def _kept(definition: PromptDefinition) -> dict[str, Any]:
    """The definition as a version keeps it."""
    return definition.model_dump(exclude_none=True, by_alias=True)


def _reference(version: AgentVersion) -> Obj:
    return {"type": "agent_reference", "name": version["name"], "version": version["version"]}


class AgentVersionService:
    def __init__(self, store: Store, responses: ResponseService):
        self.store = store
        self.responses = responses

    async def create_version(
        self, project: str, name: str, request: AgentVersionCreate
    ) -> AgentVersion:
        check_agent_name(name)
        for field in ("blueprint_reference", "digital_worker_type"):
            if getattr(request, field) is not None:
                raise not_yet(f"'{field}'", field, _WHERE)
        if request.draft:
            raise not_yet("Draft versions", "draft", _WHERE)
        check_metadata(request.metadata)
        definition = _read_definition(request.definition)
        try:
            await self.responses.check_settings(ResponseCreate(**_settings(definition)))
        except InvalidRequest as invalid:
            where = f"definition.{invalid.param}" if invalid.param else "definition"
            raise InvalidRequest(
                invalid.message.replace(f"'{invalid.param}'", f"'{where}'"),
                param=where,
                code=invalid.code,
            ) from invalid
        async with self.store.transaction() as tx:
            agent = await tx.lock_agent(project, name)
            number = 1 if agent is None else agent["last_version"] + 1
            version: AgentVersion = {
                "id": version_id(name, number),
                "name": name,
                "version": str(number),
                "created_at": now(),
                "description": request.description,
                "metadata": request.metadata or {},
                "definition": _kept(definition),
            }
            if agent is None:
                first: Agent = {
                    "id": name,
                    "name": name,
                    "created_at": version["created_at"],
                    "last_version": number,
                    "latest": version,
                }
                await tx.insert_agent_version(project, version, first)
            else:
                await tx.insert_agent_version(project, version)
                changes: Obj = {"last_version": number, "latest": version}
                await tx.update_agent(project, name, changes)
        return version

    async def get(self, project: str, name: str) -> Agent:
        async with self.store.transaction(durable=False) as tx:
            agent = await tx.get_agent(project, name)
        if agent is None:
            raise NotFound("agent", name)
        return agent

    async def list(self, project: str, page: PageRequest) -> Page[Agent]:
        async with self.store.transaction(durable=False) as tx:
            return await tx.page_agents(project, page)

    async def delete(self, project: str, name: str) -> None:
        """The agent and every version of it."""
        async with self.store.transaction() as tx:
            if await tx.lock_agent(project, name) is None:
                raise NotFound("agent", name)
            await tx.delete_agent(project, name)

    async def update_details(self, project: str, name: str, patch: dict[str, Any]) -> Agent:
        """A merge patch of the agent's details (its endpoint: `service/agent_endpoints.py`)."""
        async with self.store.transaction() as tx:
            agent = await tx.lock_agent(project, name)
            if agent is None:
                raise NotFound("agent", name)
            changes = patched_details(agent, patch)
            where = "agent_endpoint.version_selector.version_selection_rules"
            for index, routed in enumerate(routed_versions(changes.get("agent_endpoint"))):
                number = version_number(routed)
                if number is None or await tx.get_agent_version(project, name, number) is None:
                    raise InvalidRequest(
                        f"Invalid '{where}[{index}].agent_version': version '{routed}' of agent"
                        f" '{name}' does not exist.",
                        param=f"{where}[{index}].agent_version",
                    )
            if changes:
                await tx.update_agent(project, name, changes)
        return cast(Agent, {**agent, **changes})

    async def get_version(self, project: str, name: str, version: str) -> AgentVersion:
        number = version_number(version)
        async with self.store.transaction(durable=False) as tx:
            found = None if number is None else await tx.get_agent_version(project, name, number)
        if found is None:
            raise NotFound("agent version", f"{name}:{version}")
        return found

    async def list_versions(self, project: str, name: str, page: PageRequest) -> Page[AgentVersion]:
        async with self.store.transaction(durable=False) as tx:
            if await tx.get_agent(project, name) is None:
                raise NotFound("agent", name)
            return await tx.page_agent_versions(project, name, page)

    async def delete_version(self, project: str, name: str, version: str) -> None:
        """The version alone; its number is not given again. The agent goes with its last
        version, and its latest is the newest left otherwise."""
        number = version_number(version)
        async with self.store.transaction() as tx:
            agent = await tx.lock_agent(project, name)
            deleted = (
                agent is not None
                and number is not None
                and await tx.delete_agent_version(project, name, number)
            )
            if agent is None or number is None or not deleted:
                raise NotFound("agent version", f"{name}:{version}")
            changes: Obj = {}
            endpoint = agent.get("agent_endpoint")
            if endpoint and version in routed_versions(endpoint):
                changes["agent_endpoint"] = without_version(endpoint, version)
            if agent["latest"]["version"] == version:
                newest = await tx.newest_agent_version(project, name)
                if newest is None:
                    await tx.delete_agent(project, name)
                    return
                changes["latest"] = newest
            if changes:
                await tx.update_agent(project, name, changes)

    async def apply(
        self, project: str, request: ResponseCreate, endpoint: str | None = None
    ) -> tuple[ResponseCreate, Obj]:
        """The request with its agent's version's settings, and which version that is: the
        one it names, or the one the agent's endpoint chooses when it came through the
        endpoint of agent `endpoint`, or the latest. An agent of another project is not
        found."""
        reference = request.agent_reference
        if endpoint is not None and reference is not None and reference.name != endpoint:
            raise InvalidRequest(
                f"'agent_reference' names agent '{reference.name}', but the request came"
                f" through the endpoint of agent '{endpoint}'.",
                param="agent_reference.name",
            )
        name = endpoint if endpoint is not None else reference.name if reference else None
        assert name is not None
        wanted = reference.version if reference is not None else None
        agent = await self.get(project, name)
        if endpoint is not None:
            check_serves_responses(agent)
        if wanted is None and endpoint is not None:
            wanted = routed_version(agent)  # a version that exists: deleting one unroutes it
        if wanted is None:
            version = agent["latest"]
        else:
            try:
                version = await self.get_version(project, name, wanted)
            except NotFound as missing:
                missing.param = "agent_reference.version" if reference else None
                raise
        kept = version["definition"]
        values = bound_values(kept.get("structured_inputs") or {}, request.structured_inputs or {})
        settings = {
            key: filled_text(value, values) if key == "instructions" else filled(value, values)
            for key, value in kept.items()
            if key not in ("kind", "structured_inputs") and value is not None
        }
        # What the version leaves unset, the request may set (a `tool_choice` for this call,
        # say); what it sets, the request may not set again.
        given = request.model_fields_set
        for field in _SET_BY_VERSION:
            if field in given and getattr(request, field) is not None and field in settings:
                raise InvalidRequest(
                    f"'{field}' cannot be given for agent '{name}': its version"
                    f" {version['version']} sets it.",
                    param=field,
                )
        given_fields = request.model_dump(exclude_unset=True, exclude={"structured_inputs"})
        return ResponseCreate.model_validate({**given_fields, **settings}), _reference(version)


def definition_of_assistant(assistant: Assistant) -> dict[str, Any]:
    """A classic agent's settings as a prompt definition: its model, instructions, sampling
    and format, and its tools in the Responses shapes, each with what it reaches (the stores
    it searches, the files its code reads) from the assistant's `tool_resources`. A tool the
    Responses side does not run is refused, naming it, rather than left out."""
    resources = assistant["tool_resources"] or {}
    tools: list[Obj] = []
    for index, tool in enumerate(assistant["tools"]):
        kind = tool.get("type")
        if kind in ("function", "openapi"):  # the same definition on both sides
            tools.append(dict(tool))
        elif kind == "file_search":
            stores = (resources.get("file_search") or {}).get("vector_store_ids") or []
            options = tool.get("file_search") or {}
            tools.append({"type": "file_search", "vector_store_ids": stores, **options})
        elif kind == "code_interpreter":
            files = (resources.get("code_interpreter") or {}).get("file_ids") or []
            tools.append(
                {"type": "code_interpreter", "container": {"type": "auto", "file_ids": files}}
            )
        else:
            raise InvalidRequest(
                f"Assistant {assistant['id']} has a '{kind}' tool, which agent versions do not"
                " run yet: it cannot be migrated.",
                param=f"tools[{index}]",
                code="unsupported_value",
            )
    definition: dict[str, Any] = {"kind": "prompt", "model": assistant["model"]}
    named = {
        "instructions": assistant["instructions"],
        "temperature": assistant["temperature"],
        "top_p": assistant["top_p"],
        "tools": tools or None,
    }
    definition.update({key: value for key, value in named.items() if value is not None})
    if isinstance(assistant["response_format"], dict):
        definition["text"] = {"format": assistant["response_format"]}
    if assistant["reasoning_effort"] is not None:
        definition["reasoning"] = {"effort": assistant["reasoning_effort"]}
    return definition


async def migrate_assistant(
    service: AgentVersionService, project: str, assistant_id: str, name: str | None
) -> AgentVersion:
    """A new version of agent `name` (the assistant's own name by default) made from a
    classic agent's settings; the assistant stays, and both run on the project's threads."""
    async with service.store.transaction(durable=False) as tx:
        assistant = await tx.get_assistant(project, assistant_id)
    if assistant is None:
        raise NotFound("assistant", assistant_id)
    chosen = name or assistant["name"]
    if not chosen:
        raise InvalidRequest(
            f"Assistant {assistant_id} has no name: give the agent one (--name).", param="name"
        )
    request = AgentVersionCreate(
        definition=definition_of_assistant(assistant),
        description=assistant["description"],
        metadata=assistant["metadata"] or None,
    )
    return await service.create_version(project, chosen, request)
