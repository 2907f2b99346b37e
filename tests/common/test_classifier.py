"""The offline classifier: head nouns, conditions and negation, ambiguity, unknowns, typos, confidence."""

from __future__ import annotations

import pytest

from services.common.knowledge import knowledge_base

R = "재활용폐기물"


def answer(text: str) -> tuple[str, str]:
    guidance = knowledge_base().classify(text)
    return guidance.major, guidance.middle


@pytest.mark.parametrize(
    ("text", "major", "middle"),
    [
        ("전자레인지 수납장", "대형폐기물", "대형폐기물"),  # the head noun decides: furniture
        ("전자레인지", R, "전기전자제품"),
        ("휴대폰 배터리", R, "전지"),
        ("우유팩 빨대", "일반종량제폐기물", "일반종량제폐기물"),
        ("빨대 꽂힌 두유팩", R, "종이팩"),
        ("가구 광택제", "생활계유해폐기물", "생활계유해폐기물"),
        ("페인트 통", "생활계유해폐기물", "생활계유해폐기물"),  # a container takes its hazardous content
        ("배달 용기", R, "플라스틱류"),  # spacing does not matter
        ("배달용기", R, "플라스틱류"),
        ("치킨 뼈", "일반종량제폐기물", "일반종량제폐기물"),  # not food waste
        ("먹다 남은 치킨", "음식물류폐기물", "음식물류폐기물"),
        ("바나나 껍질", "음식물류폐기물", "음식물류폐기물"),
        ("양파 껍질", "일반종량제폐기물", "일반종량제폐기물"),
        ("간장 페트병", R, "플라스틱류"),  # not a drink bottle
        ("초록색 페트병", R, "플라스틱류"),
        ("투명 페트병", R, "무색페트병"),
        ("유리 반찬통", "불연성종량제폐기물", "불연성종량제폐기물"),  # a material changes the answer
        ("스티로폼 아이스박스", R, "발포합성수지"),
        ("아이스박스", "대형폐기물", "대형폐기물"),
        ("수은 체온계", "생활계유해폐기물", "생활계유해폐기물"),
        ("디지털 체온계", R, "전기전자제품"),
        ("락카 스프레이", "생활계유해폐기물", "생활계유해폐기물"),
        ("스프레이 캔", R, "금속류"),
        ("칼국수 먹고 남은 거", "음식물류폐기물", "음식물류폐기물"),  # "칼" is no word inside 칼국수
        ("가위 (날카로운 고철)", "일반종량제폐기물", "일반종량제폐기물"),  # a note in parentheses is no head
    ],
)
def test_head_noun_and_modifiers(text: str, major: str, middle: str) -> None:
    assert answer(text) == (major, middle)


@pytest.mark.parametrize(
    ("clean", "soiled", "middle_clean", "major_soiled"),
    [
        ("깨끗이 씻은 배달용기", "음식물 묻은 배달 용기", "플라스틱류", "일반종량제폐기물"),
        ("기름 안 묻은 비닐", "기름 묻은 비닐", "비닐류", "일반종량제폐기물"),
        ("음식물이 묻지 않은 스티로폼 용기", "양념 묻은 스티로폼 용기", "발포합성수지", "일반종량제폐기물"),
        ("깨끗한 피자 박스", "기름 묻은 피자 박스", "종이", "일반종량제폐기물"),
        ("안 깨진 소주병", "깨진 소주병", "유리병", "불연성종량제폐기물"),
        ("깨끗한 티셔츠", "다 찢어진 티셔츠", "의류및원단", "일반종량제폐기물"),
        ("헹군 배달 용기", "헹궈도 기름이 안 빠지는 배달 용기", "플라스틱류", "일반종량제폐기물"),
    ],
)
def test_conditions_flip_the_answer(clean: str, soiled: str, middle_clean: str, major_soiled: str) -> None:
    assert answer(clean) == (R, middle_clean)
    assert answer(soiled)[0] == major_soiled


@pytest.mark.parametrize(
    ("small", "large", "small_major", "large_major"),
    [
        ("작은 인형", "큰 곰인형", "일반종량제폐기물", "대형폐기물"),
        ("작은 쿠션", "대형 쿠션", "일반종량제폐기물", "대형폐기물"),
        ("손거울", "전신 거울", "불연성종량제폐기물", "대형폐기물"),
        ("벽돌 한 장", "인테리어 공사하고 나온 벽돌", "불연성종량제폐기물", "공사장생활폐기물"),
    ],
)
def test_size_and_context_cues(small: str, large: str, small_major: str, large_major: str) -> None:
    assert answer(small)[0] == small_major
    assert answer(large)[0] == large_major


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        ("라벨 안 뗀 생수병", ["비닐_라벨_부착"]),
        ("라벨 뗀 생수병", ["비닐_라벨_완전_제거됨"]),
        ("라벨 떼지 않은 생수병", ["비닐_라벨_부착"]),
        ("라벨 없는 생수병", ["비닐_라벨_완전_제거됨"]),
        ("약간 더러운 플라스틱 컵", ["오염_경미"]),
        ("헹구지 않은 우유팩", ["세척_필요"]),
        ("가스 남은 부탄가스", ["가스_잔존_의심", "가스_용기_의심"]),
        ("깨진 형광등", ["깨진_조명기기"]),
        ("테이프 붙은 스티로폼", ["스티로폼_테이프_부착"]),
        ("뚜껑 닫은 생수병", ["뚜껑_닫힘(플라스틱)"]),
        ("기름기 없는 반찬통", []),
    ],
)
def test_situation_tags_from_text(text: str, tags: list[str]) -> None:
    guidance = knowledge_base().classify(text)
    assert list(guidance.situation_tags) == tags
    assert set(guidance.situation_tags) <= knowledge_base().tags


def test_ambiguous_words_ask_instead_of_guessing() -> None:
    kb = knowledge_base()
    cup = kb.classify("컵")
    assert (cup.major, cup.middle, cup.rule_id, cup.confidence) == ("미분류", "미분류", None, 0.0)
    assert {c.middle for c in cup.candidates} >= {"종이", "플라스틱류", "불연성종량제폐기물"}
    assert cup.question
    assert "재질" in cup.question
    assert "미분류_소분류" in cup.situation_tags
    lid = kb.classify("유리병 뚜껑")  # a lid, not a glass bottle
    assert lid.major == "미분류"
    assert {c.middle for c in lid.candidates} == {"플라스틱류", "금속류"}
    assert answer("플라스틱 뚜껑") == (R, "플라스틱류")
    assert answer("금속 뚜껑") == (R, "금속류")
    assert answer("종이컵") == (R, "종이")


@pytest.mark.parametrize("text", ["이거 뭐예요", "오늘 날씨 어때", "ㅋㅋㅋ", "asdf", "비행기", "", "   ", "?!"])
def test_unknown_stays_unknown(text: str) -> None:
    guidance = knowledge_base().classify(text)
    assert (guidance.major, guidance.middle, guidance.rule_id) == ("미분류", "미분류", None)
    assert guidance.confidence == 0.0
    assert "미분류_전체" in guidance.situation_tags


def test_typos_are_read_with_lower_confidence() -> None:
    kb = knowledge_base()
    for typo, middle in (("형광둥", "조명제품"), ("알류미늄", "금속류"), ("스치로폼", "발포합성수지")):
        guidance = kb.classify(typo)
        assert guidance.middle == middle, typo
        assert guidance.confidence < 0.9
    assert kb.classify("보행기").middle == "대형폐기물"
    assert kb.classify("비행기").major == "미분류"  # one vowel away, but not a believable slip


def test_confidence_and_names() -> None:
    kb = knowledge_base()
    sure = kb.classify("소주병")
    assert sure.confidence >= 0.9
    assert sure.minor == "소주병"
    assert sure.item_id == "soju-bottle"
    assert kb.classify("선풍기").minor == "선풍기"  # the item as the user named it
    generic = kb.classify("플라스틱")
    assert generic.middle == "플라스틱류"
    assert generic.confidence < 0.8
    doubtful = kb.classify("페트병 분쇄기")  # an unknown noun after the head may be the real head
    assert doubtful.confidence < 0.8
    broken = kb.classify("깨진 소주병")
    assert broken.reason == "variant"
    assert broken.minor == "깨진유리"
    assert "유리병_깨짐" in broken.situation_tags
