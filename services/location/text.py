"""Text normalisation for keyword search and deduplication.

Korean spacing is inconsistent (``자원순환가게`` vs ``자원 순환 가게``) and clients may send
decomposed Hangul (NFD, e.g. macOS input), so a *match key* is: NFKC, lower-cased, every whitespace
character removed. Matching one key inside another is then a substring test that also finds partial
words (``순환`` in ``자원순환가게``), which is what Korean users expect from a search box.
"""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")
# Separates the fields packed into ``search_key`` so a query never matches across two fields.
FIELD_SEPARATOR = "|"


def clean(value: object) -> str | None:
    """Trimmed text, or None for missing/blank values (docs/location.md: empty string = null)."""
    if value is None:
        return None
    text = unicodedata.normalize("NFC", str(value)).strip()
    return text or None


def match_key(value: str | None) -> str:
    if not value:
        return ""
    return _SPACE.sub("", unicodedata.normalize("NFKC", value).lower())


def query_key(query: str) -> str:
    """The key of a search query; the separator is dropped so it cannot straddle two fields."""
    return match_key(query).replace(FIELD_SEPARATOR, "")


def pack(values: list[str | None]) -> str:
    return FIELD_SEPARATOR.join(key for key in map(match_key, values) if key)


def like_pattern(key: str) -> str:
    """``%key%`` for LIKE … ESCAPE '\\' with the wildcards in the user's text escaped."""
    escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
