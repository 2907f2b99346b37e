"""Local stand-ins for the news providers, replaying their real response shapes over real sockets.

One Starlette app plays all of them (paths as the real APIs use them) plus the publishers' article
pages (for ``og:image``). ``FakeNews.mode[provider]`` switches a provider between a normal answer
and the failures seen in production: ``429`` (with ``Retry-After``), ``500``, ``garbage`` (not
JSON / not a feed), ``shape`` (JSON of the wrong shape), ``hang`` (answers after the client gave up).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

HANG_SECONDS = 3.0


@dataclass
class FakeNews:
    base: str = ""
    mode: dict[str, str] = field(default_factory=lambda: {"naver": "ok", "newsdata": "ok", "rss": "ok"})
    requests: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    # Extra Naver items appended to every answer (tests add articles between refreshes).
    naver_extra: list[dict[str, Any]] = field(default_factory=list)

    def reset(self) -> None:
        self.mode = {"naver": "ok", "newsdata": "ok", "rss": "ok"}
        self.requests.clear()
        self.naver_extra.clear()

    def page(self, n: int) -> str:
        return f"{self.base}/article/{n}"

    # ------------------------------------------------------------------------------ answers

    def naver_body(self, query: str) -> dict[str, Any]:
        items: list[Any] = [
            {
                "title": "<b>분리배출</b> &quot;라벨&quot; 떼고 찌그러뜨려야…투명 페트병 새 기준",
                "originallink": self.page(2),
                "link": "https://n.news.naver.com/mnews/article/001/0014000002?sid=102",
                "description": "환경부는 &lt;무색 페트병&gt; <b>재활용</b>을 위해 라벨을 떼고 &amp; 압착해 배출하라고 밝혔다.",
                "pubDate": "Tue, 20 Jan 2026 10:30:00 +0900",
            },
            {
                "title": "태양광·풍력 신재생<b>에너지</b> 발전량 역대 최대",
                "originallink": self.page(3),  # a page without og:image
                "link": "https://n.news.naver.com/mnews/article/001/0014000003?sid=101",
                "description": "신재생에너지 발전 비중이 늘었다.",
                "pubDate": "Tue, 20 Jan 2026 09:00:00 +0900",
            },
            {
                "title": "인공지능 AI가 쓰레기 선별한다",
                "originallink": "",  # no publisher link: the portal's own copy is the article
                "link": self.page(4),
                "description": "AI 선별 로봇이 도입됐다.",
                "pubDate": "Mon, 19 Jan 2026 18:00:00 +0900",
            },
            {
                "title": "날짜가 이상한 기사",
                "originallink": self.page(6),
                "link": self.page(6),
                "description": "",
                "pubDate": "어제 오후",  # unreadable date: stored with the fetch time
            },
            # Malformed entries: each dropped alone.
            {
                "title": "링크 없음",
                "originallink": "",
                "link": "",
                "description": "x",
                "pubDate": "Mon, 19 Jan 2026 18:00:00 +0900",
            },
            {"title": "", "originallink": self.page(9), "link": self.page(9), "description": "제목 없음"},
            {"title": "스크립트 링크", "originallink": "javascript:alert(1)", "link": "javascript:alert(1)"},
            "not an object",
            *self.naver_extra,
        ]
        return {
            "lastBuildDate": "Tue, 20 Jan 2026 10:31:02 +0900",
            "total": 1532,
            "start": 1,
            "display": len(items),
            "items": items,
        }

    def newsdata_body(self) -> dict[str, Any]:
        return {
            "status": "success",
            "totalResults": 3,
            "results": [
                {
                    "article_id": "4b3f0c2c8a9e6f1d2b7a5e4c3d2f1a0b",
                    "title": "Korea expands EV battery recycling",
                    "link": f"{self.base}/en/ev-battery?utm_source=newsdata&id=7",
                    "keywords": ["ev", "battery"],
                    "creator": ["Kim"],
                    "video_url": None,
                    "description": "Battery makers said recycling capacity will double.",
                    "content": "ONLY AVAILABLE IN PAID PLANS",
                    "pubDate": "2026-01-20 02:15:00",
                    "pubDateTZ": "UTC",
                    "image_url": "https://cdn.example.com/ev.jpg",
                    "source_id": "koreaherald",
                    "source_priority": 4321,
                    "source_name": "The Korea Herald",
                    "source_url": "https://www.koreaherald.com",
                    "source_icon": "https://i.bytvi.com/domain_icons/koreaherald.png",
                    "language": "english",
                    "country": ["south korea"],
                    "category": ["business"],
                    "ai_tag": "ONLY AVAILABLE IN PROFESSIONAL AND CORPORATE PLANS",
                    "sentiment": "ONLY AVAILABLE IN PROFESSIONAL AND CORPORATE PLANS",
                    "duplicate": False,
                },
                {
                    "article_id": "5c4e1d3d9b0f7a2e3c8b6f5d4e3a2b1c",
                    "title": "Seoul said to study new waste rules",  # "said" must not read as "ai"
                    "link": f"{self.base}/en/waste-rules",
                    "keywords": None,
                    "video_url": f"{self.base}/video/1.mp4",
                    "description": None,
                    "pubDate": "2026-01-19 23:00:00",
                    "pubDateTZ": "UTC",
                    "image_url": None,  # a missing image stays missing (no page fetch for this provider)
                    "source_name": "Yonhap",
                    "source_icon": None,
                    "category": ["sports"],  # unmapped: falls through to the AI tag
                    "ai_tag": ["climate change"],
                },
                {"article_id": "broken", "title": None, "link": None},  # malformed: dropped alone
            ],
            "nextPage": "1737339300000abc",
        }

    def rss_body(self) -> bytes:
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>테스트 신문 : 전체기사</title><link>{self.base}/</link><description>feed</description>
<item><title>재활용 &amp; 새활용 박람회 개막</title><link>{self.page(10)}</link>
  <description><![CDATA[<p>폐기물을 <b>새활용</b>한 작품이 전시됐다.</p>]]></description>
  <pubDate>Mon, 19 Jan 2026 09:00:00 GMT</pubDate>
  <media:thumbnail url="https://img.example.com/expo.jpg"/></item>
<item><title>기후변화 대응 토론회</title><link>{self.page(12)}</link>
  <description>온실가스 감축 목표를 논의했다.</description>
  <pubDate>Sun, 18 Jan 2026 09:00:00 GMT</pubDate>
  <enclosure url="https://img.example.com/forum.png" type="image/png" length="100"/></item>
<item><title>이미지 없는 기사</title><link>{self.page(14)}</link>
  <description>페이지의 og:image 가 썸네일이 된다.</description>
  <pubDate>Sat, 17 Jan 2026 09:00:00 GMT</pubDate></item>
<item><title>링크가 없는 항목</title><description>버려진다</description></item>
<item><title>재활용 &amp; 새활용 박람회 개막 (중복)</title><link>{self.page(10)}#comments</link>
  <pubDate>Mon, 19 Jan 2026 10:00:00 GMT</pubDate></item>
</channel></rss>""".encode()

    def atom_body(self) -> bytes:
        return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom Test</title><id>urn:test</id>
<updated>2026-01-20T00:00:00Z</updated>
<entry><title type="html">Solar &lt;i&gt;farms&lt;/i&gt; grow</title><link href="{self.page(20)}"/>
  <id>urn:1</id><updated>2026-01-20T00:00:00Z</updated><summary>Renewable energy capacity rose.</summary></entry>
</feed>""".encode()


def fake_news_app(fake: FakeNews) -> Starlette:
    async def failure(provider: str) -> Response | None:
        mode = fake.mode[provider]
        if mode == "429":
            return JSONResponse(
                {"errorMessage": "Rate limit exceeded.", "errorCode": "012"}, 429, {"Retry-After": "120"}
            )
        if mode == "500":
            return JSONResponse({"errorMessage": "System error.", "errorCode": "SE99"}, 500)
        if mode == "garbage":
            return HTMLResponse("<html><body>502 Bad Gateway</body></html>")
        if mode == "shape":
            return JSONResponse({"status": "success", "items": "nope", "results": {"message": "?"}})
        if mode == "hang":
            await asyncio.sleep(HANG_SECONDS)
        return None

    def record(request: Request, provider: str) -> None:
        fake.requests.append((provider, dict(request.query_params), dict(request.headers)))

    async def naver(request: Request) -> Response:
        record(request, "naver")
        return await failure("naver") or JSONResponse(fake.naver_body(request.query_params.get("query", "")))

    async def newsdata(request: Request) -> Response:
        record(request, "newsdata")
        if fake.mode["newsdata"] == "error-body":
            return JSONResponse(
                {"status": "error", "results": {"message": "Invalid API key", "code": "Unauthorized"}}, 401
            )
        return await failure("newsdata") or JSONResponse(fake.newsdata_body())

    async def rss(request: Request) -> Response:
        record(request, "rss")
        if fake.mode["rss"] == "garbage":
            return Response(b"\x00\x01 definitely not xml", media_type="application/rss+xml")
        return await failure("rss") or Response(fake.rss_body(), media_type="application/rss+xml; charset=utf-8")

    async def atom(_: Request) -> Response:
        return Response(fake.atom_body(), media_type="application/atom+xml")

    async def article(request: Request) -> Response:
        n = int(request.path_params["n"])
        if n == 4:  # the page moved to the cloud metadata address: never followed
            return RedirectResponse("http://169.254.169.254/latest/meta-data/", 302)
        image = ""
        if n % 2 == 0:  # even pages announce an image, odd ones do not
            image = f'<meta property="og:image" content="/images/{n}.jpg?w=600&amp;h=400">'
        head = f'<html><head><meta charset="utf-8"><title>기사 {n}</title>{image}</head>'
        return HTMLResponse(head + "<body>" + "본문 " * 2000 + "</body></html>")

    return Starlette(
        routes=[
            Route("/v1/search/news.json", naver),
            Route("/api/1/latest", newsdata),
            Route("/api/1/news", newsdata),
            Route("/feed.xml", rss),
            Route("/atom.xml", atom),
            Route("/article/{n:int}", article),
        ]
    )
