"""The item dictionary search the info service builds on: match kinds, ranking, limits."""

from __future__ import annotations

from services.common.knowledge import knowledge_base


def names(query: str, limit: int = 20) -> list[tuple[str, str]]:
    return [(hit.item.id, hit.kind) for hit in knowledge_base().search(query, limit)]


def test_exact_name_ranks_first_then_prefix_then_alias() -> None:
    hits = knowledge_base().search("종이컵")
    assert (hits[0].item.id, hits[0].kind) == ("paper-cup", "exact")
    kinds = [hit.kind for hit in knowledge_base().search("우유")]
    assert kinds[0] == "prefix"  # 우유팩
    assert kinds == sorted(kinds, key=["exact", "prefix", "alias", "partial", "initials", "fuzzy"].index)


def test_alias_and_partial_word() -> None:
    assert names("생수병")[0] == ("clear-pet-bottle", "alias")
    partial = names("샘물")
    assert ("clear-pet-bottle", "partial") in partial


def test_initials() -> None:
    hits = knowledge_base().search("ㅍㅌㅂ")
    assert hits[0].item.id == "clear-pet-bottle"
    assert hits[0].kind == "initials"
    assert hits[0].matched == "페트병"  # a misspelling is never shown as the match
    assert all(hit.kind == "initials" for hit in hits)


def test_typo_by_jamo_distance() -> None:
    hits = knowledge_base().search("스티로품박스")
    assert hits[0].item.id == "foam-box"
    assert hits[0].kind == "fuzzy"
    assert hits[0].distance == 1
    assert names("형광둥")[0][0] == "fluorescent-lamp"


def test_ambiguous_word_lists_its_candidates_in_order() -> None:
    hits = knowledge_base().search("컵")
    assert [hit.item.id for hit in hits[:3]] == ["paper-cup", "plastic-cup", "glass-product"]


def test_each_item_once_and_limits() -> None:
    hits = knowledge_base().search("병", limit=100)
    ids = [hit.item.id for hit in hits]
    assert len(ids) == len(set(ids))
    assert len(knowledge_base().search("병", limit=3)) == 3
    assert knowledge_base().search("") == []
    assert knowledge_base().search("   ") == []
    assert knowledge_base().search("ZZZZ없는말") == []
