"""The models file (`THREADLINE_MODELS_FILE`): which provider serves which model names.

A TOML file of `[[models]]` entries, each a model name or an fnmatch pattern (`gpt-4o*`) and
the provider that serves it; the first entry that matches a run's model, in file order,
serves it. It is read once at start, and every mistake in it stops the start with a message
naming the file, the entry and the field: a server that started on a half-understood file
would fail its users' runs one by one, later, for a reason only the operator can fix.

Keys are never written in the file, which tends to be checked in and copied around: an
entry names the environment variable holding its key (`api_key_env`), and the key is read
from the environment only where a provider is built (`api_key`), so an API process that
only checks names needs no secrets.

`vision` (true or false, optional) says whether the entry's models see images. Unset, an
`openai` or `azure_openai` entry's models do and a `local` or `gguf` one's do not (llama.cpp
runs them without an image projector, so `vision = true` is refused there). A model that
does not see images is sent a text note in place of each image of a run's messages
(`engine/images.py`): set `vision = false` for a text-only upstream model, which would
otherwise refuse the run's request or pretend it had seen the image.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from threadline.domain.model_names import is_pattern, name_matches

ProviderKind = Literal["local", "gguf", "openai", "azure_openai"]
VARIABLE = "THREADLINE_MODELS_FILE"


@dataclass(frozen=True)
class LocalModel:
    """A model run in process by llama.cpp: the bundled one (`path` None) or a GGUF file.
    Entries naming the same file share one loaded model."""

    path: Path | None = None
    context_window: int | None = None


@dataclass(frozen=True)
class OpenAIUpstream:
    """An OpenAI-compatible server; `api_key_env` None sends no key (a local vLLM, Ollama)."""

    base_url: str
    api_key_env: str | None = None
    context_window: int | None = None


@dataclass(frozen=True)
class AzureDeployment:
    """An Azure OpenAI deployment: its own URL scheme, `api-version` and `api-key` header."""

    endpoint: str
    deployment: str
    api_version: str
    api_key_env: str
    context_window: int | None = None


Provider = LocalModel | OpenAIUpstream | AzureDeployment


@dataclass(frozen=True)
class ModelRoute:
    """One entry: `name` is a model name or a pattern; `number` counts entries from 1."""

    name: str
    kind: ProviderKind
    provider: Provider
    number: int
    # The entry's `vision`: None leaves it to the provider (`ModelProvider.sees_images`).
    vision: bool | None = None

    @property
    def is_pattern(self) -> bool:
        return is_pattern(self.name)

    def matches(self, model: str) -> bool:
        return name_matches(self.name, model)


# The fields each provider takes beside `name`, `provider`, `context_window` and `vision`,
# and which of them it needs.
_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "local": (frozenset(), frozenset()),
    "gguf": (frozenset({"path"}), frozenset({"path"})),
    "openai": (frozenset({"base_url", "api_key_env"}), frozenset({"base_url"})),
    "azure_openai": (
        frozenset({"endpoint", "deployment", "api_version", "api_key_env"}),
        frozenset({"endpoint", "deployment", "api_version", "api_key_env"}),
    ),
}
_COMMON = frozenset({"name", "provider", "context_window", "vision"})


class _Mistake(Exception):
    """A problem with one entry, said without the file and entry it is in."""


def load(path: str | os.PathLike[str]) -> tuple[ModelRoute, ...]:
    """The file's entries, in file order; SystemExit naming the mistake if it has one."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SystemExit(f"{VARIABLE} names {source}, which cannot be read: {exc}") from exc
    return parse(text, source)


def parse(text: str, source: Path) -> tuple[ModelRoute, ...]:
    """`text` read as the models file at `source` (relative GGUF paths are taken from the
    file's folder)."""
    where = f"{VARIABLE} {source}"
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SystemExit(f"{where} is not valid TOML: {exc}") from exc
    extra = sorted(set(document) - {"models"})
    if extra:
        raise SystemExit(
            f"{where}: unknown top-level key {extra[0]!r}; the file holds [[models]] entries"
        )
    entries = document.get("models")
    if not isinstance(entries, list) or not entries:
        raise SystemExit(
            f"{where} has no [[models]] entries: give at least one, each with a 'name' "
            "and a 'provider'"
        )
    routes: list[ModelRoute] = []
    exact: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        label = f"{where}: entry {number}"
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            label += f" ({entry['name']!r})"
        try:
            route = _route(cast("object", entry), number, source.parent)
        except _Mistake as exc:
            raise SystemExit(f"{label}: {exc}") from None
        if not route.is_pattern:
            if route.name in exact:
                raise SystemExit(
                    f"{label}: name {route.name!r} is already routed by entry "
                    f"{exact[route.name]}; the first entry that matches serves a model"
                )
            exact[route.name] = number
        routes.append(route)
    return tuple(routes)


def api_key(
    route: ModelRoute, source: str | os.PathLike[str], environ: Mapping[str, str]
) -> str | None:
    """The key `route` is to send, from the variable its entry names; SystemExit if that
    variable is unset or empty. The key itself is never put in a message."""
    provider = route.provider
    if isinstance(provider, LocalModel) or provider.api_key_env is None:
        return None
    key = environ.get(provider.api_key_env)
    if not key:
        raise SystemExit(
            f"{VARIABLE} {source}: entry {route.number} ({route.name!r}): api_key_env names "
            f"{provider.api_key_env}, which is not set in the environment"
        )
    return key


def _route(entry: object, number: int, folder: Path) -> ModelRoute:
    if not isinstance(entry, dict):
        raise _Mistake("is not a table; write each entry as [[models]] with its fields")
    fields = cast("dict[str, Any]", entry)
    name = _string(fields, "name")
    kind = _string(fields, "provider")
    if kind not in _FIELDS:
        raise _Mistake(f"provider {kind!r} is not one of {', '.join(repr(k) for k in _FIELDS)}")
    allowed, required = _FIELDS[kind]
    if "api_key" in fields:
        raise _Mistake(
            "'api_key' is not read from the file, so that no key is written in it: put the "
            "key in an environment variable and name that variable in 'api_key_env'"
        )
    for field_name in fields:
        if field_name not in allowed | _COMMON:
            known = ", ".join(sorted(allowed | _COMMON))
            raise _Mistake(
                f"unknown field {field_name!r} for provider {kind!r} (its fields: {known})"
            )
    for field_name in sorted(required):
        if field_name not in fields:
            raise _Mistake(f"provider {kind!r} needs the field {field_name!r}")
    window = _context_window(fields)
    vision = _vision(fields, kind)
    provider: Provider
    if kind == "local":
        provider = LocalModel(None, window)
    elif kind == "gguf":
        provider = LocalModel(_gguf_path(fields, folder), window)
    elif kind == "openai":
        provider = OpenAIUpstream(
            _url(fields, "base_url"), _optional_string(fields, "api_key_env"), window
        )
    else:
        provider = AzureDeployment(
            _url(fields, "endpoint"),
            _string(fields, "deployment"),
            _string(fields, "api_version"),
            _string(fields, "api_key_env"),
            window,
        )
    return ModelRoute(name, cast(ProviderKind, kind), provider, number, vision)


def _string(fields: dict[str, Any], name: str) -> str:
    if name not in fields:
        raise _Mistake(f"the field {name!r} is missing")
    value = fields[name]
    if not isinstance(value, str) or not value.strip():
        raise _Mistake(f"{name!r} must be a non-empty string, got {value!r}")
    if value != value.strip():
        raise _Mistake(f"{name!r} has spaces around it: {value!r}")
    return value


def _optional_string(fields: dict[str, Any], name: str) -> str | None:
    return _string(fields, name) if name in fields else None


def _context_window(fields: dict[str, Any]) -> int | None:
    value = fields.get("context_window")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _Mistake(f"'context_window' must be a whole number of tokens above 0, got {value!r}")
    return value


def _vision(fields: dict[str, Any], kind: str) -> bool | None:
    value = fields.get("vision")
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _Mistake(f"'vision' must be true or false, got {value!r}")
    if value and kind in ("local", "gguf"):
        raise _Mistake(
            f"'vision' cannot be true for provider {kind!r}: llama.cpp runs the model here "
            "without an image projector, so it cannot see images"
        )
    return value


def _url(fields: dict[str, Any], name: str) -> str:
    value = _string(fields, name)
    parts = urlsplit(value)
    # Checked first, and the URL is then not repeated: it carries a secret.
    if "@" in parts.netloc:
        raise _Mistake(
            f"{name!r} must not carry a user or password: put the key in an environment "
            "variable and name that variable in 'api_key_env'"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Mistake(f"{name!r} must be an http:// or https:// URL, got {value!r}")
    if parts.query or parts.fragment:
        raise _Mistake(f"{name!r} must not carry a query or a fragment, got {value!r}")
    return value.rstrip("/")


def _gguf_path(fields: dict[str, Any], folder: Path) -> Path:
    path = Path(_string(fields, "path")).expanduser()
    if not path.is_absolute():
        path = folder / path
    if not path.is_file():
        raise _Mistake(f"'path' names {str(path)!r}, which is not a file")
    return path
