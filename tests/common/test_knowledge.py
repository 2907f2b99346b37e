"""The disposal knowledge base: its invariants hold, and broken data is refused at load time."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from services.common import knowledge
from services.common.knowledge import characters
from services.common.knowledge.disposal import MAJORS, KnowledgeError, knowledge_base


def test_invariants() -> None:
    kb = knowledge_base()
    assert len(kb.rules) == 18
    assert len(kb.tags) == 79
    assert sum(len(tags) for tags in kb.tag_groups.values()) == 80
    assert {c.match for c in characters()[1:]} == set(kb.middles)
    for middle in kb.middles:
        assert kb.rule_key("재활용폐기물", middle) == f"재활용폐기물_{middle}"
    for major in MAJORS[1:-1]:
        assert kb.rule_key(major, major) == major
    assert kb.rule_key("미분류", "미분류") is None
    assert kb.rule_key("재활용폐기물", "유색페트병") is None
    for doc in kb.rules.values():
        assert 1 <= len(doc.steps(None, frozenset())) <= 10


def test_pairing_rule() -> None:
    kb = knowledge_base()
    assert kb.is_valid("재활용폐기물", "무색페트병")
    assert not kb.is_valid("재활용폐기물", "재활용폐기물")
    assert kb.is_valid("음식물류폐기물", "음식물류폐기물")
    assert not kb.is_valid("음식물류폐기물", "종이")
    assert not kb.is_valid("쓰레기", "쓰레기")


@pytest.mark.parametrize(
    ("text", "major", "middle", "minor"),
    [
        ("소주병", "재활용폐기물", "유리병", "소주병"),
        ("치킨 뼈", "일반종량제폐기물", "일반종량제폐기물", "뼈"),  # listed under food waste as 배출불가
        ("라벨 안 뗀 생수병이에요", "재활용폐기물", "무색페트병", "생수병"),
        ("우유팩 씻어서 말렸어요", "재활용폐기물", "종이팩", "우유팩"),
        ("깨진 유리병", "불연성종량제폐기물", "불연성종량제폐기물", "깨진유리"),
        ("보조배터리", "재활용폐기물", "전지", "리튬이온전지"),
        ("병이 하나 있어요", "재활용폐기물", "유리병", "투명유리병"),
    ],
)
def test_text_matching(text: str, major: str, middle: str, minor: str) -> None:
    match = knowledge_base().match(text)
    assert match is not None
    assert (match.major, match.middle, match.minor) == (major, middle, minor)


def test_no_guessing() -> None:
    kb = knowledge_base()
    assert kb.match("칼국수 먹고 싶다") is None  # one-syllable words only as whole words
    assert kb.match("이게 뭐예요?") is None
    assert kb.match("") is None


def test_tags_and_insufficiencies() -> None:
    kb = knowledge_base()
    assert kb.tags_from_text("라벨 안 뗀 생수병", "무색페트병") == ["비닐_라벨_부착"]
    assert kb.tags_from_text("라벨 뗐어요", "무색페트병") == ["비닐_라벨_완전_제거됨"]
    assert kb.tags_from_text("약간 더러운 컵", "플라스틱류") == ["오염_경미"]
    assert kb.tags_from_text("깨진 병", "유리병") == ["유리병_깨짐"]
    assert kb.insufficiencies(["비닐_라벨_부착", "뚜껑_닫힘(플라스틱)"], "무색페트병") == [
        "겉에 붙은 비닐 라벨을 떼어 주세요."
    ]
    assert kb.insufficiencies(["뚜껑_분리_필요"], "무색페트병") == []  # clear PET: the cap goes back on
    assert kb.insufficiencies(["뚜껑_분리_필요"], "플라스틱류") != []
    assert kb.insufficiencies(["오염_경미", "내용물_없음"], "플라스틱류") == []


def test_detailed_groups() -> None:
    kb = knowledge_base()
    glass = kb.rules["재활용폐기물_유리병"]
    assert any("보증금" in step for step in glass.steps("소주병", frozenset()))
    assert not any("보증금" in step for step in glass.steps("투명유리병", frozenset()))
    assert any("불연성" in step for step in glass.steps("투명유리병", frozenset({"유리병_깨짐"})))


@pytest.fixture
def broken_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "knowledge"
    shutil.copytree(knowledge.DATA_DIR, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.setattr("services.common.knowledge.disposal.DATA_DIR", copy)
    knowledge_base.cache_clear()
    yield copy
    knowledge_base.cache_clear()


def test_missing_rule_document_is_refused(broken_data: Path) -> None:
    (broken_data / "rules" / "recyclable-battery.json").unlink()
    with pytest.raises(KnowledgeError, match="재활용폐기물_전지"):
        knowledge_base()


def test_unknown_tag_is_refused(broken_data: Path) -> None:
    path = broken_data / "situation_tags.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["insufficiency"]["라벨_붙음"] = "x"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(KnowledgeError, match="unknown tags"):
        knowledge_base()


def test_bad_synonym_is_refused(broken_data: Path) -> None:
    path = broken_data / "taxonomy.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["synonyms"]["생수병"] = ["재활용폐기물", "페트병", "생수병"]
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(KnowledgeError, match="invalid category"):
        knowledge_base()
