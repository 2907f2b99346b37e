"""Reference prices and fees the assistant answers from (docs/chat.md, "The assistant").

``data/prices.toml`` holds the recyclable-material price survey (KRW per kg, nine regions) and the
bulky-waste fee examples with four districts' application info, verbatim. It is validated by pydantic
when first read, so a broken file stops the process instead of producing a wrong price later.
Lookups match the user's words by substring against names and synonyms (NFC, spaces removed): a
price question names "고철", the table says "철스크랩".
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.common.knowledge import squash

DATA = Path(__file__).resolve().parent / "data" / "prices.toml"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Survey(_Frozen):
    month: str
    source: str
    regions: tuple[tuple[str, str], ...] = Field(min_length=9, max_length=9)
    region_words: dict[str, str]
    broad: dict[str, tuple[str, ...]]


class Price(_Frozen):
    id: str
    category: str
    name: str
    prices: tuple[int, ...] = Field(min_length=9, max_length=9)
    synonyms: tuple[str, ...] = ()

    def words(self) -> tuple[str, ...]:
        return (self.name, *self.synonyms)


class District(_Frozen):
    name: str
    phone: str
    how: str
    payment: str


class Bulky(_Frozen):
    free_appliance_pickup: str
    fees: tuple[tuple[str, str, int], ...]


class FactFile(_Frozen):
    survey: Survey
    price: tuple[Price, ...]
    bulky: Bulky
    district: tuple[District, ...]

    @model_validator(mode="after")
    def _references(self) -> FactFile:
        ids = {p.id for p in self.price}
        regions = {r for r, _ in self.survey.regions}
        unknown = {i for items in self.survey.broad.values() for i in items} - ids
        if unknown or set(self.survey.region_words.values()) - regions or len(ids) != len(self.price):
            raise ValueError(f"prices.toml: broken references {sorted(unknown)}")
        return self


class Facts:
    def __init__(self, data: FactFile) -> None:
        self.data = data
        self.region_ids = [r for r, _ in data.survey.regions]
        self.region_names = dict(data.survey.regions)
        self._by_id = {p.id: p for p in data.price}

    # ------------------------------------------------------------------------------- prices

    def region_in(self, text: str) -> str | None:
        """The region a question names (``서울`` → capital), or None."""
        key = squash(text)
        for region_id, name in self.data.survey.regions:
            if squash(name) in key:
                return region_id
        return next((rid for word, rid in self.data.survey.region_words.items() if squash(word) in key), None)

    def price_of(self, item: Price, region: str) -> int:
        return item.prices[self.region_ids.index(region)]

    def prices_for(self, text: str) -> list[Price]:
        """Items a text names: exact names/synonyms (longest first, so 알루미늄캔 beats 캔), else a broad word."""
        key = squash(text)
        found: list[Price] = []
        words = sorted(((squash(w), p) for p in self.data.price for w in p.words()), key=lambda x: -len(x[0]))
        taken: list[str] = []
        for word, item in words:
            # A word inside a longer word already matched is not a second item ("페트병" holds "페트").
            if word and word in key and not any(word in t for t in taken) and item not in found:
                found.append(item)
                taken.append(word)
        if found:
            return found
        for word, ids in sorted(self.data.survey.broad.items(), key=lambda x: -len(x[0])):
            if squash(word) in key:
                return [self._by_id[i] for i in ids]
        return []

    # ------------------------------------------------------------------------------ bulky fees

    def fees_for(self, text: str) -> list[tuple[str, str, int]]:
        """Fee rows whose item name (before the bracket) occurs in the text: "소파" gives all three sofas."""
        key = squash(text)
        return [row for row in self.data.bulky.fees if squash(row[0].split("(")[0]) in key]

    def district_in(self, text: str) -> District | None:
        key = squash(text)
        return next((d for d in self.data.district if squash(d.name) in key or squash(d.name[:-1]) in key), None)


@lru_cache
def facts() -> Facts:
    return Facts(FactFile.model_validate(tomllib.loads(DATA.read_text(encoding="utf-8"))))
