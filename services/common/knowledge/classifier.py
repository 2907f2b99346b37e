"""The offline classifier: a Korean note ("기름 묻은 배달 용기") → category, confidence, candidates, tags.

How it decides (docs/guidance.md has the long form):
1. Condition cues are read first (``conditions.py``): tags, flags (soiled, washed, broken, torn,
   construction) and the spans they cover, which are not read as item words.
2. The squashed text is segmented greedily, longest word first, against the lexicon built from
   ``items.toml`` (item names and aliases, ambiguous words, modifier classes, neutral words).
   One-syllable and Latin words count only on word boundaries ("칼" is not in "칼국수").
3. Korean compounds are head-final, so the rightmost thing-naming word is the head ("전자레인지
   수납장" is furniture, "유리병 뚜껑" a lid); the words before it are modifiers.
4. The head is resolved: a hazardous content makes a container hazardous ("페인트 통"); a
   material/colour/content class chooses the item ("유리" 반찬통); an ambiguous word without one
   stays ambiguous (candidates + a question); condition flags send the item to its variant ("깨진"
   소주병 → 깨진 유리, "큰" 인형 → 대형폐기물).
5. Nothing known: a bounded jamo edit distance finds typos ("페트벙"); otherwise 미분류.
Confidence starts from how the head was found and drops for generic words, typos and an unknown
noun after the head; below ``ANSWER_FLOOR`` the answer is 미분류 with the reading as a candidate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from services.common.knowledge.conditions import ConditionReader, Conditions
from services.common.knowledge.models import AmbiguousWord, Candidate, Guidance, Item, Reason, VocabularyFile
from services.common.knowledge.taxonomy import (
    UNCLASSIFIED,
    UNCLASSIFIED_ALL,
    UNCLASSIFIED_ITEM,
)
from services.common.knowledge.text import is_hangul_syllable, jamo, nfc, one_plausible_edit, squash, words

HAZARDOUS = "생활계유해폐기물"
FOOD = "음식물류폐기물"
ANSWER_FLOOR = 0.5  # below this the classifier answers 미분류 (unknown stays unknown)
CONFIDENT = 0.8  # the eval's bar: no wrong answer at or above it
# Particles and endings that may follow a word inside one written word ("병이", "컵은", "옷을").
PARTICLES = frozenset(
    [
        "이",
        "가",
        "은",
        "는",
        "을",
        "를",
        "도",
        "만",
        "의",
        "에",
        "로",
        "으로",
        "랑",
        "이랑",
        "과",
        "와",
        "나",
        "이나",
        "요",
        "이요",
        "은요",
        "는요",
        "이에요",
        "예요",
        "에요",
        "인데",
        "인데요",
        "인가요",
        "이야",
        "야",
        "들",
        "들은",
        "들이",
        "들을",
        "류",
        "까지",
        "부터",
        "처럼",
        "좀",
        "에서",
        "에는",
        "에도",
        "이고",
        "고",
        "이라",
        "라",
        "이랑은",
        "하고",
        "같은",
        "이거",
        "거",
    ]
)
# Last syllables of predicates ("버려요", "처분하려면"): an unknown word ending so is no noun.
_PREDICATE_ENDINGS = frozenset("요다까나네죠고서면지게야해줘음니라며든데래랴냐자")
FOOD_CLASSES = frozenset({"음식", "과일", "채소", "고기", "곡물", "비음료", "단단한채소"})
_SIZES = {"대형": "large", "소형": "small"}
_VARIANT_ORDER = ("construction", "broken", "soiled", "torn", "powered", "large", "small")
_TAG_FOR_VARIANT = {"large": "대형_폐기물_의심"}
_PIECES = re.compile(r"[()\[\]{}]|[^()\[\]{}]+")


@dataclass(frozen=True)
class Word:
    form: str
    display: str = ""  # the word as written in the data ("택배 상자"), for the answer's minor item
    item: str | None = None
    ambiguous: str | None = None
    classes: frozenset[str] = frozenset()
    neutral: bool = False
    misspelling: bool = False
    generic: bool = False

    @property
    def names_thing(self) -> bool:
        return self.item is not None or self.ambiguous is not None


@dataclass(frozen=True)
class Segment:
    start: int
    end: int
    word: Word


@dataclass
class _Reading:
    """The head and what was decided about it, before it becomes a ``Guidance``."""

    item: Item | None
    ambiguous: AmbiguousWord | None
    confidence: float
    reason: Reason
    matched: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    head: Word | None = None


class LexiconError(ValueError):
    pass


def build_lexicon(vocabulary: VocabularyFile) -> dict[str, Word]:
    """Every word form of the vocabulary (squashed), with what it names. Collisions are data errors."""
    lexicon: dict[str, Word] = {}

    def put(form: str, *, item: str | None = None, ambiguous: str | None = None, classes: tuple[str, ...] = (),
            neutral: bool = False, misspelling: bool = False, generic: bool = False) -> None:  # fmt: skip
        key = squash(form)
        if not key:
            raise LexiconError(f"empty word form from {form!r}")
        old = lexicon.get(key, Word(key))
        if item and old.item not in (None, item):
            raise LexiconError(f"word {form!r} names both {old.item!r} and {item!r}")
        if ambiguous and old.ambiguous not in (None, ambiguous):
            raise LexiconError(f"word {form!r} names both {old.ambiguous!r} and {ambiguous!r}")
        word = Word(
            key,
            display=old.display or nfc(form).strip(),
            item=item or old.item,
            ambiguous=ambiguous or old.ambiguous,
            classes=old.classes | frozenset(classes),
            neutral=neutral or old.neutral,
            misspelling=misspelling or old.misspelling,
            generic=generic or old.generic,
        )
        if word.item and word.ambiguous:
            raise LexiconError(f"word {form!r} is both an item and an ambiguous word")
        lexicon[key] = word

    for item in vocabulary.item:
        put(item.name.split("(")[0], item=item.id)
        for alias in item.aliases:
            put(alias, item=item.id)
        for wrong in item.misspellings:
            put(wrong, item=item.id, misspelling=True)
        for word in item.generic:
            put(word, item=item.id, generic=True)
    for group in vocabulary.ambiguous:
        for word in group.words:
            put(word, ambiguous=group.id)
    for name, members in vocabulary.classes.items():
        for word in members:
            put(word, classes=(name,))
    for word in vocabulary.neutral:
        key = squash(word)
        if key in lexicon and lexicon[key].names_thing:
            raise LexiconError(f"neutral word {word!r} also names a thing")
        put(word, neutral=True)
    return lexicon


@dataclass(frozen=True)
class _Text:
    squashed: str
    starts: frozenset[int]  # offsets where written words start
    ends: frozenset[int]  # … and end
    noted: frozenset[int]  # offsets inside parentheses: a note about the item, not the item


def _read_text(text: str) -> _Text:
    starts: set[int] = set()
    ends: set[int] = set()
    noted: set[int] = set()
    offset = depth = 0
    for piece in _PIECES.findall(nfc(text)):
        if piece in "([{":
            depth += 1
            continue
        if piece in ")]}":
            depth = max(0, depth - 1)
            continue
        for token in words(piece):
            starts.add(offset)
            if depth:
                noted.update(range(offset, offset + len(token)))
            offset += len(token)
            ends.add(offset)
    return _Text(squash(text), frozenset(starts), frozenset(ends), frozenset(noted))


def _short(form: str) -> bool:
    """Words that must stand on word boundaries: one Hangul syllable, or Latin letters/digits."""
    return (len(form) == 1 and is_hangul_syllable(form)) or form.isascii()


class Classifier:
    def __init__(self, vocabulary: VocabularyFile, conditions: ConditionReader, items: Mapping[str, Item],
                 ambiguous: Mapping[str, AmbiguousWord], category_cues: Mapping[str, Mapping[str, str]]) -> None:  # fmt: skip
        self.lexicon = build_lexicon(vocabulary)
        self.category_cues = category_cues  # the specific tag a category uses ("깨짐" → "유리병_깨짐")
        self.conditions = conditions
        self.items = items
        self.ambiguous = ambiguous
        self.category_when: dict[str, dict[str, str]] = {
            category: {str(flag): target for flag, target in variants.items()}
            for category, variants in vocabulary.category_when.items()
        }
        self._max_len = max(len(form) for form in self.lexicon)
        # Typo search runs over words of two syllables or more that name something.
        fuzzy = [w for w in self.lexicon.values() if w.names_thing and len(w.form) >= 2]
        self._fuzzy_words = fuzzy
        self._fuzzy_jamo = [jamo(w.form) for w in fuzzy]

    # ------------------------------------------------------------------------------ reading

    def segment(self, squashed: str, starts: frozenset[int], ends: frozenset[int],
                masked: frozenset[int]) -> tuple[list[Segment], list[tuple[int, int]]]:  # fmt: skip
        """Greedy longest-word segmentation; returns the word segments and the unknown runs."""
        segments: list[Segment] = []
        unknown: list[tuple[int, int]] = []
        i, n = 0, len(squashed)
        while i < n:
            if i in masked:
                i += 1
                continue
            found = None
            for length in range(min(self._max_len, n - i), 0, -1):
                if any(k in masked for k in range(i, i + length)):
                    continue
                word = self.lexicon.get(squashed[i : i + length])
                if word and (not _short(word.form) or self._bounded(squashed, i, length, starts, ends, segments)):
                    found = Segment(i, i + length, word)
                    break
            if found is None:
                if unknown and unknown[-1][1] == i:
                    unknown[-1] = (unknown[-1][0], i + 1)
                else:
                    unknown.append((i, i + 1))
                i += 1
                continue
            segments.append(found)
            i = found.end
        return segments, unknown

    def _bounded(self, text: str, i: int, length: int, starts: frozenset[int], ends: frozenset[int],
                 segments: list[Segment]) -> bool:  # fmt: skip
        """A short word counts only as a whole word, or next to other known words ("유리병뚜껑")."""
        start_ok = i in starts or bool(segments and segments[-1].end == i)
        if not start_ok:
            return False
        end = i + length
        if end in ends:
            return True
        token_end = min((e for e in ends if e > end), default=len(text))
        if text[end:token_end] in PARTICLES:
            return True
        return any(text[end : end + k] in self.lexicon for k in range(2, min(self._max_len, token_end - end) + 1))

    def _masked(self, squashed: str, spans: tuple[tuple[int, int], ...]) -> frozenset[int]:
        """Cue spans hide their words from item matching — unless an item word spans the whole cue
        and more ("깨진유리", "오염된배달용기" are dictionary entries, not a cue plus an item)."""
        masked: set[int] = set()
        for start, end in spans:
            covered = any(
                squashed[p : p + length] in self.lexicon and self.lexicon[squashed[p : p + length]].names_thing
                for p in range(max(0, start - self._max_len), start + 1)
                for length in range(max(end - p, 1) + 1, min(self._max_len, len(squashed) - p) + 1)
            )
            if not covered:
                masked.update(range(start, end))
        return frozenset(masked)

    def classify(self, text: str) -> Guidance:
        read = _read_text(text)
        squashed, starts, ends = read.squashed, read.starts, read.ends
        if not squashed:
            return self._unknown((), (), reason="empty")
        conditions = self.conditions.read(squashed)
        masked = self._masked(squashed, conditions.spans)
        segments, unknown = self.segment(squashed, starts, ends, masked)
        things = [s for s in segments if s.word.names_thing]
        reading: _Reading | None
        if things:
            # Korean is head-final: the rightmost thing named, outside any note in parentheses.
            head = ([s for s in things if s.start not in read.noted] or things)[-1]
            reading = self._resolve(head, [s for s in segments if s is not head], conditions)
            reading.head = head.word
            outside = [(a, b) for a, b in unknown if a not in read.noted]
            reading.confidence *= self._unknown_after(squashed, head, outside, ends)
        else:
            reading = self._typo(text, segments, conditions)
            if reading is None:
                return self._unknown(conditions.tags, ())
        return self._guidance(reading, conditions)

    # ---------------------------------------------------------------------------- resolution

    def _resolve(self, head: Segment, others: list[Segment], conditions: Conditions,
                 confidence: float | None = None, reason: Reason = "item") -> _Reading:  # fmt: skip
        """The head word plus its modifiers → an item (or an unresolved ambiguous word)."""
        word = head.word
        modifiers = sorted((s for s in others if s.end <= head.start), key=lambda s: -s.end)
        after = [s for s in others if s.start >= head.end]
        nearest_first = modifiers + after
        matched = [word.form]
        hazardous = next((s for s in modifiers if s.word.item and self.items[s.word.item].major == HAZARDOUS), None)
        if word.ambiguous is not None:
            group = self.ambiguous[word.ambiguous]
            if group.container and hazardous is not None:
                item = self.items[hazardous.word.item]  # type: ignore[index]
                return _Reading(
                    item, None, 0.88, "compound", [hazardous.word.form, *matched], ["유해화학제품_용기_의심"]
                )
            for segment in nearest_first:
                choice = next((group.choices[c] for c in sorted(segment.word.classes) if c in group.choices), None)
                if choice:
                    return self._variants(
                        self.items[choice], conditions, 0.88, "material", [segment.word.form, *matched], others
                    )
            adjacent = modifiers[0] if modifiers and modifiers[0].end == head.start else None
            if group.container and adjacent and adjacent.word.item and self.items[adjacent.word.item].container:
                item = self.items[adjacent.word.item]
                return self._variants(item, conditions, 0.86, "compound", [adjacent.word.form, *matched], others)
            if group.with_food and any(self._is_food(s.word) for s in modifiers):
                item = self.items[group.with_food]
                return self._variants(item, conditions, 0.84, "compound", matched, others)
            return _Reading(None, group, 0.0, "ambiguous", matched, [UNCLASSIFIED_ITEM])
        item = self.items[word.item]  # type: ignore[index]
        base = confidence if confidence is not None else (0.86 if word.misspelling else 0.78 if word.generic else 0.94)
        if item.container and hazardous is not None and hazardous is not head:
            hazard = self.items[hazardous.word.item]  # type: ignore[index]
            return _Reading(hazard, None, 0.88, "compound", [hazardous.word.form, *matched], ["유해화학제품_용기_의심"])
        for segment in nearest_first:
            choice = next((item.materials[c] for c in sorted(segment.word.classes) if c in item.materials), None)
            if choice:
                return self._variants(
                    self.items[choice], conditions, min(base, 0.9), "material", [segment.word.form, *matched], others
                )
        compound = reason == "item" and any(s.word.names_thing for s in modifiers)
        return self._variants(item, conditions, base, "compound" if compound else reason, matched, others)

    def _variants(self, item: Item, conditions: Conditions, confidence: float, reason: Reason,
                  matched: list[str], others: list[Segment]) -> _Reading:  # fmt: skip
        """Condition flags send the item to its variant: broken, soiled, torn, size, renovation."""
        flags = set(conditions.flags)
        if not conditions.soiled:
            flags.discard("soiled")
        for segment in others:
            flags.update(_SIZES[c] for c in segment.word.classes if c in _SIZES)
        tags: list[str] = []
        seen = {item.id}
        for _ in range(2):  # at most two steps (e.g. glass product → broken glass)
            variants = {**self.category_when.get(item.category, {}), **{str(f): t for f, t in item.when.items()}}
            step = next((variants[f] for f in _VARIANT_ORDER if f in flags and f in variants), None)
            if step is None or step in seen:
                break
            flag = next(f for f in _VARIANT_ORDER if f in flags and variants.get(f) == step)
            item, reason, confidence = self.items[step], "variant", min(confidence, 0.9)
            seen.add(step)
            if flag in _TAG_FOR_VARIANT:
                tags.append(_TAG_FOR_VARIANT[flag])
        return _Reading(item, None, confidence, reason, matched, tags)

    def _is_food(self, word: Word) -> bool:
        if word.classes & FOOD_CLASSES:
            return True
        return bool(word.item and self.items[word.item].major == FOOD)

    def _unknown_after(self, text: str, head: Segment, unknown: list[tuple[int, int]], ends: frozenset[int]) -> float:
        """An unknown noun after the head may be the real head ("페트병 분쇄기"): lower the confidence."""
        for start, end in unknown:
            if start < head.end or end - start < 2:
                continue
            token_end = min((e for e in ends if e >= end), default=len(text))
            tail = text[start:token_end]
            if tail[-1] in _PREDICATE_ENDINGS or tail in PARTICLES:
                continue
            return 0.6
        return 1.0

    def _typo(self, text: str, segments: list[Segment], conditions: Conditions) -> _Reading | None:
        """No known word: the closest word within a small jamo edit distance, read as the head."""
        best: tuple[int, int, Word] | None = None
        for position, token in enumerate(words(text)):
            stem = next((token[: -len(p)] for p in sorted(PARTICLES, key=len, reverse=True)
                         if token.endswith(p) and len(token) - len(p) >= 2), token)  # fmt: skip
            if len(stem) < 3 or stem.isascii():
                continue  # two-syllable words are too close to each other for a guess ("뭔지"/"먼지")
            spelled = jamo(stem)
            bound = 1 if len(spelled) <= 8 else 2
            for _, distance, index in process.extract(
                spelled, self._fuzzy_jamo, scorer=Levenshtein.distance, score_cutoff=bound, limit=5
            ):
                # One edit must be a believable slip (neighbouring key, sound-alike letter), or a
                # short word is read as another ("비행기" is no typo of "보행기").
                if distance == 1 and not one_plausible_edit(spelled, self._fuzzy_jamo[index]):
                    continue
                candidate = (int(distance), -position, self._fuzzy_words[index])
                if best is None or candidate[:2] < best[:2]:
                    best = candidate
        if best is None:
            return None
        distance, _, word = best
        head = Segment(-1, -1, word)
        reading = self._resolve(head, segments, conditions, confidence=0.62 if distance == 1 else 0.5, reason="fuzzy")
        reading.head = word
        if reading.item is not None and reading.reason == "fuzzy":
            reading.confidence = min(reading.confidence, 0.62 if distance == 1 else 0.5)
        return reading

    # ------------------------------------------------------------------------------- answers

    def _candidate(self, item: Item, confidence: float) -> Candidate:
        return Candidate(
            item_id=item.id,
            name=item.name,
            major=item.major,
            middle=item.middle,
            minor=item.minor,
            rule_id=item.rule_id,
            confidence=round(confidence, 3),
        )

    def _guidance(self, reading: _Reading, conditions: Conditions) -> Guidance:
        tags = list(dict.fromkeys([*conditions.tags, *reading.tags]))
        if reading.item is None:
            group = reading.ambiguous
            assert group is not None
            share = 1.0 / len(group.candidates)
            return Guidance(
                major=UNCLASSIFIED,
                middle=UNCLASSIFIED,
                minor=group.words[0],
                situation_tags=tuple(dict.fromkeys([*tags, UNCLASSIFIED_ITEM])),
                confidence=0.0,
                reason="ambiguous",
                rule_id=None,
                candidates=tuple(self._candidate(self.items[i], share) for i in group.candidates),
                question=group.question,
                matched=tuple(reading.matched),
            )
        item = reading.item
        confidence = round(reading.confidence, 3)
        if confidence < ANSWER_FLOOR:
            return self._unknown(conditions.tags, (self._candidate(item, confidence),), matched=reading.matched)
        head = reading.head
        # The specific tag of the category the text named ("깨진 소주병": 유리병_깨짐), else the answer's.
        named_item = self.items.get(head.item) if head is not None and head.item else None
        specific = {**self.category_cues.get(item.category, {}),
                    **(self.category_cues.get(named_item.category, {}) if named_item else {})}  # fmt: skip
        tags = list(dict.fromkeys([specific.get(t, t) for t in tags] + list(item.tags)))
        # The item as the user named it ("선풍기", not the dictionary's "소형 가전"), unless the text
        # made it another item (a variant, a material) or the word was a typo.
        named = head is not None and head.item == item.id and not head.misspelling and reading.reason != "fuzzy"
        return Guidance(
            major=item.major,
            middle=item.middle,
            minor=head.display if named and head else item.minor,
            situation_tags=tuple(tags),
            confidence=confidence,
            reason=reading.reason,
            rule_id=item.rule_id,
            item_id=item.id,
            group=item.group,
            matched=tuple(reading.matched),
        )

    @staticmethod
    def _unknown(tags: tuple[str, ...], candidates: tuple[Candidate, ...], reason: Reason = "unknown",
                 matched: list[str] | tuple[str, ...] = ()) -> Guidance:  # fmt: skip
        return Guidance(
            major=UNCLASSIFIED,
            middle=UNCLASSIFIED,
            minor=UNCLASSIFIED,
            situation_tags=(*tags, UNCLASSIFIED_ALL),
            confidence=0.0,
            reason=reason,
            rule_id=None,
            candidates=candidates,
            matched=tuple(matched),
        )
