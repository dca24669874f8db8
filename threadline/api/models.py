"""`/models`: the model names this service serves, in OpenAI's shapes.

The list shows the models file's exact names; its patterns (`gpt-4o*`) are no ids a client
could send, so they are left out of the list, and a name one of them covers is found by
`GET /models/{id}`. With every name served (no models file, or the `THREADLINE_OPENAI_*`
upstream behind one) any id is found.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends
from starlette.responses import Response

from threadline.api.deps import Services, json_response, services
from threadline.config import Settings
from threadline.domain.errors import NotFound
from threadline.domain.records import Obj
from threadline.providers.models_file import ModelRoute
from threadline.service.models import ModelCatalog, ServedModel

router = APIRouter()


def model_catalog(settings: Settings, routes: tuple[ModelRoute, ...]) -> ModelCatalog:
    """The catalog of the models file's `routes`, or of its absence."""
    served = [ServedModel(route.name, route.kind) for route in routes]
    every_name = settings.models_file is None or settings.openai_base_url is not None
    return ModelCatalog(served, every_name=every_name, created=int(time.time()))


@router.get("/models")
async def list_models(svc: Services = Depends(services)) -> Response:
    catalog = svc.models
    data = [_model(model, catalog.created) for model in catalog.listed()]
    return json_response({"object": "list", "data": data})


# `:path`: model names may hold slashes (`meta-llama/Llama-3.1-8B-Instruct`).
@router.get("/models/{model_id:path}")
async def get_model(model_id: str, svc: Services = Depends(services)) -> Response:
    model = svc.models.find(model_id)
    if model is None:
        raise NotFound("model", model_id)
    # A name a pattern covers is answered under the name asked for.
    return json_response(_model(ServedModel(model_id, model.owned_by), svc.models.created))


def _model(model: ServedModel, created: int) -> Obj:
    return {"id": model.name, "object": "model", "created": created, "owned_by": model.owned_by}
