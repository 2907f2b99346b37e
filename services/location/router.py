"""HTTP layer of the location service (docs/api.md, locations). Rules live in ``service.py``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from services.common.deps import CurrentUser, SessionDep
from services.common.errors import responses
from services.common.schemas import Text, TrimmedText
from services.location.reads import ReadSessions
from services.location.schemas import LocationDetail, LocationEntry, Suggestion
from services.location.service import LocationService

router = APIRouter(tags=["locations"])
internal = APIRouter()  # mounted behind the internal token (services.common.app)


async def get_service(request: Request) -> LocationService:
    return request.app.state.locations


async def get_reads(request: Request) -> ReadSessions:
    return request.app.state.location_reads


ServiceDep = Annotated[LocationService, Depends(get_service)]
ReadsDep = Annotated[ReadSessions, Depends(get_reads)]
# Trimmed first, then 1–100 code points: a blank query is a 422 like any other invalid value.
SearchQuery = Annotated[TrimmedText, Query(min_length=1, max_length=100)]


@router.get(
    "/centers",
    response_model=list[LocationEntry],
    responses=responses((400, "INVALID_STORE_CATEGORY"), (400, "INVALID_PICKUP_CATEGORY")),
)
async def centers(
    _: CurrentUser,
    reads: ReadsDep,
    service: ServiceDep,
    lat: Annotated[float, Query(ge=-90, le=90)],
    lon: Annotated[float, Query(ge=-180, le=180)],
    zoom: int | None = None,
    radius: Annotated[int | None, Query(description="metres; clamped to 100..80000, never rejected")] = None,
    store_category: Annotated[Text | None, Query(description="comma-separated, or `all`")] = None,
    pickup_category: Annotated[Text | None, Query(description="comma-separated, or `all`")] = None,
) -> Response:
    # Already the JSON of list[LocationEntry] (the response_model documents it): no per-entry models.
    # One autocommit round trip per query instead of ping + BEGIN + query + COMMIT (reads.py).
    body = await reads.run(
        lambda session: service.centers_json(
            session,
            lat=lat,
            lon=lon,
            zoom=zoom,
            radius=radius,
            store_category=store_category,
            pickup_category=pickup_category,
        )
    )
    return Response(body, media_type="application/json")


@router.get("/search", response_model=list[LocationEntry])
async def search(
    _: CurrentUser,
    session: SessionDep,
    service: ServiceDep,
    q: SearchQuery,
    radius: Annotated[int, Query(description="metres; clamped to 100..20000")] = 5000,
) -> list[LocationEntry]:
    return await service.search(session, q, radius)


@router.get("/suggest", response_model=list[Suggestion])
async def suggest(_: CurrentUser, session: SessionDep, service: ServiceDep, q: SearchQuery) -> list[Suggestion]:
    return await service.suggest(session, q)


@router.get("/centers/{center_id}", response_model=LocationDetail, responses=responses((404, "LOCATION_NOT_FOUND")))
async def detail(_: CurrentUser, session: SessionDep, service: ServiceDep, center_id: int) -> LocationDetail:
    return await service.detail(session, center_id)


@internal.get("/centers", response_model=list[LocationEntry])
async def internal_centers(
    session: SessionDep,
    service: ServiceDep,
    lat: Annotated[float, Query(ge=-90, le=90)],
    lon: Annotated[float, Query(ge=-180, le=180)],
    radius: int | None = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
    store_category: Text | None = None,
    pickup_category: Text | None = None,
) -> list[LocationEntry]:
    """The nearby query for other services (chat's assistant: "the nearest centres"), which act for a
    user whose token they do not hold. Same service function as ``/centers``; only the nearest
    ``limit`` entries are returned."""
    entries = await service.centers(
        session,
        lat=lat,
        lon=lon,
        zoom=None,
        radius=radius,
        store_category=store_category,
        pickup_category=pickup_category,
    )
    return entries[:limit]
