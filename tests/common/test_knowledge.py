"""The disposal knowledge: invariants of the data, the item dictionary, broken data refused at load."""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.knowledge import MAJORS, MIDDLES, KnowledgeError, characters, knowledge_base
from services.common.knowledge.base import DATA_DIR, load

# Domain strings that name something else on purpose (DOMAIN §1.3: "(배출불가)" items go elsewhere;
# 식품용기 is listed under plastics and foam, and the word means a plastic one; 컵 needs the material).
NOT_THEIR_LIST = {"뼈(배출불가)", "씨(배출불가)", "조개껍데기(배출불가)", "컵"}
SHARED_NAME = {("식품용기", "발포합성수지")}


def test_invariants() -> None:
    kb = knowledge_base()
    assert len(kb.rules) == 18
    assert len(kb.tags) == 79
    assert sum(len(tags) for tags in kb.tag_groups.values()) == 80
    assert {c.match for c in characters()[1:]} == set(MIDDLES)
    for middle in MIDDLES:
        assert kb.rule_key("재활용폐기물", middle) == f"재활용폐기물_{middle}"
    for major in MAJORS[1:-1]:
        assert kb.rule_key(major, major) == major
    assert kb.rule_key("미분류", "미분류") is None
    assert kb.rule_key("재활용폐기물", "유색페트병") is None
    for doc in kb.rules.values():
        assert 1 <= len(doc.steps(None)) <= 10


def test_pairing_rule() -> None:
    kb = knowledge_base()
    assert kb.is_valid("재활용폐기물", "무색페트병")
    assert not kb.is_valid("재활용폐기물", "재활용폐기물")
    assert kb.is_valid("음식물류폐기물", "음식물류폐기물")
    assert not kb.is_valid("음식물류폐기물", "종이")
    assert not kb.is_valid("쓰레기", "쓰레기")


def test_every_domain_item_string_is_in_the_dictionary() -> None:
    """Each verbatim minor / flat item of the taxonomy is classified into its own list, confidently."""
    kb = knowledge_base()
    lists = [(m, "재활용폐기물", m, minors) for m, minors in kb.recyclable_middles.items()]
    lists += [(major, major, major, items) for major, items in kb.flat_items.items() if items]
    checked = 0
    for category, major, middle, strings in lists:
        for text in strings:
            if text in NOT_THEIR_LIST or (text, category) in SHARED_NAME:
                continue
            guidance = kb.classify(text)
            assert (guidance.major, guidance.middle) == (major, middle), text
            assert guidance.confidence >= 0.8, text
            assert guidance.rule_id == kb.rule_key(major, middle)
            checked += 1
    assert checked == 162
    for text in ("뼈(배출불가)", "씨(배출불가)", "조개껍데기(배출불가)"):
        assert kb.classify(text).major == "일반종량제폐기물"  # not food waste: the general PAYT bag


def test_items_are_consistent_records() -> None:
    kb = knowledge_base()
    assert len(kb.items) > 150
    for item in kb.items.values():
        assert kb.is_valid(item.major, item.middle)
        assert item.rule_id in kb.rules
        assert item.summary
        assert item.minor
        if item.group:
            assert item.group in kb.rules[item.rule_id].detailed_method
    dumped = kb.items["clear-pet-bottle"].model_dump(mode="json")
    assert dumped["major"] == "재활용폐기물"
    assert dumped["middle"] == "무색페트병"
    assert dumped["rule_id"] == "재활용폐기물_무색페트병"
    assert "생수병" in dumped["aliases"]


def test_every_major_has_dictionary_items() -> None:
    kb = knowledge_base()
    categories = {item.category for item in kb.items.values()}
    assert set(MIDDLES) <= categories
    assert set(MAJORS[1:-1]) <= categories


def test_taxonomy_tree() -> None:
    kb = knowledge_base()
    tree = kb.taxonomy_tree()
    assert [node.name for node in tree] == list(MAJORS)
    recyclable = tree[0]
    assert [child.name for child in recyclable.children] == list(MIDDLES)
    pet = recyclable.children[MIDDLES.index("무색페트병")]
    assert pet.rule_id == "재활용폐기물_무색페트병"
    assert "clear-pet-bottle" in pet.item_ids
    assert "먹는샘물PET병" in pet.minors
    food = tree[MAJORS.index("음식물류폐기물")]
    assert food.rule_id == "음식물류폐기물"
    assert "상한음식" in food.minors
    assert "leftover-food" in food.item_ids
    hazardous = tree[MAJORS.index("생활계유해폐기물")]
    assert hazardous.minors == ()
    assert hazardous.item_ids
    assert tree[-1].name == "미분류"
    assert tree[-1].rule_id is None


def test_rule_lookup_and_steps() -> None:
    kb = knowledge_base()
    glass = kb.rule("재활용폐기물_유리병")
    assert glass is not None
    assert kb.rule("없는문서") is None
    assert any("보증금" in step for step in glass.steps("소주병"))
    assert not any("보증금" in step for step in glass.steps("투명유리병"))
    assert any("불연성" in step for step in glass.steps("투명유리병", frozenset({"유리병_깨짐"})))
    general = kb.rules["일반종량제폐기물"]
    assert any("감싸" in step for step in general.steps("가위", group="날카로운 물건"))
    assert "triggers" not in general.as_dict()  # the scan result carries the document, not our selectors


def test_insufficiencies_concern_recyclables() -> None:
    kb = knowledge_base()
    assert kb.insufficiencies(["비닐_라벨_부착", "뚜껑_닫힘(플라스틱)"], "무색페트병") == [
        "겉에 붙은 비닐 라벨을 떼어 주세요."
    ]
    assert kb.insufficiencies(["뚜껑_분리_필요"], "무색페트병") == []  # clear PET: the cap goes back on
    assert kb.insufficiencies(["뚜껑_분리_필요"], "플라스틱류") != []
    assert kb.insufficiencies(["오염_경미", "내용물_없음"], "플라스틱류") == []
    assert kb.insufficiencies(["내용물_있음"], "생활계유해폐기물") == []  # paint is not emptied first


# ----------------------------------------------------------------------------- broken data


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "knowledge"
    shutil.copytree(DATA_DIR, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__", "eval"))
    return copy


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_shipped_data_loads(data: Path) -> None:
    assert len(load(data).items) == len(knowledge_base().items)


def test_missing_rule_document_is_refused(data: Path) -> None:
    (data / "rules" / "recyclable-battery.json").unlink()
    with pytest.raises(KnowledgeError, match="재활용폐기물_전지"):
        load(data)


def test_unknown_tag_is_refused(data: Path) -> None:
    _edit(data / "situation_tags.json", '"insufficiency": {', '"insufficiency": {"라벨_붙음": "x", ')
    with pytest.raises(KnowledgeError, match="라벨_붙음"):
        load(data)


def test_item_outside_the_taxonomy_is_refused(data: Path) -> None:
    _edit(data / "items.toml", 'category = "무색페트병"', 'category = "페트병"')
    with pytest.raises(KnowledgeError, match=r"items\.toml"):
        load(data)


def test_dangling_item_reference_is_refused(data: Path) -> None:
    _edit(data / "items.toml", 'broken = "broken-glass"', 'broken = "no-such-item"')
    with pytest.raises(KnowledgeError, match="no-such-item"):
        load(data)


def test_a_word_naming_two_items_is_refused(data: Path) -> None:
    _edit(data / "items.toml", 'aliases = ["우유팩",', 'aliases = ["생수병", "우유팩",')
    with pytest.raises(KnowledgeError, match="생수병"):
        load(data)


def test_group_outside_the_rule_document_is_refused(data: Path) -> None:
    _edit(data / "items.toml", 'group = "골판지"', 'group = "없는 그룹"')
    with pytest.raises(KnowledgeError, match="없는 그룹"):
        load(data)


def test_vocabulary_file_is_plain_toml() -> None:
    raw = tomllib.loads((DATA_DIR / "items.toml").read_text(encoding="utf-8"))
    assert {"item", "ambiguous", "classes", "neutral"} <= set(raw)
