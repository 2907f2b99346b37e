"""HTTP layer of the info service (docs/api.md, info). Rules live in ``service.py``.

Pages are rendered with orjson straight from the service's plain values (the hot path; the
declared ``response_model`` documents the shape and a test holds the two together).
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import StringConstraints

from services.common.errors import responses
from services.info.dictionary import SEARCH_DEFAULT_LIMIT, SEARCH_MAX_LIMIT, ItemDictionary
from services.info.schemas import CategoryTree, ItemDetail, ItemSearch, NewsCategories, NewsPage
from services.info.service import DEFAULT_LIMIT, MAX_LIMIT, NewsFeed, categories

router = APIRouter(tags=["info"])


async def get_feed(request: Request) -> NewsFeed:
    return request.app.state.news


async def get_dictionary(request: Request) -> ItemDictionary:
    return request.app.state.items


FeedDep = Annotated[NewsFeed, Depends(get_feed)]
DictionaryDep = Annotated[ItemDictionary, Depends(get_dictionary)]
# Trimmed first, then 1–100 code points: a blank or oversized query is a 422 like any invalid value.
ItemQuery = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), Query()]


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


@router.get("/items", response_model=ItemSearch, summary="Look a household item up")
async def items(
    dictionary: DictionaryDep,
    q: Annotated[ItemQuery, Query(description="name, synonym, part of a word, a typo, or initials (ㅍㅌㅂ)")],
    limit: Annotated[int, Query(ge=1, le=SEARCH_MAX_LIMIT)] = SEARCH_DEFAULT_LIMIT,
) -> Response:
    return json_response(dictionary.search(q, limit))


@router.get("/items/{item_id}", response_model=ItemDetail, responses=responses((404, "ITEM_NOT_FOUND")))
async def item(dictionary: DictionaryDep, item_id: str) -> Response:
    return json_response(dictionary.detail(item_id))


@router.get("/categories/tree", response_model=CategoryTree, summary="The waste taxonomy for browsing")
async def category_tree(dictionary: DictionaryDep) -> Response:
    return Response(dictionary.tree_json, media_type="application/json")
