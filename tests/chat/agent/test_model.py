"""The tool-calling agent against a local OpenAI-compatible server that streams chat completions with
tool calls — the real ``openai`` SDK over a real socket — and its fallback to the offline answer."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from services.chat.agent.answerer import Eco2Assistant
from services.chat.agent.build import build_assistant
from services.chat.agent.config import AgentSettings
from services.chat.agent.llm import estimate_tokens
from services.chat.assistant import Position, Turn
from services.common.config import CommonSettings
from tests.chat.agent.conftest import SEOUL_CITY_HALL, RecordingEmitter, ask
from tests.location.conftest import load_sites
from tests.support.fake_chat_model import FakeChatModel, Reply, default_policy
from tests.support.servers import serve_asgi


@pytest.fixture
def fake() -> FakeChatModel:
    return FakeChatModel()


@pytest.fixture
def model_url(fake: FakeChatModel) -> Iterator[str]:
    with serve_asgi(fake.app()) as url:
        yield f"{url}/v1"


def settings(model_url: str, **extra: Any) -> AgentSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "llm_base_url": model_url,
        "llm_api_key": "test-key",
        "llm_model": "fake-default",
        "llm_models": {"gpt-5.2": "fake-gpt"},
        "llm_max_retries": 0,
        "tool_location_url": "http://services",
        "tool_my_url": "http://services",
        **extra,
    }
    return AgentSettings(**values)


@pytest.fixture
async def agent(
    migrated: CommonSettings, services_http: httpx.AsyncClient, model_url: str, location_db: Any
) -> AsyncIterator[Eco2Assistant]:
    from tests.chat.agent.conftest import SITES

    await load_sites(location_db, *SITES)
    built = build_assistant(migrated, settings(model_url), http=services_http)
    assert built.llm is not None
    yield built
    await built.aclose()


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool"]


async def test_model_calls_a_tool_and_streams_the_answer_with_its_facts(
    agent: Eco2Assistant, fake: FakeChatModel
) -> None:
    emit = RecordingEmitter()
    answer = await agent.answer(ask("고철 시세 얼마야?", model="gpt-5.2"), emit)
    assert not answer.fallback
    assert answer.intent == "recyclable_price"
    # Two completions: the tool call, then the answer with the tool's result in the conversation.
    assert len(fake.requests) == 2
    first, second = fake.requests
    assert first["model"] == "fake-gpt"
    assert first["stream"] is True
    names = {t["function"]["name"] for t in first["tools"]}
    assert {"disposal_guidance", "nearby_sites", "character_info", "recyclable_price", "bulky_waste_fee"} <= names
    assert "web_search" not in names
    assert "generate_image" not in names
    [result] = tool_messages(second)
    assert result["rows"][0]["name"] == "철스크랩"
    assert result["rows"][0]["price"] == 280
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "recyclable_price"
    # The stage of the tool, and the streamed text = the answer, carrying the facts.
    stages = emit.stages()
    assert stages.index(("recyclable_price", "started")) < stages.index(("recyclable_price", "completed"))
    assert stages.index(("recyclable_price", "completed")) < stages.index(("answer", "started"))
    assert answer.text == emit.text
    assert '"price":280' in answer.text
    assert len(emit.deltas) > 10


async def test_unmapped_alias_uses_the_default_model(agent: Eco2Assistant, fake: FakeChatModel) -> None:
    await agent.answer(ask("안녕!", model="gemini-3-flash-preview"), RecordingEmitter())
    assert fake.requests[0]["model"] == "fake-default"


async def test_tokens_go_out_as_they_arrive(agent: Eco2Assistant, fake: FakeChatModel) -> None:
    fake.policy = lambda body: Reply("이코가 천천히 대답하고 있어요. " * 4)
    fake.token_interval = 0.05

    stamps: list[float] = []

    class Timed(RecordingEmitter):
        async def token(self, delta: str, *, node: str | None = None) -> None:
            stamps.append(time.monotonic())
            await super().token(delta, node=node)

    await agent.answer(ask("안녕!"), Timed())
    # 18 chunks 50 ms apart: had the answer been buffered, they would arrive together.
    assert len(stamps) == 18
    assert stamps[-1] - stamps[0] > 0.5


async def test_nearby_tool_without_a_position_asks_the_user(agent: Eco2Assistant, fake: FakeChatModel) -> None:
    emit = RecordingEmitter(position=SEOUL_CITY_HALL)
    answer = await agent.answer(ask("근처 재활용센터 어디야?"), emit)
    assert len(emit.asked) == 1
    [result] = tool_messages(fake.requests[1])
    assert [s["name"] for s in result["sites"]] == ["시청앞 자원순환가게", "광화문 무인회수기", "남산 재활용 정거장"]
    assert "시청앞 자원순환가게" in answer.text


async def test_invalid_tool_arguments_go_back_to_the_model(agent: Eco2Assistant, fake: FakeChatModel) -> None:
    def policy(body: dict[str, Any]) -> Reply:
        if body["messages"][-1]["role"] == "tool":
            return Reply("다시 확인해 볼게요.")
        # Another user's id smuggled in, and a missing item: both refused by the argument model.
        return Reply(
            tool_calls=[("character_info", {"user_id": "someone-else"}), ("owned_characters", {"user_id": "x"})]
        )

    fake.policy = policy
    emit = RecordingEmitter()
    answer = await agent.answer(ask("내 캐릭터 알려줘"), emit)
    results = tool_messages(fake.requests[1])
    assert len(results) == 2
    assert all(r["ok"] is False and "invalid arguments" in r["note"] for r in results)
    assert answer.text == "다시 확인해 볼게요."
    assert not answer.fallback


async def test_model_server_error_falls_back_to_the_offline_answer(agent: Eco2Assistant, fake: FakeChatModel) -> None:
    fake.fail_next = 5
    emit = RecordingEmitter()
    answer = await agent.answer(ask("페트병 어떻게 버려요?"), emit)
    assert answer.fallback is True
    assert "AI 모델" in answer.message
    assert "기본 안내" in answer.message
    assert "무색페트병으로 분리배출" in answer.text
    assert answer.text == emit.text
    assert ("waste_rag", "completed") in emit.stages()


async def test_stream_cut_mid_answer_continues_offline_without_losing_tokens(
    agent: Eco2Assistant, fake: FakeChatModel
) -> None:
    fake.policy = lambda body: Reply("페트병은 라벨을 떼고 헹군 다음 찌그러뜨려서 내놓아요. " * 3)
    fake.break_after = 3
    emit = RecordingEmitter()
    answer = await agent.answer(ask("페트병 어떻게 버려요?"), emit)
    assert answer.fallback is True
    # The client appended the first deltas already: the answer keeps them and continues after them.
    assert answer.text == emit.text
    assert answer.text.startswith("페트병은 라벨을 떼고 \n")  # three 4-character chunks, then the notice
    assert "기본 안내로 이어서" in answer.text
    assert "1. 내용물을 모두 비워요." in answer.text


async def test_no_model_reachable_falls_back(migrated: CommonSettings, services_http: httpx.AsyncClient) -> None:
    built = build_assistant(migrated, settings("http://127.0.0.1:9/v1"), http=services_http)
    try:
        answer = await built.answer(ask("고철 시세 얼마야?"), RecordingEmitter())
    finally:
        await built.aclose()
    assert answer.fallback
    assert "철스크랩" in answer.text


@pytest.mark.parametrize("placeholder", ["CHANGE_ME", "change-me", "", "  "])
def test_terraforms_placeholder_key_means_not_configured(placeholder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh deployment's SSM parameters hold CHANGE_ME until an operator sets them: a production
    worker must start and answer offline, not refuse to start or send the placeholder to a provider."""
    for name, value in {"ENVIRONMENT": "production", "CHAT_LLM_API_KEY": placeholder, "CHAT_LLM_MODEL": "gpt-4.1-mini",
                        "CHAT_WEATHER_API_KEY": placeholder, "CHAT_SEARCH_API_KEY": placeholder}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    loaded = AgentSettings()
    assert (loaded.llm_api_key, loaded.weather_api_key, loaded.search_api_key) == (None, None, None)
    assert not loaded.uses_model


def test_a_dev_prefixed_key_is_still_refused_in_production() -> None:
    with pytest.raises(ValueError, match="CHAT_LLM_API_KEY"):
        AgentSettings(environment="production", llm_api_key="dev-key", llm_model="m")


async def test_placeholder_key_answers_offline_without_calling_the_model(
    migrated: CommonSettings, services_http: httpx.AsyncClient, model_url: str, fake: FakeChatModel, location_db: Any
) -> None:
    built = build_assistant(migrated, settings(model_url, llm_api_key="CHANGE_ME"), http=services_http)
    try:
        assert built.llm is None
        answer = await built.answer(ask("페트병 어떻게 버려요?"), RecordingEmitter())
    finally:
        await built.aclose()
    assert not answer.fallback  # offline by configuration, not a failed model
    assert "무색페트병으로 분리배출" in answer.text
    assert fake.requests == []


async def test_long_history_is_summarised_within_the_budget(agent: Eco2Assistant, fake: FakeChatModel) -> None:
    history = tuple(
        Turn("user" if i % 2 == 0 else "assistant", f"{i}번째 이야기 " + "가" * 500, None if i % 2 == 0 else "general")
        for i in range(60)
    )
    emit = RecordingEmitter()
    await agent.answer(ask("안녕!", history=history), emit)
    body = fake.requests[0]
    earlier = body["messages"][1:-1]
    assert sum(estimate_tokens(m["content"]) for m in earlier) <= 3000
    assert earlier[0]["role"] == "system"
    assert earlier[0]["content"].startswith("이전 대화 요약")
    assert "0번째 이야기" in earlier[0]["content"]  # the oldest question survives in the summary
    assert earlier[-1]["content"].startswith("59번째 이야기")  # the newest turn is kept itself
    assert ("summarize", "completed") in emit.stages()


async def test_a_huge_single_turn_is_cut_not_sent_whole(agent: Eco2Assistant, fake: FakeChatModel) -> None:
    history = (Turn("user", "나" * 50_000), Turn("assistant", "네", "general"))
    await agent.answer(ask("안녕!", history=history), RecordingEmitter())
    earlier = fake.requests[0]["messages"][1:-1]
    assert sum(estimate_tokens(m["content"]) for m in earlier) <= 3000
    assert all(len(m["content"]) <= 800 for m in earlier)


async def test_position_given_is_not_asked_again(agent: Eco2Assistant, fake: FakeChatModel) -> None:
    emit = RecordingEmitter()
    await agent.answer(ask("근처 재활용센터 어디야?", location=Position(37.5665, 126.978)), emit)
    assert emit.asked == []
    assert default_policy is not None
