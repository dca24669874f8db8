"""Chooses the provider that serves a model name.

With a models file (`THREADLINE_MODELS_FILE`), the file decides, entry by entry; an upstream
set by `THREADLINE_OPENAI_BASE_URL` then serves the names no entry claims. Without a file,
that upstream serves every model name, and without one either the embedded local model
does, so a user with no network and no keys still gets a real answer.
"""

from __future__ import annotations

import logging
import os

from threadline.config import Settings
from threadline.providers import models_file
from threadline.providers.base import ModelProvider
from threadline.providers.models_file import AzureDeployment, LocalModel, ModelRoute, Provider

log = logging.getLogger(__name__)


def model_routes(settings: Settings) -> tuple[ModelRoute, ...]:
    """The models file's entries, read and checked; none without a file."""
    if settings.models_file is None:
        return ()
    return models_file.load(settings.models_file)


def build_provider(
    settings: Settings, routes: tuple[ModelRoute, ...] | None = None
) -> ModelProvider:
    """Every provider is built here, at start, so a key missing from the environment stops
    the start rather than a run; `routes` are the file's, when the caller has read them."""
    if settings.models_file is None:
        if settings.openai_base_url:
            return _upstream(settings)
        return _local(settings, LocalModel())
    from threadline.providers.routing import Route, RoutedProvider

    if routes is None:
        routes = model_routes(settings)
    built: dict[tuple[Provider, str | None], ModelProvider] = {}
    routed: list[Route] = []
    for route in routes:
        key = models_file.api_key(route, settings.models_file, os.environ)
        # Entries naming the same model or upstream share it: one loaded model, one pool.
        provider = built.get((route.provider, key))
        if provider is None:
            provider = built[(route.provider, key)] = _build(settings, route.provider, key)
        routed.append(Route(route.name, provider, route.vision))
        log.info("model %s is served by entry %d (%s)", route.name, route.number, route.kind)
    if settings.openai_base_url:
        routed.append(Route("*", _upstream(settings)))
        log.info("other model names are served by THREADLINE_OPENAI_BASE_URL")
    return RoutedProvider(routed)


def _build(settings: Settings, provider: Provider, key: str | None) -> ModelProvider:
    if isinstance(provider, LocalModel):
        return _local(settings, provider)
    from threadline.providers.openai_compat import OpenAICompatibleProvider, azure_openai

    window = provider.context_window or settings.provider_context_window
    if isinstance(provider, AzureDeployment):
        return azure_openai(
            provider.endpoint,
            provider.deployment,
            provider.api_version,
            key,
            max_retries=settings.provider_max_retries,
            timeout=settings.provider_timeout_seconds,
            context_window=window,
        )
    return OpenAICompatibleProvider(
        provider.base_url,
        key,
        max_retries=settings.provider_max_retries,
        timeout=settings.provider_timeout_seconds,
        context_window=window,
    )


def _upstream(settings: Settings) -> ModelProvider:
    from threadline.providers.openai_compat import OpenAICompatibleProvider

    assert settings.openai_base_url is not None
    return OpenAICompatibleProvider(
        settings.openai_base_url,
        settings.openai_api_key,
        max_retries=settings.provider_max_retries,
        timeout=settings.provider_timeout_seconds,
        context_window=settings.provider_context_window,
    )


def _local(settings: Settings, model: LocalModel) -> ModelProvider:
    from threadline.providers.local_llama import LocalLlamaProvider

    handoff = settings.delta_interval_ms / 1000
    if model.context_window is None:
        return LocalLlamaProvider(model_path=model.path, handoff_interval=handoff)
    return LocalLlamaProvider(
        model_path=model.path, n_ctx=model.context_window, handoff_interval=handoff
    )
