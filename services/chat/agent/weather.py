"""Weather for disposal tips: a pluggable forecast provider and the tip rules (docs/chat.md).

The real adapter is the Korea Meteorological Administration's short-term forecast
(``VilageFcstInfoService_2.0/getVilageFcst`` on apis.data.go.kr, ``CHAT_WEATHER_*``): the position is
converted to the KMA's 5 km Lambert-conformal forecast grid (the published DFS formula), the latest
issued run is asked for, and the forecast hour nearest to now is read (TMP temperature, REH
humidity, PTY precipitation type, SKY, POP). Off unless an API key is configured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httpx

from services.chat.agent.clients import ToolUnavailable
from services.common.clock import utcnow
from services.common.logging import get_logger

log = get_logger("eco2.chat.weather")
SEOUL = ZoneInfo("Asia/Seoul")
# Issue times of the short-term forecast (KST); a run is published about 10 minutes later.
ISSUE_HOURS = (2, 5, 8, 11, 14, 17, 20, 23)
PUBLISH_DELAY = timedelta(minutes=15)


@dataclass(frozen=True)
class Weather:
    temperature: float | None
    humidity: float | None
    # none | rain | rain_snow | snow | shower (the KMA's PTY codes 0, 1, 2, 3, 4)
    precipitation: str
    sky: str | None  # clear | cloudy | overcast
    rain_chance: int | None
    forecast_for: str  # "YYYY-MM-DD HH:MM" KST

    def summary(self) -> str:
        sky = {"clear": "맑음", "cloudy": "구름 많음", "overcast": "흐림"}.get(self.sky or "", "")
        rain = {"rain": "비", "rain_snow": "비 또는 눈", "snow": "눈", "shower": "소나기"}.get(self.precipitation)
        parts = [p for p in (rain or sky, f"기온 {self.temperature:g}°C" if self.temperature is not None else "") if p]
        if self.humidity is not None:
            parts.append(f"습도 {self.humidity:g}%")
        if self.rain_chance is not None:
            parts.append(f"강수확률 {self.rain_chance}%")
        return ", ".join(parts)


class WeatherProvider(Protocol):
    async def current(self, latitude: float, longitude: float) -> Weather: ...


def weather_tips(weather: Weather, *, food_waste: bool = False) -> list[str]:
    """The tip rules (several may apply; the caller joins them into one line)."""
    tips: list[str] = []
    if weather.precipitation == "rain":
        tips.append("비가 오니 종이류는 젖지 않게 두었다가 내놓아 주세요.")
    elif weather.precipitation == "snow":
        tips.append("눈길이 미끄러우니 쓰레기를 내놓으러 갈 때 조심하세요.")
    elif weather.precipitation in ("rain_snow", "shower"):
        tips.append("진눈깨비나 소나기가 올 수 있으니 종이류는 수거 직전까지 실내에 두세요.")
    temperature = weather.temperature
    if temperature is not None:
        if temperature >= 30:
            tips.append("무더운 날이라 음식물 쓰레기는 되도록 빨리 내놓아 주세요.")
        elif temperature >= 25 and food_waste:
            tips.append("날이 따뜻해 음식물 쓰레기가 금방 상하니 오래 두지 마세요.")
        if temperature <= 0:
            tips.append("영하의 날씨라 병이나 용기에 남은 액체가 얼 수 있으니 비워서 내놓아 주세요.")
    if weather.humidity is not None and weather.humidity >= 85:
        tips.append("습도가 높으니 종이류는 잘 말려서 내놓아 주세요.")
    return tips


# ------------------------------------------------------------------------------ KMA grid


def kma_grid(latitude: float, longitude: float) -> tuple[int, int]:
    """WGS84 → the KMA forecast grid (nx, ny): Lambert conformal conic, the KMA's published constants."""
    re_km, grid_km = 6371.00877, 5.0
    slat1, slat2, olon, olat = (math.radians(v) for v in (30.0, 60.0, 126.0, 38.0))
    xo, yo = 43, 136
    re = re_km / grid_km
    sn = math.log(math.cos(slat1) / math.cos(slat2)) / math.log(
        math.tan(math.pi * 0.25 + slat2 * 0.5) / math.tan(math.pi * 0.25 + slat1 * 0.5)
    )
    sf = math.pow(math.tan(math.pi * 0.25 + slat1 * 0.5), sn) * math.cos(slat1) / sn
    ro = re * sf / math.pow(math.tan(math.pi * 0.25 + olat * 0.5), sn)
    ra = re * sf / math.pow(math.tan(math.pi * 0.25 + math.radians(latitude) * 0.5), sn)
    theta = math.radians(longitude) - olon
    if theta > math.pi:
        theta -= 2.0 * math.pi
    if theta < -math.pi:
        theta += 2.0 * math.pi
    theta *= sn
    return int(ra * math.sin(theta) + xo + 0.5), int(ro - ra * math.cos(theta) + yo + 0.5)


def latest_issue(now: datetime) -> datetime:
    """The newest short-term forecast run published by ``now`` (KST)."""
    local = now.astimezone(SEOUL) - PUBLISH_DELAY
    for day_offset in (0, 1):
        day = local - timedelta(days=day_offset)
        for hour in reversed(ISSUE_HOURS):
            issued = day.replace(hour=hour, minute=0, second=0, microsecond=0)
            if issued <= local:
                return issued
    raise AssertionError("unreachable: an issue hour exists every day")


_PTY = {"0": "none", "1": "rain", "2": "rain_snow", "3": "snow", "4": "shower"}
_SKY = {"1": "clear", "3": "cloudy", "4": "overcast"}


class KmaForecast:
    """The KMA short-term forecast open API (data.go.kr 15084084)."""

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, api_key: str, *, timeout: float = 3.0, clock: Any = utcnow
    ) -> None:
        self.http = http
        self.url = base_url.rstrip("/") + "/getVilageFcst"
        self.api_key = api_key
        self.timeout = timeout
        self.clock = clock

    async def current(self, latitude: float, longitude: float) -> Weather:
        now = self.clock()
        issued = latest_issue(now)
        nx, ny = kma_grid(latitude, longitude)
        params: dict[str, str | int] = {
            "serviceKey": self.api_key,
            "pageNo": 1,
            "numOfRows": 300,
            "dataType": "JSON",
            "base_date": issued.strftime("%Y%m%d"),
            "base_time": issued.strftime("%H%M"),
            "nx": nx,
            "ny": ny,
        }
        try:
            response = await self.http.get(self.url, params=params, timeout=self.timeout)
            body = response.json()["response"]
            if response.status_code != 200 or body["header"]["resultCode"] != "00":
                raise ValueError(body["header"].get("resultMsg", response.status_code))
            items: list[dict[str, Any]] = body["body"]["items"]["item"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("weather_unavailable", error=repr(exc))
            raise ToolUnavailable("weather") from exc
        return self._nearest(items, now)

    @staticmethod
    def _nearest(items: list[dict[str, Any]], now: datetime) -> Weather:
        by_time: dict[str, dict[str, str]] = {}
        for item in items:
            stamp = f"{item['fcstDate']}{item['fcstTime']}"
            by_time.setdefault(stamp, {})[str(item["category"])] = str(item["fcstValue"])
        if not by_time:
            raise ToolUnavailable("weather: empty forecast")
        local = now.astimezone(SEOUL).replace(tzinfo=None)

        def distance(stamp: str) -> float:
            return abs((datetime.strptime(stamp, "%Y%m%d%H%M") - local).total_seconds())

        stamp = min(by_time, key=distance)
        values = by_time[stamp]

        def number(key: str) -> float | None:
            try:
                return float(values[key])
            except (KeyError, ValueError):
                return None

        pop = number("POP")
        when = datetime.strptime(stamp, "%Y%m%d%H%M")
        return Weather(
            temperature=number("TMP"),
            humidity=number("REH"),
            precipitation=_PTY.get(values.get("PTY", "0"), "none"),
            sky=_SKY.get(values.get("SKY", "")),
            rain_chance=int(pop) if pop is not None else None,
            forecast_for=when.strftime("%Y-%m-%d %H:%M"),
        )
