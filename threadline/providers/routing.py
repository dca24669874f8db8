"""One provider in front of many: each call goes to the provider its model name maps to.

The engine speaks to one `ModelProvider`; with a models file, this is it. Routes are tried
in order and the first whose name or pattern matches serves the model, so a name is routed
the same way on every call of a run. A model no route serves cannot normally reach here
(the API refuses it when the run is created), but a run stored before the file changed
can: it fails with `invalid_prompt` naming the model, at its first call.

Whether a model sees images is the route's to say first (a models file entry's `vision`),
then its provider's: entries on one upstream share one provider, yet may serve a vision
model and a text-only one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from typing import NamedTuple

from threadline.domain.model_names import name_matches
from threadline.providers.base import ChatChunk, ChatRequest, ModelProvider, ProviderError

# Model names whose provider is remembered: the context builder asks for token counts once
# per message of every turn, and matching patterns each time would repeat the same work.
_REMEMBERED_NAMES = 1024


class Route(NamedTuple):
    """A model name or pattern and the provider serving it; `vision` None leaves whether
    its models see images to the provider."""

    name: str
    provider: ModelProvider
    vision: bool | None = None


class RoutedProvider:
    def __init__(self, routes: Sequence[Route]):
        """`routes` are tried in order; one provider may serve several of them."""
        self._routes = tuple(routes)
        self._found: dict[str, Route | None] = {}

    def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        """The serving provider's own stream, handed on as it is: wrapping it would cost
        every chunk of every answer a step through one more generator."""
        provider = self._find(request.model)
        if provider is None:
            return _refused(request.model)
        return provider.stream(request)

    async def prepare(self, model: str) -> None:
        await self._require(model).prepare(model)

    def count_tokens(self, model: str, text: str) -> int:
        return self._require(model).count_tokens(model, text)

    def context_window(self, model: str) -> int:
        return self._require(model).context_window(model)

    def sees_images(self, model: str) -> bool:
        route = self._route(model)
        if route is None:
            raise _not_served(model)
        if route.vision is not None:
            return route.vision
        return route.provider.sees_images(model)

    async def close(self) -> None:
        """Close every provider once, even when one of them fails to."""
        unique = list({id(route.provider): route.provider for route in self._routes}.values())
        results = await asyncio.gather(
            *(provider.close() for provider in unique), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def _require(self, model: str) -> ModelProvider:
        provider = self._find(model)
        if provider is None:
            raise _not_served(model)
        return provider

    def _find(self, model: str) -> ModelProvider | None:
        route = self._route(model)
        return None if route is None else route.provider

    def _route(self, model: str) -> Route | None:
        try:
            return self._found[model]
        except KeyError:
            pass
        found = next((r for r in self._routes if name_matches(r.name, model)), None)
        if len(self._found) >= _REMEMBERED_NAMES:
            self._found.clear()
        self._found[model] = found
        return found


def _not_served(model: str) -> ProviderError:
    return ProviderError(
        "invalid_prompt",
        f"The model '{model}' is not served here; GET /v1/models lists those that are.",
    )


async def _refused(model: str) -> AsyncGenerator[ChatChunk, None]:
    raise _not_served(model)
    yield ChatChunk()  # pragma: no cover - makes this an async generator
