"""Model providers over real sockets: the OpenAI SDK against a local fake server; the offline one."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from services.common.ai import (
    Classification,
    InvalidModelOutput,
    ModelError,
    OfflineProvider,
    OpenAICompatibleProvider,
    OpenAIConfig,
    VisionUnavailable,
    compose_answer,
)
from services.common.knowledge import knowledge_base
from tests.support.fake_openai import FakeOpenAI
from tests.support.images import PNG
from tests.support.servers import serve_asgi


@pytest.fixture
def fake() -> Iterator[tuple[FakeOpenAI, str]]:
    server = FakeOpenAI()
    with serve_asgi(server.app()) as url:
        yield server, f"{url}/v1"


def provider(url: str, **overrides: object) -> OpenAICompatibleProvider:
    config = OpenAIConfig(base_url=url, api_key="sk-test", models=("vlm-a", "vlm-b"), timeout_seconds=5, max_retries=1)
    for key, value in overrides.items():
        setattr(config, key, value)
    return OpenAICompatibleProvider(knowledge_base(), config)


async def image() -> tuple[bytes, str]:
    return PNG, "image/png"


async def test_openai_classification_is_schema_constrained(fake: tuple[FakeOpenAI, str]) -> None:
    server, url = fake
    client = provider(url)
    result = await client.classify(user_input="", image=image, model=None)
    assert (result.major, result.middle, result.minor, result.situation_tags) == (
        "재활용폐기물",
        "무색페트병",
        "생수병",
        (),
    )
    assert result.confidence == 0.9  # the offline classifier reads "생수병" the same way
    (call,) = server.calls("classification")
    body = call["body"]
    assert body["model"] == "vlm-a"
    assert call["auth"] == "Bearer sk-test"
    schema = body["response_format"]["json_schema"]["schema"]
    assert "재활용폐기물" in schema["properties"]["major_category"]["enum"]
    assert len(schema["properties"]["situation_tags"]["items"]["enum"]) == 79
    content = body["messages"][1]["content"]
    assert content[0]["text"] == "이 물건은 어떻게 버려야 하나요?"
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")
    await client.close()


async def test_openai_retries_transport_and_output_failures(fake: tuple[FakeOpenAI, str]) -> None:
    server, url = fake
    client = provider(url)
    server.fail_next["classification"] = 1  # the SDK retries a 500 with backoff
    server.invalid_next["classification"] = 1  # we ask again for output outside the taxonomy
    result = await client.classify(user_input="생수병", image=image, model="vlm-b")
    assert result.middle == "무색페트병"
    assert len(server.calls("classification")) == 3
    server.invalid_next["classification"] = 5
    with pytest.raises(InvalidModelOutput):
        await client.classify(user_input="", image=image, model=None)
    server.invalid_next.clear()
    server.fail_next["classification"] = 5
    with pytest.raises(ModelError):
        await client.classify(user_input="", image=image, model=None)
    await client.close()


async def test_openai_answer_is_grounded(fake: tuple[FakeOpenAI, str]) -> None:
    server, url = fake
    client = provider(url)
    kb = knowledge_base()
    classification = Classification("재활용폐기물", "무색페트병", "생수병", ("비닐_라벨_부착",))
    rule = kb.rules["재활용폐기물_무색페트병"]
    answer = await client.answer(classification=classification, rule=rule, user_input="", model=None)
    assert list(answer.disposal_steps) == ["단계1", "단계2", "단계3"]
    context = json.loads(server.calls("answer")[0]["body"]["messages"][1]["content"])
    assert context["rule_document"]["key"] == "재활용폐기물_무색페트병"
    assert context["candidate_insufficiencies"] == ["겉에 붙은 비닐 라벨을 떼어 주세요."]
    # No rule: the contract's fixed apology, without a model call.
    unknown = Classification("미분류", "미분류", "미분류", ("미분류_전체",))
    before = len(server.requests)
    apology = await client.answer(classification=unknown, rule=None, user_input="", model=None)
    assert apology.disposal_steps == {}
    assert len(apology.insufficiencies) == 1
    assert len(server.requests) == before
    await client.close()


async def test_offline_provider() -> None:
    offline = OfflineProvider(knowledge_base())
    with pytest.raises(VisionUnavailable):
        await offline.classify(user_input="  ", image=image, model=None)
    soju = await offline.classify(user_input="소주병 라벨 안 뗐어요", image=image, model=None)
    assert (soju.major, soju.middle, soju.minor) == ("재활용폐기물", "유리병", "소주병")
    unknown = await offline.classify(user_input="이거 뭐예요", image=image, model=None)
    assert (unknown.major, unknown.situation_tags) == ("미분류", ("미분류_전체",))
    kb = knowledge_base()
    answer = await offline.answer(classification=soju, rule=kb.rules["재활용폐기물_유리병"], user_input="", model=None)
    steps = list(answer.disposal_steps.values())
    assert list(answer.disposal_steps) == [f"단계{i}" for i in range(1, len(steps) + 1)]
    assert all(
        step
        in kb.rules["재활용폐기물_유리병"].common_method
        + kb.rules["재활용폐기물_유리병"].detailed_method["빈용기보증금대상"]
        for step in steps
    )
    assert answer.user_answer.startswith("소주병은 유리병으로 분리배출해요.")


async def test_model_output_is_corrected_or_refused(fake: tuple[FakeOpenAI, str]) -> None:
    server, url = fake
    client = provider(url)
    # A coloured PET bottle given as a middle category, an unknown tag: corrected, never passed through.
    server.classification = {"major_category": "재활용폐기물", "middle_category": "유색페트병",
                             "minor_category": "초록색 사이다병", "situation_tags": ["비닐_라벨_부착", "라벨있음"]}  # fmt: skip
    fixed = await client.classify(user_input="", image=image, model=None)
    assert (fixed.major, fixed.middle, fixed.situation_tags) == ("재활용폐기물", "플라스틱류", ("비닐_라벨_부착",))
    # A non-recyclable major with a middle of its own: the middle repeats the major.
    server.classification = {"major_category": "음식물류폐기물", "middle_category": "과일껍질",
                             "minor_category": "귤 껍질", "situation_tags": []}  # fmt: skip
    food = await client.classify(user_input="", image=image, model=None)
    assert (food.major, food.middle, food.minor) == ("음식물류폐기물", "음식물류폐기물", "귤 껍질")
    # Spacing in a major, and the model's reading disagreeing with ours: kept, with our reading offered.
    server.classification = {"major_category": "일반 종량제 폐기물", "middle_category": "일반종량제폐기물",
                             "minor_category": "소주병", "situation_tags": []}  # fmt: skip
    doubted = await client.classify(user_input="", image=image, model=None)
    assert doubted.major == "일반종량제폐기물"
    assert doubted.confidence == 0.55
    assert [c.middle for c in doubted.candidates] == ["유리병"]
    # Nothing to place it on: refused (asked again, then the job fails).
    server.classification = {"major_category": "재활용폐기물", "middle_category": "우주쓰레기",
                             "minor_category": "", "situation_tags": []}  # fmt: skip
    with pytest.raises(InvalidModelOutput):
        await client.classify(user_input="", image=image, model=None)
    await client.close()


async def test_text_classification(fake: tuple[FakeOpenAI, str]) -> None:
    server, url = fake
    client = provider(url)
    result = await client.classify_text(text="라벨 뗀 생수병", model="vlm-b")
    assert result.middle == "무색페트병"
    (call,) = server.calls("classification")
    assert call["body"]["model"] == "vlm-b"
    assert call["body"]["messages"][1] == {"role": "user", "content": "라벨 뗀 생수병"}
    await client.close()


async def test_offline_guidance_extras_round_trip() -> None:
    offline = OfflineProvider(knowledge_base())
    cup = await offline.classify(user_input="컵", image=image, model=None)
    stored = cup.as_dict()
    assert stored["classification"] == {"major_category": "미분류", "middle_category": "미분류", "minor_category": "컵"}
    assert stored["guidance"]["question"]
    assert len(stored["guidance"]["candidates"]) >= 3
    assert Classification.from_dict(stored) == cup
    answer = compose_answer(knowledge_base(), cup, None)
    assert answer.disposal_steps == {}
    assert answer.insufficiencies == ["이 품목에 맞는 배출 규정을 찾지 못했어요."]
    assert answer.user_answer.startswith("죄송해요")
    assert cup.question in answer.user_answer
    unsure = await offline.classify(user_input="페트병 분쇄기", image=image, model=None)
    assert (
        "확실하지 않아요"
        in compose_answer(knowledge_base(), unsure, knowledge_base().rules["재활용폐기물_무색페트병"]).user_answer
    )


def test_compose_no_rule() -> None:
    answer = compose_answer(knowledge_base(), Classification("미분류", "미분류", "미분류"), None)
    assert answer.disposal_steps == {}
    assert answer.insufficiencies == ["이 품목에 맞는 배출 규정을 찾지 못했어요."]


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_failure_kinds_on_either_transport(fake: tuple[FakeOpenAI, str], transport: str) -> None:
    """A refused connection counts as ``connection`` and a slow answer as ``timeout``, on the aiohttp
    transport (whose exception map calls both a timeout) as on httpx."""
    from services.common.ai import _error_kind
    from tests.support.servers import free_port

    server, url = fake
    server.latency["answer"] = 2.0
    kinds = []
    for base in (f"http://127.0.0.1:{free_port()}/v1", url):
        config = OpenAIConfig(base, "sk-test", ("vlm-a",), timeout_seconds=0.3, max_retries=0, transport=transport)
        model = OpenAICompatibleProvider(knowledge_base(), config)
        try:
            with pytest.raises(ModelError) as caught:
                await model._attempts("answer", "vlm-a", [{"role": "user", "content": "x"}], {}, lambda raw: raw)
            assert isinstance(caught.value.__cause__, Exception)
            kinds.append(_error_kind(caught.value.__cause__))
        finally:
            await model.close()
    assert kinds == ["connection", "timeout"]


async def test_a_completion_request_is_the_one_the_sdk_builds(fake: tuple[FakeOpenAI, str]) -> None:
    """``ModelClient`` builds a completion's request from parts the SDK computed, so what goes out —
    URL, every header (auth, idempotency key, retry count, the SDK's own), body, timeout — is what
    the SDK's generic path builds; a request with per-call options goes that generic path."""
    from openai import AsyncOpenAI
    from openai._models import FinalRequestOptions

    from services.common.model_client import CHAT_COMPLETIONS

    _, url = fake
    model = provider(url)
    client = model._client
    try:
        for retries_taken in (0, 2):
            options = FinalRequestOptions.construct(method="post", url=CHAT_COMPLETIONS, content=b'{"a":1}',
                                                    idempotency_key="stainless-python-retry-1")  # fmt: skip
            lean = client._build_request(options, retries_taken=retries_taken)
            sdk = AsyncOpenAI._build_request(client, options, retries_taken=retries_taken)
            assert (lean.method, lean.url, lean.content, lean.extensions) == (
                sdk.method, sdk.url, sdk.content, sdk.extensions,
            )  # fmt: skip
            assert sorted(lean.headers.multi_items()) == sorted(sdk.headers.multi_items())
            assert lean.headers["x-stainless-retry-count"] == str(retries_taken)
        custom = FinalRequestOptions.construct(method="post", url=CHAT_COMPLETIONS, content=b"{}",
                                               headers={"X-Extra": "1"})  # fmt: skip
        assert client._build_request(custom).headers["X-Extra"] == "1"
    finally:
        await model.close()
