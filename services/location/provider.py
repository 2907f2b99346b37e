"""External place search (docs/api.md, locations: search): Kakao Local keyword search, optional and never fatal.

Every failure — timeout (3 s for the whole call), connection error, non-2xx, malformed body — is
logged and answered with no places, so search and suggest fall back to our own data silently.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from services.common.logging import get_logger

log = get_logger("eco2.location.provider")
KAKAO_MAX_RADIUS_M = 20_000  # the keyword API's own ceiling
KAKAO_PAGE_SIZE = 15


@dataclass(frozen=True)
class Place:
    id: str
    name: str
    address: str | None
    latitude: float
    longitude: float
    place_url: str | None
    phone: str | None


class PlaceSearch(Protocol):
    async def search(
        self, query: str, *, lat: float | None = None, lon: float | None = None, radius_m: int | None = None
    ) -> list[Place]: ...


class KakaoLocal:
    def __init__(self, http: httpx.AsyncClient, *, base_url: str, api_key: str, timeout: float) -> None:
        self.http = http
        self.url = f"{base_url}/v2/local/search/keyword.json"
        self.api_key = api_key
        self.timeout = timeout

    async def search(
        self, query: str, *, lat: float | None = None, lon: float | None = None, radius_m: int | None = None
    ) -> list[Place]:
        params: dict[str, str | int] = {"query": query, "size": KAKAO_PAGE_SIZE}
        if lat is not None and lon is not None:
            params |= {"x": f"{lon:.7f}", "y": f"{lat:.7f}"}
            if radius_m is not None:
                params["radius"] = max(0, min(int(radius_m), KAKAO_MAX_RADIUS_M))
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.http.get(
                    self.url, params=params, headers={"Authorization": f"KakaoAK {self.api_key}"}
                )
            response.raise_for_status()
            documents = response.json()["documents"]
            return [place for doc in documents if (place := _place(doc)) is not None]
        except (TimeoutError, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("place_search_failed", provider="kakao", error=type(exc).__name__, detail=str(exc)[:200])
            return []


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _place(doc: Any) -> Place | None:
    """One document, or None when it cannot be placed (a bad entry must not spoil the others)."""
    if not isinstance(doc, dict):
        return None
    try:
        lon, lat = float(doc["x"]), float(doc["y"])
    except (KeyError, TypeError, ValueError):
        return None
    name, place_id = _text(doc.get("place_name")), _text(doc.get("id"))
    if not (name and place_id and math.isfinite(lat) and math.isfinite(lon)) or not (-90 <= lat <= 90):
        return None
    return Place(
        id=place_id,
        name=name,
        address=_text(doc.get("road_address_name")) or _text(doc.get("address_name")),
        latitude=lat,
        longitude=lon,
        place_url=_text(doc.get("place_url")),
        phone=_text(doc.get("phone")),
    )
