"""Response bodies of the info endpoints (docs/api.md, info). Every field is always present."""

from __future__ import annotations

from typing import Any, Literal

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


# ------------------------------------------------------------------------------ item dictionary


class ItemSummary(BaseModel):
    id: str = Field(examples=["clear-pet-bottle"])
    name: str = Field(examples=["투명 페트병"])
    aliases: list[str]
    major_category: str = Field(examples=["재활용폐기물"])
    middle_category: str = Field(examples=["무색페트병"])
    minor_category: str
    rule_id: str = Field(description="the item's disposal-rule document", examples=["재활용폐기물_무색페트병"])
    summary: str = Field(description="one line on how it goes out")


class ItemMatch(BaseModel):
    kind: Literal["exact", "prefix", "alias", "partial", "initials", "fuzzy"] = Field(
        description="rank order: exact > prefix > alias > partial > initials > fuzzy"
    )
    matched: str = Field(description="the name or alias the query matched")


class ItemHit(ItemSummary):
    match: ItemMatch


class ItemSearch(BaseModel):
    query: str
    items: list[ItemHit]


class PipelineResult(BaseModel):
    """The scan result's ``pipeline_result`` shape (docs/api.md, scan), built for the item."""

    classification_result: dict[str, Any]
    disposal_rules: dict[str, Any] | None
    final_answer: dict[str, Any] = Field(description="`disposal_steps` {`단계1`…}, `insufficiencies`, `user_answer`")


class ItemDetail(ItemSummary):
    situation_tags: list[str]
    pipeline_result: PipelineResult


class TaxonomyItem(BaseModel):
    id: str
    name: str


class TaxonomyBranch(BaseModel):
    name: str
    rule_id: str | None
    rule_name: str | None
    minors: list[str] = Field(description="the domain's minor items of this category")
    items: list[TaxonomyItem] = Field(description="dictionary items filed here")
    middles: list[TaxonomyBranch] = Field(description="재활용폐기물's twelve middle categories; empty elsewhere")


class CategoryTree(BaseModel):
    majors: list[TaxonomyBranch]
