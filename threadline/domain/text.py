"""Text every store keeps as it was sent.

PostgreSQL's text and JSON types hold no NUL character, and no store can keep half of a
surrogate pair as UTF-8. Rather than one backend storing what another refuses, both refuse
it, with a 400 naming where it was.
"""

from __future__ import annotations

import re
from typing import Any

from threadline.domain.errors import InvalidRequest

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def is_storable(text: str) -> bool:
    return _UNSTORABLE.search(text) is None


def storable(text: str) -> str:
    """`text` with what no store keeps replaced by U+FFFD: a model's answer is kept, not
    refused, whatever characters it holds."""
    return text if is_storable(text) else _UNSTORABLE.sub("\ufffd", text)


def unstorable_param(value: Any, path: str = "") -> str | None:
    """Where in a decoded JSON value the first unstorable text is (a key or a string)."""
    if isinstance(value, str):
        return None if is_storable(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if not is_storable(key):
                return path or "body"
            found = unstorable_param(item, inner)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable_param(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def refuse_unstorable(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid '{param}': text may not contain NUL characters (\\u0000) or unpaired surrogates.",
        param=param,
        code="invalid_value",
    )
