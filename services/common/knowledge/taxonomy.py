"""The closed vocabulary of the waste taxonomy: eight majors, twelve recyclable middles, the pairing rule.

These strings are data (compared exactly, after NFC); the verbatim minor-item lists live in
``taxonomy.json`` and are checked against these constants when the knowledge base loads.
"""

from __future__ import annotations

RECYCLABLE = "재활용폐기물"
UNCLASSIFIED = "미분류"
MAJORS = ("재활용폐기물", "일반종량제폐기물", "불연성종량제폐기물", "음식물류폐기물", "대형폐기물",
          "공사장생활폐기물", "생활계유해폐기물", "미분류")  # fmt: skip
MIDDLES = ("종이", "종이팩", "무색페트병", "플라스틱류", "비닐류", "발포합성수지", "유리병", "금속류",
           "의류및원단", "전지", "조명제품", "전기전자제품")  # fmt: skip
# Where each `not_accepted` look-alike of a rule document goes (the documents' destination vocabulary).
DESTINATIONS = {
    "general_payt_bag": "일반 종량제봉투",
    "noncombustible_sack": "불연성 종량제 마대",
    "plastics": "플라스틱류",
    "general_or_bulky": "크기에 따라 종량제봉투 또는 대형폐기물",
    "noncombustible_or_bulky": "불연성 마대 또는 대형폐기물",
    "separate_collection": "별도 배출",
}
MAX_STEPS = 10
# Situation tags that say "nothing / not the item could be determined".
UNCLASSIFIED_ALL = "미분류_전체"
UNCLASSIFIED_ITEM = "미분류_소분류"


def is_valid_pair(major: str, middle: str) -> bool:
    """The pairing rule: recyclables take one of the 12 middles; every other major repeats itself."""
    if major == RECYCLABLE:
        return middle in MIDDLES
    return major in MAJORS and middle == major


def split_category(category: str) -> tuple[str, str]:
    """A rule-document category (a recyclable middle, or a major) as its (major, middle) pair."""
    if category in MIDDLES:
        return RECYCLABLE, category
    if category in MAJORS and category != RECYCLABLE:
        return category, category
    raise ValueError(f"{category!r} is neither a recyclable middle nor a non-recyclable major")


def rule_key_for(major: str, middle: str) -> str | None:
    """The rule-document key of a valid pair: ``재활용폐기물_<middle>``, else the major; 미분류 has none."""
    if not is_valid_pair(major, middle) or major == UNCLASSIFIED:
        return None
    return f"{RECYCLABLE}_{middle}" if major == RECYCLABLE else major
