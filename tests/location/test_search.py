"""GET /search, /suggest and /centers/{id}: local matching and ranking, provider merge and fallback."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.common.config import CommonSettings, Environment
from services.common.db import Database
from services.location.app import create_app
from services.location.config import LocationSettings
from tests.location.conftest import (
    KECO_FILE,
    ZEROWASTE_FILE,
    load_public,
    load_sites,
    needs_public_data,
    site,
    site_ids,
)
from tests.location.fake_kakao import API_KEY, SLOW_SECONDS, FakeKakao, document
from tests.location.test_centers import ENTRY_FIELDS, SEOUL_CITY_HALL, offset
from tests.support.clients import app_client
from tests.support.servers import serve_asgi

SEARCH, SUGGEST, DETAIL = "/api/v1/locations/search", "/api/v1/locations/suggest", "/api/v1/locations/centers"
LAT, LON = SEOUL_CITY_HALL


@pytest.fixture(scope="module")
def kakao() -> Iterator[tuple[FakeKakao, str]]:
    fake = FakeKakao()
    with serve_asgi(fake.app()) as url:
        yield fake, url
        fake.released.set()  # a request still held by the slow mode ends now


@pytest.fixture
def provider_client(migrated: CommonSettings, kakao: tuple[FakeKakao, str]) -> Callable[..., Any]:
    fake, url = kakao
    fake.mode, fake.documents, fake.requests[:] = "ok", [], []

    def build(timeout: float = 3.0) -> Any:
        settings = LocationSettings(
            environment="test",
            place_search_provider="kakao",
            kakao_rest_api_key=API_KEY,
            kakao_local_base_url=url,
            provider_timeout_seconds=timeout,
        )
        return app_client(create_app(common=migrated, settings=settings))

    return build


@pytest.fixture
async def named_sites(location_db: Database) -> dict[str, int]:
    await load_sites(
        location_db,
        site(1, *offset(LAT, LON, north_m=300), name="마포 자원순환가게", keywords_site="망원, 재활용"),
        site(2, *offset(LAT, LON, north_m=100), name="우리동네 자원순환가게"),
        site(3, LAT, LON, name="시청 무인회수기", road_address="서울 중구 세종대로 110 자원순환 코너"),
        site(4, *offset(LAT, LON, east_m=8000), name="자원순환가게 강동점"),
        site(5, 35.1796, 129.0756, name="자원순환가게 부산점"),
        site(6, *offset(LAT, LON, north_m=20), name="순환 카페"),
    )
    return await site_ids(location_db)


async def test_search_ranks_anchor_then_distance(
    named_sites: dict[str, int], client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.get(SEARCH, params={"q": "  자원순환 "}, headers=auth)
    assert response.status_code == 200
    body = response.json()
    # anchor = name prefix match (강동점 before 부산점 by id); then matches within 5 km of it, nearest first
    assert [e["name"] for e in body] == ["자원순환가게 강동점"]
    assert body[0]["distance_text"] == "0m"
    assert list(body[0]) == ENTRY_FIELDS

    wide = (await client.get(SEARCH, params={"q": "자원순환", "radius": 10**9}, headers=auth)).json()
    # clamped to 20 km: the Seoul matches, not Busan; name-contains and address matches come along
    assert [e["name"] for e in wide] == [
        "자원순환가게 강동점", "시청 무인회수기", "우리동네 자원순환가게", "마포 자원순환가게",
    ]  # fmt: skip
    assert wide[1]["distance_km"] == pytest.approx(8.0, abs=0.01)


async def test_search_matches_partial_words_spacing_and_nfd(
    named_sites: dict[str, int], client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for q in ("우리 동네", unicodedata.normalize("NFD", "우리동네"), "동네자원"):
        body = (await client.get(SEARCH, params={"q": q}, headers=auth)).json()
        assert body[0]["name"] == "우리동네 자원순환가게", q
    keyword = (await client.get(SEARCH, params={"q": "망원"}, headers=auth)).json()
    assert [e["name"] for e in keyword] == ["마포 자원순환가게"]
    assert (await client.get(SEARCH, params={"q": "100%_"}, headers=auth)).json() == []  # wildcards are literal
    assert (await client.get(SEARCH, params={"q": "없는가게"}, headers=auth)).json() == []


async def test_suggest_order_limit_and_shape(
    named_sites: dict[str, int], client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = (await client.get(SUGGEST, params={"q": "순환"}, headers=auth)).json()
    assert [s["place_name"] for s in body] == [
        "순환 카페", "마포 자원순환가게", "우리동네 자원순환가게", "자원순환가게 강동점", "자원순환가게 부산점",
    ]  # fmt: skip
    assert list(body[0]) == ["place_name", "address", "latitude", "longitude", "place_url"]
    assert body[0]["place_url"] is None


@pytest.mark.parametrize("q", ["", "   ", "x" * 101])
@pytest.mark.parametrize("path", [SEARCH, SUGGEST])
async def test_query_validation_is_422(client: httpx.AsyncClient, auth: dict[str, str], path: str, q: str) -> None:
    assert (await client.get(path, params={"q": q}, headers=auth)).status_code == 422
    assert (await client.get(path, headers=auth)).status_code == 422


async def test_search_radius_must_be_an_integer(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    assert (await client.get(SEARCH, params={"q": "a", "radius": "x"}, headers=auth)).status_code == 422
    assert (await client.get(SEARCH, params={"q": "a", "radius": -1}, headers=auth)).status_code == 200


async def test_endpoints_need_a_user(client: httpx.AsyncClient) -> None:
    for path in (f"{SEARCH}?q=a", f"{SUGGEST}?q=a", f"{DETAIL}/1"):
        response = await client.get(path)
        assert response.status_code == 401
        assert response.json()["code"] == "TOKEN_MISSING"


# -- provider merge ------------------------------------------------------------------------------


async def test_provider_places_are_merged_deduplicated_and_negative(
    named_sites: dict[str, int], provider_client: Callable[..., Any], kakao: tuple[FakeKakao, str], auth: dict[str, str]
) -> None:
    fake, _ = kakao
    near_ours = offset(LAT, LON, north_m=130)  # 30 m from "우리동네 자원순환가게" → dropped
    fake.documents = [
        document("111", "우리동네 자원순환가게 2호", *near_ours),
        document("222", "자원순환 팝업", *offset(LAT, LON, east_m=1500)),
        document("333", "자원순환 멀리", 35.0, 129.0),  # outside the radius
        document("444", "자원순환 옆", *offset(LAT, LON, north_m=-600)),
    ]
    async with provider_client() as client:
        body = (await client.get(SEARCH, params={"q": "우리동네"}, headers=auth)).json()
    names = [e["name"] for e in body]
    assert names == ["우리동네 자원순환가게", "자원순환 옆", "자원순환 팝업"]
    external = body[1:]
    assert [e["id"] for e in external] == [-1, -2]
    for entry in external:
        assert list(entry) == ENTRY_FIELDS
        assert entry["source"] == "kakao"
        assert entry["store_category"] == "general"
        assert entry["pickup_categories"] == []
        assert (entry["is_holiday"], entry["is_open"], entry["start_time"], entry["end_time"]) == (None,) * 4
    assert external[0]["kakao_place_id"] == "444"
    assert external[0]["place_url"] == "http://place.map.kakao.com/444"
    assert external[0]["phone"] == "02-123-4567"
    sent = fake.requests[-1]
    assert sent["authorization"] == f"KakaoAK {API_KEY}"
    assert sent["query"] == "우리동네"
    assert sent["radius"] == "5000"
    assert float(sent["y"]) == pytest.approx(offset(LAT, LON, north_m=100)[0], abs=1e-6)


async def test_provider_anchor_when_nothing_local_matches(
    named_sites: dict[str, int], provider_client: Callable[..., Any], kakao: tuple[FakeKakao, str], auth: dict[str, str]
) -> None:
    fake, _ = kakao
    fake.documents = [document("900", "서울시청", LAT + 0.0001, LON)]  # ≈ 11 m from our site 3 → dropped
    async with provider_client() as client:
        body = (await client.get(SEARCH, params={"q": "서울시청", "radius": 400}, headers=auth)).json()
    # every local site within 400 m of the provider's first hit, whatever its name
    assert [e["name"] for e in body] == ["순환 카페", "시청 무인회수기", "우리동네 자원순환가게", "마포 자원순환가게"]
    assert all(e["id"] > 0 for e in body)
    assert "x" not in fake.requests[-1]

    fake.documents = [document("901", "남산타워", 37.5512, 126.9882)]
    async with provider_client() as client:
        body = (await client.get(SEARCH, params={"q": "남산타워", "radius": 100}, headers=auth)).json()
    assert [(e["id"], e["name"], e["distance_text"]) for e in body] == [(-1, "남산타워", "0m")]


async def test_suggest_merges_provider_after_local_and_dedupes(
    named_sites: dict[str, int], provider_client: Callable[..., Any], kakao: tuple[FakeKakao, str], auth: dict[str, str]
) -> None:
    fake, _ = kakao
    ours = offset(LAT, LON, north_m=300)
    fake.documents = [
        document("1", "마포 자원순환가게", ours[0] + 0.0002, ours[1]),  # same name, ≈ 22 m → duplicate
        document("2", "망원 시장", 37.556, 126.905),
        document("3", "망원 한강공원", 37.555, 126.894),
    ]
    async with provider_client() as client:
        body = (await client.get(SUGGEST, params={"q": "망원"}, headers=auth)).json()
    assert [s["place_name"] for s in body] == ["마포 자원순환가게", "망원 시장", "망원 한강공원"]
    assert body[1]["place_url"] == "http://place.map.kakao.com/2"


@pytest.mark.parametrize("mode", ["error", "slow", "garbage"])
async def test_provider_failure_falls_back_to_local(
    named_sites: dict[str, int],
    provider_client: Callable[..., Any],
    kakao: tuple[FakeKakao, str],
    auth: dict[str, str],
    mode: str,
) -> None:
    fake, _ = kakao
    fake.mode = mode
    fake.documents = [document("1", "우리동네 새 가게", LAT, LON + 0.01)]
    started = datetime.now(UTC)
    async with provider_client(timeout=0.5) as client:
        search = await client.get(SEARCH, params={"q": "우리동네"}, headers=auth)
        suggest = await client.get(SUGGEST, params={"q": "우리동네"}, headers=auth)
        nothing = await client.get(SEARCH, params={"q": "전혀없음"}, headers=auth)
    # Three calls with a 0.5 s provider timeout: nowhere near one provider answer (SLOW_SECONDS); the
    # margin absorbs a loaded CI machine, the bound still proves no call waited for the provider.
    assert (datetime.now(UTC) - started).total_seconds() < SLOW_SECONDS / 2
    assert search.status_code == suggest.status_code == nothing.status_code == 200
    assert [e["name"] for e in search.json()] == ["우리동네 자원순환가게"]
    assert [s["place_name"] for s in suggest.json()] == ["우리동네 자원순환가게"]
    assert nothing.json() == []
    assert len(fake.requests) == 3


def test_provider_timeout_defaults_to_three_seconds() -> None:
    assert LocationSettings(environment="test").provider_timeout_seconds == 3.0
    assert not LocationSettings(environment="test", place_search_provider="kakao").provider_enabled
    assert LocationSettings(environment="test", place_search_provider="none").place_search_provider is None


# -- detail -------------------------------------------------------------------------------------


@pytest.fixture
async def public(location_db: Database) -> dict[str, int]:
    if not (KECO_FILE.is_file() and ZEROWASTE_FILE.is_file()):
        pytest.skip(needs_public_data.kwargs["reason"])
    await load_public(location_db)
    return await site_ids(location_db)


async def test_detail_of_a_keco_site(migrated: CommonSettings, public: dict[str, int], auth: dict[str, str]) -> None:
    app = create_app(common=migrated, settings=LocationSettings(environment="test"))
    async with app_client(app) as client:
        # A Tuesday, 12:30 in Seoul: 고양동 종합복지회관 is open 11:00 ~ 14:00 on Tuesdays.
        app.state.locations.clock = lambda: datetime(2026, 1, 20, 3, 30, tzinfo=UTC)
        body = (await client.get(f"{DETAIL}/{public['1']}", headers=auth)).json()
    assert list(body) == [f for f in ENTRY_FIELDS if not f.startswith("distance")] + [
        "lot_address", "collection_items", "introduction",
    ]  # fmt: skip
    assert body["name"] == "고양동 종합복지회관"
    assert body["road_address"] == "고양시 덕양구 혜음로 19-11"
    assert body["lot_address"] == "경기도 고양시 덕양구 고양동 233-2"
    assert body["phone"] == "031-8075-2706"
    assert body["collection_items"].startswith("투명페트병\n")
    assert (body["is_holiday"], body["is_open"], body["start_time"], body["end_time"]) == (
        False,
        True,
        "11:00",
        "14:00",
    )
    assert body["pickup_categories"] == ["colored_pet", "can", "paper", "plastic"]
    assert body["store_category"] == "upcycle_recycle"


async def test_detail_of_a_zerowaste_site_without_hours(
    public: dict[str, int], client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = (await client.get(f"{DETAIL}/{public['780218107']}", headers=auth)).json()
    assert body["source"] == "zerowaste"
    assert body["name"] == "프릿지"
    assert body["pickup_categories"] == ["general"]
    assert (body["is_holiday"], body["is_open"], body["start_time"], body["end_time"], body["phone"]) == (None,) * 5


@pytest.mark.parametrize("center_id", ["0", "-1", "999999999", str(2**63), str(-(2**70))])
async def test_unknown_or_external_ids_are_404(
    public: dict[str, int], client: httpx.AsyncClient, auth: dict[str, str], center_id: str
) -> None:
    response = await client.get(f"{DETAIL}/{center_id}", headers=auth)
    assert response.status_code == 404
    assert response.json() == {"detail": f"location {center_id} not found", "code": "LOCATION_NOT_FOUND"}


async def test_non_integer_id_is_422(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    assert (await client.get(f"{DETAIL}/abc", headers=auth)).status_code == 422
    assert (await client.get(f"{DETAIL}/1.5", headers=auth)).status_code == 422


@pytest.fixture
async def dev_app(migrated: CommonSettings, location_db: Database) -> Callable[[], Any]:
    await load_sites(location_db)  # empty table
    dev = migrated.model_copy(update={"environment": Environment.DEVELOPMENT})
    return lambda: app_client(create_app(common=dev, settings=LocationSettings(environment="development")))


async def test_dev_loads_the_sample_sites_once(
    dev_app: Callable[[], Any], location_db: Database, migrated: CommonSettings
) -> None:
    from tests.support.tokens import auth_headers

    for _ in range(2):  # a second start finds the table filled and adds nothing
        async with dev_app() as client:
            headers = auth_headers(migrated)
            body = (
                await client.get(DETAIL[:-8] + "/centers", params={"lat": LAT, "lon": LON, "zoom": 5}, headers=headers)
            ).json()
    assert len(await site_ids(location_db)) == 26
    assert body
    assert all(e["name"].endswith("(샘플)") for e in body)
