"""Response bodies of the info endpoints (docs/api.md, info). Every field is always present."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

ArticleCategory = Literal["environment", "energy", "ai"]


class NewsArticle(BaseModel):
    id: str = Field(examples=["naver_3f2a9c1b7d10"])
    title: str
    url: str
    snippet: str
    source: str = Field(description="provider id: naver, newsdata, or a configured feed's id")
    source_name: str = Field(description="the publisher's display name")
    published_at: str = Field(examples=["2026-01-20T01:00:00.000Z"])
    thumbnail_url: str | None
    category: ArticleCategory
    source_icon_url: str | None
    video_url: str | None
    keywords: list[str] | None
    ai_tag: str | None


class NewsMeta(BaseModel):
    total_cached: int = Field(description="articles stored for the requested category")
    cache_expires_in: int = Field(description="seconds until the next scheduled refresh (0 if unknown)")


class NewsPage(BaseModel):
    articles: list[NewsArticle]
    next_cursor: str | None
    has_more: bool
    meta: NewsMeta


class NewsCategory(BaseModel):
    id: Literal["all", "environment", "energy", "ai"]
    name: str


class NewsCategories(BaseModel):
    categories: list[NewsCategory]
