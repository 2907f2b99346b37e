"""Typed models of the disposal knowledge: the data files as loaded, and the records handed to services.

The data files are validated by these models when the knowledge base loads (pydantic), so a broken
file stops a service at start-up instead of surfacing as a wrong answer later. Cross-file checks (an
item points at a rule document, a tag is in the vocabulary …) live in ``base.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, computed_field, model_validator

from services.common.knowledge.taxonomy import (
    DESTINATIONS,
    MAJORS,
    MAX_STEPS,
    MIDDLES,
    RECYCLABLE,
    rule_key_for,
    split_category,
)
from services.common.knowledge.text import compact, nfc

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(nfc)]
ItemId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=60)]
Condition = Literal["broken", "soiled", "torn", "large", "small", "construction", "powered"]
Destination = Literal[
    "general_payt_bag", "noncombustible_sack", "plastics", "general_or_bulky", "noncombustible_or_bulky",
    "separate_collection",
]  # fmt: skip
assert set(get_args(Destination)) == set(DESTINATIONS)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _category(value: str) -> str:
    split_category(value)  # raises ValueError for anything outside the taxonomy
    return value


Category = Annotated[Text, AfterValidator(_category)]

# ------------------------------------------------------------------------------- rule documents


class Trigger(Frozen):
    """What selects a detailed-method group besides its sub-items: minor names or situation tags."""

    items: tuple[Text, ...] = ()
    tags: tuple[Text, ...] = ()


class RuleDocument(Frozen):
    """One of the 18 disposal-rule documents (key ``재활용폐기물_<middle>`` or the major)."""

    key: Text
    category: Category
    major: Text
    name: Text
    target_items: tuple[Text, ...] = Field(min_length=1)
    target_notes: tuple[Text, ...] = ()
    sub_items: dict[Text, tuple[Text, ...]]
    common_method: tuple[Text, ...] = ()
    detailed_method: dict[Text, tuple[Text, ...]] = {}
    not_accepted: dict[Text, Destination] = {}
    icon_steps: tuple[Text, ...] = ()
    triggers: dict[Text, Trigger] = Field(default_factory=dict, exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> RuleDocument:
        major, middle = split_category(self.category)
        if self.major != major or self.key != rule_key_for(major, middle):
            raise ValueError(f"document {self.key!r}: key/major do not match category {self.category!r}")
        if not self.common_method and not self.detailed_method:
            raise ValueError(f"document {self.key!r}: needs at least one method step")
        for group, steps in self.detailed_method.items():
            if group not in self.sub_items and group not in self.triggers:
                raise ValueError(f"document {self.key!r}: group {group!r} has no sub-items and no trigger")
            if len(self.common_method) + len(steps) > MAX_STEPS:
                raise ValueError(f"document {self.key!r}: group {group!r} makes more than {MAX_STEPS} steps")
        unknown = set(self.triggers) - set(self.detailed_method)
        if unknown:
            raise ValueError(f"document {self.key!r}: triggers for unknown groups {sorted(unknown)}")
        return self

    def as_dict(self) -> dict[str, Any]:
        """The ``disposal_rules`` object of a scan result (docs/api.md, scan result)."""
        return self.model_dump(mode="json")

    def groups_for(self, minor: str | None, tags: frozenset[str], group: str | None = None) -> list[str]:
        """Detailed-method groups that apply: the item's own group, its sub-item group, or a trigger."""
        target = compact(_strip_note(minor)) if minor else ""
        chosen: list[str] = []
        for name in self.detailed_method:
            trigger = self.triggers.get(name, Trigger())
            members = {compact(_strip_note(i)) for i in (*self.sub_items.get(name, ()), *trigger.items)}
            if name == group or (target and target in members) or tags & set(trigger.tags):
                chosen.append(name)
        return chosen

    def steps(self, minor: str | None, tags: frozenset[str] = frozenset(), group: str | None = None) -> list[str]:
        """Ordered steps: the common method, then the applicable detailed groups (at most ten)."""
        steps = list(self.common_method)
        groups = self.groups_for(minor, tags, group)
        if not steps and not groups:
            groups = list(self.detailed_method)  # a document without a common method (food waste)
        for name in groups:
            steps.extend(s for s in self.detailed_method[name] if s not in steps)
        return steps[:MAX_STEPS]


def _strip_note(item: str) -> str:
    """``뼈(배출불가)`` → ``뼈``; ``가위 (날카로운 고철)`` → ``가위``."""
    head, sep, _ = item.partition("(")
    return head.strip() if sep and item.rstrip().endswith(")") else item.strip()


# ------------------------------------------------------------------------------------ data files


class TaxonomyFile(Frozen):
    """``taxonomy.json``: the verbatim item lists of the domain (duplicates and spelling variants kept)."""

    comment: str = Field("", alias="_comment")
    majors: tuple[Text, ...]
    recyclable_middles: dict[Text, tuple[Text, ...]]
    flat_items: dict[Text, tuple[Text, ...]]

    @model_validator(mode="after")
    def _closed_sets(self) -> TaxonomyFile:
        if self.majors != MAJORS:
            raise ValueError("taxonomy: the 8 major categories must be exactly the domain's, in order")
        if tuple(self.recyclable_middles) != MIDDLES:
            raise ValueError("taxonomy: the 12 recyclable middle categories must be exactly the domain's")
        if set(self.flat_items) != set(MAJORS) - {RECYCLABLE}:
            raise ValueError("taxonomy: every non-recyclable major needs a (possibly empty) flat item list")
        return self


class TagGroup(Frozen):
    name: Text
    tags: tuple[Text, ...] = Field(min_length=1)


class TagFile(Frozen):
    """``situation_tags.json``: the 11 groups (80 entries, 79 distinct tags) and what a tag asks of the user."""

    comment: str = Field("", alias="_comment")
    groups: tuple[TagGroup, ...]
    insufficiency: dict[Text, Text]
    not_for: dict[Text, tuple[Text, ...]] = {}
    category_cues: dict[Text, dict[Text, Text]] = {}

    @property
    def vocabulary(self) -> frozenset[str]:
        return frozenset(tag for group in self.groups for tag in group.tags)

    @model_validator(mode="after")
    def _counts_and_names(self) -> TagFile:
        entries = [tag for group in self.groups for tag in group.tags]
        if len(self.groups) != 11 or len(entries) != 80 or len(set(entries)) != 79:
            raise ValueError("situation tags: expected 11 groups, 80 entries, 79 distinct tags")
        known = self.vocabulary
        named = set(self.insufficiency) | set(self.not_for)
        for mapping in self.category_cues.values():
            named |= set(mapping) | set(mapping.values())
        if named - known:
            raise ValueError(f"situation tags: unknown tags named {sorted(named - known)}")
        categories = {c for cs in self.not_for.values() for c in cs} | set(self.category_cues)
        if categories - set(MIDDLES) - set(MAJORS):
            raise ValueError(f"situation tags: unknown categories {sorted(categories - set(MIDDLES) - set(MAJORS))}")
        return self


class Cue(Frozen):
    """A phrase of the user's text that states a condition ("기름 묻은", "라벨 안 뗀", "깨진").

    Matched on the squashed text as ``noun (+ particle) (+ 안/못) verb (+ 지 않…)``; a negation flips
    the cue to its ``negated_*`` reading (or to nothing). ``regex`` patterns are matched as they are.
    """

    name: str
    tag: Text | None = None
    flags: tuple[str, ...] = ()
    negated_tag: Text | None = None
    negated_flags: tuple[str, ...] = ()
    nouns: tuple[Text, ...] = ()
    verbs: tuple[Text, ...] = ()
    absent: tuple[Text, ...] = ()  # verbs that state the opposite on their own ("기름기 없는")
    regex: tuple[str, ...] = ()
    mask: bool = True  # the words of the cue are not read as items ("기름 묻은 비닐": 기름 is no item here)

    @model_validator(mode="after")
    def _has_pattern(self) -> Cue:
        if not self.verbs and not self.regex:
            raise ValueError(f"cue {self.name!r} needs verbs or regex patterns")
        return self


class ConditionFile(Frozen):
    """``conditions.toml``: phrases that state the item's condition, and how they combine."""

    cue: tuple[Cue, ...]
    overridden_by: dict[Text, tuple[Text, ...]] = {}


class Item(Frozen):
    """One entry of the item dictionary: a thing people throw away, with where it goes.

    ``major``/``middle``/``rule_id`` follow from ``category`` (a recyclable middle or a major).
    ``materials`` and ``when`` send the item elsewhere when the text names a material class
    ("유리" 반찬통) or a condition ("깨진" 소주병, "큰" 인형, "건전지 들어 있는" 장난감); both name
    other items by id.
    """

    id: ItemId
    name: Text
    category: Category
    minor: Text = ""
    aliases: tuple[Text, ...] = ()
    misspellings: tuple[Text, ...] = ()
    summary: Text
    group: Text | None = None  # the detailed-method group of its rule document, when one applies
    materials: dict[Text, ItemId] = {}
    when: dict[Condition, ItemId] = {}
    container: bool = False  # a container: a hazardous content word makes it hazardous waste ("페인트 통")
    generic: tuple[Text, ...] = ()  # generic words that also name it ("플라스틱", "유리"): lower confidence
    tags: tuple[Text, ...] = ()  # situation tags the item itself implies

    @model_validator(mode="before")
    @classmethod
    def _minor_defaults_to_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("minor"):
            data = {**data, "minor": data.get("name", "")}
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def major(self) -> str:
        return split_category(self.category)[0]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def middle(self) -> str:
        return split_category(self.category)[1]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rule_id(self) -> str:
        key = rule_key_for(self.major, self.middle)
        assert key is not None
        return key


class AmbiguousWord(Frozen):
    """A word that names several things (컵, 뚜껑, 쇼핑백): candidates and a question instead of a guess."""

    id: ItemId
    words: tuple[Text, ...] = Field(min_length=1)
    question: Text
    candidates: tuple[ItemId, ...] = Field(min_length=2)
    choices: dict[Text, ItemId] = {}  # material/kind class named in the text → the item it must be
    with_food: ItemId | None = None  # what it is when a food word qualifies it ("두부 용기")
    container: bool = False


class VocabularyFile(Frozen):
    """``items.toml``: the item dictionary, ambiguous words, modifier classes and neutral words."""

    classes: dict[Text, tuple[Text, ...]]
    neutral: tuple[Text, ...] = ()
    category_when: dict[Category, dict[Condition, ItemId]] = {}
    item: tuple[Item, ...]
    ambiguous: tuple[AmbiguousWord, ...] = ()


# ------------------------------------------------------------------------------ public results


class Candidate(Frozen):
    """A category the item may belong to (ambiguity, several items, or a low-confidence reading)."""

    item_id: str | None
    name: str
    major: str
    middle: str
    minor: str
    rule_id: str | None
    confidence: float


Reason = Literal["item", "variant", "material", "compound", "fuzzy", "ambiguous", "several", "unknown", "empty"]


class Guidance(Frozen):
    """The classifier's answer for one text.

    ``major``/``middle`` always satisfy the pairing rule; ``미분류`` when nothing matched with
    confidence or the text names something ambiguous (then ``candidates`` and ``question`` say what
    to ask). ``rule_id`` is the rule document of the category (``None`` for 미분류).
    """

    major: str
    middle: str
    minor: str
    situation_tags: tuple[str, ...]
    confidence: float
    reason: Reason
    rule_id: str | None
    item_id: str | None = None
    group: str | None = None
    candidates: tuple[Candidate, ...] = ()
    question: str | None = None
    matched: tuple[str, ...] = ()  # the words of the text that decided


MatchKind = Literal["exact", "prefix", "alias", "partial", "initials", "fuzzy"]


class SearchHit(Frozen):
    """One result of the item dictionary search; ``kind`` in rank order exact > prefix > alias > … > fuzzy."""

    item: Item
    kind: MatchKind
    matched: str  # the name or alias that matched
    distance: int = 0  # jamo edit distance for fuzzy hits


class TaxonomyNode(Frozen):
    """A node of the taxonomy tree: a major, or a recyclable middle, with its rule document and items."""

    name: str
    level: Literal["major", "middle"]
    rule_id: str | None
    rule_name: str | None
    minors: tuple[str, ...] = ()  # the domain's verbatim minor items (display: deduplicated)
    item_ids: tuple[str, ...] = ()  # dictionary items filed directly here
    children: tuple[TaxonomyNode, ...] = ()
