"""Chooses the provider that serves a model name.

With an upstream configured it serves every model name; without one, the embedded local
model does, so a user with no network and no keys still gets a real answer.
"""

from __future__ import annotations

from threadline.config import Settings
from threadline.providers.base import ModelProvider


def build_provider(settings: Settings) -> ModelProvider:
    if settings.openai_base_url:
        from threadline.providers.openai_compat import OpenAICompatibleProvider

        return OpenAICompatibleProvider(
            settings.openai_base_url,
            settings.openai_api_key,
            max_retries=settings.provider_max_retries,
            timeout=settings.provider_timeout_seconds,
            context_window=settings.provider_context_window,
        )
    from threadline.providers.local_llama import LocalLlamaProvider

    return LocalLlamaProvider(handoff_interval=settings.delta_interval_ms / 1000)
