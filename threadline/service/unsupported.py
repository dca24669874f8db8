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

# The tools of the wire format this service may be unable to run, and why, set at start
# (`set_unavailable`): the code interpreter, where no sandbox can be made.
_UNAVAILABLE: dict[str, str] = {}


def set_unavailable(tool: str, reason: str | None) -> None:
    """Refuse `tool` from now on, saying `reason` (None: accept it again)."""
    if reason is None:
        _UNAVAILABLE.pop(tool, None)
    else:
        _UNAVAILABLE[tool] = reason


def unavailable(tool: str) -> str | None:
    return _UNAVAILABLE.get(tool)


# The values the wire format defines for `include[]` on run creation and on run steps (the
# openai SDK's `RunStepInclude`): the content of what a file_search call found.
INCLUDE_VALUES = ("step_details.tool_calls[*].file_search.results[*].content",)


def _refused(tool: str, what: str, param: str) -> InvalidRequest | None:
    reason = _UNAVAILABLE.get(tool)
    if reason is None:
        return None
    return InvalidRequest(
        f"{what} is not available on this server: {reason}.",
        param=param,
        code="unsupported_value",
    )


def refuse_unsupported_tools(tools: Sequence[Any] | None, param: str = "tools") -> None:
    """`tools` as the request gave them (typed) or as stored (dicts)."""
    for index, tool in enumerate(tools or []):
        kind = str(tool.get("type") if isinstance(tool, dict) else tool.type)
        if (refused := _refused(kind, f"The {kind} tool", f"{param}[{index}]")) is not None:
            raise refused


def refuse_unsupported_tool_choice(choice: ToolChoice | None, param: str = "tool_choice") -> None:
    if isinstance(choice, BuiltinToolChoice):
        refused = _refused(choice.type, f"tool_choice naming the {choice.type} tool", param)
        if refused is not None:
            raise refused


def check_tool_resources(resources: ToolResources | None, param: str = "tool_resources") -> None:
    """What needs no store to check: the code interpreter's files only where it can run,
    and a file_search resource names its store or makes one, not both. That the ids name
    objects of the project is checked in the transaction that uses them (`file_refs`)."""
    if resources is None:
        return
    if resources.code_interpreter is not None and resources.code_interpreter.file_ids:
        where = f"{param}.code_interpreter.file_ids"
        if (
            refused := _refused("code_interpreter", "The code_interpreter tool", where)
        ) is not None:
            raise refused
    search = resources.file_search
    if search is not None and search.vector_store_ids and search.vector_stores:
        raise InvalidRequest(
            "Give either vector_store_ids or vector_stores for file_search, not both.",
            param=f"{param}.file_search.vector_stores",
        )
    if search is not None and search.vector_stores is not None and len(search.vector_stores) > 1:
        raise InvalidRequest(
            "At most one vector store can be attached for file_search.",
            param=f"{param}.file_search.vector_stores",
        )


def check_message_files(request: MessageCreate, prefix: str = "") -> None:
    """What a message's attachments ask that needs no store to check: a file by id (not by
    an Azure `data_source`), for a tool this server can run.
    That each file exists is checked where the message is stored (`file_refs`)."""
    for index, attachment in enumerate(request.attachments or []):
        param = f"{prefix}attachments[{index}]"
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
        for position, tool in enumerate(attachment.tools):
            refused = _refused(tool.type, f"The {tool.type} tool", f"{param}.tools[{position}]")
            if refused is not None:
                raise refused


def not_yet(what: str, param: str, where: str = "") -> InvalidRequest:
    """The 400 for something a request asks that is not built yet (`where`: in which API,
    for the message)."""
    place = f" in {where}" if where else ""
    return InvalidRequest(
        f"{what} is not supported{place} yet.", param=param, code="unsupported_value"
    )


# The Responses API's `include` values this service answers: what a file_search call found
# and what a code_interpreter call's code gave (`api/responses/render.py`).
RESPONSE_INCLUDES = ("file_search_call.results", "code_interpreter_call.outputs")


def refuse_include(
    include: list[str] | None, param: str = "include[]", allowed: Sequence[str] = ()
) -> list[str]:
    """The Responses API's `include`: the values in `allowed`, once each; any other (parts of
    items this service does not keep yet) refused rather than answered without them."""
    for value in include or []:
        if value not in allowed:
            raise not_yet(f"include value '{value}'", param)
    return list(dict.fromkeys(include or []))


def check_include(include: list[str] | None, param: str) -> list[str]:
    """`include[]`: each value one the wire format defines (the file_search results'
    content in run steps)."""
    for index, value in enumerate(include or []):
        if value not in INCLUDE_VALUES:
            allowed = ", ".join(f"'{v}'" for v in INCLUDE_VALUES)
            raise InvalidRequest(
                f"Invalid '{param}': '{value}' is not a value it takes ({allowed}).",
                param=f"{param}[{index}]" if param == "include" else param,
                code="invalid_value",
            )
    return list(dict.fromkeys(include or []))
