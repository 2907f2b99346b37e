"""Item dictionary search: by name, alias, partial word, initials ("ㅍㅌㅂ") or a typo ("페트벙").

Ranking, best first: ``exact`` (the item's name) > ``prefix`` (a name starting with the query) >
``alias`` (an alias, or an alias starting with the query; an ambiguous word lists its candidates) >
``partial`` (the query inside a name or alias) > ``initials`` > ``fuzzy`` (bounded edit distance on
the jamo spelling, computed by rapidfuzz). Within a rank: smaller distance, then the closer length,
then the name. Each item appears once, with its best match.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from services.common.knowledge.models import AmbiguousWord, Item, MatchKind, SearchHit
from services.common.knowledge.text import initials, is_initials_query, jamo, squash

_RANK: dict[MatchKind, int] = {"exact": 0, "prefix": 1, "alias": 2, "partial": 3, "initials": 4, "fuzzy": 5}
MAX_LIMIT = 100


@dataclass(frozen=True)
class _Form:
    form: str  # squashed
    item_id: str
    display: str  # the name or alias as written
    is_name: bool
    order: int = 0  # an ambiguous word lists its candidates in their order (most likely first)
    misspelling: bool = False


def fuzzy_bound(spelled: str) -> int:
    """How many jamo edits a query of this length may be away (none for a single syllable)."""
    if len(spelled) <= 3:
        return 0
    return 1 if len(spelled) <= 7 else 2


class ItemIndex:
    def __init__(self, items: Mapping[str, Item], ambiguous: Mapping[str, AmbiguousWord]) -> None:
        self.items = items
        forms: dict[tuple[str, str], _Form] = {}
        for item in items.values():
            names = [(item.name, True, False), *((a, False, False) for a in (*item.aliases, *item.generic))]
            for text, is_name, wrong in (*names, *((m, False, True) for m in item.misspellings)):
                key = squash(text)
                if key and (key, item.id) not in forms:
                    forms[(key, item.id)] = _Form(key, item.id, text, is_name, misspelling=wrong)
        for group in ambiguous.values():
            for word in group.words:
                for order, item_id in enumerate(group.candidates):
                    key = squash(word)
                    forms.setdefault((key, item_id), _Form(key, item_id, word, False, order))
        self._forms = sorted(forms.values(), key=lambda f: (f.form, f.item_id))
        self._keys = [f.form for f in self._forms]
        self._jamo = [jamo(f.form) for f in self._forms]
        self._initials = [initials(f.form) for f in self._forms]

    def search(self, query: str, limit: int = 20) -> list[SearchHit]:
        q = squash(query)
        limit = max(1, min(limit, MAX_LIMIT))
        if not q:
            return []
        best: dict[str, tuple[tuple[int, int, int, int, str], SearchHit]] = {}

        def offer(form: _Form, kind: MatchKind, distance: int = 0) -> None:
            item = self.items[form.item_id]
            key = (_RANK[kind], distance, abs(len(form.form) - len(q)), form.order, item.name)
            if form.item_id not in best or key < best[form.item_id][0]:
                hit = SearchHit(item=item, kind=kind, matched=form.display, distance=distance)
                best[form.item_id] = (key, hit)

        if is_initials_query(query):
            for form, spelled in zip(self._forms, self._initials, strict=True):
                if spelled.startswith(q) and not form.misspelling:
                    offer(form, "initials")
            return self._ranked(best, limit)
        start = bisect.bisect_left(self._keys, q)
        for form in self._forms[start:]:
            if not form.form.startswith(q):
                break
            offer(form, ("exact" if form.form == q else "prefix") if form.is_name else "alias")
        for form in self._forms:
            if q in form.form and form.item_id not in best:
                offer(form, "partial")
        if len(best) < limit:
            spelled = jamo(q)
            bound = fuzzy_bound(spelled)
            if bound:
                for _, distance, index in process.extract(
                    spelled, self._jamo, scorer=Levenshtein.distance, score_cutoff=bound, limit=limit * 4
                ):
                    offer(self._forms[index], "fuzzy", int(distance))
        return self._ranked(best, limit)

    @staticmethod
    def _ranked(best: dict[str, tuple[tuple[int, int, int, int, str], SearchHit]], limit: int) -> list[SearchHit]:
        return [hit for _, hit in sorted(best.values(), key=lambda pair: pair[0])[:limit]]
