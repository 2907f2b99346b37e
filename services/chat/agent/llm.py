"""The tool-calling agent: the ``openai`` SDK against any OpenAI-compatible endpoint, streamed.

One answer is a loop of streamed chat completions with the tools of ``tools.py``: content deltas
go to the client as ``token`` events the moment they arrive; tool-call deltas are accumulated, and
when a completion ends with tool calls each is validated and run (its lookup stage around it), the
results are appended and the model is asked again. After ``CHAT_LLM_MAX_TOOL_ROUNDS`` rounds the
model must answer without tools. Any failure of the model (transport, HTTP status, a broken stream,
an empty answer) raises ``ModelFailed`` with the text already streamed; the assistant then finishes
with the offline answer and ``Answer.fallback``.

Earlier turns enter within a token budget (``fit_history``): newest first, each turn cut to
``CHAT_LLM_TURN_TOKENS``, and the turns that no longer fit are summarised into one line (their
questions), which is itself dropped when even that does not fit — the request never overflows.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from services.chat.agent.answerer import SERVICE, STAGE_MESSAGES, ModelFailed, VisionReading, stage_result
from services.chat.agent.clients import ImageClient, ToolUnavailable
from services.chat.agent.config import AgentSettings
from services.chat.agent.intents import Routing
from services.chat.agent.tools import TOOLS, Caller, Result, Toolbox, call_tool
from services.chat.assistant import AskContext, Emitter, Turn
from services.common.ai import OpenAICompatibleProvider, OpenAIConfig, model_call
from services.common.blobs import BlobSettings, BlobStore, create_blob_store
from services.common.config import CommonSettings
from services.common.jobs import stage_span
from services.common.knowledge import KnowledgeBase
from services.common.logging import get_logger
from services.registry import SERVICES

log = get_logger("eco2.chat.llm")

# Labels of this agent's model calls (``ai.model_call``): the provider's name as the kernel's
# OpenAI-compatible provider gives it, and one operation per SDK call.
PROVIDER = "openai"
CHAT_OPERATION = "chat"  # a streamed chat completion (with tools while rounds remain)
IMAGE_OPERATION = "image_generation"

SYSTEM_PROMPT = """너는 Eco² 앱의 마스코트이자 분리배출 도우미 '이코'야. 다른 12명의 캐릭터(페이피, 팩토리, 페티, 메탈리,
비니, 글래시, 코튼, 플리, 일렉, 배리, 라이티, 폼이)는 너의 친구들이야.
- 따뜻하고 다정하게, 보통 3~5문장으로 답해. 이모지는 조금만, Markdown은 써도 돼. JSON은 쓰지 마. 질문을 되풀이하지 마.
- 분리배출 질문은 반드시 disposal_guidance 도구의 배출 규정을 근거로 답하고, 규정에 없는 건 추측하지 마.
  무엇인지와 어디에 버리는지 먼저, 그다음 단계, 그다음 팁 순서로.
- 장소·시세·수수료·캐릭터·수거함·날씨는 도구로 확인한 사실만 말해. 모르면 모른다고 해.
- 정치·종교 같은 민감한 주제는 피하고, 주제를 벗어나면 부드럽게 분리배출 이야기로 돌아와.
- 여러 질문이 섞여 있으면 각각 답해."""
NO_SEARCH = "- 실시간 웹 검색은 연결되어 있지 않아. 최신 소식을 물으면 지금은 찾아볼 수 없다고 솔직히 말해."
NO_IMAGES = "- 그림 그리기 기능은 꺼져 있어. 그림을 부탁하면 지금은 그릴 수 없다고 말해."
TRUNCATED = " …(생략)"


def estimate_tokens(text: str) -> int:
    """A conservative token estimate without a tokenizer: one per character (Korean syllables take
    about one token each in current tokenizers; Latin text takes fewer) plus a message's overhead."""
    return len(text) + 4


def cut(text: str, limit: int) -> str:
    """``text`` shortened so that its estimate stays within ``limit`` tokens."""
    if estimate_tokens(text) <= limit:
        return text
    return text[: max(0, limit - 4 - len(TRUNCATED))] + TRUNCATED


def fit_history(turns: Sequence[Turn], budget: int, per_turn: int) -> tuple[list[dict[str, str]], int]:
    """Earlier turns as chat messages within ``budget`` tokens; returns them and how many were summarised."""
    kept: list[dict[str, str]] = []
    used = 0
    index = len(turns)
    for index in range(len(turns) - 1, -1, -1):
        turn = turns[index]
        content = cut(turn.content, per_turn)
        cost = estimate_tokens(content)
        if used + cost > budget:
            index += 1
            break
        kept.append({"role": turn.role, "content": content})
        used += cost
    else:
        index = 0
    older = turns[:index]
    if older:
        asked = [t.content.replace("\n", " ")[:40] for t in older if t.role == "user"]
        summary = "이전 대화 요약 — 사용자가 물었던 것: " + " / ".join(asked)
        room = budget - used
        if room > 40:
            kept.append({"role": "system", "content": cut(summary, room)})
    kept.reverse()
    return kept, len(older)


@dataclass
class _Call:
    id: str = ""
    name: str = ""
    arguments: str = ""


class LlmAgent:
    def __init__(self, settings: AgentSettings, toolbox: Toolbox) -> None:
        from openai import AsyncOpenAI

        self.settings = settings
        self.toolbox = toolbox
        self.client = AsyncOpenAI(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key,
            timeout=settings.llm_timeout_seconds,
            max_retries=settings.llm_max_retries,
        )
        self.slots = asyncio.Semaphore(settings.llm_max_concurrency)
        self._blobs: BlobStore | None = None  # the image generator's, when enabled

    async def aclose(self) -> None:
        await self.client.close()
        if self._blobs is not None:
            await self._blobs.close()  # an S3 store holds an aiohttp session

    def tools(self) -> list[dict[str, Any]]:
        skip = set()
        if self.toolbox.search_provider is None:
            skip.add("web_search")
        if self.toolbox.image_generator is None:
            skip.add("generate_image")
        if self.toolbox.weather_provider is None:
            skip.add("weather")
        return [tool.schema() for name, tool in TOOLS.items() if name not in skip]

    def system_prompt(self) -> str:
        lines = [SYSTEM_PROMPT]
        if self.toolbox.search_provider is None:
            lines.append(NO_SEARCH)
        if self.toolbox.image_generator is None:
            lines.append(NO_IMAGES)
        return "\n".join(lines)

    async def answer(
        self, ctx: AskContext, emit: Emitter, routing: Routing, caller: Caller, reading: VisionReading | None
    ) -> str:
        history, summarised = fit_history(ctx.history, self.settings.llm_history_tokens, self.settings.llm_turn_tokens)
        if summarised:
            await emit.stage("summarize", "started")
            await emit.stage("summarize", "completed", result={"summarised_turns": summarised})
        note = f"(질문 유형: {', '.join(routing.intents)}"
        if reading is not None:
            note += f"; 사진 속 물건: {reading.item} — {reading.major}/{reading.middle}"
        if caller.position is None:
            note += "; 사용자 위치: 모름 (필요하면 nearby_sites가 물어봄)"
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": self.system_prompt()},
            *history,
            {"role": "user", "content": f"{ctx.message}\n\n{note})"},
        ]
        model = self.settings.model_for(ctx.model)
        job_id = str(ctx.job_id)
        emitted: list[str] = []
        # The model's whole answer is the ``answer`` stage's work: its model calls and the lookup
        # stages of the tools it calls nest in that span (a failed model answer: outcome failed).
        with stage_span(SERVICE, "answer", job_id):
            await self._rounds(model, messages, emit, caller, emitted, job_id)
            text = "".join(emitted)
            if not text.strip():
                raise ModelFailed(text, "empty answer")
        await emit.stage("answer", "completed")
        return text

    async def _rounds(self, model: str, messages: list[dict[str, Any]], emit: Emitter, caller: Caller,
                      emitted: list[str], job_id: str) -> None:  # fmt: skip
        answer_started = False
        for round_ in range(self.settings.llm_max_tool_rounds + 1):
            with_tools = round_ < self.settings.llm_max_tool_rounds
            try:
                content, calls = await self._stream(model, messages, with_tools, emit, emitted, answer_started)
            except ModelFailed:
                raise
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the SDK's errors, a broken stream, a timeout: all mean "no model"
                raise ModelFailed("".join(emitted), repr(exc)) from exc
            answer_started = answer_started or bool(content)
            if not calls:
                return
            messages.append(
                {
                    "role": "assistant",
                    "content": content or None,
                    "tool_calls": [
                        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                        for c in calls
                    ],
                }
            )
            for call in calls:
                result = await self._run_tool(call, caller, emit, job_id)
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": result.model_dump_json(exclude_none=True)}
                )

    async def _stream(
        self,
        model: str,
        messages: list[dict[str, Any]],
        with_tools: bool,
        emit: Emitter,
        emitted: list[str],
        answer_started: bool,
    ) -> tuple[str, list[_Call]]:
        kwargs: dict[str, Any] = {}
        if with_tools:
            kwargs["tools"] = self.tools()
        calls: dict[int, _Call] = {}
        content: list[str] = []
        started = time.perf_counter()
        # The span and latency cover the whole stream: a streamed answer is one call until its end.
        async with self.slots:
            with model_call(PROVIDER, CHAT_OPERATION, model):
                # Typed loosely: the tool list and messages are plain dicts, the SDK's overloads want TypedDicts.
                stream: Any = await self.client.chat.completions.create(
                    model=model,
                    messages=cast(Any, messages),
                    stream=True,
                    temperature=self.settings.llm_temperature,
                    **kwargs,
                )
                async for chunk in stream:
                    if not chunk.choices:
                        continue
                    delta = chunk.choices[0].delta
                    if delta.content:
                        if not answer_started:
                            answer_started = True
                            await emit.stage("answer", "started", message=STAGE_MESSAGES["answer"])
                        emitted.append(delta.content)
                        content.append(delta.content)
                        await emit.token(delta.content, node="answer")
                    for part in delta.tool_calls or ():
                        call = calls.setdefault(part.index, _Call())
                        call.id = part.id or call.id
                        if part.function is not None:
                            call.name += part.function.name or ""
                            call.arguments += part.function.arguments or ""
        log.info("model_stream", model=model, ms=round((time.perf_counter() - started) * 1000), tools=len(calls))
        for index, call in calls.items():
            call.id = call.id or f"call_{index}"
        return "".join(content), [calls[i] for i in sorted(calls)]

    async def _run_tool(self, call: _Call, caller: Caller, emit: Emitter, job_id: str) -> Result:
        tool = TOOLS.get(call.name)
        stage = tool.stage if tool else "general"
        await emit.stage(stage, "started", message=STAGE_MESSAGES.get(stage))
        try:
            with stage_span(SERVICE, stage, job_id):
                result = await call_tool(self.toolbox, caller, call.name, call.arguments)
        except ToolUnavailable as exc:
            await emit.stage(stage, "failed", message="정보를 불러오지 못했어요.")
            return Result(ok=False, note=f"lookup unavailable: {exc}")
        await emit.stage(stage, "completed", result=stage_result(result))
        return result

    def image_generator(self, common: CommonSettings) -> Callable[[str], Awaitable[str]]:
        """Draw with the endpoint's images API; the PNG is stored under ``generated/`` of the blob store
        and the answer carries its absolute public URL."""
        blobs = self._blobs = create_blob_store(
            common, BlobSettings(), SERVICES["image"].public_url(common.public_api_base_url)
        )

        async def generate(prompt: str) -> str:
            with model_call(PROVIDER, IMAGE_OPERATION, self.settings.image_generation_model):
                response = await self.client.images.generate(
                    model=self.settings.image_generation_model, prompt=prompt, n=1, size="1024x1024"
                )
            images = response.data or []
            data = base64.b64decode(images[0].b64_json or "" if images else "")
            key = f"generated/{uuid.uuid4().hex}.png"
            await blobs.put(key, data, "image/png")
            return blobs.public_url(key)

        return generate


def model_vision(
    common: CommonSettings,
    settings: AgentSettings,
    kb: KnowledgeBase,
    images: ImageClient,
    closers: list[Callable[[], Awaitable[None]]],
) -> Callable[[AskContext], Awaitable[VisionReading | None]]:
    """Scan's vision path for a photo in a message: the image service's allow-list answer (``/resolve``),
    the bytes from the blob store, the provider's checked classification. What it opens (the provider's
    HTTP session, the blob store once made) is closed by the callables it appends to ``closers``."""
    assert settings.llm_api_key is not None
    assert settings.default_model is not None
    provider = OpenAICompatibleProvider(
        kb,
        OpenAIConfig(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key,
            models=(settings.default_model,),
            timeout_seconds=settings.llm_timeout_seconds,
            max_retries=settings.llm_max_retries,
        ),
    )
    stores: list[BlobStore] = []  # made on first use: most messages carry no photo

    async def close() -> None:
        await provider.close()
        for store in stores:
            await store.close()

    closers.append(close)

    async def read(ctx: AskContext) -> VisionReading | None:
        assert ctx.image_url is not None
        verified = await images.resolve(ctx.image_url, ctx.user_id)
        if not stores:
            stores.append(
                create_blob_store(common, BlobSettings(), SERVICES["image"].public_url(common.public_api_base_url))
            )

        async def image() -> tuple[bytes, str]:
            data = await stores[0].read(verified.key)
            if not data:
                raise ToolUnavailable("image bytes missing")
            return data, verified.content_type

        c = await provider.classify(user_input=ctx.message, image=image, model=settings.model_for(ctx.model))
        if c.major == "미분류":
            return None
        return VisionReading(item=c.minor, major=c.major, middle=c.middle)

    return read
