"""HTTP layer of the character service: the public catalog (contract §6) and the internal reward
endpoint the scan service calls (``/internal/...``: never routed by the public ingress, not in the
public OpenAPI schema)."""

from __future__ import annotations

import hmac
import time
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response

from services.character.schemas import CatalogCharacter, RewardRequest, RewardResponse
from services.character.service import ScanOutcome, catalog, decide
from services.common.deps import SessionDep, get_runtime
from services.common.errors import Unauthorized

router = APIRouter(prefix="/api/v1/character", tags=["character"])
internal = APIRouter(prefix="/internal/v1/character", include_in_schema=False)


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


async def require_internal_token(request: Request, x_internal_token: Annotated[str | None, Header()] = None) -> None:
    expected = get_runtime(request).common.internal_token.encode()
    if x_internal_token is None or not hmac.compare_digest(x_internal_token.encode(), expected):
        raise Unauthorized("internal token missing or wrong", "INTERNAL_AUTH_FAILED")


@internal.post("/rewards", response_model=RewardResponse, dependencies=[Depends(require_internal_token)])
async def reward(body: RewardRequest, request: Request, session: SessionDep) -> RewardResponse:
    decision = await decide(session, ScanOutcome.of(body), rewards_enabled=request.app.state.settings.rewards_enabled)
    return RewardResponse.model_validate(decision.to_dict())
