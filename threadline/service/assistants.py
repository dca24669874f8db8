"""Assistants (Azure calls them agents): model, instructions and tools, kept for runs to use."""

from __future__ import annotations

from threadline.domain.clock import now
from threadline.domain.errors import InvalidRequest, NotFound
from threadline.domain.ids import IdKind, new_id
from threadline.domain.limits import (
    DEFAULT_LIMITS,
    Limits,
    check_metadata,
    check_string,
    check_tools,
)
from threadline.domain.records import Assistant, Obj, Page, PageRequest, Tool
from threadline.service.file_refs import resolve_tool_resources
from threadline.service.models import EVERY_NAME, ModelCatalog
from threadline.service.objects import response_format_record, tool_record
from threadline.service.requests import AssistantCreate, AssistantFields, AssistantUpdate
from threadline.service.tool_checks import ToolChecks, check_connected_agents
from threadline.service.unsupported import check_tool_resources, refuse_unsupported_tools
from threadline.store.base import Store


def _check(fields: AssistantFields, tools: list[Tool] | None, limits: Limits) -> None:
    """The same limits as a run's own instructions and tools: a run takes them over."""
    check_metadata(fields.metadata)
    check_string(fields.instructions, limits.instructions_chars, "instructions")
    check_tools(tools, limits=limits)
    refuse_unsupported_tools(fields.tools)
    check_tool_resources(fields.tool_resources)


def _tools(fields: AssistantFields) -> list[Tool] | None:
    if fields.tools is None:
        return None
    return [tool_record(tool) for tool in fields.tools]


def _response_format(fields: AssistantFields) -> str | Obj:
    return response_format_record(fields.response_format) or "auto"


class AssistantService:
    def __init__(
        self,
        store: Store,
        limits: Limits = DEFAULT_LIMITS,
        tool_checks: ToolChecks | None = None,
        models: ModelCatalog = EVERY_NAME,
    ):
        self.store = store
        self.limits = limits
        self.tool_checks = tool_checks or ToolChecks()
        self.models = models

    def _tools(self, fields: AssistantFields) -> list[Tool] | None:
        tools = _tools(fields)
        _check(fields, tools, self.limits)
        self.tool_checks.check(tools)
        return None if tools is None else [self.tool_checks.completed(tool) for tool in tools]

    async def create(self, project: str, request: AssistantCreate) -> Assistant:
        tools = self._tools(request) or []
        self.models.require_served(request.model)
        await self.tool_checks.check_servers(tools, _tool_resources(request))
        assistant: Assistant = {
            "id": new_id(IdKind.ASSISTANT),
            "created_at": now(),
            "name": request.name,
            "description": request.description,
            "model": request.model,
            "instructions": request.instructions,
            "tools": tools,
            "tool_resources": _tool_resources(request),
            "metadata": request.metadata or {},
            # Unset stays unset (null, as the SDKs' types allow): the model server's own
            # defaults then apply, where a stored 1.0 would override them on every call.
            "temperature": request.temperature,
            "top_p": request.top_p,
            "response_format": _response_format(request),
            "reasoning_effort": request.reasoning_effort,
        }
        async with self.store.transaction() as tx:
            await check_connected_agents(tx, project, tools)
            assistant["tool_resources"] = await resolve_tool_resources(
                tx, project, assistant["tool_resources"]
            )
            await tx.insert_assistant(project, assistant)
        return assistant

    async def get(self, project: str, assistant_id: str) -> Assistant:
        async with self.store.transaction() as tx:
            assistant = await tx.get_assistant(project, assistant_id)
        if assistant is None:
            raise NotFound("assistant", assistant_id)
        return assistant

    async def update(self, project: str, assistant_id: str, request: AssistantUpdate) -> Assistant:
        tools = self._tools(request)
        await self.tool_checks.check_servers(tools, _tool_resources(request))
        if "model" in request.model_fields_set and request.model is None:
            raise InvalidRequest("Invalid 'model': expected a string, but got null.", param="model")
        if request.model is not None:
            self.models.require_served(request.model)
        changes = request.model_dump(exclude_unset=True, exclude={"tools", "response_format"})
        changes.pop("tool_resources", None)
        if "metadata" in changes:
            changes["metadata"] = request.metadata or {}
        if tools is not None:
            changes["tools"] = tools
        if "response_format" in request.model_fields_set:
            changes["response_format"] = _response_format(request)
        if "tool_resources" in request.model_fields_set:
            changes["tool_resources"] = _tool_resources(request)
        async with self.store.transaction() as tx:
            await check_connected_agents(tx, project, tools)
            if await tx.get_assistant(project, assistant_id) is None:
                raise NotFound("assistant", assistant_id)
            if "tool_resources" in changes:
                changes["tool_resources"] = await resolve_tool_resources(
                    tx, project, changes["tool_resources"]
                )
            if changes:
                assistant = await tx.update_assistant(project, assistant_id, changes)
            else:
                assistant = await tx.get_assistant(project, assistant_id)
            if assistant is None:
                raise NotFound("assistant", assistant_id)
        return assistant

    async def delete(self, project: str, assistant_id: str) -> None:
        async with self.store.transaction() as tx:
            if not await tx.delete_assistant(project, assistant_id):
                raise NotFound("assistant", assistant_id)

    async def list(self, project: str, page: PageRequest) -> Page[Assistant]:
        async with self.store.transaction() as tx:
            return await tx.page_assistants(project, page)


def _tool_resources(fields: AssistantFields) -> Obj:
    if fields.tool_resources is None:
        return {}
    return fields.tool_resources.model_dump(exclude_none=True)
