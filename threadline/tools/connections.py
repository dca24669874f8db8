"""Connections: the secrets the service sends to the APIs that OpenAPI tools call, and to the
MCP servers of tools that name one (`project_connection_id`, `tools/mcp.py`).

An OpenAPI tool with `auth: {"type": "connection", ...}` names a connection by id; the agent's
definition never holds the secret, the service does. They are configured by the operator in a
TOML file named by `THREADLINE_CONNECTIONS_FILE`, each secret read from an environment variable
the file names (so the file itself can be checked in):

    [connections.weather]
    kind = "header"          # "header", "query" or "bearer"
    name = "X-API-Key"       # the header or query parameter (not for "bearer")
    secret_env = "WEATHER_API_KEY"

Azure names a connection by its resource id (`/subscriptions/.../connections/weather`); a
connection is found by the whole id or by its last path segment, so the same agent code works
against both services unchanged.

Everything about a connection is loaded and checked once, at start: a connection that cannot
work stops the process with a message naming it, rather than failing the first run that
uses it. A secret is never part of a message, a repr or a log line.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

ENV_VARIABLE = "THREADLINE_CONNECTIONS_FILE"
KINDS = ("header", "query", "bearer")
Kind = Literal["header", "query", "bearer"]


@dataclass(frozen=True)
class Connection:
    """One configured connection; `param_name` is the header or query parameter it fills."""

    id: str
    kind: Kind
    param_name: str | None
    # Out of the repr: a connection printed in a traceback or a log shows no secret.
    secret: str = field(repr=False)

    def apply(self, headers: MutableMapping[str, str], query: MutableMapping[str, str]) -> None:
        """Put the secret where the API expects it, over whatever the model sent there."""
        if self.kind == "bearer":
            headers["Authorization"] = f"Bearer {self.secret}"
        elif self.kind == "header":
            assert self.param_name is not None
            headers[self.param_name] = self.secret
        else:
            assert self.param_name is not None
            query[self.param_name] = self.secret

    def header_name(self) -> str | None:
        """The header that carries the secret, if one does."""
        if self.kind == "bearer":
            return "Authorization"
        return self.param_name if self.kind == "header" else None


class Connections:
    """The configured connections, by name."""

    def __init__(self, connections: Mapping[str, Connection] | None = None):
        self._by_name = dict(connections or {})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Connections:
        """The connections of the file `THREADLINE_CONNECTIONS_FILE` names; none when unset."""
        env = os.environ if environ is None else environ
        path = env.get(ENV_VARIABLE)
        if not path:
            return cls()
        return cls.from_file(path, env)

    @classmethod
    def from_file(cls, path: str, environ: Mapping[str, str] | None = None) -> Connections:
        try:
            with open(path, "rb") as file:
                document = tomllib.load(file)
        except OSError as exc:
            raise SystemExit(
                f"{ENV_VARIABLE} names {path!r}, which cannot be read: {exc.strerror}"
            ) from exc
        except tomllib.TOMLDecodeError as exc:
            # The parser's message gives the line and column, never the text there.
            raise SystemExit(f"{path} is not valid TOML: {exc}") from exc
        unknown = sorted(set(document) - {"connections"})
        if unknown:
            raise SystemExit(f"{path}: unknown table {unknown[0]!r}; expected [connections.NAME]")
        table = document.get("connections", {})
        if not isinstance(table, dict):
            raise SystemExit(f"{path}: 'connections' must be a table of [connections.NAME]")
        return cls.from_dict(table, environ, source=path)

    @classmethod
    def from_dict(
        cls,
        table: Mapping[str, Any],
        environ: Mapping[str, str] | None = None,
        *,
        source: str = "connections",
    ) -> Connections:
        """From the `[connections]` table's contents: `{NAME: {"kind", "name", "secret_env"}}`,
        secrets read from `environ` (the process's environment by default)."""
        env = os.environ if environ is None else environ
        return cls({name: _connection(name, entry, env, source) for name, entry in table.items()})

    def find(self, connection_id: str) -> Connection | None:
        """The connection an id names: a name itself or a resource id ending in one."""
        found = self._by_name.get(connection_id)
        if found is None:
            found = self._by_name.get(connection_id.rstrip("/").rsplit("/", 1)[-1])
        return found

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def redact(self, text: str) -> str:
        """`text` with every configured secret replaced: for anything that echoes a request
        back (an API's answer, an error message), so a secret reaches no model or record."""
        for connection in self._by_name.values():
            if connection.secret and connection.secret in text:
                text = text.replace(connection.secret, "[secret]")
        return text

    def __len__(self) -> int:
        return len(self._by_name)


def _connection(name: str, entry: object, env: Mapping[str, str], source: str) -> Connection:
    where = f"{source}: connection {name!r}"
    if not name or "/" in name:
        raise SystemExit(f"{where}: a name must be non-empty and hold no '/'")
    if not isinstance(entry, dict):
        raise SystemExit(f"{where} must be a table with kind, name and secret_env")
    unknown = sorted(set(entry) - {"kind", "name", "secret_env"})
    if unknown:
        raise SystemExit(f"{where}: unknown key {unknown[0]!r} (kind, name, secret_env)")
    kind = entry.get("kind")
    if kind not in KINDS:
        raise SystemExit(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    param_name = entry.get("name")
    if kind == "bearer":
        if param_name is not None:
            raise SystemExit(f"{where}: a bearer connection takes no name (it is Authorization)")
    elif not isinstance(param_name, str) or not param_name.strip():
        raise SystemExit(f"{where}: kind {kind!r} needs the {kind} parameter's name in 'name'")
    secret_env = entry.get("secret_env")
    if not isinstance(secret_env, str) or not secret_env:
        raise SystemExit(f"{where}: secret_env must name the environment variable of the secret")
    secret = (env.get(secret_env) or "").strip()
    if not secret:
        raise SystemExit(f"{where}: the environment variable {secret_env} is not set or empty")
    if any(character in secret for character in "\r\n\0"):
        # A header cannot carry it; said without the value.
        raise SystemExit(f"{where}: the secret in {secret_env} holds a line break or NUL")
    return Connection(id=name, kind=cast(Kind, kind), param_name=param_name, secret=secret)
