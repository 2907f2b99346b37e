"""The offline answerer: the issue's four questions get correct, specific answers with no model."""

from __future__ import annotations

import math
import uuid

import httpx

from services.chat.agent.answerer import Eco2Assistant
from services.chat.assistant import STAGES, Turn
from services.common.config import CommonSettings
from services.common.internal import internal_headers
from tests.chat.agent.conftest import SEOUL_CITY_HALL, RecordingEmitter, ask


def metres(lat: float, lon: float, origin: tuple[float, float] = (37.5665, 126.9780)) -> float:
    p1, p2 = math.radians(origin[0]), math.radians(lat)
    dp, dl = p2 - p1, math.radians(lon - origin[1])
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


def assert_well_formed(emit: RecordingEmitter, answer_text: str) -> None:
    """Stage names are the contract's, tokens sit inside the answer stage, and the answer is the tokens."""
    assert all(name in STAGES for name, _ in emit.stages())
    assert emit.stages()[0] == ("intent", "started")
    assert emit.stages()[-1] == ("answer", "completed")
    names = [e[0] for e in emit.events]
    first, last = names.index("token"), len(names) - 1 - names[::-1].index("token")
    assert emit.events[first - 1] == ("answer", "started")
    assert emit.events[last + 1] == ("answer", "completed")
    assert answer_text == emit.text
    assert len(emit.deltas) > 3


async def test_pet_bottle_gets_the_rule_documents_steps(assistant: Eco2Assistant) -> None:
    emit = RecordingEmitter()
    answer = await assistant.answer(ask("페트병 어떻게 버려요?"), emit)
    assert answer.intent == "waste"
    assert not answer.fallback
    assert_well_formed(emit, answer.text)
    assert ("waste_rag", "completed") in emit.stages()
    assert emit.results["intent"]["intents"][0]["intent"] == "waste"
    text = answer.text
    assert "무색페트병으로 분리배출" in text
    # The clear-PET document's steps, in order (cap back on, never "throw the cap away").
    steps = ["내용물을 모두 비워요.", "겉에 붙은 비닐 라벨을 떼어 내요.", "물로 헹궈요.", "병을 눌러 납작하게 찌그러뜨려요.",
             "뚜껑을 다시 닫아서 투명 페트병 전용 수거함에 내놓아요."]  # fmt: skip
    positions = [text.index(f"{i}. {step}") for i, step in enumerate(steps, 1)]
    assert positions == sorted(positions)
    assert "페티" in text  # the character it earns
    assert emit.asked == []  # no position needed


async def test_nearby_centres_with_a_location_lists_the_nearest_sites(assistant: Eco2Assistant) -> None:
    emit = RecordingEmitter()
    answer = await assistant.answer(ask("근처 재활용센터 어디야?", location=SEOUL_CITY_HALL), emit)
    assert answer.intent == "location"
    assert_well_formed(emit, answer.text)
    assert emit.asked == []
    text = answer.text
    # The three sites within 5 km, nearest first, with their distances; the 9 km one is not listed.
    order = [text.index(name) for name in ("시청앞 자원순환가게", "광화문 무인회수기", "남산 재활용 정거장")]
    assert order == sorted(order)
    assert "먼 곳 거점" not in text
    # Distances as the contract formats them (great circle, R = 6371 km; < 1 km in whole metres).
    assert f"1. **시청앞 자원순환가게** — {int(metres(37.5690, 126.9790))}m" in text
    assert f"2. **광화문 무인회수기** — {metres(37.5760, 126.9800) / 1000:.1f}km" in text
    assert f"3. **남산 재활용 정거장** — {metres(37.5550, 126.9950) / 1000:.1f}km" in text
    assert next(s["name"] for s in emit.results["location"]["sites"]) == "시청앞 자원순환가게"


async def test_nearby_centres_without_a_location_asks_for_it(assistant: Eco2Assistant) -> None:
    emit = RecordingEmitter(position=SEOUL_CITY_HALL)
    answer = await assistant.answer(ask("근처 재활용센터 어디야?"), emit)
    assert len(emit.asked) == 1
    assert "위치" in emit.asked[0]
    names = [e[0] for e in emit.events]
    assert names.index("needs_input") < names.index("token")
    assert "시청앞 자원순환가게" in answer.text


async def test_nearby_centres_when_the_user_does_not_share_explains_how(assistant: Eco2Assistant) -> None:
    emit = RecordingEmitter(position=None)
    answer = await assistant.answer(ask("근처 재활용센터 어디야?"), emit)
    assert len(emit.asked) == 1
    assert "위치" in answer.text
    assert "권한" in answer.text
    assert "시청앞" not in answer.text


async def test_plastic_character_is_plea(assistant: Eco2Assistant) -> None:
    emit = RecordingEmitter()
    answer = await assistant.answer(ask("플라스틱 버리면 무슨 캐릭터 받아?"), emit)
    assert answer.intent == "character"
    assert_well_formed(emit, answer.text)
    assert "**플리**" in answer.text
    assert "플라스틱류" in answer.text
    assert "PET, PP, PE, PS, 용기" in answer.text  # its type label, verbatim
    assert emit.results["character"]["character"] == {"name": "플리", "code": "char-plea"}
    # A new user owns only 이코 (read through my's internal route): 플리 is not theirs yet.
    assert emit.results["character"]["owned"] is False
    assert "아직 만나지 못했어요" in answer.text


async def test_scrap_metal_price_is_the_survey_figure(assistant: Eco2Assistant) -> None:
    emit = RecordingEmitter()
    answer = await assistant.answer(ask("고철 시세 얼마야?"), emit)
    assert answer.intent == "recyclable_price"
    assert_well_formed(emit, answer.text)
    assert "**철스크랩**: 280원" in answer.text
    assert "2025년 1월" in answer.text
    assert "전국평균" in answer.text
    assert "고물상" in answer.text  # reference averages, not a quote


async def test_price_for_a_region_shows_it_beside_the_nationwide_average(assistant: Eco2Assistant) -> None:
    answer = await assistant.answer(ask("서울 알루미늄캔 kg당 얼마에 팔아?"), RecordingEmitter())
    assert "**수도권**" in answer.text
    assert "**알루미늄캔**: 1,350원 (전국평균 1,200원)" in answer.text


async def test_bulky_waste_fee_lists_every_sofa_row(assistant: Eco2Assistant) -> None:
    answer = await assistant.answer(ask("마포구에서 소파 버리는데 얼마야?"), RecordingEmitter())
    assert answer.intent == "bulk_waste"
    for row in ("소파(1인용): 6,000원", "소파(2인용): 10,000원", "소파(3인용 이상): 15,000원"):
        assert row in answer.text
    assert "02-3153-8600" in answer.text  # 마포구's office


async def test_multi_intent_question_is_split_and_answered_in_one_reply(assistant: Eco2Assistant) -> None:
    emit = RecordingEmitter()
    answer = await assistant.answer(
        ask("페트병 어떻게 버려? 그리고 근처 재활용센터 어디야?", location=SEOUL_CITY_HALL), emit
    )
    assert [i["intent"] for i in emit.results["intent"]["intents"]] == ["waste", "location"]
    assert answer.intent == "waste"
    stages = emit.stages()
    assert ("waste_rag", "completed") in stages
    assert ("location", "completed") in stages
    assert ("aggregator", "completed") in stages
    assert answer.text.index("무색페트병") < answer.text.index("시청앞 자원순환가게")


async def test_web_search_without_a_provider_says_it_cannot_look_things_up(assistant: Eco2Assistant) -> None:
    answer = await assistant.answer(ask("최근 분리배출 정책 뉴스 알려줘"), RecordingEmitter())
    assert answer.intent == "web_search"
    assert "실시간 검색을 할 수 없어" in answer.text


async def test_image_generation_is_off_by_default(assistant: Eco2Assistant) -> None:
    answer = await assistant.answer(ask("페티 캐릭터 그림 그려줘"), RecordingEmitter())
    assert answer.intent == "image_generation"
    assert "꺼져 있어" in answer.text


async def test_greeting_is_general_and_lists_what_eco_can_do(assistant: Eco2Assistant) -> None:
    emit = RecordingEmitter()
    answer = await assistant.answer(ask("안녕!"), emit)
    assert answer.intent == "general"
    assert "이코" in answer.text
    assert ("general", "completed") in emit.stages()


async def test_follow_up_without_an_item_keeps_the_earlier_topic(assistant: Eco2Assistant) -> None:
    history = (Turn("user", "페트병 어떻게 버려요?"), Turn("assistant", "페트병은 …", "waste"))
    answer = await assistant.answer(ask("우유팩은?", history=history), RecordingEmitter())
    assert answer.intent == "waste"
    assert "종이팩" in answer.text


async def test_a_photo_without_a_vision_model_is_answered_from_the_text(assistant: Eco2Assistant) -> None:
    emit = RecordingEmitter()
    answer = await assistant.answer(ask("유리병 어떻게 버려요?", image_url="https://cdn.example/u/1.jpg"), emit)
    assert ("vision", "failed") in emit.stages()
    assert answer.intent == "waste"
    assert answer.text.startswith("📷 지금은 사진을 볼 수 있는 기능이 연결되어 있지 않아서")  # said, not only a stage
    assert "유리병" in answer.text  # and the text is still answered
    assert ("aggregator", "started") not in emit.stages()  # one question: the note is not a second answer


async def test_location_service_down_fails_the_stage_not_the_job(migrated: CommonSettings) -> None:
    from services.chat.agent.build import build_assistant
    from services.chat.agent.config import AgentSettings

    # Nothing listens on port 9 (discard): the tool's call fails, the answer says so.
    settings = AgentSettings(
        environment="test", tool_location_url="http://127.0.0.1:9", tool_my_url="http://127.0.0.1:9"
    )
    built = build_assistant(migrated, settings)
    try:
        emit = RecordingEmitter()
        answer = await built.answer(ask("근처 재활용센터 어디야?", location=SEOUL_CITY_HALL), emit)
    finally:
        await built.aclose()
    assert ("location", "failed") in emit.stages()
    assert "불러오지 못했어요" in answer.text
    assert not answer.fallback


async def test_internal_routes_refuse_calls_without_the_token(services_http: httpx.AsyncClient) -> None:
    for path in ("/internal/v1/locations/centers?lat=37.5&lon=127", f"/internal/v1/users/{uuid.uuid4()}/characters"):
        assert (await services_http.get(path)).status_code == 401
        assert (await services_http.get(path, headers=internal_headers("wrong"))).status_code == 401
