"""The assistant the chat runner calls (``services.chat.assistant.Assistant``).

One message: route it (``intent`` stage), look at the photo if there is one (``vision``), then
either the tool-calling model answers (``llm.py``) or the offline answerer does: one lookup stage per
sub-question (``waste_rag``, ``location``, ``character`` …), the weather as extra context where the
domain says so, ``aggregator`` when several sub-questions are joined, and the ``answer`` stage around
the streamed tokens. A model that fails hands over to the offline answer (``Answer.fallback``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from services.chat.agent import offline
from services.chat.agent.clients import ToolUnavailable
from services.chat.agent.intents import IntentRouter, Routing
from services.chat.agent.tools import (
    BulkyArgs,
    Caller,
    CollectionArgs,
    ImageArgs,
    ItemArgs,
    NearbyArgs,
    NoArgs,
    PriceArgs,
    Result,
    SearchArgs,
    Toolbox,
    collection_kind,
)
from services.chat.assistant import Answer, AskContext, AssistantUnavailable, Emitter
from services.common.jobs import stage_span
from services.common.logging import get_logger

log = get_logger("eco2.chat.agent")

SERVICE = "chat"  # the job service's label on stage metrics and spans (services/registry.py)

STAGE_OF = {
    "waste": "waste_rag",
    "character": "character",
    "location": "location",
    "bulk_waste": "bulk_waste",
    "recyclable_price": "recyclable_price",
    "collection_point": "collection_point",
    "weather": "weather",
    "image_generation": "image_generation",
    "web_search": "web_search",
    "general": "general",
}
STAGE_MESSAGES = {
    "intent": "질문을 이해하고 있어요.",
    "vision": "사진을 살펴보고 있어요.",
    "waste_rag": "배출 규정을 찾고 있어요.",
    "character": "캐릭터 정보를 찾고 있어요.",
    "location": "가까운 장소를 찾고 있어요.",
    "bulk_waste": "대형폐기물 정보를 찾고 있어요.",
    "recyclable_price": "시세를 찾고 있어요.",
    "collection_point": "수거함 정보를 찾고 있어요.",
    "weather": "날씨를 확인하고 있어요.",
    "web_search": "검색하고 있어요.",
    "image_generation": "그림을 그리고 있어요.",
    "general": "답변을 생각하고 있어요.",
    "aggregator": "답변을 모으고 있어요.",
    "answer": "답변을 쓰고 있어요.",
}
DONE_MESSAGE = "답변을 준비했어요."
FALLBACK_MESSAGE = "AI 모델에 연결하지 못해 이코의 기본 안내로 답했어요."
# Weather is extra context for these intents, and for any intent but these when the position is known.
WEATHER_FOR = ("waste", "bulk_waste")
NO_WEATHER = ("weather", "general", "character", "image_generation")
_OWNED_WORDS = re.compile(r"(내|제|나의|모은|모았|보유|가진|가지고|몇)")
_WHERE = re.compile(r"(어디|근처|주변|가까|찾아)")


@dataclass
class VisionReading:
    item: str
    major: str
    middle: str


class ModelFailed(Exception):
    """The model could not finish; ``emitted`` is the text already streamed to the client."""

    def __init__(self, emitted: str, cause: str) -> None:
        super().__init__(cause)
        self.emitted = emitted


@dataclass
class Eco2Assistant:
    toolbox: Toolbox
    router: IntentRouter
    llm: Any = None  # llm.LlmAgent when a model is configured
    vision: Callable[[AskContext], Awaitable[VisionReading | None]] | None = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def aclose(self) -> None:
        for close in reversed(self.closers):
            await close()

    # ------------------------------------------------------------------------------- entry

    async def answer(self, ctx: AskContext, emit: Emitter) -> Answer:
        caller = Caller(ctx.user_id, ctx.location, ask=emit.ask_location)
        job_id = str(ctx.job_id)
        await emit.stage("intent", "started", message=STAGE_MESSAGES["intent"])
        # Each stage's work runs in ``stage_span`` (latency histogram and span); like its events, the
        # intent stage holds the vision stage of a photo message.
        with stage_span(SERVICE, "intent", job_id):
            hint = next((t.intent for t in reversed(ctx.history) if t.role == "assistant" and t.intent), None)
            routing = self.router.route(ctx.message, history_hint=hint if hint in ("waste", "bulk_waste") else None)
            reading = await self._vision(ctx, emit) if ctx.image_url else None
            if reading is not None and routing.intent == "general":
                routing = self.router.route(f"{reading.item} 어떻게 버려요?")
        await emit.stage("intent", "completed", result=routing.as_result())
        if self.llm is not None:
            try:
                text = await self.llm.answer(ctx, emit, routing, caller, reading)
                return Answer(intent=routing.intent, text=text, message=DONE_MESSAGE)  # type: ignore[arg-type]
            except ModelFailed as exc:
                log.warning("model_failed_fallback", job_id=str(ctx.job_id), error=str(exc))
                return await self._offline(ctx, emit, routing, caller, reading, prefix=exc.emitted, fallback=True)
        return await self._offline(ctx, emit, routing, caller, reading)

    # ------------------------------------------------------------------------------ vision

    async def _vision(self, ctx: AskContext, emit: Emitter) -> VisionReading | None:
        await emit.stage("vision", "started", message=STAGE_MESSAGES["vision"])
        if self.vision is None:
            await emit.stage("vision", "failed", message="사진을 볼 수 있는 모델이 연결되어 있지 않아 글로만 답할게요.")
            return None
        try:
            with stage_span(SERVICE, "vision", str(ctx.job_id)):
                reading = await self.vision(ctx)
        except Exception as exc:  # any vision failure is not fatal: the text is answered
            log.warning("chat_vision_failed", error=repr(exc))
            reading = None
        if reading is None:
            await emit.stage("vision", "failed", message="사진 속 물건을 알아보지 못했어요.")
            return None
        await emit.stage("vision", "completed", result={"item": reading.item, "major": reading.major,
                                                         "middle": reading.middle})  # fmt: skip
        return reading

    # ----------------------------------------------------------------------------- offline

    async def lookup(
        self, intent: str, text: str, caller: Caller, reading: VisionReading | None = None
    ) -> Result | None:
        """The tool the offline answerer runs for one sub-question (None: nothing to look up)."""
        tb = self.toolbox
        match intent:
            case "waste":
                return await tb.disposal_guidance(caller, ItemArgs(item=reading.item if reading else text))
            case "character":
                if _OWNED_WORDS.search(text) and not tb.character_for_word(text)[0]:
                    return await tb.owned_characters(caller, NoArgs())
                return await tb.character_info(caller, ItemArgs(item=text))
            case "location":
                kind = "zero_waste" if re.search("제로웨이스트|리필|zero", text) else "all"
                return await tb.nearby_sites(caller, NearbyArgs(kind=kind))
            case "bulk_waste":
                return await tb.bulky_waste_fee(caller, BulkyArgs(item=text[:100], district=None))
            case "recyclable_price":
                return await tb.recyclable_price(caller, PriceArgs(item=text[:100], region=text[:20]))
            case "collection_point":
                if _WHERE.search(text):
                    await caller.position_or_ask()
                kind = collection_kind(text) or "battery"
                return await tb.collection_point(caller, CollectionArgs(kind=kind))
            case "weather":
                return await tb.weather(caller, NoArgs())
            case "web_search":
                return await tb.web_search(caller, SearchArgs(query=text[:200]))
            case "image_generation":
                return await tb.generate_image(caller, ImageArgs(prompt=text[:500]))
        return None

    async def _offline(
        self,
        ctx: AskContext,
        emit: Emitter,
        routing: Routing,
        caller: Caller,
        reading: VisionReading | None,
        *,
        prefix: str = "",
        fallback: bool = False,
    ) -> Answer:
        sections: list[str] = []
        if ctx.image_url and reading is None:  # the vision stage failed: say so in the answer itself
            sections.append(offline.photo_unseen(vision_configured=self.vision is not None))
        notes = len(sections)
        for question in routing.questions:
            stage = STAGE_OF[question.intent]
            await emit.stage(stage, "started", message=STAGE_MESSAGES[stage])
            try:
                with stage_span(SERVICE, stage, str(ctx.job_id)):
                    result = await self.lookup(question.intent, question.text, caller, reading)
            except ToolUnavailable as exc:
                log.warning("tool_unavailable", stage=stage, error=str(exc))
                await emit.stage(stage, "failed", message=offline.unavailable(stage))
                sections.append(offline.unavailable(stage))
                continue
            await emit.stage(stage, "completed", result=stage_result(result))
            sections.append(offline.section(question.intent, result, question.text))
        tip = await self._weather_tip(routing, caller, emit, str(ctx.job_id))
        if tip:
            sections.append(tip)
        if len(sections) - notes > 1:
            await emit.stage("aggregator", "started", message=STAGE_MESSAGES["aggregator"])
            await emit.stage("aggregator", "completed", result={"sections": len(sections)})
        body = "\n\n".join(s for s in sections if s)
        if prefix:
            body = "\n\n---\n연결이 끊겨서 여기부터는 이코의 기본 안내로 이어서 답할게요.\n\n" + body
        await emit.stage("answer", "started", message=STAGE_MESSAGES["answer"])
        with stage_span(SERVICE, "answer", str(ctx.job_id)):
            for delta in offline.chunks(body):
                await emit.token(delta, node="answer")
        await emit.stage("answer", "completed")
        if not (prefix + body).strip():
            raise AssistantUnavailable("empty answer")
        return Answer(
            intent=routing.intent,  # type: ignore[arg-type]
            text=prefix + body,
            message=FALLBACK_MESSAGE if fallback else DONE_MESSAGE,
            fallback=fallback,
        )

    async def _weather_tip(self, routing: Routing, caller: Caller, emit: Emitter, job_id: str) -> str:
        intents = routing.intents
        if self.toolbox.weather_provider is None or "weather" in intents:
            return ""
        wanted = any(i in WEATHER_FOR for i in intents) or (
            caller.position is not None and not any(i in NO_WEATHER for i in intents)
        )
        if not wanted or caller.position is None:
            return ""  # never ask for the position only to add a tip
        await emit.stage("weather", "started", message=STAGE_MESSAGES["weather"])
        try:
            food = any(q.intent == "waste" and "음식" in q.text for q in routing.questions)
            with stage_span(SERVICE, "weather", job_id):
                result = await self.toolbox.weather(caller, NoArgs(), food_waste=food)
        except ToolUnavailable:
            await emit.stage("weather", "failed", message="날씨를 확인하지 못했어요.")
            return ""
        await emit.stage("weather", "completed", result=stage_result(result))
        return offline.weather(result, extra=True)


def stage_result(result: Result | None) -> dict[str, Any] | None:
    """A small summary for the stage event (the full text goes out as tokens)."""
    if result is None:
        return None
    data = result.model_dump(mode="json", exclude_none=True)
    for key in ("answer", "dialog", "steps", "not_accepted"):
        data.pop(key, None)
    if "sites" in data:
        data["sites"] = [{"name": s["name"], "distance_text": s["distance_text"]} for s in data["sites"]]
    if isinstance(data.get("character"), dict):
        data["character"] = {k: data["character"][k] for k in ("name", "code")}
    return data
