"""The item dictionary (``/info/items``, ``/info/items/{id}``, ``/info/categories/tree``): the lookups
of the issue, the detail in the scan result's shape, the taxonomy, bad input — over the same
knowledge package scan classifies with."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.common.ai import Classification, compose_answer
from services.common.knowledge import MAJORS, MIDDLES, UNCLASSIFIED, knowledge_base
from services.info.schemas import CategoryTree, ItemDetail, ItemSearch

ITEMS = "/api/v1/info/items"


async def search(client: httpx.AsyncClient, q: str, limit: int = 10) -> list[dict[str, Any]]:
    response = await client.get(ITEMS, params={"q": q, "limit": limit})
    assert response.status_code == 200, response.text
    body = response.json()
    ItemSearch.model_validate(body)
    assert body["query"] == q.strip()
    return list(body["items"])


@pytest.mark.parametrize(
    ("query", "expected", "kind"),
    [
        ("스티로폼", "스티로폼", "exact"),  # by name
        ("투명 페트", "투명 페트병", "prefix"),  # the start of a name
        ("생수병", "투명 페트병", "alias"),  # a synonym
        ("페트벙", "투명 페트병", "alias"),  # a typo the dictionary knows
        ("ㅍㅌㅂ", "투명 페트병", "initials"),  # initial consonants
        ("건전지", "건전지", "exact"),
    ],
)
async def test_lookups(client: httpx.AsyncClient, query: str, expected: str, kind: str) -> None:
    first = (await search(client, query))[0]
    assert (first["name"], first["match"]["kind"]) == (expected, kind)
    assert set(first) == {
        "id", "name", "aliases", "major_category", "middle_category", "minor_category", "rule_id", "summary", "match",
    }  # fmt: skip


async def test_a_typo_found_by_jamo_distance(client: httpx.AsyncClient) -> None:
    kb = knowledge_base()
    item = kb.items["clear-pet-bottle"]
    typo = "투멍 페트병"  # one jamo away from the name, in no list of misspellings
    assert typo.replace(" ", "") not in {a.replace(" ", "") for a in (*item.aliases, *item.misspellings)}
    hits = await search(client, typo)
    assert hits[0]["id"] == item.id
    assert hits[0]["match"]["kind"] == "fuzzy"


async def test_ranking_and_the_same_answer_as_the_knowledge_package(client: httpx.AsyncClient) -> None:
    order = {"exact": 0, "prefix": 1, "alias": 2, "partial": 3, "initials": 4, "fuzzy": 5}
    for query in ("페트", "유리", "스티로폼", "캔"):
        hits = await search(client, query, limit=50)
        ranks = [order[h["match"]["kind"]] for h in hits]
        assert ranks == sorted(ranks), query
        assert [h["id"] for h in hits] == [h.item.id for h in knowledge_base().search(query, 50)]


async def test_every_major_with_items_is_searchable(client: httpx.AsyncClient) -> None:
    kb = knowledge_base()
    majors = {item.major for item in kb.items.values()}
    assert majors == set(MAJORS) - {UNCLASSIFIED}  # 미분류 is "no item could be determined"
    for major in majors:
        item = next(i for i in kb.items.values() if i.major == major)
        hits = await search(client, item.name)
        assert hits[0]["id"] == item.id
        assert hits[0]["major_category"] == major


async def test_item_detail_has_the_scan_result_shape(client: httpx.AsyncClient) -> None:
    kb = knowledge_base()
    response = await client.get(f"{ITEMS}/clear-pet-bottle")
    assert response.status_code == 200
    detail = response.json()
    ItemDetail.model_validate(detail)
    item = kb.items["clear-pet-bottle"]
    assert (detail["major_category"], detail["middle_category"], detail["rule_id"]) == (
        "재활용폐기물",
        "무색페트병",
        "재활용폐기물_무색페트병",
    )
    result = detail["pipeline_result"]
    rule = kb.rule(item.rule_id)
    assert rule is not None
    assert result["disposal_rules"] == rule.as_dict()
    classification = Classification(item.major, item.middle, item.minor, item.tags, group=item.group)
    assert result["final_answer"] == compose_answer(kb, classification, rule).as_dict()
    assert result["classification_result"]["classification"] == {
        "major_category": item.major,
        "middle_category": item.middle,
        "minor_category": item.minor,
    }
    steps = result["final_answer"]["disposal_steps"]
    assert list(steps) == [f"단계{i}" for i in range(1, len(steps) + 1)]  # key order kept


async def test_every_item_has_a_detail(client: httpx.AsyncClient) -> None:
    for item_id in list(knowledge_base().items)[::15]:
        response = await client.get(f"{ITEMS}/{item_id}")
        assert response.status_code == 200, item_id
        assert response.json()["pipeline_result"]["final_answer"]["disposal_steps"]


async def test_category_tree(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/info/categories/tree")
    assert response.status_code == 200
    tree = response.json()
    CategoryTree.model_validate(tree)
    assert [m["name"] for m in tree["majors"]] == list(MAJORS)
    recyclables = tree["majors"][0]
    assert [m["name"] for m in recyclables["middles"]] == list(MIDDLES)
    assert all(m["rule_id"] == f"재활용폐기물_{m['name']}" and m["items"] for m in recyclables["middles"])
    for major in tree["majors"][1:]:
        assert major["middles"] == []
        if major["name"] != UNCLASSIFIED:
            assert major["items"], major["name"]
            assert major["rule_id"] == major["name"]
    ids = {i["id"] for m in tree["majors"] for branch in (m, *m["middles"]) for i in branch["items"]}
    assert ids == set(knowledge_base().items)  # every item filed exactly where its category says


@pytest.mark.parametrize(
    ("params", "status"),
    [({"q": ""}, 422), ({"q": "   "}, 422), ({}, 422), ({"q": "가" * 1_200}, 422), ({"q": "a" * 10_000}, 422), ({"q": "캔", "limit": 0}, 422),
     ({"q": "캔", "limit": 51}, 422), ({"q": "캔", "limit": "many"}, 422)],
)  # fmt: skip
async def test_bad_queries(client: httpx.AsyncClient, params: dict[str, Any], status: int) -> None:
    response = await client.get(ITEMS, params=params)
    assert response.status_code == status
    assert isinstance(response.json()["detail"], list)


@pytest.mark.parametrize("item_id", ["nope", "CLEAR-PET-BOTTLE", "x" * 10_000, "%00", "..%2F..%2Fetc"])
async def test_unknown_items_are_404(client: httpx.AsyncClient, item_id: str) -> None:
    response = await client.get(f"{ITEMS}/{item_id}")
    assert response.status_code == 404
    assert response.json()["code"] in ("ITEM_NOT_FOUND", "NOT_FOUND")


async def test_nothing_found_is_an_empty_list(client: httpx.AsyncClient) -> None:
    assert await search(client, "qqqqzzzz") == []
