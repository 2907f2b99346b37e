"""HTTP layer of the my service (docs/api.md, users). Rules live in ``service.py``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response

from services.common.cookies import clear_auth_cookies
from services.common.deps import CurrentUser, current_user
from services.common.errors import responses
from services.common.knowledge import Character
from services.my.schemas import (
    OwnedCharacterOut,
    OwnedCharacterRef,
    OwnershipOut,
    PointEntryOut,
    PointsOut,
    ProfileOut,
    ProfileUpdate,
)
from services.my.service import MyService

router = APIRouter(tags=["my"])
internal = APIRouter()  # mounted behind the internal token (services.common.app)


async def get_service(request: Request) -> MyService:
    # async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop
    # per request for a dictionary lookup.
    return request.app.state.my


ServiceDep = Annotated[MyService, Depends(get_service)]
JSON = "application/json"


@router.get("/me", response_model=ProfileOut, responses=responses((401, "TOKEN_*")))
async def me(request: Request) -> Response:
    # The hottest read of the app: no dependency injection (its resolution costs more than the
    # rest of this handler), the cached profile serialised straight to bytes, no response
    # validation. Same checks as ``CurrentUser``.
    claims = await current_user(request)
    view = await request.app.state.my.profile(claims.user_id)
    return Response(view.render(claims.provider), media_type=JSON)


@router.patch(
    "/me",
    response_model=ProfileOut,
    responses=responses((400, "NO_CHANGES_PROVIDED"), (400, "INVALID_PHONE_NUMBER"), (401, "TOKEN_*")),
)
async def update_me(
    claims: CurrentUser, service: ServiceDep, body: Annotated[ProfileUpdate | None, Body()] = None
) -> Response:
    view = await service.update(claims.user_id, body.changes() if body else {})
    return Response(view.render(claims.provider), media_type=JSON)


@router.delete("/me", status_code=204, responses=responses((401, "TOKEN_*")))
async def delete_me(request: Request, claims: CurrentUser, service: ServiceDep) -> Response:
    await service.delete(claims.user_id)
    response = Response(status_code=204)
    clear_auth_cookies(response, request.app.state.settings.cookie_domain)
    return response


def _owned_out(character: Character, source: str, acquired_at: object) -> OwnedCharacterOut:
    return OwnedCharacterOut.model_validate(
        {
            "id": character.id,
            "code": character.code,
            "name": character.name,
            "type": character.type,
            "dialog": character.dialog,
            "acquired_at": acquired_at,
            "source": source,
        }
    )


@router.get("/me/characters", response_model=list[OwnedCharacterOut], responses=responses((401, "TOKEN_*")))
async def my_characters(claims: CurrentUser, service: ServiceDep) -> list[OwnedCharacterOut]:
    return [_owned_out(o.character, o.source, o.acquired_at) for o in await service.characters(claims.user_id)]


@router.get(
    "/me/characters/{character_name}/ownership",
    response_model=OwnershipOut,
    responses=responses((404, "CHARACTER_NOT_FOUND"), (401, "TOKEN_*")),
)
async def ownership(character_name: str, claims: CurrentUser, service: ServiceDep) -> OwnershipOut:
    name, owned = await service.owns(claims.user_id, character_name)
    return OwnershipOut(character_name=name, owned=owned)


@router.get("/me/points", response_model=PointsOut, responses=responses((400, "INVALID_CURSOR"), (401, "TOKEN_*")))
async def points(
    claims: CurrentUser,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query()] = None,
) -> PointsOut:
    page = await service.points(claims.user_id, limit, cursor)
    return PointsOut(
        balance=page.balance,
        history=[PointEntryOut.model_validate(entry, from_attributes=True) for entry in page.entries],
        next_cursor=page.next_cursor,
    )


@internal.get("/{user_id}/characters", response_model=list[OwnedCharacterRef])
async def internal_characters(user_id: uuid.UUID, service: ServiceDep) -> list[OwnedCharacterRef]:
    """A user's owned characters for other services (chat's assistant: "what do I already have?"),
    which act for that user without holding their token. Same service function as ``/me/characters``."""
    return [OwnedCharacterRef(code=o.character.code, name=o.character.name) for o in await service.characters(user_id)]
