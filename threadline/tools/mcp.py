"""The MCP tool: the tools of a Model Context Protocol server, reached over streamable HTTP,
offered to the model as functions; the worker makes the calls.

The definition is Azure's, as `azure-ai-agents`' `McpTool` sends it:
`{"type": "mcp", "server_label", "server_url", "allowed_tools"?}`, and what a server's calls
carry is in the run's (or agent's) `tool_resources.mcp`:
`[{"server_label", "headers", "require_approval"}]`, one entry per server label.

A tool is built per run and loaded once (`await tool.load()`): the server's tools are listed
then and kept, so a run lists each server once however many rounds it has, and `offers()`
(which is synchronous) answers from that list. Each call opens its own session (connect,
initialize, call, close): the service tool interface has no end of run at which a session
kept open could be closed, and a session per call is what a worker that dies mid-run leaves
nothing behind with.

Failures are the model's to read, never the run's: a server that cannot be reached or does
not answer within the time limit is a `ToolFailure`; a result the server marks `isError` is an
`Outcome(failed=True)`. `load()` raises `ToolFailure` too, and leaves the caller to decide
what a run whose server is down is offered (see there).

The `mcp` package (2.x) speaks the protocol: it negotiates versions, follows the transport's
session and redirect rules (only within the server's origin), and bounds what it buffers.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import httpx2
import mcp_types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from threadline.domain.errors import InvalidRequest
from threadline.domain.ids import IdKind, new_id
from threadline.domain.records import Obj
from threadline.tools.base import CallContext, Offer, Outcome, ToolFailure
from threadline.tools.connections import Connections

TYPE = "mcp"
# Pages of `tools/list` read at most: a server that keeps handing out cursors is not
# listed for ever.
_MAX_PAGES = 20
_EMPTY_SCHEMA: Obj = {"type": "object", "properties": {}}
# The field of a call's record that holds headers of its own, over the server's (those an
# approval sent with it).
CALL_HEADERS = "approval_headers"
# The field of a server's `tool_resources.mcp` entry that names a connection (`tools.connections`)
# whose secret its requests carry.
CONNECTION = "project_connection_id"

T = TypeVar("T")


@dataclass(frozen=True)
class McpLimits:
    """What one listing or one call may take: its whole time (connecting, the protocol's
    handshake and the answer), and the characters of an answer given to the model."""

    timeout_seconds: float = 30.0
    max_output_chars: int = 1024 * 1024


class McpTool:
    """One `mcp` definition of a run's tools, with its server's `tool_resources.mcp` entry
    (`resource`, or None: no headers, every call needs approval)."""

    def __init__(
        self,
        definition: Obj,
        resource: Obj | None,
        limits: McpLimits | None = None,
        connections: Connections | None = None,
    ):
        self._definition = definition
        self._resource = resource
        self._limits = limits or McpLimits()
        self._connections = connections if connections is not None else Connections()
        self.server_label = str(definition.get("server_label") or "")
        self.server_url = str(definition.get("server_url") or "")
        # What the server is for, told to the model with each of its tools (a Responses
        # tool's `server_description`).
        self.server_description = definition.get("server_description")
        allowed = definition.get("allowed_tools")
        # Absent or empty: every tool the server has (the SDK leaves an empty list out).
        self._allowed = (
            {name for name in allowed if isinstance(name, str)}
            if isinstance(allowed, list) and allowed
            else None
        )
        self._tools: dict[str, mcp_types.Tool] | None = None

    @property
    def type(self) -> str:
        return TYPE

    @property
    def headers(self) -> dict[str, str]:
        """The headers every request to the server carries, from the resource, with its
        connection's secret (`project_connection_id`) over them."""
        return server_headers(self._resource, self._connections, self.server_label)

    async def load(self) -> None:
        """List the server's tools, once (later calls do nothing).

        Raises `ToolFailure` when the server cannot be reached, refuses, or does not answer
        within the time limit. The caller decides what that means for the run; the tool then
        stays unloaded (a later `load()` tries again) and `offers()` refuses, so a caller
        that carries on must leave this tool out, or tell the model the server is down."""
        if self._tools is not None:
            return
        try:
            tools = await _session(self.server_url, self.headers, self._limits, _list_tools)
        except ToolFailure as failed:
            raise ToolFailure(self._connections.redact(str(failed))) from None
        self._tools = {
            tool.name: tool for tool in tools if self._allowed is None or tool.name in self._allowed
        }

    def offers(self) -> list[Offer]:
        """One function per allowed tool of the server, under the tool's own name."""
        return [
            Offer(
                name=tool.name,
                description=self._described(tool.description),
                parameters=_parameters(tool),
                labels={"server_label": self.server_label},
            )
            for tool in self._loaded().values()
        ]

    def _described(self, description: str | None) -> str | None:
        if not self.server_description:
            return description
        server = f"(A tool of the MCP server '{self.server_label}': {self.server_description})"
        return f"{description}\n{server}" if description else server

    def listed_tools(self) -> dict[str, Obj]:
        """The tools offered, as a step's `mcp_list_tools` activity shows them:
        `{name: {"description", "parameters"}}`."""
        return {
            tool.name: {"description": tool.description, "parameters": _parameters(tool)}
            for tool in self._loaded().values()
        }

    def activity(self) -> Obj | None:
        return {
            "type": "mcp_list_tools",
            "id": new_id(IdKind.ACTIVITY),
            "server_label": self.server_label,
            "tools": self.listed_tools(),
        }

    def needs_approval(self, tool_name: str) -> bool:
        """Whether a call of `tool_name` waits for the client's approval, by the resource's
        `require_approval`: "always" (also with no resource, or no field), "never", or
        `{"never": {"tool_names": [...]}, "always": {"tool_names": [...]}}`, where a name in
        neither list (or in both) needs approval. Unknown shapes need approval: asking is the
        safe side."""
        rule = self._resource.get("require_approval", "always") if self._resource else "always"
        if rule == "never":
            return False
        if isinstance(rule, dict):
            never = _tool_names(rule.get("never"))
            always = _tool_names(rule.get("always"))
            return not (tool_name in never and tool_name not in always)
        return True

    async def call(self, offer: Offer, arguments: str, context: CallContext) -> Outcome:
        """Call the tool `offer` names. Headers in the call's record under `CALL_HEADERS` (the
        ones an approval sent) are added to the resource's, and win over them; a connection's
        secret wins over both."""
        if offer.name not in self._loaded():
            raise ToolFailure(
                f"The MCP server {self.server_label!r} offers no tool named {offer.name!r}."
            )
        values = _arguments(offer.name, arguments)
        extra = context.recorded.get(CALL_HEADERS)
        headers = server_headers(self._resource, self._connections, self.server_label, extra)

        async def call_tool(session: ClientSession) -> mcp_types.CallToolResult:
            return await session.call_tool(offer.name, values)

        try:
            result = await _session(self.server_url, headers, self._limits, call_tool)
        except ToolFailure as failed:
            raise ToolFailure(self._connections.redact(str(failed))) from None
        # A server may echo what it was sent: a secret reaches no model or record.
        output = self._connections.redact(_cut(_text(result), self._limits.max_output_chars))
        details: Obj = {"server_label": self.server_label}
        if result.is_error:  # the tool ran and answered with an error (not a failed call)
            details["tool_error"] = True
        return Outcome(output=output, details=details, failed=result.is_error)

    def _loaded(self) -> dict[str, mcp_types.Tool]:
        if self._tools is None:
            raise RuntimeError(f"the MCP tool {self.server_label!r} was not loaded")
        return self._tools


# --- talking to the server --------------------------------------------------------------------


async def _session(
    url: str,
    headers: dict[str, str],
    limits: McpLimits,
    work: Callable[[ClientSession], Awaitable[T]],
) -> T:
    """Open a session with the server, do `work` in it, close it; all of it within the time
    limit. Anything that goes wrong on the way is a `ToolFailure` that says what."""
    where = f"The MCP server at {_shown(url)}"
    if not _is_http(url):
        raise ToolFailure(f"{where} cannot be reached: its URL is not http(s).")
    seconds = limits.timeout_seconds
    try:
        with anyio.fail_after(seconds):
            timeout = httpx2.Timeout(seconds)
            async with (
                httpx2.AsyncClient(headers=headers, timeout=timeout) as http,
                streamable_http_client(url, http_client=http) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                return await work(session)
    except TimeoutError as exc:
        raise ToolFailure(f"{where} did not answer within {seconds:g} seconds.") from exc
    except Exception as exc:
        raise ToolFailure(f"{where} could not be used: {_reason(exc)}") from exc


async def _list_tools(session: ClientSession) -> list[mcp_types.Tool]:
    tools: list[mcp_types.Tool] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _reason(exc: BaseException) -> str:
    """The first real error inside the task groups the transport nests it in."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_http(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _shown(url: str) -> str:
    """The URL without its query or credentials, which may hold a secret."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return repr("(not a URL)")
    if not parts.scheme or not host:
        return repr(url.split("?", 1)[0][:200])
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _headers(value: Any, label: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    ):
        raise ToolFailure(f"The headers for the MCP server {label!r} must be an object of strings.")
    for key, item in value.items():
        if any(character in key + item for character in "\r\n\0"):
            raise ToolFailure(f"The header {key!r} for the MCP server {label!r} is malformed.")
    return dict(value)


def _tool_names(value: Any) -> set[str]:
    names = value.get("tool_names") if isinstance(value, dict) else None
    return {name for name in names if isinstance(name, str)} if isinstance(names, list) else set()


def _parameters(tool: mcp_types.Tool) -> Obj:
    schema = tool.input_schema
    return dict(schema) if isinstance(schema, dict) and schema else dict(_EMPTY_SCHEMA)


def _arguments(name: str, arguments: str) -> dict[str, Any]:
    if not arguments.strip():
        return {}
    try:
        values = json.loads(arguments)
    except ValueError as exc:
        raise ToolFailure(
            f"The arguments of {name} are not valid JSON ({exc}); send one JSON object."
        ) from exc
    if not isinstance(values, dict):
        raise ToolFailure(
            f"The arguments of {name} must be a JSON object, not {type(values).__name__}."
        )
    return values


# --- results ----------------------------------------------------------------------------------


def _text(result: mcp_types.CallToolResult) -> str:
    """What the model reads of a result: its text parts, joined; a line saying what each
    other part was; the structured content when there is nothing else."""
    parts = list(_parts(result.content))
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


def _parts(content: list[mcp_types.ContentBlock]) -> Iterator[str]:
    for part in content:
        if isinstance(part, mcp_types.TextContent):
            yield part.text
        elif isinstance(part, mcp_types.ImageContent | mcp_types.AudioContent):
            yield f"[{part.type}: {part.mime_type}, {_size(part.data)}]"
        elif isinstance(part, mcp_types.EmbeddedResource):
            resource = part.resource
            if isinstance(resource, mcp_types.TextResourceContents):
                yield resource.text
            else:
                kind = resource.mime_type or "binary"
                yield f"[resource: {resource.uri}, {kind}, {_size(resource.blob)}]"
        elif isinstance(part, mcp_types.ResourceLink):
            yield f"[resource link: {part.name} {part.uri}]"
        else:
            yield f"[{getattr(part, 'type', 'unknown')} content]"


def _size(data: str) -> str:
    try:
        return f"{len(base64.b64decode(data, validate=False))} bytes"
    except (binascii.Error, ValueError):
        return "undecodable data"


def _cut(text: str, cap: int) -> str:
    if len(text) <= cap:
        return text
    return text[:cap] + f"\n[cut: the result was longer than {cap} characters]"


# --- at create time ---------------------------------------------------------------------------


def mcp_resource(resources: Obj, definition: Obj) -> Obj | None:
    """The entry of a run's `tool_resources.mcp` for this server (headers, approvals)."""
    for resource in resources.get("mcp") or []:
        if resource.get("server_label") == definition.get("server_label"):
            return dict(resource)
    return None


def server_headers(
    resource: Obj | None, connections: Connections, label: str, extra: Any = None
) -> dict[str, str]:
    """What a request to an MCP server carries: its resource's `headers`, then `extra` (an
    approval's) over them, then the secret of the connection it names over both
    (`project_connection_id`, a header or bearer connection; the service holds the secret,
    the run's records never do). A header given again under another case replaces the first."""
    given = resource.get("headers") if resource else None
    headers = _headers(given, label) if given is not None else {}
    if extra is not None:
        _merge(headers, _headers(extra, label))
    connection_id = resource.get(CONNECTION) if resource else None
    if connection_id:
        connection = connections.find(str(connection_id))
        name = connection.header_name() if connection is not None else None
        if connection is None or name is None:
            raise ToolFailure(
                f"The connection {connection_id!r} of the MCP server {label!r} is not"
                " configured as a header or bearer connection of this service."
            )
        secret: dict[str, str] = {}
        connection.apply(secret, {})
        _merge(headers, secret)
    return headers


def _merge(headers: dict[str, str], over: dict[str, str]) -> None:
    """`over` into `headers`, a name given in any case replacing the same name in another."""
    for name, value in over.items():
        for held in [held for held in headers if held.lower() == name.lower()]:
            del headers[held]
        headers[name] = value


def check_connection(resource: Obj | None, connections: Connections, param: str) -> None:
    """Refuse (400) an MCP server's connection this service does not have, or one whose
    secret goes in a query string, which an MCP server's requests do not carry."""
    connection_id = resource.get(CONNECTION) if resource else None
    if not connection_id:
        return
    connection = connections.find(str(connection_id))
    where = f"{param}.{CONNECTION}"
    if connection is None:
        known = ", ".join(connections.names()) or "none"
        raise InvalidRequest(
            f"Invalid '{where}': no connection '{connection_id}' is configured (configured:"
            f" {known}).",
            param=where,
        )
    if connection.header_name() is None:
        raise InvalidRequest(
            f"Invalid '{where}': connection '{connection_id}' puts its secret in a query"
            " string; an MCP server takes a header or bearer connection.",
            param=where,
        )


async def check_allowed_tools(
    definition: Obj, headers: dict[str, str] | None, param: str, limits: McpLimits | None = None
) -> None:
    """Refuse (400, naming the field) a definition whose `allowed_tools` name a tool its
    server does not have: `param` is where the definition sits in the request (`tools[0]`),
    `headers` those of its `tool_resources.mcp` entry.

    It connects to the server (the list is the server's, not the request's), so a server
    that cannot be reached, or a URL that is not http(s), is refused too, naming
    `{param}.server_url`. A caller that would accept an agent whose server is not up yet
    calls this only when `allowed_tools` is not empty."""
    at_url = f"{param}.server_url"
    url = definition.get("server_url")
    if not isinstance(url, str) or not _is_http(url):
        raise InvalidRequest(
            f"Invalid '{at_url}': expected an http(s) URL of an MCP server.", param=at_url
        )
    at_allowed = f"{param}.allowed_tools"
    allowed = definition.get("allowed_tools")
    if allowed is None:
        allowed = []
    if not isinstance(allowed, list) or not all(isinstance(name, str) for name in allowed):
        raise InvalidRequest(
            f"Invalid '{at_allowed}': expected a list of tool names (strings).", param=at_allowed
        )
    try:
        tools = await _session(url, headers or {}, limits or McpLimits(), _list_tools)
    except ToolFailure as exc:
        raise InvalidRequest(f"Invalid '{at_url}': {exc}", param=at_url) from exc
    names = {tool.name for tool in tools}
    for index, name in enumerate(allowed):
        if name not in names:
            where = f"{at_allowed}[{index}]"
            shown = sorted(names)
            has = ", ".join(shown[:20]) + (", ..." if len(shown) > 20 else "") or "no tools"
            raise InvalidRequest(
                f"Invalid '{where}': the MCP server has no tool named {name!r} (it has: {has}).",
                param=where,
            )
