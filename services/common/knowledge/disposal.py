"""The disposal knowledge base: taxonomy, situation tags and the 18 disposal-rule documents.

Read-only reference data shared by scan and chat. ``knowledge_base()`` loads and validates every file
once per process; services call it at start-up so a broken data file stops the process there, not in
the middle of a user's scan. The offline classifier's text matcher lives here too, because it is a
pure function of this data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from services.common.knowledge import DATA_DIR, characters, nfc

RECYCLABLE = "재활용폐기물"
UNCLASSIFIED = "미분류"
MAJORS = ("재활용폐기물", "일반종량제폐기물", "불연성종량제폐기물", "음식물류폐기물", "대형폐기물",
          "공사장생활폐기물", "생활계유해폐기물", "미분류")  # fmt: skip
DESTINATIONS = {
    "general_payt_bag": "일반 종량제봉투",
    "noncombustible_sack": "불연성 종량제 마대",
    "plastics": "플라스틱류",
    "general_or_bulky": "크기에 따라 종량제봉투 또는 대형폐기물",
    "noncombustible_or_bulky": "불연성 마대 또는 대형폐기물",
    "separate_collection": "별도 배출",
}
MAX_STEPS = 10
# Particles that may follow a one-syllable word ("병이", "옷을"): one-syllable words match only as a
# whole word, so "칼" does not fire inside "칼국수".
_PARTICLES = ("", "이", "가", "은", "는", "을", "를", "도", "만", "요")


_OVERRIDDEN_BY = {"오염_중간": ("오염_경미", "오염_심함"), "비닐_라벨_부착": ("비닐_라벨_완전_제거됨",)}


class KnowledgeError(ValueError):
    """A data file breaks an invariant; raised at load time."""


def squash(text: str) -> str:
    """Matching form: NFC, lower-case, no whitespace."""
    return re.sub(r"\s+", "", nfc(text)).lower()


def _strip_note(item: str) -> str:
    """``뼈(배출불가)`` → ``뼈``; ``가위 (날카로운 고철)`` → ``가위``."""
    return re.sub(r"\s*\([^)]*\)\s*$", "", item).strip()


@dataclass(frozen=True)
class RuleDocument:
    key: str  # lookup key: 재활용폐기물_<middle> or the major
    category: str  # the middle (recyclables) or the major
    major: str
    name: str
    target_items: tuple[str, ...]
    target_notes: tuple[str, ...]
    sub_items: Mapping[str, tuple[str, ...]]
    common_method: tuple[str, ...]
    detailed_method: Mapping[str, tuple[str, ...]]
    not_accepted: Mapping[str, str]
    icon_steps: tuple[str, ...]
    triggers: Mapping[str, Mapping[str, tuple[str, ...]]]

    def as_dict(self) -> dict[str, Any]:
        """The ``disposal_rules`` object of a scan result (contract §5.3)."""
        return {
            "key": self.key,
            "category": self.category,
            "major": self.major,
            "name": self.name,
            "target_items": list(self.target_items),
            "target_notes": list(self.target_notes),
            "sub_items": {k: list(v) for k, v in self.sub_items.items()},
            "common_method": list(self.common_method),
            "detailed_method": {k: list(v) for k, v in self.detailed_method.items()},
            "not_accepted": dict(self.not_accepted),
            "icon_steps": list(self.icon_steps),
        }

    def groups_for(self, minor: str | None, tags: frozenset[str]) -> list[str]:
        """Detailed-method groups that apply to this item: its sub-item group, or a trigger (item/tag)."""
        target = squash(_strip_note(minor)) if minor else ""
        chosen: list[str] = []
        for group in self.detailed_method:
            items = {squash(_strip_note(i)) for i in self.sub_items.get(group, ())}
            trigger = self.triggers.get(group, {})
            items |= {squash(i) for i in trigger.get("items", ())}
            if (target and target in items) or tags & set(trigger.get("tags", ())):
                chosen.append(group)
        return chosen

    def steps(self, minor: str | None, tags: frozenset[str]) -> list[str]:
        """Ordered steps: the common method, then the detailed method of the applicable groups (≤ 10)."""
        steps = list(self.common_method)
        groups = self.groups_for(minor, tags)
        if not steps and not groups:
            groups = list(self.detailed_method)  # a document without a common method (food waste)
        for group in groups:
            steps.extend(self.detailed_method[group])
        return steps[:MAX_STEPS]


@dataclass(frozen=True)
class Match:
    major: str
    middle: str
    minor: str
    word: str  # the word of the user's text that decided it


@dataclass(frozen=True)
class KnowledgeBase:
    recyclable_middles: Mapping[str, tuple[str, ...]]
    flat_items: Mapping[str, tuple[str, ...]]
    rules: Mapping[str, RuleDocument]
    tag_groups: Mapping[str, tuple[str, ...]]
    tags: frozenset[str]
    insufficiency: Mapping[str, str]
    not_for: Mapping[str, frozenset[str]]
    text_cues: Mapping[str, tuple[str, ...]]
    category_cues: Mapping[str, Mapping[str, str]]
    # (matching form, major, middle, minor), longest first
    lexicon: tuple[tuple[str, str, str, str], ...] = field(repr=False)

    # ------------------------------------------------------------------------- taxonomy

    @property
    def middles(self) -> tuple[str, ...]:
        return tuple(self.recyclable_middles)

    def is_valid(self, major: str, middle: str) -> bool:
        """The contract's pairing rule: recyclables take one of the 12 middles, every other major repeats itself."""
        if major == RECYCLABLE:
            return middle in self.recyclable_middles
        return major in MAJORS and middle == major

    def rule_key(self, major: str, middle: str) -> str | None:
        """DOMAIN.md §1.4: ``재활용폐기물_<middle>``, else the major; 미분류 and unknown strings have none."""
        major, middle = nfc(major), nfc(middle)
        key = f"{RECYCLABLE}_{middle}" if major == RECYCLABLE else major
        return key if key in self.rules else None

    def rule_for(self, major: str, middle: str) -> RuleDocument | None:
        key = self.rule_key(major, middle)
        return self.rules[key] if key else None

    # ---------------------------------------------------------------------- text matching

    def match(self, text: str) -> Match | None:
        """Deterministic classification of a user's note: the longest known item word in it wins."""
        squashed = squash(text)
        if not squashed:
            return None
        tokens = {squash(token) for token in nfc(text).split()}
        for form, major, middle, minor in self.lexicon:
            if len(form) == 1:
                if not any(token in {form + p for p in _PARTICLES} for token in tokens):
                    continue
            elif form not in squashed:
                continue
            return Match(major, middle, minor, form)
        return None

    def tags_from_text(self, text: str, middle: str) -> list[str]:
        """Situation tags the note states outright ("라벨 안 뗐어요" → 비닐_라벨_부착)."""
        squashed = squash(text)
        found: list[str] = []
        for tag, cues in self.text_cues.items():
            if any(cue in squashed for cue in cues):
                found.append(self.category_cues.get(middle, {}).get(tag, tag))
        # A plain cue is often part of a qualified one ("약간 더러워요" contains "더러"), and a stated
        # removal ("라벨 뗐어요") beats an attached label: the more specific reading wins.
        found = [tag for tag in found if not any(other in found for other in _OVERRIDDEN_BY.get(tag, ()))]
        return list(dict.fromkeys(found))

    def insufficiencies(self, tags: list[str] | tuple[str, ...], category: str) -> list[str]:
        """Friendly suggestions for tags that mean "not prepared yet", relevant to this category."""
        out: list[str] = []
        for tag in tags:
            text = self.insufficiency.get(tag)
            if text and category not in self.not_for.get(tag, frozenset()) and text not in out:
                out.append(text)
        return out


def _load(name: str) -> Any:
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))


def _strings(values: Any, where: str) -> tuple[str, ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
        raise KnowledgeError(f"{where}: expected a list of non-empty strings")
    return tuple(nfc(v) for v in values)


def _rule(raw: dict[str, Any], tags: frozenset[str], where: str) -> RuleDocument:
    sub_items = {nfc(k): _strings(v, f"{where}.sub_items.{k}") for k, v in raw["sub_items"].items()}
    detailed = {nfc(k): _strings(v, f"{where}.detailed_method.{k}") for k, v in raw["detailed_method"].items()}
    triggers = {
        nfc(group): {
            kind: _strings(values, f"{where}.triggers.{group}") if values else () for kind, values in t.items()
        }
        for group, t in raw.get("triggers", {}).items()
    }
    doc = RuleDocument(
        key=nfc(raw["key"]),
        category=nfc(raw["category"]),
        major=nfc(raw["major"]),
        name=nfc(raw["name"]),
        target_items=_strings(raw["target_items"], f"{where}.target_items"),
        target_notes=_strings(raw["target_notes"], f"{where}.target_notes") if raw["target_notes"] else (),
        sub_items=sub_items,
        common_method=_strings(raw["common_method"], f"{where}.common_method") if raw["common_method"] else (),
        detailed_method=detailed,
        not_accepted={nfc(k): v for k, v in raw["not_accepted"].items()},
        icon_steps=_strings(raw["icon_steps"], f"{where}.icon_steps") if raw["icon_steps"] else (),
        triggers=triggers,
    )
    for group in detailed:
        if group not in sub_items and group not in triggers:
            raise KnowledgeError(f"{where}: detailed_method group {group!r} has no sub_items entry and no trigger")
        if len(doc.common_method) + len(detailed[group]) > MAX_STEPS:
            raise KnowledgeError(f"{where}: group {group!r} makes more than {MAX_STEPS} steps")
    for group, trigger in triggers.items():
        if group not in detailed:
            raise KnowledgeError(f"{where}: trigger for unknown group {group!r}")
        unknown = set(trigger.get("tags", ())) - tags
        if unknown:
            raise KnowledgeError(f"{where}: trigger tags not in the vocabulary: {sorted(unknown)}")
    bad = {d for d in doc.not_accepted.values() if d not in DESTINATIONS}
    if bad:
        raise KnowledgeError(f"{where}: unknown not_accepted destinations {sorted(bad)}")
    if not doc.common_method and not doc.detailed_method:
        raise KnowledgeError(f"{where}: a document needs at least one method step")
    return doc


@lru_cache
def knowledge_base() -> KnowledgeBase:
    taxonomy = _load("taxonomy.json")
    tag_data = _load("situation_tags.json")

    if tuple(taxonomy["majors"]) != MAJORS:
        raise KnowledgeError("taxonomy: the 8 major categories must be exactly those of DOMAIN.md §1.1")
    middles = {nfc(k): _strings(v, f"taxonomy.{k}") for k, v in taxonomy["recyclable_middles"].items()}
    if len(middles) != 12:
        raise KnowledgeError("taxonomy: there must be 12 recyclable middle categories")
    flat = {nfc(k): tuple(nfc(i) for i in v) for k, v in taxonomy["flat_items"].items()}
    if set(flat) != set(MAJORS) - {RECYCLABLE}:
        raise KnowledgeError("taxonomy: every non-recyclable major needs a (possibly empty) flat item list")

    labels = {c.match for c in characters() if c.match is not None}
    if labels - set(middles):
        raise KnowledgeError(
            f"characters: match labels that are not middle categories: {sorted(labels - set(middles))}"
        )
    if set(middles) - labels:
        raise KnowledgeError(f"characters: middle categories without a character: {sorted(set(middles) - labels)}")

    groups = {nfc(g["name"]): _strings(g["tags"], f"tags.{g['name']}") for g in tag_data["groups"]}
    entries = [tag for tags in groups.values() for tag in tags]
    vocabulary = frozenset(entries)
    if len(groups) != 11 or len(entries) != 80 or len(vocabulary) != 79:
        raise KnowledgeError("situation tags: expected 11 groups, 80 entries, 79 distinct tags")
    for section in ("insufficiency", "not_for", "text_cues"):
        unknown = set(tag_data[section]) - vocabulary
        if unknown:
            raise KnowledgeError(f"situation tags: {section} names unknown tags {sorted(unknown)}")
    known_categories = set(middles) | set(MAJORS)
    for tag, categories in tag_data["not_for"].items():
        if set(categories) - known_categories:
            raise KnowledgeError(f"situation tags: not_for.{tag} names unknown categories")
    for category, mapping in tag_data["category_cues"].items():
        if category not in known_categories or set(mapping) - vocabulary or set(mapping.values()) - vocabulary:
            raise KnowledgeError(f"situation tags: category_cues.{category} is inconsistent")

    rules: dict[str, RuleDocument] = {}
    for path in sorted((DATA_DIR / "rules").glob("*.json")):
        doc = _rule(json.loads(path.read_text(encoding="utf-8")), vocabulary, f"rules/{path.name}")
        if doc.key in rules:
            raise KnowledgeError(f"rules: duplicate document key {doc.key!r}")
        rules[doc.key] = doc
    expected = {f"{RECYCLABLE}_{m}" for m in middles} | (set(MAJORS) - {RECYCLABLE, UNCLASSIFIED})
    if set(rules) != expected:
        raise KnowledgeError(
            f"rules: expected the 18 documents of DOMAIN.md §1.4; missing {sorted(expected - set(rules))}, "
            f"unexpected {sorted(set(rules) - expected)}"
        )
    for doc in rules.values():
        category_ok = doc.category in middles if doc.major == RECYCLABLE else doc.category == doc.major
        if not category_ok or doc.key != (f"{RECYCLABLE}_{doc.category}" if doc.major == RECYCLABLE else doc.major):
            raise KnowledgeError(f"rules: document {doc.key!r} has an inconsistent major/category")

    lexicon: dict[str, tuple[str, str, str]] = {}

    def add(word: str, major: str, middle: str, minor: str) -> None:
        form = squash(word)
        if form and form not in lexicon:
            lexicon[form] = (major, middle, minor)

    for word, target in taxonomy["synonyms"].items():
        major, middle, minor = (nfc(v) for v in target)
        if not ((major == RECYCLABLE and middle in middles) or (major in MAJORS and middle == major)):
            raise KnowledgeError(f"taxonomy: synonym {word!r} points at an invalid category {target}")
        if not minor.strip():
            raise KnowledgeError(f"taxonomy: synonym {word!r} has an empty minor")
        add(word, major, middle, minor)
    reroute = {nfc(k): nfc(v) for k, v in taxonomy["reroute"].items()}
    for item, major in reroute.items():
        if major not in MAJORS or not any(item in items for items in flat.values()):
            raise KnowledgeError(f"taxonomy: reroute of {item!r} is inconsistent")
    for middle, minors in middles.items():
        add(middle, RECYCLABLE, middle, middle)
        for minor in minors:
            add(minor, RECYCLABLE, middle, minor)
            add(_strip_note(minor), RECYCLABLE, middle, minor)
    for major, items in flat.items():
        for item in items:
            target_major = reroute.get(item, major)
            add(_strip_note(item), target_major, target_major, _strip_note(item))
    ordered = tuple((form, *target) for form, target in sorted(lexicon.items(), key=lambda kv: (-len(kv[0]), kv[0])))

    return KnowledgeBase(
        recyclable_middles=middles,
        flat_items=flat,
        rules=rules,
        tag_groups=groups,
        tags=vocabulary,
        insufficiency={nfc(k): v for k, v in tag_data["insufficiency"].items()},
        not_for={nfc(k): frozenset(v) for k, v in tag_data["not_for"].items()},
        text_cues={nfc(k): tuple(squash(c) for c in v) for k, v in tag_data["text_cues"].items()},
        category_cues={nfc(k): dict(v) for k, v in tag_data["category_cues"].items()},
        lexicon=ordered,
    )
