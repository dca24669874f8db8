"""Limits on what a client may send: the hosted services' documented ones, where they have
one (enforcing the same keeps code portable both ways), and the rest chosen so that no single
request can make the service hold or resend an unbounded amount of text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from threadline import json_codec
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
# Counted in characters (code points), as every other length limit here and in the hosted
# API's messages ("a string with maximum length N"): what a user types is what is counted.
MAX_MESSAGE_CHARS = 256 * 1024
# The hosted API documents no number; a message is a turn of a conversation, and 64 parts
# leave room for a long interleaving of text and images.
MAX_CONTENT_PARTS = 64
# A function's definition (name, description, JSON-schema `parameters`) as compact JSON
# (UTF-8): it is sent to the model on every turn of every run that carries it.
MAX_FUNCTION_BYTES = 64 * 1024


@dataclass(frozen=True)
class Limits:
    """The configurable limits on what one request may carry (`THREADLINE_MAX_*`)."""

    message_chars: int = MAX_MESSAGE_CHARS
    content_parts: int = MAX_CONTENT_PARTS
    instructions_chars: int = MAX_INSTRUCTIONS_CHARS
    function_bytes: int = MAX_FUNCTION_BYTES
    tools: int = MAX_TOOLS
    messages_per_thread: int = MAX_MESSAGES_PER_THREAD


DEFAULT_LIMITS = Limits()


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


def check_array(items: list[Any] | None, maximum: int, param: str) -> None:
    if items is not None and len(items) > maximum:
        raise InvalidRequest(
            f"Invalid '{param}': array too long. Expected an array with maximum length "
            f"{maximum}, but got an array with length {len(items)}.",
            param=param,
            code="array_above_max_length",
        )


def check_string(value: str | None, maximum: int, param: str) -> None:
    if value is not None and len(value) > maximum:
        raise InvalidRequest(
            f"Invalid '{param}': string too long. Expected a string with maximum length "
            f"{maximum}, but got a string with length {len(value)}.",
            param=param,
            code="string_above_max_length",
        )


def check_message_content(content: str | list[Any], limits: Limits, param: str) -> None:
    """A message's text is its string, or the text of all its text parts together: the
    limit is on what one message adds to every prompt of the thread."""
    if isinstance(content, str):
        check_string(content, limits.message_chars, param)
        return
    check_array(content, limits.content_parts, param)
    total = sum(len(part.text) for part in content if getattr(part, "type", None) == "text")
    if total > limits.message_chars:
        raise InvalidRequest(
            f"Invalid '{param}': the message's text parts hold {total} characters together; "
            f"at most {limits.message_chars} are allowed.",
            param=param,
            code="string_above_max_length",
        )


def function_size(function: dict[str, Any]) -> int:
    """Bytes of a function definition as compact UTF-8 JSON, as it goes to the model."""
    return len(json_codec.dumps(function).encode())


def check_tools(
    tools: list[dict[str, Any]] | None, param: str = "tools", limits: Limits = DEFAULT_LIMITS
) -> None:
    check_array(tools, limits.tools, param)
    names: set[str] = set()
    for index, tool in enumerate(tools or []):
        if tool.get("type") == "function":
            # A function tool is kept flat (`domain/records.FunctionTool`): its definition
            # is the tool but its type.
            function = {key: value for key, value in tool.items() if key != "type"}
            size = function_size(function)
            if size > limits.function_bytes:
                raise InvalidRequest(
                    f"Invalid '{param}[{index}].function': the function definition is {size} "
                    f"bytes as JSON; at most {limits.function_bytes} are allowed.",
                    param=f"{param}[{index}].function",
                    code="function_too_large",
                )
            name = tool["name"]
            if name in names:
                raise InvalidRequest(
                    f"Invalid '{param}': function name '{name}' is used twice.", param=param
                )
            names.add(name)


# Event sequence numbers are 64-bit signed integers in every store: a cursor beyond them
# names no event, and the database would refuse to compare with it.
MAX_EVENT_SEQ = 2**63 - 1
