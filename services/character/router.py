"""HTTP layer of the character service: the public catalog (docs/api.md, character). Rewards are decided by
the scan pipeline in its own transaction (services/scan/reward.py); this service has no internal route."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.character.schemas import CatalogCharacter
from services.character.service import catalog

router = APIRouter(tags=["character"])


@router.get("/catalog", response_model=list[CatalogCharacter])
async def get_catalog(request: Request) -> Response:
    state = request.app.state
    if state.catalog_body is None:
        # The catalog changes only with a deploy: rendered once per process.
        state.catalog_body = orjson.dumps(catalog(state.settings.cdn_base_url))
    max_age = state.settings.catalog_max_age_seconds
    return Response(
        state.catalog_body, media_type="application/json", headers={"Cache-Control": f"public, max-age={max_age}"}
    )
