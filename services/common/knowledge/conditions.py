"""Condition cues: what a note says about the item's state ("기름 묻은", "라벨 안 뗀", "깨진").

Each cue of ``conditions.toml`` compiles to one regular expression over the squashed text:
``noun (+ particle) (+ 안/못) verb (+ 지 않…)``. A negation on either side flips the cue to its
negated reading. The matches give situation tags, flags for the classifier (soiled, washed, broken …)
and the character spans that are not to be read as item words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.common.knowledge.models import ConditionFile, Cue

_PARTICLE = r"(?:이|가|은|는|도|을|를|에|이랑|랑|만)?"
_NEG_BEFORE = r"(?P<neg1>안|못|덜)?"
_NEG_AFTER = r"(?P<neg2>(?:하|되|해)?지(?:도|는|가|를)?(?:않|못|안)|진않)?"


@dataclass(frozen=True)
class _Compiled:
    cue: Cue
    patterns: tuple[re.Pattern[str], ...]
    absent: re.Pattern[str] | None


@dataclass(frozen=True)
class Conditions:
    """What the text states about the item: tags, flags and the spans the cues cover."""

    tags: tuple[str, ...]
    flags: frozenset[str]
    spans: tuple[tuple[int, int], ...]  # masked spans of the squashed text

    @property
    def soiled(self) -> bool:
        """Food or grease that was not washed off (or that does not come off)."""
        return "soiled" in self.flags and ("permanent" in self.flags or "washed" not in self.flags)


def _alternatives(words: tuple[str, ...]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def _compile(cue: Cue) -> _Compiled:
    patterns: list[re.Pattern[str]] = [re.compile(p) for p in cue.regex]
    absent = None
    if cue.verbs:
        noun = f"(?:{_alternatives(cue.nouns)}){_PARTICLE}" if cue.nouns else ""
        patterns.append(re.compile(f"{noun}{_NEG_BEFORE}(?:{_alternatives(cue.verbs)}){_NEG_AFTER}"))
    if cue.nouns and cue.absent:
        absent = re.compile(f"(?:{_alternatives(cue.nouns)}){_PARTICLE}(?:{_alternatives(cue.absent)})")
    return _Compiled(cue, tuple(patterns), absent)


class ConditionReader:
    def __init__(self, data: ConditionFile) -> None:
        self._cues = tuple(_compile(c) for c in data.cue)
        self._overridden_by = {tag: set(others) for tag, others in data.overridden_by.items()}

    def read(self, squashed: str) -> Conditions:
        tags: list[str] = []
        flags: set[str] = set()
        spans: list[tuple[int, int]] = []
        for compiled in self._cues:
            cue = compiled.cue
            if compiled.absent is not None:
                for found in compiled.absent.finditer(squashed):
                    spans.append(found.span())  # "기름기 없는": stated absent, nothing to report
            for pattern in compiled.patterns:
                for found in pattern.finditer(squashed):
                    if compiled.absent is not None and any(s <= found.start() < e for s, e in spans):
                        continue
                    groups = found.groupdict()
                    negated = bool(groups.get("neg1") or groups.get("neg2"))
                    tag = cue.negated_tag if negated else cue.tag
                    if tag:
                        tags.append(tag)
                    flags.update(cue.negated_flags if negated else cue.flags)
                    if cue.mask:
                        spans.append(found.span())
        unique = list(dict.fromkeys(tags))
        kept = [t for t in unique if not (self._overridden_by.get(t, set()) & set(unique))]
        return Conditions(tuple(kept), frozenset(flags), tuple(spans))
