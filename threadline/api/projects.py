"""Azure AI Foundry project paths: `/api/projects/{project}/...` with `?api-version=`.

A project is a namespace: what is created under one is invisible under another. `/v1`
is the project `default`.
"""

from __future__ import annotations

import re

from fastapi import Query, Request

from threadline.domain.errors import InvalidRequest

SUPPORTED_API_VERSIONS = ("v1",)
PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


async def azure_request(
    request: Request, api_version: str | None = Query(None, alias="api-version")
) -> None:
    supported = ", ".join(SUPPORTED_API_VERSIONS)
    if api_version not in SUPPORTED_API_VERSIONS:
        given = "no api-version" if api_version is None else f"api-version '{api_version}'"
        raise InvalidRequest(
            f"Unsupported {given}; supported versions: {supported}.",
            param="api-version",
            code="unsupported_api_version",
        )
    name = request.path_params.get("project", "")
    if not PROJECT_NAME.match(name):
        raise InvalidRequest(
            f"Invalid project name '{name}': use letters, digits, '_', '.' and '-'.",
            param="project",
        )
