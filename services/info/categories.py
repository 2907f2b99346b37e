"""News categories (docs/api.md, info): the vocabulary, the keyword rules and the search queries.

Classification, in this order:

1. the provider's own category (its first value), mapped: environment/world/lifestyle → environment,
   business/science → energy, technology/top → ai (an unmapped value falls through);
2. else the provider's AI tag, checked category by category (environment, energy, ai);
3. else the keyword score over title + snippet: most matched keywords wins, ties go to the earlier
   category, nothing matched → environment.

Korean keywords match as substrings (Korean attaches particles: ``재활용은``). Latin keywords match
case-insensitively on Latin word boundaries, so ``AI`` is found in ``AI가`` and ``(AI)`` but not
in ``said``, and ``EV`` not in ``every``; a keyword of four letters or more may be followed by more
letters (``tech`` → ``technology``, ``recycle`` → ``recycled``), a shorter one may not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

CATEGORY_NAMES: dict[str, str] = {"all": "전체", "environment": "환경", "energy": "에너지", "ai": "AI"}
ARTICLE_CATEGORIES: tuple[str, ...] = ("environment", "energy", "ai")  # what an article can be
DEFAULT_CATEGORY = "environment"

KEYWORDS: dict[str, tuple[str, ...]] = {
    "environment": ("환경", "분리배출", "재활용", "쓰레기", "폐기물", "기후변화", "온실가스", "탄소", "생태계",
                    "environment", "recycling", "waste", "climate", "pollution"),
    "energy": ("에너지", "신재생", "태양광", "풍력", "전기차", "배터리", "수소", "탄소중립", "energy", "solar",
               "renewable", "EV", "battery"),
    "ai": ("인공지능", "AI", "머신러닝", "딥러닝", "챗봇", "GPT", "LLM", "자동화", "artificial intelligence",
           "machine learning", "automation"),
}  # fmt: skip
PROVIDER_CATEGORIES: dict[str, str] = {
    "environment": "environment",
    "world": "environment",
    "lifestyle": "environment",
    "business": "energy",
    "science": "energy",
    "technology": "ai",
    "top": "ai",
}
AI_TAG_WORDS: dict[str, tuple[str, ...]] = {
    "environment": ("환경", "climate", "recycle", "waste"),
    "energy": ("energy", "에너지", "solar", "전기"),
    "ai": ("ai", "인공지능", "tech", "gpt"),
}

# What each provider is asked (docs/info.md): the portal gets the Korean queries, the international
# API the Latin ones; an operator may override either list by configuration.
KOREAN_QUERIES: tuple[str, ...] = ("환경 분리배출 재활용", "신재생에너지 탄소중립 태양광", "인공지능 AI 환경")
LATIN_QUERIES: tuple[str, ...] = (
    "environment recycling waste",
    "renewable energy climate",
    "environment recycling climate change",
    "renewable energy solar EV battery",
    "AI artificial intelligence technology",
)

_LATIN = re.compile(r"[A-Za-z]")


def _pattern(keyword: str) -> re.Pattern[str] | None:
    """None for a Korean keyword (plain substring); a word-bounded pattern for a Latin one."""
    if not _LATIN.search(keyword):
        return None
    words = r"\s+".join(re.escape(part) for part in keyword.split())
    tail = "" if len(keyword) >= 4 else r"(?![A-Za-z0-9])"
    return re.compile(rf"(?<![A-Za-z0-9]){words}{tail}", re.IGNORECASE)


class KeywordSet:
    def __init__(self, keywords: Iterable[str]) -> None:
        self.entries = [(keyword, _pattern(keyword)) for keyword in keywords]

    def found(self, text: str) -> list[str]:
        """The keywords present in ``text``, in vocabulary order."""
        return [k for k, pattern in self.entries if (pattern.search(text) if pattern else k in text)]


_SETS = {category: KeywordSet(words) for category, words in KEYWORDS.items()}
_TAG_SETS = {category: KeywordSet(words) for category, words in AI_TAG_WORDS.items()}


def matched_keywords(text: str) -> list[str]:
    """Every category keyword in ``text``, category by category, each once."""
    return list(dict.fromkeys(k for category in ARTICLE_CATEGORIES for k in _SETS[category].found(text)))


def classify(title: str, snippet: str, provider_categories: Sequence[str] = (), ai_tag: str | None = None) -> str:
    if provider_categories:
        mapped = PROVIDER_CATEGORIES.get(provider_categories[0].strip().lower())
        if mapped:
            return mapped
    if ai_tag:
        for category in ARTICLE_CATEGORIES:
            if _TAG_SETS[category].found(ai_tag):
                return category
    text = f"{title} {snippet}"
    scores = [(len(_SETS[category].found(text)), category) for category in ARTICLE_CATEGORIES]
    best = max(score for score, _ in scores)
    if best == 0:
        return DEFAULT_CATEGORY
    return next(category for score, category in scores if score == best)  # ties: the earlier category
