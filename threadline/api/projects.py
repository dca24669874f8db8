"""Azure AI Foundry project paths: `/api/projects/{project}/...` with `?api-version=`.

A project is a namespace: what is created under one is invisible under another. `/v1` is
the project `default`. Project paths are served by the `/v1` routes themselves: this
middleware checks the api-version and the project name, notes the project in the request
state and rewrites the path, so every route exists once.

`/api/projects/{project}/openai/v1/...` is the base URL of the OpenAI client that
`azure-ai-projects` 2.x hands out (`get_openai_client()`): the OpenAI paths of the project,
which that client calls with no api-version (one given is checked as elsewhere).
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
        problem = _problem(project, scope["query_string"], versionless=openai_path)
        if problem is not None:
            message, param, code = problem
            await error_response(400, message, "invalid_request_error", param, code)(
                scope, receive, send
            )
            return
        path = f"/v1/{rest}"
        state = {**scope.get("state", {}), "project": project}
        scope = {**scope, "path": path, "raw_path": path.encode(), "state": state}
        await self.app(scope, receive, send)


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
