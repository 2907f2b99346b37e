"""Response bodies of the location endpoints (docs/api.md, locations). Every field is always present."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

Source = Literal["keco", "zerowaste", "kakao"]


class LocationEntry(BaseModel):
    id: int
    name: str
    source: Source
    road_address: str | None
    latitude: float
    longitude: float
    distance_km: float
    distance_text: str
    store_category: str
    pickup_categories: list[str]
    is_holiday: bool | None
    is_open: bool | None
    start_time: str | None
    end_time: str | None
    phone: str | None
    place_url: str | None
    kakao_place_id: str | None


class LocationDetail(BaseModel):
    id: int
    name: str
    source: Source
    road_address: str | None
    latitude: float
    longitude: float
    store_category: str
    pickup_categories: list[str]
    is_holiday: bool | None
    is_open: bool | None
    start_time: str | None
    end_time: str | None
    phone: str | None
    place_url: str | None
    kakao_place_id: str | None
    lot_address: str | None
    collection_items: str | None
    introduction: str | None


class Suggestion(BaseModel):
    place_name: str
    address: str | None
    latitude: float
    longitude: float
    place_url: str | None
