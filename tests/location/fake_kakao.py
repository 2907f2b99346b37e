"""A local stand-in for the Kakao Local keyword search API (GET /v2/local/search/keyword.json)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

# Far beyond any client timeout a test sets: a test that waited for it would show it plainly.
SLOW_SECONDS = 20.0
API_KEY = "test-kakao-key"


def document(place_id: str, name: str, lat: float, lon: float, address: str = "서울 어딘가 1") -> dict[str, Any]:
    return {
        "id": place_id,
        "place_name": name,
        "address_name": address,
        "road_address_name": address,
        "x": f"{lon:.7f}",
        "y": f"{lat:.7f}",
        "place_url": f"http://place.map.kakao.com/{place_id}",
        "phone": "02-123-4567",
        "category_name": "가정,생활 > 생활용품점",
        "distance": "",
    }


@dataclass
class FakeKakao:
    documents: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "ok"  # ok | error | slow (answers after SLOW_SECONDS) | garbage
    requests: list[dict[str, Any]] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)  # ends the slow mode's wait

    def app(self) -> Starlette:
        async def keyword(request: Request) -> Response:
            self.requests.append({"authorization": request.headers.get("authorization"), **request.query_params})
            if request.headers.get("authorization") != f"KakaoAK {API_KEY}":
                return JSONResponse({"errorType": "AccessDeniedError"}, status_code=401)
            if self.mode == "error":
                return JSONResponse({"errorType": "InternalError"}, status_code=500)
            if self.mode == "slow":
                # Released early by the fixture's teardown, so the server's shutdown never waits on it.
                await asyncio.to_thread(self.released.wait, SLOW_SECONDS)
            if self.mode == "garbage":
                return PlainTextResponse("<html>maintenance</html>")
            return JSONResponse({"documents": self.documents, "meta": {"total_count": len(self.documents)}})

        return Starlette(routes=[Route("/v2/local/search/keyword.json", keyword)])
