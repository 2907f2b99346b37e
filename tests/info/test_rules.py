"""Category rules and article normalisation (pure functions)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from services.info.articles import RawArticle, article_id, normalize, plain_text, publisher_domain, web_url
from services.info.categories import classify, matched_keywords

NOW = datetime(2026, 1, 20, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("title", "snippet", "expected"),
    [
        ("분리배출 요령", "재활용 쓰레기", "environment"),
        ("태양광 발전", "신재생 에너지", "energy"),
        ("인공지능 챗봇", "GPT 기반", "ai"),
        ("AI가 분류한다", "", "ai"),  # a Korean particle right after a Latin keyword
        ("He said so", "every day", "environment"),  # "said" is not AI, "every" is not EV: nothing → environment
        ("EV sales", "", "energy"),
        ("Tech news", "technology", "environment"),  # "tech" is an AI-tag word, not a keyword
        ("재활용 배터리", "", "environment"),  # tie 1:1 → the earlier category
        ("Machine  learning for recycling", "automation", "ai"),  # 2 ai vs 1 environment
        ("날씨", "맑음", "environment"),
    ],
)
def test_keyword_score(title: str, snippet: str, expected: str) -> None:
    assert classify(title, snippet) == expected


def test_provider_category_then_ai_tag_then_keywords() -> None:
    assert classify("AI", "GPT", ["environment"]) == "environment"
    assert classify("환경", "", ["Technology"]) == "ai"
    assert classify("환경", "", ["science", "environment"]) == "energy"  # first value only
    assert classify("AI 챗봇", "", ["sports"], "climate change") == "environment"  # unmapped → AI tag
    assert classify("재활용", "", [], "solar power") == "energy"
    assert classify("재활용", "", [], "technology") == "ai"  # a long word may continue: tech → technology
    assert classify("재활용", "", [], "fair trade") == "environment"  # tag matches nothing → keywords


def test_matched_keywords_in_vocabulary_order() -> None:
    assert matched_keywords("재활용과 분리배출, AI 그리고 said") == ["분리배출", "재활용", "AI"]


def test_plain_text_strips_markup_and_entities() -> None:
    assert plain_text("<b>분리배출</b> &quot;라벨&quot; &amp; 뚜껑&#8230;", 300) == '분리배출 "라벨" & 뚜껑…'
    assert plain_text("&amp;lt;b&amp;gt;", 300) == "<b>"  # double-escaped by the provider
    assert plain_text("  줄\n바꿈\t여러   칸 ", 300) == "줄 바꿈 여러 칸"
    assert plain_text("가" * 10, 5) == "가가가가…"
    assert plain_text(None, 5) == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTPS://WWW.Example.COM/a?b=1#frag", "https://www.example.com/a?b=1"),
        ("https://example.com/a?utm_source=x&id=7&fbclid=1", "https://example.com/a?id=7"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a?x=1&amp;y=2", "https://example.com/a?x=1&y=2"),
        ("javascript:alert(1)", None),
        ("data:image/png;base64,xx", None),
        ("/relative", None),
        ("https://example.com:99999/", None),
        ("", None),
    ],
)
def test_web_url(raw: str, expected: str | None) -> None:
    assert web_url(raw) == expected


def test_ids_and_publisher() -> None:
    expected = hashlib.md5(b"https://example.com/a").hexdigest()[:12]
    assert article_id("naver", "https://example.com/a") == f"naver_{expected}"
    assert publisher_domain("https://www.yna.co.kr/view/1") == "yna.co.kr"


def test_normalize_drops_unusable_entries_and_clamps_dates() -> None:
    assert normalize("x", RawArticle(url=None, title="t"), NOW) is None
    assert normalize("x", RawArticle(url="https://e.com/", title="<b></b>"), NOW) is None
    future = normalize("x", RawArticle(url="https://e.com/", title="t", published_at=NOW + timedelta(days=2)), NOW)
    assert future is not None
    assert future.published_at == NOW + timedelta(minutes=10)
    undated = normalize("x", RawArticle(url="https://e.com/", title="t"), NOW)
    assert undated is not None
    assert undated.published_at == NOW
    precise = datetime(2026, 1, 19, 1, 2, 3, 456789, tzinfo=UTC)
    ms = normalize("x", RawArticle(url="https://e.com/", title="t", published_at=precise), NOW)
    assert ms is not None
    assert ms.published_at.microsecond == 456000
    named = normalize("x", RawArticle(url="https://www.hani.co.kr/a", title="AI 뉴스"), NOW)
    assert named is not None
    assert (named.source_name, named.category, named.keywords) == ("hani.co.kr", "ai", ["AI"])
