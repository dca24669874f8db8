"""The model names this service serves, as the API sees them: to list, and to refuse a run
or an assistant naming a model nobody serves when it is created, not when its run fails.

Built once at start from the models file (or from its absence); it knows names, never the
providers behind them, so an API process that builds none can still check a name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from threadline.domain.errors import InvalidRequest
from threadline.domain.model_names import is_pattern, name_matches


@dataclass(frozen=True)
class ServedModel:
    """An entry of the models file: `name` is a model name or a pattern; `owned_by` says
    which kind of provider serves it."""

    name: str
    owned_by: str

    @property
    def is_pattern(self) -> bool:
        return is_pattern(self.name)


class ModelCatalog:
    def __init__(self, models: Sequence[ServedModel], *, every_name: bool, created: int):
        """`every_name`: names no entry claims are served too (no models file, or the
        `THREADLINE_OPENAI_*` upstream behind one). `created` is what the list shows as
        each model's `created`: the time the service started serving it."""
        self.models = tuple(models)
        self.every_name = every_name
        self.created = created

    def listed(self) -> list[ServedModel]:
        """What `GET /v1/models` shows: the exact names only, since a pattern is no name a
        client could send; a name a pattern covers is still found by `find`."""
        return [model for model in self.models if not model.is_pattern]

    def find(self, name: str) -> ServedModel | None:
        """The entry that serves `name` (the first that matches, as the router takes it)."""
        for model in self.models:
            if name_matches(model.name, name):
                return model
        if self.every_name:
            return ServedModel(name, "threadline")
        return None

    def require_served(self, model: str, param: str = "model") -> None:
        if not self.every_name and self.find(model) is None:
            raise InvalidRequest(
                f"The model '{model}' is not served here; GET /v1/models lists those that are.",
                param=param,
                code="model_not_found",
            )


# Today's behaviour where no models file is given: every name is served.
EVERY_NAME = ModelCatalog((), every_name=True, created=0)
