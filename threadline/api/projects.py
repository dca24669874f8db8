"""Azure AI Foundry project paths: `/api/projects/{project}/...` with `?api-version=`.

A project is a namespace: what is created under one is invisible under another. `/v1` is
the project `default`. Project paths are served by the `/v1` routes themselves: this
middleware checks the api-version and the project name, notes the project in the request
state and rewrites the path, so every route exists once.

`/api/projects/{project}/openai/v1/...` is the base URL of the OpenAI client that
`azure-ai-projects` 2.x hands out (`get_openai_client()`): the OpenAI paths of the project,
which that client calls with no api-version (one given is checked as elsewhere).

`/api/projects/{project}/agents/{name}/endpoint/protocols/openai/...` is the base URL of the
client `get_openai_client(agent_name=name)` hands out: the Responses, Conversations and containers
paths of the project, whose responses that agent answers (`service/agent_endpoints.py`); the request
state names the agent.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from threadline.api.errors import error_response
from threadline.domain.projects import DEFAULT_PROJECT, is_project_name

# `azure-ai-agents` 1.1 sends "v1"; 1.2 sends its preview version.
SUPPORTED_API_VERSIONS = ("v1", "2025-05-15-preview")
PREFIX = "/api/projects/"
OPENAI_PREFIX = "openai/v1/"
# `agents/{name}` + this: an agent's endpoint, which serves the paths below.
ENDPOINT_INFIX = "/endpoint/protocols/openai/"
ENDPOINT_SERVES = ("responses", "conversations", "containers")


class ProjectPaths:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        project, _, rest = scope["path"][len(PREFIX) :].partition("/")
        openai_path = rest.startswith(OPENAI_PREFIX)
        if openai_path:
            rest = rest[len(OPENAI_PREFIX) :]
        agent, rest = _endpoint_of(rest)
        if agent is not None and rest.partition("/")[0] not in ENDPOINT_SERVES:
            message = f"An agent's endpoint serves {', '.join(ENDPOINT_SERVES)}; not '{rest}'."
            await error_response(404, message, "invalid_request_error", None, None)(
                scope, receive, send
            )
            return
        problem = _problem(project, scope["query_string"], versionless=openai_path)
        if problem is not None:
            message, param, code = problem
            await error_response(400, message, "invalid_request_error", param, code)(
                scope, receive, send
            )
            return
        path = f"/v1/{rest}"
        state = {**scope.get("state", {}), "project": project}
        if agent is not None:
            state["endpoint_agent"] = agent
        scope = {**scope, "path": path, "raw_path": path.encode(), "state": state}
        await self.app(scope, receive, send)


def _endpoint_of(rest: str) -> tuple[str | None, str]:
    """The agent whose endpoint `rest` (a path under the project) is under, and the path
    under that endpoint; or no agent and `rest`."""
    if not rest.startswith("agents/"):
        return None, rest
    name, slash, under = rest[len("agents/") :].partition("/")
    tail = slash + under
    if not name or not tail.startswith(ENDPOINT_INFIX):
        return None, rest
    return name, tail[len(ENDPOINT_INFIX) :]


def _problem(
    project: str, query_string: bytes, versionless: bool = False
) -> tuple[str, str, str | None] | None:
    versions = parse_qs(query_string.decode("latin-1")).get("api-version", [])
    version = versions[0] if versions else None
    if version not in SUPPORTED_API_VERSIONS and not (versionless and version is None):
        given = "no api-version" if version is None else f"api-version '{version}'"
        supported = ", ".join(SUPPORTED_API_VERSIONS)
        return (
            f"Unsupported {given}; supported versions: {supported}.",
            "api-version",
            "unsupported_api_version",
        )
    if not is_project_name(project):
        return (
            f"Invalid project name '{project}': use letters, digits, '_', '.' and '-'.",
            "project",
            None,
        )
    return None


def project_of_path(path: str) -> str:
    """The project a request path addresses, before `ProjectPaths` has checked it."""
    if not path.startswith(PREFIX):
        return DEFAULT_PROJECT
    return path[len(PREFIX) :].partition("/")[0]
