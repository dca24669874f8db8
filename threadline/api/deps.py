"""What every route needs: the services, the caller's project and list parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Query, Request
from starlette.responses import Response

from threadline import json_codec
from threadline.domain.projects import DEFAULT_PROJECT
from threadline.domain.records import PageRequest
from threadline.service.agent_versions import AgentVersionService
from threadline.service.assistants import AssistantService
from threadline.service.containers import ContainerService
from threadline.service.conversations import ConversationService
from threadline.service.files import FileService
from threadline.service.messages import MessageService
from threadline.service.models import EVERY_NAME, ModelCatalog
from threadline.service.pages import page_request
from threadline.service.responses import ResponseService
from threadline.service.runs import RunService
from threadline.service.threads import ThreadService
from threadline.service.vector_stores import VectorStoreService


@dataclass(frozen=True)
class Services:
    assistants: AssistantService
    threads: ThreadService
    messages: MessageService
    runs: RunService
    files: FileService
    vector_stores: VectorStoreService
    conversations: ConversationService
    responses: ResponseService
    agent_versions: AgentVersionService
    containers: ContainerService
    poll_after_ms: int
    models: ModelCatalog = EVERY_NAME


# Dependencies are `async def`: FastAPI runs plain `def` ones in a thread pool, a thread
# switch per dependency per request for what is a dictionary lookup.


async def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def project(request: Request) -> str:
    """`/v1` is the project `default`; Azure's project paths name theirs (`ProjectPaths`)."""
    return str(getattr(request.state, "project", DEFAULT_PROJECT))


async def endpoint_agent(request: Request) -> str | None:
    """The agent whose endpoint a request came through
    (`/api/projects/{p}/agents/{name}/endpoint/protocols/openai/...`), if it did."""
    name = getattr(request.state, "endpoint_agent", None)
    return None if name is None else str(name)


async def page(
    limit: int = Query(20),
    order: str = Query("desc"),
    after: str | None = Query(None),
    before: str | None = Query(None),
) -> PageRequest:
    return page_request(limit, order, after, before)


def json_response(body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json_codec.dumps(body), media_type="application/json", headers=headers)
