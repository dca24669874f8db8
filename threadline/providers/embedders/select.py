"""Chooses the embedder file_search uses, from `THREADLINE_EMBEDDING_MODEL`.

Unset (or set to the bundled model's id), the bundled model embeds: no network, no keys.
Set to another name, that name is routed as a chat model's name is (`registry`): the first
entry of the models file that matches it, else the upstream `THREADLINE_OPENAI_BASE_URL`
names; and that upstream's `/embeddings` serves it. A name that would reach a llama.cpp
model (they serve chat only here) or no upstream at all stops the start with a message
saying what to change: a server that started would fail every file it was given, later.
"""

from __future__ import annotations

import functools
import os

from threadline.config import Settings
from threadline.providers import models_file
from threadline.providers.embedders.base import Embedder
from threadline.providers.embedders.minilm_files import MODEL_ID
from threadline.providers.models_file import AzureDeployment, LocalModel
from threadline.providers.registry import model_routes

VARIABLE = "THREADLINE_EMBEDDING_MODEL"


@functools.cache
def embedder_for(settings: Settings) -> Embedder:
    """The process's embedder for these settings, made once; call it at start, so that a
    setting that routes nowhere (or a key missing from the environment) stops the start.
    Nothing is loaded or sent yet: the bundled model loads on first use."""
    name = settings.embedding_model
    if name is None or name == MODEL_ID:
        from threadline.providers.embedders.local_minilm import LocalMiniLM

        return LocalMiniLM()
    from threadline.providers.embedders.upstream import UpstreamEmbedder, azure_openai_embedder

    for route in model_routes(settings):
        if not route.matches(name):
            continue
        assert settings.models_file is not None
        where = f"{models_file.VARIABLE} entry {route.number} ({route.name!r})"
        provider = route.provider
        if isinstance(provider, LocalModel):
            raise SystemExit(
                f"{VARIABLE} is {name!r}, which {where} routes to a local llama.cpp model; "
                "those serve chat only. Route the name to an 'openai' or 'azure_openai' "
                f"upstream that serves /embeddings, or unset {VARIABLE} to embed with the "
                f"bundled model ({MODEL_ID})."
            )
        key = models_file.api_key(route, settings.models_file, os.environ)
        if isinstance(provider, AzureDeployment):
            return azure_openai_embedder(
                name,
                provider.endpoint,
                provider.deployment,
                provider.api_version,
                key,
                max_retries=settings.provider_max_retries,
                timeout=settings.provider_timeout_seconds,
            )
        return UpstreamEmbedder(
            name,
            provider.base_url,
            key,
            max_retries=settings.provider_max_retries,
            timeout=settings.provider_timeout_seconds,
        )
    if settings.openai_base_url:
        return UpstreamEmbedder(
            name,
            settings.openai_base_url,
            settings.openai_api_key,
            max_retries=settings.provider_max_retries,
            timeout=settings.provider_timeout_seconds,
        )
    unrouted = (
        f"no entry of {models_file.VARIABLE} matches it"
        if settings.models_file is not None
        else f"{models_file.VARIABLE} is unset"
    )
    raise SystemExit(
        f"{VARIABLE} is {name!r}, but no upstream serves it: {unrouted} and "
        f"THREADLINE_OPENAI_BASE_URL is unset. Route the name to an upstream that serves "
        f"/embeddings, or unset {VARIABLE} to embed with the bundled model ({MODEL_ID})."
    )
