"""Internal HTTP clients of the services the tools read: location (nearby sites), my (owned characters)
and image (resolving a photo for the vision path).

Service-to-service calls (``/internal/v1/...`` with ``X-Internal-Token``), never the public routes:
the assistant acts for the user of the job, whose token it does not hold, and the internal routes take
the user id from the job, never from the model. In ``eco2 dev`` every service sits behind one gateway,
so each base URL defaults to ``PUBLIC_API_BASE_URL`` (as scan's ``character_base`` does).
"""

from __future__ import annotations

import uuid

import httpx
from pydantic import BaseModel, TypeAdapter

from services.common.internal import internal_headers
from services.common.logging import get_logger
from services.registry import SERVICES

log = get_logger("eco2.chat.agent")


class ToolUnavailable(Exception):
    """A backing service could not answer (down, timed out, refused): the stage fails, the answer says so."""


class Site(BaseModel):
    """The fields of a location entry the assistant uses (docs/api.md, locations)."""

    id: int
    name: str
    road_address: str | None = None
    distance_km: float
    distance_text: str
    store_category: str
    pickup_categories: list[str] = []
    is_open: bool | None = None
    start_time: str | None = None
    end_time: str | None = None
    phone: str | None = None


class OwnedCharacter(BaseModel):
    code: str
    name: str


class VerifiedImage(BaseModel):
    key: str
    content_type: str


_SITES = TypeAdapter(list[Site])
_OWNED = TypeAdapter(list[OwnedCharacter])


class InternalClient:
    def __init__(self, http: httpx.AsyncClient, token: str, timeout: float) -> None:
        self.http = http
        self.token = token
        self.timeout = timeout

    async def _get(self, url: str, params: dict[str, str | int | float] | None = None) -> httpx.Response:
        try:
            response = await self.http.get(
                url, params=params, headers=internal_headers(self.token), timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            log.warning("tool_service_unreachable", url=url, error=repr(exc))
            raise ToolUnavailable(url) from exc
        if response.status_code != 200:
            log.warning("tool_service_error", url=url, status=response.status_code)
            raise ToolUnavailable(f"{url}: {response.status_code}")
        return response


class LocationClient(InternalClient):
    def __init__(self, http: httpx.AsyncClient, base: str, token: str, timeout: float = 3.0) -> None:
        super().__init__(http, token, timeout)
        self.url = SERVICES["location"].internal_url(base, "/centers")

    async def nearby(
        self,
        latitude: float,
        longitude: float,
        *,
        radius_m: int = 5000,
        limit: int = 5,
        store_category: str | None = None,
        pickup_category: str | None = None,
    ) -> list[Site]:
        params: dict[str, str | int | float] = {"lat": latitude, "lon": longitude, "radius": radius_m, "limit": limit}
        if store_category:
            params["store_category"] = store_category
        if pickup_category:
            params["pickup_category"] = pickup_category
        response = await self._get(self.url, params)
        return _SITES.validate_python(response.json())[:limit]


class OwnedClient(InternalClient):
    def __init__(self, http: httpx.AsyncClient, base: str, token: str, timeout: float = 3.0) -> None:
        super().__init__(http, token, timeout)
        self.base = base

    async def owned(self, user_id: uuid.UUID) -> list[OwnedCharacter]:
        response = await self._get(SERVICES["my"].internal_url(self.base, f"/{user_id}/characters"))
        return _OWNED.validate_python(response.json())


class ImageClient(InternalClient):
    """The image service's allow-list answer for a photo (the same ``/resolve`` scan calls)."""

    def __init__(self, http: httpx.AsyncClient, base: str, token: str, timeout: float = 5.0) -> None:
        super().__init__(http, token, timeout)
        self.url = SERVICES["image"].internal_url(base, "/resolve")

    async def resolve(self, image_url: str, user_id: uuid.UUID) -> VerifiedImage:
        try:
            response = await self.http.post(
                self.url,
                json={"image_url": image_url, "user_id": str(user_id)},
                headers=internal_headers(self.token),
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise ToolUnavailable(self.url) from exc
        if response.status_code != 200:
            raise ToolUnavailable(f"{self.url}: {response.status_code}")
        return VerifiedImage.model_validate(response.json())
