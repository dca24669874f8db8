"""The OpenAPI tool: each operation of an OpenAPI 3 document is a function the model can call,
and the worker makes the HTTP call.

The definition is Azure's, as `azure-ai-agents`' `OpenApiTool` sends it:
`{"type": "openapi", "openapi": {"name", "description", "spec", "auth", "default_params"}}`.
An operation with an `operationId` is offered as `{name}_{operationId}`; its path, query and
header parameters, and a JSON request body as `body`, are the function's parameters. The
call's answer is what the model reads: `HTTP <status>` and the body, cut at a size cap. An
answer that is not 2xx is an answer like any other (the model reads it); only a call that got
no answer (a refused connection, a time limit, too many redirects) is a `ToolFailure`.

Validation uses `openapi-spec-validator`: the OpenAPI 3.0/3.1 schemas are long and subtle
(parameter `oneOf`s, `$ref` rules, duplicate operation ids), and a maintained validator that
follows them is worth a dependency more than a partial check of our own would be. Before it
runs, every `$ref` must be local (`#/...`): the validator would otherwise fetch a remote one,
and a client could make the service fetch any URL just by creating an agent.

The calls may carry a connection's secret (`tools.connections`). It is put on the request at
the last moment and scrubbed from everything the call produces (output, details, messages),
and a redirect to another origin is followed without it.

The calls are made with aiohttp, the service's HTTP client for its model calls too: a call
through httpx cost several times its CPU, and every round of a run waits for its tool's call.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import re
import weakref
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit
from urllib.request import proxy_bypass

import aiohttp
from aiohttp.helpers import ProxyInfo, proxies_from_env
from openapi_spec_validator import validate as validate_spec
from yarl import URL

from threadline.domain.errors import InvalidRequest
from threadline.domain.records import Obj
from threadline.tools.base import CallContext, Offer, Outcome, ToolFailure
from threadline.tools.connections import Connection, Connections

TYPE = "openapi"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
LOCATIONS = ("path", "query", "header")
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_NAME_LIMIT = 64
# What resolving `$ref`s may build: a spec whose schemas refer to each other many times over
# expands exponentially, and would otherwise be built in full for every run.
_EXPANSION_LIMIT = 100_000
_TEXT_TYPES = ("json", "xml", "javascript", "yaml", "x-www-form-urlencoded", "csv")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# What a path may hold as it is: reserved and unreserved characters, and `%` (the parameters
# in it are already escaped); anything else (a space, a brace, non-ASCII) is escaped.
_PATH_SAFE = "!$&'()*+,/:;=@%-._~"


class _Session:
    """The calls' HTTP session, one per event loop, its connections kept for the next call:
    a client made per call cost a millisecond or more, and a new connection per call. It
    keeps no cookies (`DummyCookieJar`): calls of different runs (and users) share it.

    The environment's proxies (`HTTPS_PROXY`, `NO_PROXY`, ...) are read once, as the model
    provider reads them: aiohttp's `trust_env` would read them and `~/.netrc` again on every
    request, in a thread. The CA bundle is the system's, or the one `SSL_CERT_FILE` names.

    It is closed with its loop: the loop closes the async generators still open as it shuts
    down (`asyncio.run`, uvicorn), and `_held` is one, so the session's connections are
    closed then, not left for the collector to warn about."""

    def __init__(self) -> None:
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            cookie_jar=aiohttp.DummyCookieJar(),
            # The whole call's limit is the tool's own (`OpenApiTool.call`).
            timeout=aiohttp.ClientTimeout(total=None),
        )
        self._proxies: dict[str, ProxyInfo] = proxies_from_env()
        self._holder = self._held()

    async def hold(self) -> None:
        await anext(self._holder)

    async def _held(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            # Out of the map first: the session refers to its loop, which would keep both.
            _SESSIONS.pop(asyncio.get_running_loop(), None)
            await self.http.close()

    def proxy(self, url: URL) -> tuple[URL | None, aiohttp.BasicAuth | None]:
        found = self._proxies.get(url.scheme)
        if found is None or (url.host is not None and proxy_bypass(url.host)):
            return None, None
        return found.proxy, found.proxy_auth


_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Session] = (
    weakref.WeakKeyDictionary()
)


async def _session() -> _Session:
    loop = asyncio.get_running_loop()
    session = _SESSIONS.get(loop)
    if session is None:
        session = _SESSIONS[loop] = _Session()
        await session.hold()
    return session


@dataclass(frozen=True)
class OpenApiLimits:
    """What one call may take: its whole time (connecting, redirects and reading the body),
    the redirects it follows, and the body bytes given to the model."""

    timeout_seconds: float = 30.0
    max_redirects: int = 5
    max_response_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class _Parameter:
    """One of an operation's parameters, by the property the model fills."""

    property: str
    name: str
    location: str
    schema: Obj


@dataclass(frozen=True)
class _Operation:
    offer: Offer
    operation_id: str
    method: str
    path: str
    server: str
    parameters: tuple[_Parameter, ...]
    has_body: bool
    defaults: tuple[tuple[_Parameter, Any], ...]


class _SpecError(Exception):
    """A spec the tool cannot be built from; the message says why, to the client."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class OpenApiTool:
    """One `openapi` definition of a run's tools; assumes `validate_openapi_definition`
    accepted it when it was stored."""

    def __init__(
        self,
        definition: Obj,
        connections: Connections,
        limits: OpenApiLimits | None = None,
    ):
        self._body = _inner(definition)
        self._connections = connections
        self._limits = limits or OpenApiLimits()
        self._operations = {item.offer.name: item for item in _operations(self._body)}

    @property
    def type(self) -> str:
        return TYPE

    async def load(self) -> None:
        """Everything it offers is in its definition."""

    def needs_approval(self, name: str) -> bool:
        return False

    def activity(self) -> Obj | None:
        return None

    def offers(self) -> list[Offer]:
        return [operation.offer for operation in self._operations.values()]

    async def call(self, offer: Offer, arguments: str, context: CallContext) -> Outcome:
        operation = self._operations.get(offer.name)
        if operation is None:
            raise ToolFailure(f"There is no function named {offer.name!r} in this tool.")
        values = _arguments(operation, arguments)
        connection = self._connection()
        request = _request(operation, values)
        if connection is not None:
            connection.apply(request.headers, request.query)
        try:
            async with asyncio.timeout(self._limits.timeout_seconds):
                answer = await self._send(request, connection)
        except TimeoutError as exc:
            raise ToolFailure(
                f"{request.describe()} got no whole answer within "
                f"{self._limits.timeout_seconds:g} seconds."
            ) from exc
        except aiohttp.ClientError as exc:
            reason = self._connections.redact(str(exc) or type(exc).__name__)
            raise ToolFailure(f"{request.describe()} failed: {reason}") from exc
        output = f"HTTP {answer.status}\n{answer.text}"
        if answer.cut:
            cap = self._limits.max_response_bytes
            output += f"\n[cut: the response was larger than {cap} bytes]"
        details: Obj = {
            "name": offer.name,
            "operation_id": operation.operation_id,
            "method": operation.method.upper(),
            "url": self._connections.redact(answer.url),
            "status": answer.status,
            "cut": answer.cut,
        }
        return Outcome(
            output=self._connections.redact(output),
            details=details,
            failed=not 200 <= answer.status < 300,
        )

    def _connection(self) -> Connection | None:
        auth = self._body.get("auth")
        if not isinstance(auth, dict) or auth.get("type") != "connection":
            return None
        connection_id = _connection_id(auth)
        connection = self._connections.find(connection_id or "")
        if connection is None:
            raise ToolFailure(
                f"The connection {connection_id!r} this tool authenticates with is not "
                "configured on the service."
            )
        return connection

    async def _send(self, request: _Request, connection: Connection | None) -> _Answer:
        limits = self._limits
        try:
            url, headers, body = _prepared(request)
        except (UnicodeError, ValueError) as exc:
            # A header that is not ASCII, a body that is not JSON (NaN), a URL that is none.
            raise ToolFailure(
                f"{request.describe()} could not be sent: {self._connections.redact(str(exc))}"
            ) from exc
        session = await _session()
        method, origin = request.method, _origin(url)
        # Redirects are followed here, one at a time, so that a secret in a header does not
        # follow one to another origin.
        for hop in range(limits.max_redirects + 1):
            proxy, proxy_auth = session.proxy(url)
            async with session.http.request(
                method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                proxy=proxy,
                proxy_auth=proxy_auth,
            ) as response:
                following = _redirect_target(response, request)
                if following is None:
                    return await _read(response, limits.max_response_bytes)
            if hop == limits.max_redirects:
                break
            url = following
            if _origin(url) != origin:
                secret = connection.header_name() if connection is not None else None
                _drop(headers, "Authorization", secret or "Authorization")
            if (response.status == 303 and method != "HEAD") or (
                response.status in (301, 302) and method == "POST"
            ):
                # What browsers do, and httpx did: the redirect is fetched, not re-posted.
                method, body = "GET", None
                _drop(headers, "Content-Type")
        raise ToolFailure(
            f"{request.describe()} was redirected more than {limits.max_redirects} times; "
            "the redirects were not followed further."
        )


def _prepared(request: _Request) -> tuple[URL, dict[str, str], bytes | None]:
    """The request's URL (its query added), headers and body as they are sent."""
    base = URL(request.server)
    path = base.raw_path.rstrip("/") + quote(request.path, safe=_PATH_SAFE)
    url = base.with_path(path, encoded=True)
    if request.query:
        url = url.with_query(request.query)
    headers = dict(request.headers)
    for value in headers.values():
        value.encode("ascii")  # as HTTP has it (and httpx did): latin-1 at most, ASCII here
    body: bytes | None = None
    if request.has_body:
        text = json.dumps(request.body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        body = text.encode()
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
    return url, headers, body


def _drop(headers: dict[str, str], *names: str) -> None:
    """Remove the headers `names` name, whatever their case."""
    unwanted = {name.lower() for name in names}
    for name in [name for name in headers if name.lower() in unwanted]:
        del headers[name]


def _redirect_target(response: aiohttp.ClientResponse, request: _Request) -> URL | None:
    """Where a redirect sends the call; None for an answer that is not one."""
    location = response.headers.get("Location")
    if response.status not in _REDIRECTS or location is None:
        return None
    try:
        target = response.url.join(URL(location))
    except ValueError as exc:
        raise ToolFailure(
            f"{request.describe()} failed: it was redirected to a URL that is not one."
        ) from exc
    if target.scheme not in ("http", "https") or not target.host:
        raise ToolFailure(
            f"{request.describe()} failed: it was redirected to a URL that is not http(s)."
        )
    return target


@dataclass
class _Request:
    method: str
    url: str
    server: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    has_body: bool

    def describe(self) -> str:
        """The call in words, without its query (where a secret may be)."""
        return f"{self.method} {self.url}"


@dataclass(frozen=True)
class _Answer:
    status: int
    url: str
    text: str
    cut: bool


async def _read(response: aiohttp.ClientResponse, cap: int) -> _Answer:
    """The body as text, read no further than `cap` bytes (after content decoding): an API
    that answers 10 MB costs the worker 1 MiB, and the model sees that it was cut."""
    url = str(response.url.with_query(None).with_fragment(None))
    content_type = response.headers.get("Content-Type", "")
    taken = bytearray()
    cut = False
    async for chunk in response.content.iter_any():
        room = cap - len(taken)
        if len(chunk) > room:
            taken += chunk[:room]
            cut = True
            # The rest is not read: the connection goes, not back to the pool.
            response.close()
            break
        taken += chunk
    if not _is_text(content_type):
        size = f"more than {cap}" if cut else str(len(taken))
        return _Answer(response.status, url, f"[{size} bytes of {content_type}]", False)
    decoder = codecs.getincrementaldecoder(_encoding(response))(errors="replace")
    # Not final when cut: half a character at the cut is left out rather than mangled.
    text = decoder.decode(bytes(taken), final=not cut)
    return _Answer(response.status, url, text, cut)


def _is_text(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return not kind or kind.startswith("text/") or any(part in kind for part in _TEXT_TYPES)


def _encoding(response: aiohttp.ClientResponse) -> str:
    charset = response.charset
    if charset:
        try:
            codecs.lookup(charset)
        except LookupError:
            return "utf-8"
        return charset
    return "utf-8"


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    return (url.scheme, url.host, url.port)


# --- arguments and requests ------------------------------------------------------------------


def _arguments(operation: _Operation, arguments: str) -> dict[str, Any]:
    """The model's arguments as an object, checked against the function's names."""
    if not arguments.strip():
        values: object = {}
    else:
        try:
            values = json.loads(arguments)
        except ValueError as exc:
            raise ToolFailure(
                f"The arguments of {operation.offer.name} are not valid JSON ({exc}); "
                "send one JSON object."
            ) from exc
    if not isinstance(values, dict):
        raise ToolFailure(
            f"The arguments of {operation.offer.name} must be a JSON object, "
            f"not {type(values).__name__}."
        )
    known = {parameter.property for parameter in operation.parameters}
    if operation.has_body:
        known.add("body")
    unknown = sorted(set(values) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "no arguments"
        raise ToolFailure(
            f"{operation.offer.name} has no argument {unknown[0]!r}; it takes: {takes}."
        )
    missing = [
        name for name in operation.offer.parameters.get("required", []) if name not in values
    ]
    if missing:
        raise ToolFailure(f"{operation.offer.name} needs the argument {missing[0]!r}.")
    return values


def _request(operation: _Operation, values: dict[str, Any]) -> _Request:
    path = operation.path
    query: dict[str, str] = {}
    headers: dict[str, str] = {}
    filled = [
        (parameter, values[parameter.property])
        for parameter in operation.parameters
        if parameter.property in values
    ]
    for parameter, value in [*filled, *operation.defaults]:
        if value is None:
            continue
        text = _plain(value)
        if parameter.location == "path":
            path = path.replace("{" + parameter.name + "}", quote(text, safe=""))
        elif parameter.location == "query":
            query[parameter.name] = text
        else:
            if any(character in text for character in "\r\n\0"):
                raise ToolFailure(f"The header {parameter.name!r} cannot hold a line break.")
            headers[parameter.name] = text
    url = operation.server.rstrip("/") + path
    return _Request(
        method=operation.method.upper(),
        url=url,
        server=operation.server,
        path=path,
        query=query,
        headers=headers,
        body=values.get("body"),
        has_body=operation.has_body and "body" in values,
    )


def _plain(value: Any) -> str:
    """A parameter's value as it goes into a URL or header: OpenAPI's default (`form`,
    exploded for objects aside) style, where a list is comma-separated."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_plain(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


# --- the spec ---------------------------------------------------------------------------------


def _inner(definition: Obj) -> Obj:
    """The `openapi` object of a tool definition (or the definition itself, if given bare)."""
    inner = definition.get("openapi", definition)
    return inner if isinstance(inner, dict) else {}


def _connection_id(auth: Obj) -> str | None:
    scheme = auth.get("security_scheme")
    if not isinstance(scheme, dict):
        return None
    connection_id = scheme.get("connection_id")
    return connection_id if isinstance(connection_id, str) else None


def _offer_name(tool_name: str, operation_id: str) -> str:
    return _NAME_UNSAFE.sub("_", f"{tool_name}_{operation_id}")[:_NAME_LIMIT]


class _Resolver:
    """Local `$ref`s resolved in place. A ref met again while it is being expanded (a cyclic
    schema) becomes `{}`: the model is told less about a tree's depth, and nothing loops."""

    def __init__(self, spec: Obj):
        self._spec = spec
        self._built = 0

    def target(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise _SpecError(f"the $ref {ref!r} is not local (it must start with '#/')")
        node: Any = self._spec
        for raw in ref[1:].split("/")[1:] if ref != "#" else []:
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise _SpecError(f"the $ref {ref!r} points to nothing")
        return node

    def shallow(self, node: Any) -> Any:
        """`node` with its own `$ref` chain followed (for parameters and request bodies)."""
        seen: set[str] = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in seen:
                raise _SpecError(f"the $ref {ref!r} refers to itself")
            seen.add(ref)
            node = self.target(ref)
        return node

    def deep(self, node: Any, chain: tuple[str, ...] = ()) -> Any:
        self._built += 1
        if self._built > _EXPANSION_LIMIT:
            raise _SpecError(
                f"its schemas expand to more than {_EXPANSION_LIMIT} parts once $refs are resolved"
            )
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                if ref in chain:
                    return {}
                resolved = self.deep(self.target(ref), (*chain, ref))
                siblings = {key: value for key, value in node.items() if key != "$ref"}
                if siblings and isinstance(resolved, dict):
                    # OpenAPI 3.1 lets a $ref sit beside other keywords (a description).
                    return {**resolved, **self.deep(siblings, chain)}
                return resolved
            return {key: self.deep(value, chain) for key, value in node.items()}
        if isinstance(node, list):
            return [self.deep(item, chain) for item in node]
        return node


def _operations(body: Obj) -> Iterator[_Operation]:
    spec = body.get("spec")
    if not isinstance(spec, dict):
        return
    tool_name = str(body.get("name") or "")
    default_params = set(body.get("default_params") or [])
    resolver = _Resolver(spec)
    paths = spec.get("paths") or {}
    if not isinstance(paths, dict):
        return
    for path, raw_item in paths.items():
        item = resolver.shallow(raw_item)
        if not isinstance(item, dict):
            continue
        for method in METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            operation_id = operation.get("operationId")
            if not isinstance(operation_id, str) or not operation_id:
                continue
            yield _operation(
                resolver, spec, tool_name, default_params, path, item, method, operation
            )


def _operation(
    resolver: _Resolver,
    spec: Obj,
    tool_name: str,
    default_params: set[str],
    path: str,
    item: Obj,
    method: str,
    operation: Obj,
) -> _Operation:
    operation_id = str(operation["operationId"])
    # Path-level parameters, overridden by the operation's own of the same name and place.
    merged: dict[tuple[str, str], Obj] = {}
    for raw in [*(item.get("parameters") or []), *(operation.get("parameters") or [])]:
        parameter = resolver.shallow(raw)
        if isinstance(parameter, dict) and parameter.get("in") in LOCATIONS:
            merged[(str(parameter.get("in")), str(parameter.get("name")))] = parameter
    properties: Obj = {}
    required: list[str] = []
    parameters: list[_Parameter] = []
    defaults: list[tuple[_Parameter, Any]] = []
    for (location, name), parameter in merged.items():
        schema = resolver.deep(_parameter_schema(parameter))
        if not isinstance(schema, dict):
            schema = {}
        if name in default_params and "default" in schema:
            # Filled from the spec's default, not by the model (Azure's `default_params`).
            defaults.append((_Parameter(name, name, location, schema), schema["default"]))
            continue
        key = name if name not in properties and name != "body" else f"{location}_{name}"
        described = dict(schema)
        if isinstance(parameter.get("description"), str):
            described["description"] = parameter["description"]
        properties[key] = described
        if parameter.get("required") or location == "path":
            required.append(key)
        parameters.append(_Parameter(key, name, location, schema))
    has_body = False
    request_body = resolver.shallow(operation.get("requestBody"))
    if isinstance(request_body, dict):
        media = _json_media(request_body.get("content"))
        if media is not None:
            has_body = True
            schema = resolver.deep(media.get("schema", {}))
            described = dict(schema) if isinstance(schema, dict) else {}
            if isinstance(request_body.get("description"), str):
                described.setdefault("description", request_body["description"])
            properties["body"] = described
            if request_body.get("required"):
                required.append("body")
    schema_object: Obj = {"type": "object", "properties": properties}
    if required:
        schema_object["required"] = required
    offer = Offer(
        name=_offer_name(tool_name, operation_id),
        description=_description(operation),
        parameters=schema_object,
    )
    return _Operation(
        offer=offer,
        operation_id=operation_id,
        method=method,
        path=path,
        server=_server_url(spec, item, operation),
        parameters=tuple(parameters),
        has_body=has_body,
        defaults=tuple(defaults),
    )


def _parameter_schema(parameter: Obj) -> Any:
    if "schema" in parameter:
        return parameter["schema"]
    # The other form: `content` with one media type holding the schema.
    content = parameter.get("content")
    if isinstance(content, dict):
        for media in content.values():
            if isinstance(media, dict) and "schema" in media:
                return media["schema"]
    return {}


def _json_media(content: Any) -> Obj | None:
    if not isinstance(content, dict):
        return None
    for media_type, media in content.items():
        kind = str(media_type).split(";", 1)[0].strip().lower()
        if (kind == "application/json" or kind.endswith("+json")) and isinstance(media, dict):
            return media
    return None


def _description(operation: Obj) -> str | None:
    parts = [
        operation[key].strip()
        for key in ("summary", "description")
        if isinstance(operation.get(key), str) and operation[key].strip()
    ]
    if len(parts) == 2 and parts[0] == parts[1]:
        parts = parts[:1]
    return "\n\n".join(parts) or None


def _server_url(spec: Obj, item: Obj, operation: Obj) -> str:
    """The first server of the operation, else of its path, else of the document, with its
    variables at their defaults."""
    for holder in (operation, item, spec):
        servers = holder.get("servers")
        if isinstance(servers, list) and servers and isinstance(servers[0], dict):
            server = servers[0]
            url = str(server.get("url") or "")
            variables = server.get("variables")
            if isinstance(variables, dict):
                for name, variable in variables.items():
                    if isinstance(variable, dict) and "default" in variable:
                        url = url.replace("{" + str(name) + "}", str(variable["default"]))
            return url
    return ""


# --- validation, at create time ---------------------------------------------------------------


def validate_openapi_definition(definition: Obj, param: str, connections: Connections) -> None:
    """Refuse (400, naming the field) a definition this tool could not call: `param` is where
    the definition sits in the request (`tools[0]`)."""
    at = f"{param}.openapi"
    body = definition.get("openapi")
    if not isinstance(body, dict):
        raise InvalidRequest(f"Missing required parameter: '{at}'.", param=at)
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"Missing required parameter: '{at}.name'.", param=f"{at}.name")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRequest(
            f"Invalid '{at}.description': expected a string.", param=f"{at}.description"
        )
    _check_default_params(body.get("default_params"), f"{at}.default_params")
    _check_auth(body.get("auth"), f"{at}.auth", connections)
    _check_spec(body, f"{at}.spec")


def _check_default_params(value: Any, where: str) -> None:
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequest(
            f"Invalid '{where}': expected a list of parameter names (strings).", param=where
        )


def _check_auth(auth: Any, where: str, connections: Connections) -> None:
    if not isinstance(auth, dict):
        raise InvalidRequest(
            f"Missing required parameter: '{where}' (an object with 'type').", param=where
        )
    kind = auth.get("type")
    if kind == "anonymous":
        return
    if kind == "managed_identity":
        raise InvalidRequest(
            f"Invalid '{where}.type': 'managed_identity' is not supported by a self-hosted "
            "service; use connection auth.",
            param=f"{where}.type",
            code="unsupported_value",
        )
    if kind != "connection":
        raise InvalidRequest(
            f"Invalid '{where}.type': expected 'anonymous', 'connection' or "
            f"'managed_identity', got {kind!r}.",
            param=f"{where}.type",
        )
    id_at = f"{where}.security_scheme.connection_id"
    connection_id = _connection_id(auth)
    if not connection_id:
        raise InvalidRequest(f"Missing required parameter: '{id_at}'.", param=id_at)
    if connections.find(connection_id) is None:
        raise InvalidRequest(
            f"Invalid '{id_at}': no connection {connection_id!r} is configured on this "
            "service (THREADLINE_CONNECTIONS_FILE).",
            param=id_at,
        )


def _check_spec(body: Obj, where: str) -> None:
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise InvalidRequest(
            f"Invalid '{where}': expected an OpenAPI 3 document (a JSON object).", param=where
        )
    version = spec.get("openapi")
    if not isinstance(version, str) or not version.startswith("3."):
        raise InvalidRequest(
            f"Invalid '{where}': not an OpenAPI 3 document (its 'openapi' field must give a "
            f"3.x version, got {version!r}).",
            param=where,
        )
    for ref in _refs(spec):
        if not ref.startswith("#"):
            raise InvalidRequest(
                f"Invalid '{where}': the $ref {ref!r} is not local; only refs within the "
                "document ('#/components/...') are followed.",
                param=where,
            )
    try:
        validate_spec(spec)
    except Exception as exc:
        # Whatever the validator stumbles on (its own errors, an unresolvable ref) is the
        # document's fault: a 400 with the validator's first line, not a 500.
        raise InvalidRequest(
            f"Invalid '{where}': not a valid OpenAPI 3 document: {_first_line(exc)}",
            param=where,
        ) from exc
    try:
        operations = list(_operations(body))
    except _SpecError as exc:
        raise InvalidRequest(f"Invalid '{where}': {exc.message}.", param=where) from exc
    if not operations:
        raise InvalidRequest(
            f"Invalid '{where}': no operation has an operationId, so there is nothing the "
            "model could call.",
            param=where,
        )
    names: set[str] = set()
    for operation in operations:
        url = urlsplit(operation.server)
        if url.scheme not in ("http", "https") or not url.netloc:
            shown = operation.server or "none"
            raise InvalidRequest(
                f"Invalid '{where}.servers': operation {operation.operation_id!r} has no "
                f"absolute http(s) server URL (got {shown!r}); the service needs one to call.",
                param=f"{where}.servers",
            )
        if operation.offer.name in names:
            raise InvalidRequest(
                f"Invalid '{where}': two operations are both offered as "
                f"{operation.offer.name!r} (names are cut at {_NAME_LIMIT} characters).",
                param=where,
            )
        names.add(operation.offer.name)


def _refs(node: Any) -> Iterator[str]:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            ref = current.get("$ref")
            if isinstance(ref, str):
                yield ref
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)


def _first_line(exc: Exception) -> str:
    """The validator's finding in one line (its full text quotes the whole schema)."""
    lines = str(getattr(exc, "message", None) or exc).strip().splitlines()
    line = lines[0] if lines else type(exc).__name__
    return line if len(line) <= 300 else line[:297] + "..."


def openapi_functions(definition: Obj) -> list[Obj]:
    """The read-only `openapi.functions` of a stored definition: what the model is offered."""
    return [
        {
            "name": operation.offer.name,
            "description": operation.offer.description,
            "parameters": operation.offer.parameters,
        }
        for operation in _operations(_inner(definition))
    ]
