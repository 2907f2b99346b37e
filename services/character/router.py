"""HTTP layer of the character service: the public catalog (docs/api.md, character) and the internal reward
endpoint the scan service calls (``/internal/...``: never routed by the public ingress, not in the
public OpenAPI schema)."""

from __future__ import annotations

import time

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.character.schemas import CatalogCharacter, RewardRequest, RewardResponse
from services.character.service import ScanOutcome, catalog, decide
from services.common.deps import SessionDep

router = APIRouter(tags=["character"])
internal = APIRouter()  # mounted behind the internal token (services.common.app)


@router.get("/catalog", response_model=list[CatalogCharacter])
async def get_catalog(request: Request, session: SessionDep) -> Response:
    state = request.app.state
    max_age = state.settings.catalog_max_age_seconds
    cached: tuple[float, bytes] | None = state.catalog_cache
    if cached is None or cached[0] < time.monotonic():
        # The catalog changes only with a migration (and a deploy): keep the rendered body as long
        # as clients may cache it.
        body = orjson.dumps(await catalog(session, state.settings.cdn_base_url))
        cached = (time.monotonic() + max_age, body)
        state.catalog_cache = cached
    return Response(cached[1], media_type="application/json", headers={"Cache-Control": f"public, max-age={max_age}"})


@internal.post("/rewards", response_model=RewardResponse)
async def reward(body: RewardRequest, request: Request, session: SessionDep) -> RewardResponse:
    decision = await decide(session, ScanOutcome.of(body), rewards_enabled=request.app.state.settings.rewards_enabled)
    return RewardResponse.model_validate(decision.to_dict())
