"""HTTP layer of the character service: the public catalog (docs/api.md, character) and the internal reward
endpoint the scan service calls (``/internal/...``: never routed by the public ingress, not in the
public OpenAPI schema)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.character.schemas import CatalogCharacter, RewardRequest, RewardResponse
from services.character.service import ScanOutcome, catalog, decide
from services.common.deps import SessionDep

router = APIRouter(tags=["character"])
internal = APIRouter()  # mounted behind the internal token (services.common.app)


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


@internal.post("/rewards", response_model=RewardResponse)
async def reward(body: RewardRequest, request: Request, session: SessionDep) -> RewardResponse:
    decision = await decide(session, ScanOutcome.of(body), rewards_enabled=request.app.state.settings.rewards_enabled)
    return RewardResponse.model_validate(decision.to_dict())
