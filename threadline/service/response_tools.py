"""A Responses request's `tools` and `tool_choice`, as the run that serves it takes them.

The Responses API writes its built-in tools flat, each with what it needs
(`{"type": "file_search", "vector_store_ids": [...]}`, `{"type": "code_interpreter",
"container": {"type": "auto", "file_ids": [...]}}`, `{"type": "mcp", "server_label",
"server_url", "headers", "require_approval", ...}`), and Foundry's agents add the OpenAPI
tool (`{"type": "openapi", "openapi": {"name", "spec", "auth", ...}}`). A run keeps a tool's
definition apart from what it reaches (`tool_resources`): this splits each tool into the two,
so the same tools the Assistants side runs carry out the response's calls. The tools as given
are kept on the response (`shown`), which shows them back.

What the service cannot honour is refused with a 400 naming it (a container by id, a ranker
of its own, an MCP connector, tools chosen by being read-only); what it can is never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from threadline.domain.errors import InvalidRequest
from threadline.domain.records import Obj
from threadline.service.unsupported import not_yet
from threadline.service.vector_store_requests import Filter

_WHERE = "responses"
_FUNCTION_KEYS = {"type", "name", "description", "parameters", "strict"}
_FILE_SEARCH_KEYS = {"type", "vector_store_ids", "filters", "max_num_results", "ranking_options"}
_RANKING_KEYS = {"ranker", "score_threshold", "hybrid_search"}
# The hosted service's ranker names: each means this service's one hybrid ranking.
_RANKERS = ("auto", "default-2024-11-15")
_CODE_KEYS = {"type", "container"}
_CONTAINER_KEYS = {"type", "file_ids", "memory_limit", "network_policy"}
_MCP_KEYS = {
    "type",
    "server_label",
    "server_url",
    "headers",
    "allowed_tools",
    "require_approval",
    "server_description",
    "connector_id",
    "authorization",
    "defer_loading",
    "tunnel_id",
    "allowed_callers",
    "project_connection_id",
}
# What the service cannot do with an MCP server: reach a connector or a tunnel of the hosted
# service's, sign in with an OAuth token of its own, load a server's tools on demand, or
# let code call them.
_MCP_NOT_YET = ("connector_id", "tunnel_id", "authorization", "defer_loading", "allowed_callers")
# How many stores one file_search tool may search.
MAX_VECTOR_STORES = 20
_FILTER: TypeAdapter[Any] = TypeAdapter(Filter)


@dataclass
class StoreRef:
    """A store a file_search tool names, and where (for the 400 when it is not usable)."""

    store_id: str
    param: str


@dataclass
class FileRef:
    """A file a code_interpreter container names, and where."""

    file_id: str
    param: str


@dataclass
class ResponseTools:
    """The request's tools as a run takes them: `run_tools` (Assistants definitions, for
    `RunCreate.tools`), `resources` (the run's `tool_resources`: the stores searched, the
    code's files, each MCP server's headers and approval rule) and `shown` (as given, for
    the response to show back); the stores and files to check in the transaction."""

    def add(self, definition: Obj, extra: Obj | None = None) -> None:
        self.run_tools.append(definition)
        self.extras.append(extra or {})

    def request_resources(self) -> Obj:
        """The resources a run request takes; the stores searched are set on the run
        (`run_resources`): a run request takes one, a response's tool several."""
        return {k: v for k, v in self.resources.items() if k != "file_search"}

    def run_records(self, records: list[Obj]) -> list[Obj]:
        """The run's tool records (as `RunService.new_run` made them, in order) with each
        one's extras."""
        completed: list[Obj] = []
        for record, extra in zip(records, self.extras, strict=True):
            merged = dict(record)
            for key, value in extra.items():
                if isinstance(value, dict) and isinstance(merged.get(key), dict):
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
            completed.append(merged)
        return completed

    run_tools: list[Obj] = field(default_factory=list)
    # What each run tool's record holds beyond what a run request takes (a file_search
    # tool's `filters`, an MCP server's description), by the tool's place.
    extras: list[Obj] = field(default_factory=list)
    resources: Obj = field(default_factory=dict)
    shown: list[Obj] = field(default_factory=list)
    stores: list[StoreRef] = field(default_factory=list)
    files: list[FileRef] = field(default_factory=list)

    def server_labels(self) -> set[str]:
        return {str(tool["server_label"]) for tool in self.run_tools if tool["type"] == "mcp"}

    def kinds(self) -> set[str]:
        return {str(tool["type"]) for tool in self.run_tools}


def _unknown(raw: dict[str, Any], known: set[str], param: str) -> None:
    unknown = set(raw) - known
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidRequest(f"Unknown parameter: '{param}.{name}'.", param=f"{param}.{name}")


def _strings(value: Any, param: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise InvalidRequest(f"Invalid '{param}': expected a list of strings.", param=param)
    return list(value)


def _given(raw: dict[str, Any]) -> Obj:
    """The tool as the client sent it, without the nulls a client leaves in."""
    return {key: value for key, value in raw.items() if value is not None}


def read_tools(raw: list[Any] | None) -> ResponseTools:
    tools = ResponseTools()
    for index, item in enumerate(raw or []):
        param = f"tools[{index}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"Invalid '{param}': expected an object.", param=param)
        kind = item.get("type")
        if kind == "function":
            _unknown(item, _FUNCTION_KEYS, param)
            function = {k: v for k, v in item.items() if k != "type" and v is not None}
            tools.add({"type": "function", "function": function})
        elif kind == "file_search":
            _file_search(item, param, tools)
        elif kind == "code_interpreter":
            _code_interpreter(item, param, tools)
        elif kind == "mcp":
            _mcp(item, param, tools)
        elif kind == "openapi":
            # Foundry's agents' OpenAPI tool, the same definition as an assistant's (checked
            # with the run's tools, its connection's secret kept by the service).
            _unknown(item, {"type", "openapi"}, param)
            tools.add({"type": "openapi", "openapi": item.get("openapi")})
        else:
            raise not_yet(f"The tool type '{kind}'", f"{param}.type", _WHERE)
        tools.shown.append(_given(item))
    return tools


def _only_one(tools: ResponseTools, kind: str, param: str) -> None:
    if kind in tools.kinds():
        raise InvalidRequest(f"Give at most one {kind} tool.", param=param)


def _file_search(raw: dict[str, Any], param: str, tools: ResponseTools) -> None:
    _unknown(raw, _FILE_SEARCH_KEYS, param)
    _only_one(tools, "file_search", param)
    if "vector_store_ids" not in raw:
        where = f"{param}.vector_store_ids"
        raise InvalidRequest(f"Missing required parameter: '{where}'.", param=where)
    ids = _strings(raw["vector_store_ids"], f"{param}.vector_store_ids")
    if len(ids) > MAX_VECTOR_STORES:
        where = f"{param}.vector_store_ids"
        raise InvalidRequest(
            f"Invalid '{where}': at most {MAX_VECTOR_STORES} vector stores.", param=where
        )
    options: Obj = {}
    count = raw.get("max_num_results")
    if count is not None:
        where = f"{param}.max_num_results"
        if isinstance(count, float) and count.is_integer():
            count = int(count)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 50:
            raise InvalidRequest(f"Invalid '{where}': an integer from 1 to 50.", param=where)
        options["max_num_results"] = count
    ranking = raw.get("ranking_options")
    if ranking is not None:
        options["ranking_options"] = _ranking(ranking, f"{param}.ranking_options")
    extra: Obj = {}
    if raw.get("filters") is not None:
        where = f"{param}.filters"
        try:
            _FILTER.validate_python(raw["filters"])
        except ValidationError as invalid:
            error = invalid.errors()[0]
            at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"][1:])
            raise InvalidRequest(
                f"Invalid '{where}{at}': {error['msg']}.", param=where
            ) from invalid
        # Not a field of the Assistants tool: the run's tool record carries it, and the
        # file_search tool reads it from there.
        extra["file_search"] = {"filters": raw["filters"]}
    tools.add({"type": "file_search", "file_search": options}, extra)
    tools.stores += [
        StoreRef(store_id, f"{param}.vector_store_ids[{i}]") for i, store_id in enumerate(ids)
    ]
    search = tools.resources.setdefault("file_search", {"vector_store_ids": []})
    search["vector_store_ids"] += [store_id for store_id in ids]


def _ranking(raw: Any, param: str) -> Obj:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"Invalid '{param}': expected an object.", param=param)
    _unknown(raw, _RANKING_KEYS, param)
    if raw.get("hybrid_search") is not None:
        # The search fuses full text and vectors with weights of its own.
        raise not_yet(f"'{param}.hybrid_search'", f"{param}.hybrid_search", _WHERE)
    ranker = raw.get("ranker")
    if ranker is not None and ranker not in _RANKERS:
        allowed = ", ".join(f"'{name}'" for name in _RANKERS)
        raise InvalidRequest(
            f"Invalid '{param}.ranker': '{ranker}' is not one of {allowed}.",
            param=f"{param}.ranker",
        )
    # The run's file_search tool takes the Assistants names: `auto` means the same ranking.
    ranking: Obj = {"ranker": "auto", "score_threshold": 0.0}
    threshold = raw.get("score_threshold")
    if threshold is not None:
        where = f"{param}.score_threshold"
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise InvalidRequest(f"Invalid '{where}': a number from 0 to 1.", param=where)
        if not 0 <= threshold <= 1:
            raise InvalidRequest(f"Invalid '{where}': a number from 0 to 1.", param=where)
        ranking["score_threshold"] = float(threshold)
    return ranking


def _code_interpreter(raw: dict[str, Any], param: str, tools: ResponseTools) -> None:
    _unknown(raw, _CODE_KEYS, param)
    _only_one(tools, "code_interpreter", param)
    where = f"{param}.container"
    container = raw.get("container")
    if container is None:
        raise InvalidRequest(f"Missing required parameter: '{where}'.", param=where)
    if isinstance(container, str):
        # The sandbox is the conversation's own, made when code first runs in it: there is
        # no container object to name.
        raise not_yet("A code_interpreter container given by id", where, _WHERE)
    if not isinstance(container, dict) or container.get("type") != "auto":
        raise InvalidRequest(
            f'Invalid \'{where}\': a container id or {{"type": "auto"}}.', param=where
        )
    _unknown(container, _CONTAINER_KEYS, where)
    for name in ("memory_limit", "network_policy"):
        if container.get(name) is not None:
            raise not_yet(f"'{where}.{name}'", f"{where}.{name}", _WHERE)
    ids = _strings(container.get("file_ids") or [], f"{where}.file_ids")
    tools.add({"type": "code_interpreter"})
    tools.files += [FileRef(file_id, f"{where}.file_ids[{i}]") for i, file_id in enumerate(ids)]
    if ids:
        tools.resources["code_interpreter"] = {"file_ids": ids}


def _mcp(raw: dict[str, Any], param: str, tools: ResponseTools) -> None:
    _unknown(raw, _MCP_KEYS, param)
    for name in _MCP_NOT_YET:
        if raw.get(name) is not None:
            raise not_yet(f"'{param}.{name}'", f"{param}.{name}", _WHERE)
    label = raw.get("server_label")
    if not isinstance(label, str) or not label:
        where = f"{param}.server_label"
        raise InvalidRequest(f"Missing required parameter: '{where}'.", param=where)
    if label in tools.server_labels():
        where = f"{param}.server_label"
        raise InvalidRequest(
            f"Invalid '{where}': another mcp tool has the label '{label}'.", param=where
        )
    url = raw.get("server_url")
    if not isinstance(url, str) or not url:
        where = f"{param}.server_url"
        raise InvalidRequest(f"Missing required parameter: '{where}'.", param=where)
    definition: Obj = {"type": "mcp", "server_label": label, "server_url": url}
    allowed = _allowed_tools(raw.get("allowed_tools"), f"{param}.allowed_tools")
    if allowed is not None:
        definition["allowed_tools"] = allowed
    extra: Obj = {}
    description = raw.get("server_description")
    if description is not None:
        if not isinstance(description, str):
            where = f"{param}.server_description"
            raise InvalidRequest(f"Invalid '{where}': expected a string.", param=where)
        extra["server_description"] = description
    resource: Obj = {
        "server_label": label,
        "headers": _headers(raw.get("headers"), f"{param}.headers"),
        "require_approval": _approval(raw.get("require_approval"), f"{param}.require_approval"),
    }
    connection = raw.get("project_connection_id")
    if connection is not None:
        # Foundry's agents name the connection whose secret the server's requests carry
        # (`tools/mcp.py`); whether it exists is checked with the run's tools.
        if not isinstance(connection, str) or not connection:
            where = f"{param}.project_connection_id"
            raise InvalidRequest(f"Invalid '{where}': expected a connection's id.", param=where)
        resource["project_connection_id"] = connection
    tools.add(definition, extra)
    tools.resources.setdefault("mcp", []).append(resource)


def _headers(raw: Any, param: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in raw.items()
    ):
        raise InvalidRequest(f"Invalid '{param}': an object of strings.", param=param)
    return dict(raw)


def _allowed_tools(raw: Any, param: str) -> list[str] | None:
    if raw is None:
        return None
    if isinstance(raw, dict):
        _unknown(raw, {"tool_names", "read_only"}, param)
        if raw.get("read_only") is not None:
            raise not_yet(f"'{param}.read_only'", f"{param}.read_only", _WHERE)
        raw = raw.get("tool_names") or []
    return _strings(raw, param)


def _approval(raw: Any, param: str) -> str | Obj:
    """`require_approval` as the run's MCP tool reads it; absent, every call is approved
    first, as the hosted service does."""
    if raw is None:
        return "always"
    if raw in ("always", "never"):
        return str(raw)
    if not isinstance(raw, dict):
        raise InvalidRequest(
            f"Invalid '{param}': 'always', 'never', or tool names under 'always' or 'never'.",
            param=param,
        )
    _unknown(raw, {"always", "never"}, param)
    rule: Obj = {}
    for key in ("always", "never"):
        names = raw.get(key)
        if names is None:
            continue
        where = f"{param}.{key}"
        if not isinstance(names, dict):
            raise InvalidRequest(f"Invalid '{where}': expected an object.", param=where)
        _unknown(names, {"tool_names", "read_only"}, where)
        if names.get("read_only") is not None:
            raise not_yet(f"'{where}.read_only'", f"{where}.read_only", _WHERE)
        rule[key] = {"tool_names": _strings(names.get("tool_names") or [], f"{where}.tool_names")}
    return rule


def read_tool_choice(
    raw: str | dict[str, Any] | None, tools: ResponseTools
) -> tuple[Any, Obj | None]:
    """`tool_choice` as the run's request takes it, and an MCP choice the run keeps as it is
    (a run request has no shape for it)."""
    if raw is None or isinstance(raw, str):
        return raw, None
    kind = raw.get("type")
    if kind == "function":
        _unknown(raw, {"type", "name"}, "tool_choice")
        return {"type": "function", "function": {"name": raw.get("name")}}, None
    if kind in ("file_search", "code_interpreter"):
        _unknown(raw, {"type"}, "tool_choice")
        return {"type": kind}, None
    if kind == "mcp":
        return None, _mcp_choice(raw, tools)
    raise not_yet(f"tool_choice of type '{kind}'", "tool_choice", _WHERE)


def _mcp_choice(raw: dict[str, Any], tools: ResponseTools) -> Obj:
    _unknown(raw, {"type", "server_label", "name"}, "tool_choice")
    label = raw.get("server_label")
    definition = next(
        (
            tool
            for tool in tools.run_tools
            if tool["type"] == "mcp" and tool["server_label"] == label
        ),
        None,
    )
    if definition is None:
        raise InvalidRequest(
            f"tool_choice names the MCP server '{label}', which is not among the tools.",
            param="tool_choice.server_label",
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        # Chat Completions forces one function or any: not any of one server's.
        raise not_yet("tool_choice of type 'mcp' without a 'name'", "tool_choice.name", _WHERE)
    allowed = definition.get("allowed_tools")
    if allowed and name not in allowed:
        raise InvalidRequest(
            f"tool_choice names the tool '{name}', which the MCP server '{label}' is not "
            "allowed to offer (allowed_tools).",
            param="tool_choice.name",
        )
    return {"type": "mcp", "server_label": label, "name": name}
