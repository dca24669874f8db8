"""An agent's endpoint: how requests to `/agents/{name}/endpoint/protocols/openai/...` (the
OpenAI client `get_openai_client(agent_name=...)` hands out) choose the version that answers.

The endpoint is set with `update_details` (a JSON merge patch of `agent_endpoint`, RFC 7396:
a `null` removes what it names, an object merges into what is there), and the merged whole is
checked before it is kept, so a patch cannot leave an endpoint this service cannot carry out.
Its `version_selector` splits requests among versions by `FixedRatio` rules, whose shares add
up to 100, each naming a version that exists; an agent with no selector answers with its
latest version, as an `agent_reference` without a version does. Deleting a version the
selector routes to removes the selector. Of the protocols, the endpoint serves `responses`
(the Responses and Conversations routes); the others (activity, A2A, MCP, invocations) and
endpoint authorization schemes are refused with a 400 naming them. An agent card (an A2A
description) is refused too: nothing here would read it.
"""

from __future__ import annotations

import random
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from threadline.domain.agent_versions import Agent, chosen_version
from threadline.domain.errors import InvalidRequest
from threadline.domain.records import Obj
from threadline.service.requests import Closed, invalid_request
from threadline.service.unsupported import not_yet

_WHERE = "agent endpoints"
_NOT_YET_PROTOCOLS = ("activity", "a2a", "mcp", "invocations", "invocations_ws")


class FixedRatioRule(Closed):
    type: Literal["FixedRatio"]
    agent_version: Annotated[str, Field(min_length=1)]
    traffic_percentage: Annotated[int, Field(ge=0, le=100)]


class VersionSelector(Closed):
    version_selection_rules: Annotated[list[FixedRatioRule], Field(min_length=1)]


class ResponsesProtocol(Closed):
    """The responses protocol has no settings of its own."""


class ProtocolConfiguration(Closed):
    responses: ResponsesProtocol | None = None
    activity: dict[str, Any] | None = None
    a2a: dict[str, Any] | None = None
    mcp: dict[str, Any] | None = None
    invocations: dict[str, Any] | None = None
    invocations_ws: dict[str, Any] | None = None


class AgentEndpoint(Closed):
    version_selector: VersionSelector | None = None
    protocol_configuration: ProtocolConfiguration | None = None
    authorization_schemes: list[Any] | None = None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: what `patch` makes of `target`."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def patched_details(agent: Agent, patch: dict[str, Any]) -> Obj:
    """The changes to an agent's record a merge patch of its details makes (checked): its
    endpoint, or `None` where the patch removes it."""
    for field in patch:
        if field == "agent_card":
            raise not_yet("'agent_card' (an agent's A2A description)", field, _WHERE)
        if field != "agent_endpoint":
            raise InvalidRequest(f"Unrecognized request argument supplied: {field}", param=field)
    if "agent_endpoint" not in patch:
        return {}
    merged = merge_patch(agent.get("agent_endpoint"), patch["agent_endpoint"])
    if merged is None or merged == {}:
        return {"agent_endpoint": None}
    if not isinstance(merged, dict):
        raise InvalidRequest(
            "Invalid 'agent_endpoint': expected an object.", param="agent_endpoint"
        )
    try:
        endpoint = AgentEndpoint.model_validate(merged)
    except ValidationError as invalid:
        raise invalid_request(invalid, "agent_endpoint") from invalid
    _check(agent, endpoint)
    return {"agent_endpoint": endpoint.model_dump(exclude_none=True)}


def _check(agent: Agent, endpoint: AgentEndpoint) -> None:
    if endpoint.authorization_schemes:
        param = "agent_endpoint.authorization_schemes"
        raise not_yet("Endpoint authorization schemes", param, _WHERE)
    protocols = endpoint.protocol_configuration
    for name in _NOT_YET_PROTOCOLS:
        if protocols is not None and getattr(protocols, name) is not None:
            param = f"agent_endpoint.protocol_configuration.{name}"
            raise not_yet(f"The '{name}' protocol", param, _WHERE)
    if endpoint.version_selector is None:
        return
    rules = endpoint.version_selector.version_selection_rules
    where = "agent_endpoint.version_selector.version_selection_rules"
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        # Whether each version exists is the store's to say (`AgentVersionService`).
        if rule.agent_version in seen:
            raise InvalidRequest(
                f"Invalid '{where}[{index}].agent_version': version '{rule.agent_version}' of"
                f" agent '{agent['name']}' is named twice.",
                param=f"{where}[{index}].agent_version",
            )
        seen.add(rule.agent_version)
    total = sum(rule.traffic_percentage for rule in rules)
    if total != 100:
        raise InvalidRequest(
            f"Invalid '{where}': the traffic percentages add up to {total}, not 100.",
            param=where,
        )


def check_serves_responses(agent: Agent) -> None:
    """Refuse a response through the agent's endpoint when the endpoint does not serve the
    Responses protocol."""
    endpoint = agent.get("agent_endpoint") or {}
    protocols = endpoint.get("protocol_configuration")
    if protocols is not None and protocols.get("responses") is None:
        raise InvalidRequest(
            f"Agent '{agent['name']}' has an endpoint that does not serve the responses"
            " protocol: add it to 'agent_endpoint.protocol_configuration'."
        )


def routed_version(agent: Agent, draw: float | None = None) -> str | None:
    """The version a request to the agent's endpoint runs (`None`: its latest), chosen by
    the endpoint's rules with `draw`, a number in [0, 100) (a random one by default)."""
    selector = (agent.get("agent_endpoint") or {}).get("version_selector")
    if selector is None:
        return None
    shares = [
        (rule["agent_version"], rule["traffic_percentage"])
        for rule in selector["version_selection_rules"]
    ]
    return chosen_version(shares, random.random() * 100 if draw is None else draw)


def routed_versions(endpoint: Obj | None) -> list[str]:
    """The versions an endpoint's selector routes to."""
    selector = (endpoint or {}).get("version_selector") or {}
    return [rule["agent_version"] for rule in selector.get("version_selection_rules") or []]


def without_version(endpoint: Obj, version: str) -> Obj | None:
    """The endpoint once `version` is deleted: a selector that routed to it goes (the
    endpoint answers with the latest version until a new one is set), the rest stays."""
    if version not in routed_versions(endpoint):
        return endpoint
    kept = {key: value for key, value in endpoint.items() if key != "version_selector"}
    return kept or None
