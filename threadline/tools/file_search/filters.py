"""Attribute filters (`filters` of a search, the file_search tool's own) on a store's files.

A filter is decided per file, on the attributes a file was given, before any chunk is
scored: the files that pass bound both the full-text and the vector search, so a narrow
filter never leaves a search with nothing because its best chunks were elsewhere.
"""

from __future__ import annotations

from typing import Any

from threadline.domain.records import Attributes

Value = str | float | bool


def _compare(kind: str, actual: Value | None, expected: Any) -> bool:
    if kind in ("in", "nin"):
        found = actual is not None and actual in (
            expected if isinstance(expected, list) else [expected]
        )
        return found if kind == "in" else not found
    if kind == "eq":
        return actual is not None and bool(actual == expected)
    if kind == "ne":
        return bool(actual != expected)
    if actual is None or isinstance(actual, bool) != isinstance(expected, bool):
        return False
    if isinstance(actual, str) != isinstance(expected, str):
        return False
    if kind == "gt":
        return bool(actual > expected)
    if kind == "gte":
        return bool(actual >= expected)
    if kind == "lt":
        return bool(actual < expected)
    if kind == "lte":
        return bool(actual <= expected)
    raise ValueError(f"unknown comparison {kind!r}")


def matches(attributes: Attributes, node: dict[str, Any]) -> bool:
    """Whether a file's attributes pass a filter given as the wire's JSON."""
    kind = node["type"]
    if kind == "and":
        return all(matches(attributes, child) for child in node["filters"])
    if kind == "or":
        return any(matches(attributes, child) for child in node["filters"])
    return _compare(kind, attributes.get(node["key"]), node["value"])
