"""Weather (KMA short-term forecast) and web search (SearXNG JSON) adapters against local servers
speaking those protocols, and the answers built on them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.chat.agent.build import build_assistant
from services.chat.agent.clients import ToolUnavailable
from services.chat.agent.config import AgentSettings
from services.chat.agent.weather import KmaForecast, Weather, kma_grid, latest_issue, weather_tips
from services.common.config import CommonSettings
from tests.chat.agent.conftest import SEOUL_CITY_HALL, RecordingEmitter, ask
from tests.support.servers import serve_asgi


class FakeKma:
    """The KMA ``getVilageFcst`` endpoint: forecast rows per (date, time, category)."""

    def __init__(self, rows: dict[str, dict[str, str]], result_code: str = "00") -> None:
        self.rows = rows  # "YYYYMMDDHHMM" -> {category: value}
        self.result_code = result_code
        self.requests: list[dict[str, str]] = []

    async def forecast(self, request: Request) -> JSONResponse:
        self.requests.append(dict(request.query_params))
        items = [
            {"baseDate": request.query_params["base_date"], "baseTime": request.query_params["base_time"],
             "category": cat, "fcstDate": stamp[:8], "fcstTime": stamp[8:], "fcstValue": value,
             "nx": int(request.query_params["nx"]), "ny": int(request.query_params["ny"])}
            for stamp, values in self.rows.items() for cat, value in values.items()
        ]  # fmt: skip
        header = {"resultCode": self.result_code, "resultMsg": "NORMAL_SERVICE" if self.result_code == "00" else "ERR"}
        body = {"dataType": "JSON", "items": {"item": items}, "pageNo": 1, "numOfRows": 300, "totalCount": len(items)}
        return JSONResponse({"response": {"header": header, "body": body}})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/getVilageFcst", self.forecast)])


# 2026-07-15 14:10 KST: the 14:00 run is not published yet (we wait 15 minutes), so 11:00 is asked.
NOW = datetime(2026, 7, 15, 5, 10, tzinfo=UTC)
RAINY_HOT = {
    "202607151400": {"TMP": "31", "REH": "90", "PTY": "1", "SKY": "4", "POP": "80"},
    "202607151500": {"TMP": "29", "REH": "70", "PTY": "0", "SKY": "1", "POP": "10"},
}


@pytest.fixture
def kma() -> Iterator[tuple[FakeKma, str]]:
    fake = FakeKma(RAINY_HOT)
    with serve_asgi(fake.app()) as url:
        yield fake, url


def test_grid_conversion_matches_the_kma_table() -> None:
    # Published grid points: Seoul Jung-gu 60/127, Busan 98/76, Jeju 53/38.
    assert kma_grid(37.5665, 126.9780) == (60, 127)
    assert kma_grid(35.1796, 129.0756) == (98, 76)
    assert kma_grid(33.4996, 126.5312) == (53, 38)


def test_latest_issue_waits_for_publication_and_crosses_midnight() -> None:
    assert latest_issue(NOW).strftime("%Y%m%d %H%M") == "20260715 1100"
    # 01:00 KST: the previous day's 23:00 run.
    assert latest_issue(datetime(2026, 7, 14, 16, 0, tzinfo=UTC)).strftime("%Y%m%d %H%M") == "20260714 2300"


async def test_kma_adapter_reads_the_nearest_forecast_hour(kma: tuple[FakeKma, str]) -> None:
    fake, url = kma
    async with httpx.AsyncClient() as http:
        weather = await KmaForecast(http, url, "service-key", clock=lambda: NOW).current(37.5665, 126.9780)
    [sent] = fake.requests
    assert (sent["nx"], sent["ny"], sent["base_date"], sent["base_time"]) == ("60", "127", "20260715", "1100")
    assert sent["serviceKey"] == "service-key"
    assert sent["dataType"] == "JSON"
    assert weather == Weather(31.0, 90.0, "rain", "overcast", 80, "2026-07-15 14:00")


async def test_kma_error_code_is_unavailable(kma: tuple[FakeKma, str]) -> None:
    fake, url = kma
    fake.result_code = "30"  # SERVICE_KEY_IS_NOT_REGISTERED_ERROR
    async with httpx.AsyncClient() as http:
        with pytest.raises(ToolUnavailable):
            await KmaForecast(http, url, "bad", clock=lambda: NOW).current(37.5, 127.0)


def test_tip_rules() -> None:
    def tips(**kw: Any) -> list[str]:
        values: dict[str, Any] = {"temperature": 20.0, "humidity": 50.0, "precipitation": "none", "sky": "clear",
                                  "rain_chance": 0, "forecast_for": ""} | kw  # fmt: skip
        return weather_tips(Weather(**values), food_waste=kw.pop("food", False))

    assert tips() == []
    assert "종이류는 젖지" in tips(precipitation="rain")[0]
    assert "미끄러" in tips(precipitation="snow")[0]
    assert "실내" in tips(precipitation="shower")[0]
    assert "빨리" in tips(temperature=30.0)[0]
    assert tips(temperature=27.0) == []
    assert "오래 두지" in weather_tips(Weather(27.0, 50, "none", None, 0, ""), food_waste=True)[0]
    assert "얼 수" in tips(temperature=0.0)[0]
    assert "말려서" in tips(humidity=85.0)[0]
    assert len(tips(precipitation="rain", temperature=31.0, humidity=90.0)) == 3  # several at once


async def test_weather_question_and_tip_with_the_waste_answer(
    migrated: CommonSettings, services_http: httpx.AsyncClient, kma: tuple[FakeKma, str]
) -> None:
    _, url = kma
    settings = AgentSettings(environment="test", weather_base_url=url, weather_api_key="k",
                             tool_location_url="http://services", tool_my_url="http://services")  # fmt: skip
    built = build_assistant(migrated, settings, http=services_http)
    assert built.toolbox.weather_provider is not None
    built.toolbox.weather_provider.clock = lambda: NOW  # type: ignore[attr-defined]
    try:
        emit = RecordingEmitter()
        answer = await built.answer(ask("오늘 날씨 어때?", location=SEOUL_CITY_HALL), emit)
        assert answer.intent == "weather"
        assert "비, 기온 31°C, 습도 90%" in answer.text
        assert "종이류는 젖지" in answer.text
        assert "음식물 쓰레기는 되도록 빨리" in answer.text
        # A waste question with a known position gets the tip as extra context.
        emit = RecordingEmitter()
        answer = await built.answer(ask("신문지 어떻게 버려요?", location=SEOUL_CITY_HALL), emit)
        assert ("weather", "completed") in emit.stages()
        assert "종이류는 잘 말려서" in answer.text
        assert answer.intent == "waste"
        # Without a position no one is asked just for a tip.
        emit = RecordingEmitter()
        await built.answer(ask("신문지 어떻게 버려요?"), emit)
        assert emit.asked == []
        assert ("weather", "started") not in emit.stages()
    finally:
        await built.aclose()


class FakeSearx:
    def __init__(self) -> None:
        self.queries: list[str] = []

    async def search(self, request: Request) -> JSONResponse:
        self.queries.append(request.query_params["q"])
        assert request.query_params["format"] == "json"
        return JSONResponse({"query": request.query_params["q"], "results": [
            {"url": "https://news.example/eco/1", "title": "투명 페트병 분리배출 확대", "content": "공동주택에서 단독주택으로"},
            {"url": "javascript:alert(1)", "title": "나쁜 링크", "content": ""},
            {"url": "https://gov.example/policy", "title": "일회용품 규제 안내", "content": "환경부 발표"},
        ]})  # fmt: skip

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/search", self.search)])


async def test_web_search_cites_its_sources(migrated: CommonSettings, services_http: httpx.AsyncClient) -> None:
    fake = FakeSearx()
    with serve_asgi(fake.app()) as url:
        settings = AgentSettings(environment="test", search_base_url=url, tool_location_url="http://services",
                                 tool_my_url="http://services")  # fmt: skip
        built = build_assistant(migrated, settings, http=services_http)
        try:
            answer = await built.answer(ask("최근 분리배출 정책 뉴스 알려줘"), RecordingEmitter())
        finally:
            await built.aclose()
    assert fake.queries
    assert "정책" in fake.queries[0]
    assert "[투명 페트병 분리배출 확대](https://news.example/eco/1)" in answer.text
    assert "[일회용품 규제 안내](https://gov.example/policy)" in answer.text
    assert "javascript:" not in answer.text  # only http(s) links are cited
