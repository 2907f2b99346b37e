"""HTTP layer of the info service (docs/api.md, info). Rules live in ``service.py``.

Pages are rendered with orjson straight from the service's plain values (the hot path; the
declared ``response_model`` documents the shape and a test holds the two together).
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from services.common.errors import responses
from services.info.schemas import NewsCategories, NewsPage
from services.info.service import DEFAULT_LIMIT, MAX_LIMIT, NewsFeed, categories

router = APIRouter(tags=["info"])


def get_feed(request: Request) -> NewsFeed:
    return request.app.state.news


FeedDep = Annotated[NewsFeed, Depends(get_feed)]


def json_response(body: object) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@router.get(
    "/news",
    response_model=NewsPage,
    responses=responses((400, "INVALID_CATEGORY"), (400, "INVALID_SOURCE"), (400, "INVALID_CURSOR")),
)
async def news(
    feed: FeedDep,
    category: Annotated[str | None, Query(description="`all` (default), `environment`, `energy` or `ai`")] = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page, unchanged")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    source: Annotated[str | None, Query(description="`all` (default) or a configured source id")] = None,
    has_image: Annotated[bool, Query(description="only articles with a thumbnail")] = False,
) -> Response:
    page = await feed.page(category=category, source=source, cursor=cursor, limit=limit, has_image=has_image)
    return json_response(page)


_CATEGORIES = orjson.dumps({"categories": categories()})


@router.get("/news/categories", response_model=NewsCategories)
async def news_categories() -> Response:
    return Response(_CATEGORIES, media_type="application/json")


@router.get("/categories", response_model=NewsCategories, summary="News categories (alias of /news/categories)")
async def categories_alias() -> Response:
    return Response(_CATEGORIES, media_type="application/json")
