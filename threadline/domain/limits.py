"""Limits the hosted services document; enforcing the same ones keeps code portable both ways."""

from __future__ import annotations

from typing import Any

from threadline.domain.errors import InvalidRequest

MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
MAX_TOOLS = 128
MAX_MESSAGES_PER_THREAD = 100_000
MAX_INSTRUCTIONS_CHARS = 256_000
MAX_NAME_CHARS = 256
MAX_DESCRIPTION_CHARS = 512
MAX_LIST_LIMIT = 100
DEFAULT_LIST_LIMIT = 20


def check_metadata(metadata: dict[str, Any] | None, param: str = "metadata") -> None:
    if metadata is None:
        return
    if len(metadata) > MAX_METADATA_PAIRS:
        raise InvalidRequest(
            f"Invalid '{param}': too many properties. Expected an object with at most "
            f"{MAX_METADATA_PAIRS} properties, but got {len(metadata)}.",
            param=param,
            code="object_above_max_properties",
        )
    for key, value in metadata.items():
        if len(key) > MAX_METADATA_KEY_CHARS:
            raise InvalidRequest(
                f"Invalid '{param}': metadata keys must be at most {MAX_METADATA_KEY_CHARS} "
                f"characters, but '{key[:20]}...' has {len(key)}.",
                param=f"{param}.{key[:20]}",
                code="string_above_max_length",
            )
        if not isinstance(value, str):
            raise InvalidRequest(
                f"Invalid '{param}.{key}': metadata values must be strings.",
                param=f"{param}.{key}",
                code="invalid_type",
            )
        if len(value) > MAX_METADATA_VALUE_CHARS:
            raise InvalidRequest(
                f"Invalid '{param}.{key}': string too long. Expected a string with maximum "
                f"length {MAX_METADATA_VALUE_CHARS}, but got a string with length {len(value)}.",
                param=f"{param}.{key}",
                code="string_above_max_length",
            )


def check_tools(tools: list[dict[str, Any]] | None, param: str = "tools") -> None:
    if tools is not None and len(tools) > MAX_TOOLS:
        raise InvalidRequest(
            f"Invalid '{param}': array too long. Expected an array with maximum length "
            f"{MAX_TOOLS}, but got an array with length {len(tools)}.",
            param=param,
            code="array_above_max_length",
        )
    names: set[str] = set()
    for tool in tools or []:
        if tool.get("type") == "function":
            name = tool["function"]["name"]
            if name in names:
                raise InvalidRequest(
                    f"Invalid '{param}': function name '{name}' is used twice.", param=param
                )
            names.add(name)


# Event sequence numbers are 64-bit signed integers in every store: a cursor beyond them
# names no event, and the database would refuse to compare with it.
MAX_EVENT_SEQ = 2**63 - 1
