"""What the service cannot carry out yet, refused when a request asks for it.

A tool the service cannot run, or a file it does not hold, accepted and then quietly left
out of a run, shows up only as a wrong answer. Refused at create time with a 400 that names
the field, it is a message the user can act on, and nothing is stored. Each later capability
(the built-in tools, files, vector stores) turns its refusal here into the real thing.

Empty containers (`tool_resources: {}`, `{"code_interpreter": {"file_ids": []}}`,
`attachments: []`) ask for nothing and stay accepted: clients send them by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from threadline.domain.errors import InvalidRequest
from threadline.service.requests import (
    BuiltinToolChoice,
    MessageCreate,
    ToolChoice,
    ToolResources,
)

# The tool types of the wire format that no executor runs yet.
NOT_YET_TOOLS = ("file_search", "code_interpreter")
# The values the wire format defines for `include[]` on run creation (the openai SDK's
# `RunStepInclude`): each adds what a file_search tool call found, and there is none yet.
INCLUDE_VALUES = ("step_details.tool_calls[*].file_search.results[*].content",)


def _not_yet(what: str, param: str) -> InvalidRequest:
    return InvalidRequest(f"{what} is not supported yet.", param=param, code="unsupported_value")


def _no_file(file_id: str, param: str) -> InvalidRequest:
    """No Files API yet, so no file id names a file: the id is refused as unknown, as it
    will be once files exist and this one is not among them."""
    return InvalidRequest(f"No file found with id '{file_id}'.", param=param)


def refuse_unsupported_tools(tools: Sequence[Any] | None, param: str = "tools") -> None:
    """`tools` as the request gave them (typed) or as stored (dicts)."""
    for index, tool in enumerate(tools or []):
        kind = tool.get("type") if isinstance(tool, dict) else tool.type
        if kind in NOT_YET_TOOLS:
            raise _not_yet(f"The {kind} tool", f"{param}[{index}]")


def refuse_unsupported_tool_choice(choice: ToolChoice | None, param: str = "tool_choice") -> None:
    if isinstance(choice, BuiltinToolChoice):
        raise _not_yet(f"tool_choice naming the {choice.type} tool", param)


def check_tool_resources(resources: ToolResources | None, param: str = "tool_resources") -> None:
    """Ids of files and vector stores must name objects the service holds: none yet."""
    if resources is None:
        return
    if resources.code_interpreter is not None and resources.code_interpreter.file_ids:
        file_id = resources.code_interpreter.file_ids[0]
        raise _no_file(file_id, f"{param}.code_interpreter.file_ids[0]")
    if resources.file_search is not None:
        if resources.file_search.vector_store_ids:
            store_id = resources.file_search.vector_store_ids[0]
            raise InvalidRequest(
                f"No vector store found with id '{store_id}'.",
                param=f"{param}.file_search.vector_store_ids[0]",
            )
        if resources.file_search.vector_stores:
            raise _not_yet(
                "Creating vector stores (for the file_search tool)",
                f"{param}.file_search.vector_stores",
            )


def check_message_files(request: MessageCreate, prefix: str = "") -> None:
    """A message's `image_file` parts and attachments name files, and there are none yet."""
    if not isinstance(request.content, str):
        for index, part in enumerate(request.content):
            if part.type == "image_file":
                param = f"{prefix}content[{index}].image_file.file_id"
                raise _no_file(part.image_file.file_id, param)
    if not request.attachments:
        return
    attachment, param = request.attachments[0], f"{prefix}attachments[0]"
    if attachment.data_source is not None:
        raise InvalidRequest(
            "attachments with data_source are not supported yet.",
            param=f"{param}.data_source",
            code="unsupported_value",
        )
    if attachment.file_id is None:
        raise InvalidRequest(
            f"Missing required parameter: '{param}.file_id'.", param=f"{param}.file_id"
        )
    raise _no_file(attachment.file_id, f"{param}.file_id")


def refuse_include(include: list[str] | None, param: str) -> None:
    """`include[]` asks for file_search results in run steps: none can exist yet."""
    if not include:
        return
    value, known = include[0], INCLUDE_VALUES[0]
    what = (
        f"'{value}' is"
        if value in INCLUDE_VALUES
        else f"'{value}' is not a value it takes, and its one value '{known}' is"
    )
    raise InvalidRequest(
        f"Invalid '{param}': {what} not supported yet: it adds file_search results to run "
        "steps, and the file_search tool is not supported yet.",
        param=param,
        code="unsupported_parameter",
    )
