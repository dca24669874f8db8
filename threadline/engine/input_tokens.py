"""Counts the prompt a response would send (`POST /responses/input_tokens`), by building it as
the run's first turn would: the same instructions, window of the conversation and budget.

An API process that carries no worker has no model client of its own; it makes one the first
time it is asked to count, so processes that never count never load a tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable

from threadline.domain.errors import InvalidRequest
from threadline.domain.records import Run, RunStep
from threadline.engine.context import budgets, build_context
from threadline.providers.base import ModelProvider, Usage
from threadline.store.base import StoreTx


class PromptCounter:
    def __init__(self, provider: Callable[[], ModelProvider]):
        self._make = provider
        self._provider: ModelProvider | None = None

    @property
    def provider(self) -> ModelProvider:
        if self._provider is None:
            self._provider = self._make()
        return self._provider

    async def prepare(self, model: str) -> None:
        """Have the model's tokenizer at hand before a transaction is opened to count."""
        await self.provider.prepare(model)

    async def count(self, tx: StoreTx, run: Run, steps: list[RunStep]) -> int:
        budget, _ = budgets(self.provider, run, Usage(0, 0))
        context = await build_context(tx, self.provider, run, steps, budget)
        response = run.get("response")
        if context.truncated and response and response.get("truncation") == "disabled":
            raise InvalidRequest(
                f"The input exceeds the {budget} tokens the prompt may use, and truncation is"
                " disabled.",
                param="input",
                code="context_length_exceeded",
            )
        return context.prompt_tokens
