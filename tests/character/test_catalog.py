"""``GET /api/v1/character/catalog`` (docs/api.md, character)."""

from __future__ import annotations

import httpx

from services.character.app import create_app
from services.character.config import CharacterSettings
from services.common.config import CommonSettings
from services.common.knowledge import characters
from tests.support.clients import app_client

CONTRACT = [
    ("이코", "char-eco", None),
    ("페이피", "char-paepy", "종이"),
    ("팩토리", "char-factory", "종이팩"),
    ("페티", "char-petty", "무색페트병"),
    ("플리", "char-plea", "플라스틱류"),
    ("비니", "char-bini", "비닐류"),
    ("폼이", "char-foamy", "발포합성수지"),
    ("글래시", "char-glassy", "유리병"),
    ("메탈리", "char-metally", "금속류"),
    ("코튼", "char-cotton", "의류및원단"),
    ("배리", "char-barry", "전지"),
    ("라이티", "char-lighty", "조명제품"),
    ("일렉", "char-elec", "전기전자제품"),
]


async def test_catalog_is_the_contract_list_mascot_first(character_client: httpx.AsyncClient) -> None:
    response = await character_client.get("/api/v1/character/catalog", headers={"Origin": "https://app.eco2.test"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["access-control-allow-origin"] == "https://app.eco2.test"
    body = response.json()
    assert isinstance(body, list)
    assert sorted((c["name"], c["code"], c["match"]) for c in body) == sorted(CONTRACT)
    assert body[0]["name"] == "이코"
    assert body[0]["match"] is None
    ids = {c.code: str(c.id) for c in characters()}
    for entry in body:
        assert set(entry) == {"id", "code", "name", "type", "dialog", "match", "image_url"}
        assert entry["id"] == ids[entry["code"]]
        assert entry["type"]
        assert entry["dialog"]
        assert entry["image_url"] is None
    # Cookies are ignored: the catalog needs no authentication, even with a broken token.
    again = await character_client.get("/api/v1/character/catalog", headers={"Authorization": "Bearer nope"})
    assert again.status_code == 200
    assert again.json() == body


async def test_image_urls_come_from_the_cdn_setting(migrated: CommonSettings) -> None:
    settings = CharacterSettings(environment="test", cdn_base_url="https://cdn.eco2.test/")
    async with app_client(create_app(common=migrated, settings=settings)) as client:
        body = (await client.get("/api/v1/character/catalog")).json()
    assert body[0]["image_url"] == "https://cdn.eco2.test/character/eco.png"
    assert {c["code"]: c["image_url"] for c in body}["char-elec"] == "https://cdn.eco2.test/character/monitor.png"


async def test_internal_routes_are_not_in_the_public_schema(character_client: httpx.AsyncClient) -> None:
    schema = (await character_client.get("/api/v1/character/openapi.json")).json()
    assert "/api/v1/character/catalog" in schema["paths"]
    assert not [path for path in schema["paths"] if path.startswith("/internal")]
