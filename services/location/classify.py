"""Store and pickup categories (docs/location.md; vocabularies: docs/api.md).

The rules are applied exactly as written, so the published reference distributions hold on the
public datasets (tests check them). The DOMAIN recommendation for extra clear-PET spellings is not
adopted yet: it would also tag coloured PET (``페트``) as clear, see docs/location.md.
"""

from __future__ import annotations

from collections.abc import Iterable

STORE_CATEGORIES: tuple[str, ...] = (
    "refill_zero",
    "cafe_bakery",
    "vegan_dining",
    "upcycle_recycle",
    "book_workshop",
    "market_mart",
    "lodging",
    "public_dropbox",
    "general",
)
PICKUP_CATEGORIES: tuple[str, ...] = (
    "clear_pet",
    "colored_pet",
    "can",
    "paper",
    "plastic",
    "glass",
    "textile",
    "electronics",
    "general",
)

# First match wins, in this order.
_STORE_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("refill_zero", ("제로웨이스트", "리필", "무포장", "용기", "리필스테이션", "리필샵")),
    ("cafe_bakery", ("카페", "커피", "tea", "베이커리", "브루어리")),
    ("vegan_dining", ("비건", "vegan")),
    ("upcycle_recycle", ("되살림", "업사이클", "리사이클", "재활용", "수거", "리폼", "수선", "재사용")),
    (
        "book_workshop",
        (
            "책방",
            "서점",
            "도서관",
            "공방",
            "스튜디오",
            "갤러리",
            "센터",
            "학교",
            "교육",
            "클래스",
            "워크샵",
            "아카데미",
        ),
    ),
    (
        "market_mart",
        ("마트", "마켓", "시장", "생협", "coop", "co-op", "한살림", "아이쿱", "하나로", "공동구매", "무인상점"),
    ),
    (
        "lodging",
        (
            "숙소",
            "게스트하우스",
            "게하",
            "민박",
            "호텔",
            "펜션",
            "호스텔",
            " stay",
            " 스테이",
            "guesthouse",
            "guest house",
        ),
    ),
)
_PICKUP_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("clear_pet", ("무색", "clear", "pet only", "무색페트")),
    ("colored_pet", ("유색", "colored", "유색페트")),
    ("can", ("캔", "aluminum", "철캔", "metal")),
    ("paper", ("종이", "paper", "박스")),
    ("plastic", ("플라스틱", "plastic", "pp", "pe")),
    ("glass", ("유리", "glass")),
    ("textile", ("의류", "섬유", "textile")),
    ("electronics", ("전자", "e-waste", "electronic")),
)


def _joined(values: Iterable[str | None]) -> str:
    return " ".join(v.lower() for v in values if v)


def store_category(texts: Iterable[str | None]) -> str:
    """``texts``: introduction, name, location note, lot address, road address, memo, display1, display2."""
    text = _joined(texts)
    for category, keywords in _STORE_RULES:
        if category == "lodging" and "스테이션" in text:
            continue  # "리필스테이션" is a refill station, not a stay
        if any(keyword in text for keyword in keywords):
            return category
    if "무인" in text or "수거함" in text:
        return "public_dropbox"
    return "general"


def pickup_categories(texts: Iterable[str | None]) -> list[str]:
    """``texts``: the collected-items text and the misc notes; ``["general"]`` when nothing matches."""
    text = _joined(texts)
    found = [category for category, keywords in _PICKUP_RULES if any(k in text for k in keywords)]
    return found or ["general"]


def pickup_mask(categories: Iterable[str]) -> int:
    mask = 0
    for category in categories:
        mask |= 1 << PICKUP_CATEGORIES.index(category)
    return mask


def pickup_list(mask: int) -> list[str]:
    return [category for i, category in enumerate(PICKUP_CATEGORIES) if mask & (1 << i)]


class UnknownCategory(ValueError):
    def __init__(self, value: str, allowed: tuple[str, ...]) -> None:
        super().__init__(value)
        self.value = value
        self.allowed = allowed


def parse_filter(raw: str | None, allowed: tuple[str, ...]) -> list[str] | None:
    """Comma list, case-insensitive, blanks ignored; absent, empty or ``all`` → None (no filter)."""
    if raw is None:
        return None
    values = [v.strip().lower() for v in raw.split(",") if v.strip()]
    if not values or "all" in values:
        unknown = [v for v in values if v != "all" and v not in allowed]
        if unknown:
            raise UnknownCategory(unknown[0], allowed)
        return None
    for value in values:
        if value not in allowed:
            raise UnknownCategory(value, allowed)
    return list(dict.fromkeys(values))
