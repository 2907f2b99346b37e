"""The knowledge base: every data file loaded, validated and cross-checked once per process.

``knowledge_base()`` is what services call (scan at start-up, so a broken file stops the process
there). The ``KnowledgeBase`` it returns answers the three consumers:
- scan's offline classifier and the model-output check: ``classify``, ``check_classification``;
- the info service's item dictionary: ``items``, ``item``, ``search``, ``taxonomy_tree``, ``rule``;
- chat's waste answers: ``classify`` + ``rule_for`` + ``insufficiencies`` (and ``ai.compose_answer``).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from services.common.knowledge.classifier import Classifier, LexiconError
from services.common.knowledge.conditions import ConditionReader
from services.common.knowledge.models import (
    AmbiguousWord,
    ConditionFile,
    Guidance,
    Item,
    RuleDocument,
    SearchHit,
    TagFile,
    TaxonomyFile,
    TaxonomyNode,
    VocabularyFile,
)
from services.common.knowledge.search import ItemIndex
from services.common.knowledge.taxonomy import (
    MAJORS,
    MIDDLES,
    RECYCLABLE,
    UNCLASSIFIED,
    is_valid_pair,
    rule_key_for,
)
from services.common.knowledge.text import nfc, squash

DATA_DIR = Path(__file__).resolve().parent
# Category names a model (or a person) may write instead of the exact strings.
_MAJOR_ALIASES = {
    "재활용": RECYCLABLE, "재활용품": RECYCLABLE, "재활용쓰레기": RECYCLABLE, "일반쓰레기": "일반종량제폐기물",
    "종량제": "일반종량제폐기물", "일반종량제": "일반종량제폐기물", "불연성": "불연성종량제폐기물",
    "불연성쓰레기": "불연성종량제폐기물", "음식물": "음식물류폐기물", "음식물쓰레기": "음식물류폐기물",
    "대형": "대형폐기물", "대형쓰레기": "대형폐기물", "공사장폐기물": "공사장생활폐기물",
    "유해폐기물": "생활계유해폐기물", "생활유해폐기물": "생활계유해폐기물", "분류불가": UNCLASSIFIED,
}  # fmt: skip


class KnowledgeError(ValueError):
    """A data file breaks an invariant; raised at load time."""


class TaxonomyViolation(ValueError):
    """A classification (e.g. a model's output) that cannot be mapped onto the taxonomy."""


@dataclass(frozen=True)
class CheckedClassification:
    """A classification mapped onto the taxonomy; ``corrections`` says what had to change (for logs)."""

    major: str
    middle: str
    minor: str
    situation_tags: tuple[str, ...]
    corrections: tuple[str, ...] = ()


@dataclass(frozen=True)
class KnowledgeBase:
    taxonomy: TaxonomyFile
    tag_file: TagFile
    rules: Mapping[str, RuleDocument]
    items: Mapping[str, Item]
    ambiguous: Mapping[str, AmbiguousWord]
    classifier: Classifier = field(repr=False)
    index: ItemIndex = field(repr=False)

    # ----------------------------------------------------------------------------- taxonomy

    @property
    def middles(self) -> tuple[str, ...]:
        return MIDDLES

    @property
    def recyclable_middles(self) -> Mapping[str, tuple[str, ...]]:
        return self.taxonomy.recyclable_middles

    @property
    def flat_items(self) -> Mapping[str, tuple[str, ...]]:
        return self.taxonomy.flat_items

    @cached_property
    def tags(self) -> frozenset[str]:
        """The 79 situation tags."""
        return self.tag_file.vocabulary

    @cached_property
    def tag_groups(self) -> Mapping[str, tuple[str, ...]]:
        return {group.name: group.tags for group in self.tag_file.groups}

    def is_valid(self, major: str, middle: str) -> bool:
        return is_valid_pair(nfc(major), nfc(middle))

    def rule_key(self, major: str, middle: str) -> str | None:
        """``재활용폐기물_<middle>``, else the major; 미분류 and unknown strings have no document."""
        key = rule_key_for(nfc(major), nfc(middle))
        return key if key in self.rules else None

    def rule_for(self, major: str, middle: str) -> RuleDocument | None:
        key = self.rule_key(major, middle)
        return self.rules[key] if key else None

    def rule(self, key: str) -> RuleDocument | None:
        return self.rules.get(nfc(key))

    def taxonomy_tree(self) -> tuple[TaxonomyNode, ...]:
        """Majors (recyclables with their 12 middles), each with its rule document, minors and items."""
        by_category: dict[str, list[str]] = {}
        for item in self.items.values():
            by_category.setdefault(item.category, []).append(item.id)

        def node(
            name: str,
            level: Literal["major", "middle"],
            minors: tuple[str, ...],
            children: tuple[TaxonomyNode, ...] = (),
        ) -> TaxonomyNode:
            major, middle = (RECYCLABLE, name) if level == "middle" else (name, name)
            rule = self.rule_for(major, middle)
            return TaxonomyNode(
                name=name,
                level=level,
                rule_id=rule.key if rule else None,
                rule_name=rule.name if rule else None,
                minors=minors,
                item_ids=tuple(by_category.get(name, ())) if level == "middle" or name != RECYCLABLE else (),
                children=children,
            )

        middles = tuple(node(m, "middle", minors) for m, minors in self.taxonomy.recyclable_middles.items())
        return tuple(
            node(major, "major", (), middles) if major == RECYCLABLE else node(major, "major", self.flat_items[major])
            for major in MAJORS
        )

    # ------------------------------------------------------------------------------- items

    def item(self, item_id: str) -> Item | None:
        return self.items.get(item_id)

    def search(self, query: str, limit: int = 20) -> list[SearchHit]:
        """The item dictionary search (exact > prefix > alias > partial > initials > fuzzy)."""
        return self.index.search(query, limit)

    # --------------------------------------------------------------------------- guidance

    def classify(self, text: str) -> Guidance:
        """The offline classifier: category, confidence, candidates, situation tags, rule id."""
        return self.classifier.classify(text)

    def insufficiencies(self, tags: list[str] | tuple[str, ...], category: str) -> list[str]:
        """Friendly suggestions for tags that mean "not prepared yet". They concern recyclables only:
        a general-waste or hazardous item is not rinsed or de-labelled before it goes out."""
        if category not in MIDDLES:
            return []
        out: list[str] = []
        for tag in tags:
            text = self.tag_file.insufficiency.get(tag)
            if text and category not in self.tag_file.not_for.get(tag, ()) and text not in out:
                out.append(text)
        return out

    def check_classification(self, major: str, middle: str, minor: str | None,
                             tags: list[str] | tuple[str, ...]) -> CheckedClassification:  # fmt: skip
        """Map a classification (a model's output) onto the taxonomy: exact strings pass; spelling,
        spacing and near names are corrected; a pair that cannot be placed raises TaxonomyViolation."""
        fixes: list[str] = []
        major, middle, minor = nfc(major).strip(), nfc(middle).strip(), nfc(minor or "").strip()
        if major not in MAJORS:
            mapped = self._major_named(major)
            if mapped is None:
                raise TaxonomyViolation(f"unknown major {major!r}")
            fixes.append(f"major {major!r} -> {mapped[0]!r}")
            major = mapped[0]
            middle = mapped[1] or middle
        if major == RECYCLABLE and middle not in MIDDLES:
            fixed = self._middle_named(middle) or self._middle_named(minor)
            if fixed is None:
                raise TaxonomyViolation(f"recyclable with unknown middle {middle!r}")
            fixes.append(f"middle {middle!r} -> {fixed!r}")
            middle = fixed
        elif major != RECYCLABLE and middle != major:
            if middle in MIDDLES:
                reading = self.classify(minor) if minor else None
                if reading is not None and (reading.major, reading.middle) == (RECYCLABLE, middle):
                    fixes.append(f"major {major!r} -> {RECYCLABLE!r} (the item and the middle agree)")
                    major = RECYCLABLE
                elif reading is None or reading.major != major:
                    raise TaxonomyViolation(f"middle {middle!r} contradicts major {major!r}")
            if major != RECYCLABLE:
                fixes.append(f"middle {middle!r} -> {major!r}")
                middle = major
        known = [nfc(t) for t in tags if nfc(t) in self.tags]
        if len(known) != len(tags):
            fixes.append(f"dropped unknown tags {sorted(set(map(nfc, tags)) - self.tags)}")
        if major == UNCLASSIFIED and not known:
            known = ["미분류_전체"]
        return CheckedClassification(major, middle, minor or middle, tuple(dict.fromkeys(known)), tuple(fixes))

    def _major_named(self, text: str) -> tuple[str, str | None] | None:
        """A major written loosely ("일반 쓰레기"), or a recyclable middle given as the major."""
        key = squash(text)
        exact = {squash(m): m for m in MAJORS}
        if key in exact:
            return exact[key], None
        if key in _MAJOR_ALIASES:
            return _MAJOR_ALIASES[key], None
        middle = self._middle_named(text)
        return (RECYCLABLE, middle) if middle else None

    def _middle_named(self, text: str) -> str | None:
        """A recyclable middle from a loose name ("플라스틱", "페트병", "캔") or an item name."""
        if not text:
            return None
        key = squash(text)
        exact = {squash(m): m for m in MIDDLES}
        if key in exact:
            return exact[key]
        reading = self.classify(text)
        return reading.middle if reading.major == RECYCLABLE else None


# ------------------------------------------------------------------------------------ loading


def _read(path: Path) -> Any:
    raw = path.read_text(encoding="utf-8")
    return tomllib.loads(raw) if path.suffix == ".toml" else json.loads(raw)


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], path: Path) -> M:
    try:
        return model.model_validate(_read(path))
    except (ValidationError, ValueError, OSError) as exc:
        raise KnowledgeError(f"{path.name}: {exc}") from exc


def _check_references(vocabulary: VocabularyFile, rules: Mapping[str, RuleDocument], tags: frozenset[str],
                      conditions: ConditionFile) -> None:  # fmt: skip
    ids = [item.id for item in vocabulary.item]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise KnowledgeError(f"items.toml: duplicate item ids {sorted(duplicates)}")
    known, classes = set(ids), set(vocabulary.classes)
    problems: list[str] = []
    for item in vocabulary.item:
        rule = rules[item.rule_id]
        if item.group and item.group not in rule.detailed_method:
            problems.append(f"item {item.id}: group {item.group!r} is not in {rule.key}")
        for target in (*item.materials.values(), *item.when.values()):
            if target not in known:
                problems.append(f"item {item.id}: unknown item {target!r}")
        if set(item.materials) - classes:
            problems.append(f"item {item.id}: unknown classes {sorted(set(item.materials) - classes)}")
        if set(item.tags) - tags:
            problems.append(f"item {item.id}: unknown tags {sorted(set(item.tags) - tags)}")
    for group in vocabulary.ambiguous:
        targets = {*group.candidates, *group.choices.values(), *([group.with_food] if group.with_food else [])}
        if targets - known:
            problems.append(f"ambiguous {group.id}: unknown items {sorted(targets - known)}")
        if set(group.choices) - classes:
            problems.append(f"ambiguous {group.id}: unknown classes {sorted(set(group.choices) - classes)}")
    for category, variants in vocabulary.category_when.items():
        if set(variants.values()) - known:
            problems.append(f"category_when {category}: unknown items {sorted(set(variants.values()) - known)}")
    named = {t for cue in conditions.cue for t in (cue.tag, cue.negated_tag) if t}
    named |= set(conditions.overridden_by) | {t for ts in conditions.overridden_by.values() for t in ts}
    if named - tags:
        problems.append(f"conditions.toml: unknown tags {sorted(named - tags)}")
    for rule in rules.values():
        unknown = {t for trigger in rule.triggers.values() for t in trigger.tags} - tags
        if unknown:
            problems.append(f"rule {rule.key}: trigger tags not in the vocabulary {sorted(unknown)}")
    if problems:
        raise KnowledgeError("; ".join(problems))


def load(data_dir: Path) -> KnowledgeBase:
    taxonomy = _parse(TaxonomyFile, data_dir / "taxonomy.json")
    tag_file = _parse(TagFile, data_dir / "situation_tags.json")
    rules: dict[str, RuleDocument] = {}
    for path in sorted((data_dir / "rules").glob("*.json")):
        doc = _parse(RuleDocument, path)
        if doc.key in rules:
            raise KnowledgeError(f"rules: duplicate document key {doc.key!r}")
        rules[doc.key] = doc
    expected = {f"{RECYCLABLE}_{m}" for m in MIDDLES} | (set(MAJORS) - {RECYCLABLE, UNCLASSIFIED})
    if set(rules) != expected:
        raise KnowledgeError(
            f"rules: expected the 18 documents of the taxonomy; missing {sorted(expected - set(rules))}, "
            f"unexpected {sorted(set(rules) - expected)}"
        )
    vocabulary = _parse(VocabularyFile, data_dir / "items.toml")
    conditions = _parse(ConditionFile, data_dir / "conditions.toml")
    _check_references(vocabulary, rules, tag_file.vocabulary, conditions)
    items = {item.id: item for item in vocabulary.item}
    ambiguous = {group.id: group for group in vocabulary.ambiguous}
    try:
        classifier = Classifier(vocabulary, ConditionReader(conditions), items, ambiguous, tag_file.category_cues)
    except (LexiconError, ValueError) as exc:
        raise KnowledgeError(f"items.toml: {exc}") from exc
    return KnowledgeBase(taxonomy, tag_file, rules, items, ambiguous, classifier, ItemIndex(items, ambiguous))


@lru_cache
def knowledge_base() -> KnowledgeBase:
    """The process-wide knowledge base (loaded and validated on first use)."""
    return load(DATA_DIR)
