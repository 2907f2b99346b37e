"""Attacks with values JSON should not carry and text no person types (issue 12.3, 12.8).

Every JSON body of every registered service (taken from its OpenAPI document, so services added
later are covered) receives ``NaN``, ``Infinity``, a number that overflows to infinity and a lone
surrogate; every text input receives control characters. Each answer is a 4xx with the contract's
body (FastAPI's 422 shape or ``{"detail", "code"}``), never a 500, in both test modes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError

from services.common.config import CommonSettings
from services.gateway import create_gateway
from services.registry import SERVICES
from services.scan.schemas import ScanRequest
from tests.support.clients import BASE_URL
from tests.support.tokens import auth_headers

BAD_JSON_VALUES = ["NaN", "Infinity", "-Infinity", "1e999", '"\\ud800"', '"a\\udc00b"']


@pytest.fixture(scope="module")
async def gateway(migrated: CommonSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_gateway(list(SERVICES.values()), migrated, run_workers=False)
    async with LifespanManager(app, startup_timeout=60) as manager:  # type: ignore[arg-type]
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client


@pytest.fixture(scope="module")
async def documents(gateway: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    return {name: (await gateway.get(f"{e.prefix}/openapi.json")).json() for name, e in SERVICES.items()}


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield method, path, operation


def concrete(path: str) -> str:
    """A path template with every parameter filled (``{channel}`` gets a real channel)."""
    filled = path.replace("{channel}", "scan")
    while "{" in filled:
        start, end = filled.index("{"), filled.index("}")
        filled = filled[:start] + str(uuid.uuid4()) + filled[end + 1 :]
    return filled


def body_fields(document: dict[str, Any], operation: dict[str, Any]) -> list[str]:
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is None:
        return []
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return list(schema.get("properties", {})) or ["value"]


def assert_contract_4xx(response: httpx.Response, what: str) -> None:
    assert 400 <= response.status_code < 500, (what, response.status_code, response.text)
    body = response.json()
    if response.status_code == 422:
        assert isinstance(body["detail"], list), what
    else:
        assert set(body) == {"detail", "code"}, (what, body)


async def test_non_json_numbers_and_lone_surrogates_are_4xx_everywhere(
    gateway: httpx.AsyncClient, documents: dict[str, dict[str, Any]], migrated: CommonSettings
) -> None:
    headers = {**auth_headers(migrated), "Content-Type": "application/json"}
    sent = 0
    for name, document in documents.items():
        for method, path, operation in operations(document):
            for field in body_fields(document, operation):
                for value in BAD_JSON_VALUES:
                    raw = f'{{"{field}": {value}}}'.encode()
                    response = await gateway.request(method.upper(), concrete(path), content=raw, headers=headers)
                    assert_contract_4xx(response, f"{name} {method} {path} {raw!r}")
                    sent += 1
    assert sent > 0


@pytest.mark.parametrize(
    ("method", "path"), [("PATCH", "/api/v1/users/me"), ("POST", "/api/v1/scan"), ("POST", "/api/v1/images/scan")]
)
@pytest.mark.parametrize("value", ["NaN", '"\\ud800"'])
async def test_reported_cases(
    gateway: httpx.AsyncClient, migrated: CommonSettings, method: str, path: str, value: str
) -> None:
    field = {"/api/v1/users/me": "nickname", "/api/v1/scan": "image_url"}.get(path, "filename")
    headers = {**auth_headers(migrated), "Content-Type": "application/json"}
    response = await gateway.request(method, path, content=f'{{"{field}": {value}}}'.encode(), headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("control", ["\x00", "\x07", "\x1b", "\x7f", "\x85"])
async def test_control_characters_refused_in_text_inputs(
    gateway: httpx.AsyncClient, migrated: CommonSettings, control: str
) -> None:
    headers = auth_headers(migrated)
    # Inside the text: trimming may remove a leading or trailing one that Python counts as whitespace.
    for query in ({"q": f"{control}zzzz"} if control == "\x00" else {"q": f"z{control}zzz"}, {"q": f"재활{control}용"}):
        for path in ("/api/v1/locations/search", "/api/v1/locations/suggest"):
            response = await gateway.get(path, params=query, headers=headers)
            assert response.status_code == 422, (path, query, response.text)
    centers = await gateway.get(
        "/api/v1/locations/centers",
        params={"lat": 37.5, "lon": 127, "store_category": f"all{control}"},
        headers=headers,
    )
    assert centers.status_code == 422
    bodies = [
        ("PATCH", "/api/v1/users/me", {"nickname": f"에{control}코"}),
        ("PATCH", "/api/v1/users/me", {"phone_number": f"010{control}1234{control}5678"}),
        ("POST", "/api/v1/images/scan", {"filename": f"a{control}b.png", "content_type": "image/png"}),
        ("POST", "/api/v1/images/scan/callback", {"key": f"scan/{control}x"}),
        ("POST", "/api/v1/scan", {"image_url": f"https://cdn.eco2.test/scan/{control}.png"}),
        ("POST", "/api/v1/scan", {"image_url": "https://cdn.eco2.test/a.png", "user_input": f"no{control}te"}),
    ]
    for method, path, body in bodies:
        response = await gateway.request(method, path, json=body, headers=headers)
        assert response.status_code == 422, (path, body, response.text)
        assert_contract_4xx(response, path)


def test_line_breaks_stay_allowed_in_free_text() -> None:
    # Multi-line notes are text a person writes: only the other control characters are refused.
    note = ScanRequest(image_url="https://cdn.eco2.test/a.png", user_input="첫 줄\r\n둘째 줄\t끝")
    assert note.user_input == "첫 줄\r\n둘째 줄\t끝"
    with pytest.raises(ValidationError):
        ScanRequest(image_url="https://cdn.eco2.test/a.png", user_input="첫 줄\x0b끝")
    with pytest.raises(ValidationError):
        ScanRequest(image_url="https://cdn.eco2.test/a\n.png")  # single-line text: no line break either


async def test_wrong_method_lists_every_method_of_the_path(gateway: httpx.AsyncClient) -> None:
    # FastAPI keeps one route per method; the 405 must still name them all (RFC 9110).
    response = await gateway.put("/api/v1/users/me")
    assert response.status_code == 405
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"
    assert response.headers["allow"] == "DELETE, GET, PATCH"
