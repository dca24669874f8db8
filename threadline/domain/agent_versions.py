"""Foundry's new agents: a named agent of a project and its numbered, immutable versions.

An agent version is a definition (model, instructions, tools and options; the kind `prompt`
alone is run here) that responses run when a request names it (`agent_reference`). Versions
number from 1 within their agent and a number is never given twice, even after its version
is deleted: a version a client pinned cannot come back as another definition. The agent keeps
the highest number given and a copy of its latest version, as `AgentDetails` shows it.

They are apart from the Assistants API's assistants (a classic agent); both run on the same
project's threads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NotRequired, TypedDict

from threadline.domain.records import Metadata, Obj

# The client's rule: letters and digits at both ends, hyphens only between, at most 63.
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_VERSION = re.compile(r"[1-9][0-9]{0,9}")


class AgentVersion(TypedDict):
    id: str  # "{name}:{version}"
    name: str
    version: str
    created_at: int
    description: str | None
    metadata: Metadata
    # `{"kind": "prompt", "model", ...}`: the settings given, checked, a code interpreter
    # without a container given one (`auto`), and the structured inputs declared.
    definition: Obj


class Agent(TypedDict):
    id: str  # the name
    name: str
    created_at: int
    # The highest version number given, never lowered (numbers are not reused).
    last_version: int
    latest: AgentVersion
    # How requests to the agent's own endpoint choose a version (`service/agent_endpoints.py`);
    # absent or None: the latest.
    agent_endpoint: NotRequired[Obj | None]


def is_agent_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def version_number(version: str) -> int | None:
    """The number a version path names, or None when it names none (no such version)."""
    return int(version) if _VERSION.fullmatch(version) else None


def version_id(name: str, number: int) -> str:
    return f"{name}:{number}"


def chosen_version(shares: Sequence[tuple[str, int]], draw: float) -> str:
    """The version whose share of 100 (in the order given) holds `draw`, a number in
    [0, 100): a share of 0 is never chosen."""
    start = 0
    for version, share in shares:
        if draw < start + share:
            return version
        start += share
    return [version for version, share in shares if share > 0][-1]
