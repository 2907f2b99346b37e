"""Read-only reference data shared by services: the disposal knowledge and the character catalog.

The disposal knowledge (taxonomy, situation tags, the 18 rule documents, the item dictionary and the
offline classifier) is reached through ``knowledge_base()``; see ``base.py`` and docs/guidance.md.
Data files live next to these modules and are validated when loaded, so a broken file stops a
service at start-up instead of surfacing as a wrong answer later.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import lru_cache

from services.common.knowledge.base import (
    DATA_DIR,
    CheckedClassification,
    KnowledgeBase,
    KnowledgeError,
    TaxonomyViolation,
    knowledge_base,
)
from services.common.knowledge.models import (
    AmbiguousWord,
    Candidate,
    Guidance,
    Item,
    RuleDocument,
    SearchHit,
    TaxonomyNode,
)
from services.common.knowledge.taxonomy import MAJORS, MIDDLES, RECYCLABLE, UNCLASSIFIED
from services.common.knowledge.text import nfc, squash

__all__ = [
    "DATA_DIR",
    "MAJORS",
    "MIDDLES",
    "RECYCLABLE",
    "UNCLASSIFIED",
    "AmbiguousWord",
    "Candidate",
    "Character",
    "CheckedClassification",
    "Guidance",
    "Item",
    "KnowledgeBase",
    "KnowledgeError",
    "RuleDocument",
    "SearchHit",
    "TaxonomyNode",
    "TaxonomyViolation",
    "character_for_middle",
    "characters",
    "knowledge_base",
    "mascot",
    "nfc",
    "squash",
]

# Stable ids for catalog entries, derived from the code so every process and database agrees.
CHARACTER_ID_NAMESPACE = uuid.UUID("6f1d4c1e-3f7b-4e0e-9a51-2c8e0b9d7e11")


@dataclass(frozen=True)
class Character:
    code: str
    name: str
    match: str | None  # the recyclable middle category it rewards; None for the mascot
    type: str
    dialog: str
    cdn_code: str
    aliases: tuple[str, ...]

    @property
    def id(self) -> uuid.UUID:
        return uuid.uuid5(CHARACTER_ID_NAMESPACE, self.code)


@lru_cache
def characters() -> tuple[Character, ...]:
    """The 13 characters: the mascot 이코 first, then one per recyclable middle category."""
    raw = json.loads((DATA_DIR / "characters.json").read_text(encoding="utf-8"))
    catalog = tuple(
        Character(
            code=item["code"],
            name=nfc(item["name"]),
            match=nfc(item["match"]) if item["match"] else None,
            type=item["type"],
            dialog=item["dialog"],
            cdn_code=item["cdn_code"],
            aliases=tuple(item["aliases"]),
        )
        for item in raw["characters"]
    )
    if len(catalog) != 13 or catalog[0].match is not None:
        raise ValueError("character catalog must hold 13 characters with the mascot first")
    if len({c.code for c in catalog}) != 13 or len({c.name for c in catalog}) != 13:
        raise ValueError("character codes and names must be unique")
    matches = [c.match for c in catalog[1:]]
    if None in matches or set(matches) != set(MIDDLES):
        raise ValueError("each recyclable middle category must map to exactly one character")
    return catalog


def character_for_middle(middle_category: str) -> Character | None:
    target = nfc(middle_category)
    return next((c for c in characters() if c.match == target), None)


def mascot() -> Character:
    return characters()[0]
