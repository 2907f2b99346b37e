"""The assistant's tools: small typed functions over our own data, one per kind of lookup.

Each tool has a pydantic argument model (the model's JSON arguments are validated before anything
runs; invalid arguments come back to the model as an error, never as an exception), a typed result,
and the stage it reports under (docs/api.md, "SSE: scan and chat job streams" → "Events"). Both
answer paths use the same tools: the tool-calling agent through their JSON schemas, the offline
answerer by calling them directly.

Tools read only the caller's data: the user id and the position come from the job (``Caller``),
never from the model's arguments, so a prompt cannot make a tool read another user's characters or
search around someone else's position. A tool that needs the position and has none asks the user
once per job (``needs_input``) through the emitter.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.chat.agent.clients import LocationClient, OwnedClient, Site, ToolUnavailable
from services.chat.agent.facts import Facts, facts
from services.chat.agent.search import SearchProvider
from services.chat.agent.weather import WeatherProvider, weather_tips
from services.chat.assistant import Position
from services.common.ai import Classification, compose_answer
from services.common.knowledge import (
    RECYCLABLE,
    Character,
    Guidance,
    KnowledgeBase,
    character_for_middle,
    characters,
    nfc,
    squash,
)

ASK_LOCATION_MESSAGE = "가까운 곳을 찾으려면 현재 위치가 필요해요. 위치를 공유해 주시겠어요?"
# "버려/버리면/버릴…" — verb forms the classifier must not read ("버리면" ends in 면, a food word).
_VERBS = re.compile(r"버[려리릴린렸]\S*")
# Colloquial words → the middle category a character matches (the domain's list for chat).
COLLOQUIAL = {
    "플라스틱": "플라스틱류",
    "종이류": "종이",
    "캔류": "금속류",
    "유리류": "유리병",
    "비닐류": "비닐류",
    "스티로폼": "발포합성수지",
    "소형가전": "전기전자제품",
    "의류": "의류및원단",
}
NO_CHARACTER_WORDS = ("음식물쓰레기", "음식물", "일반쓰레기")


def read_item(kb: KnowledgeBase, text: str) -> Guidance:
    """The item a question names: the whole question without disposal verbs, else its best word."""
    cleaned = _VERBS.sub(" ", nfc(text))
    best = kb.classify(cleaned)
    if best.confidence >= 0.8:
        return best
    words = cleaned.split()
    for candidate in (*words, *(" ".join(pair) for pair in itertools.pairwise(words))):
        reading = kb.classify(candidate)
        if reading.confidence > best.confidence:
            best = reading
    return best


# ------------------------------------------------------------------------------- the caller


@dataclass
class Caller:
    """Whose data a job may read, and how to ask for the position once."""

    user_id: uuid.UUID
    position: Position | None
    ask: Callable[[str], Awaitable[Position | None]] | None = None
    asked: bool = False

    async def position_or_ask(self) -> Position | None:
        if self.position is None and self.ask is not None and not self.asked:
            self.asked = True
            self.position = await self.ask(ASK_LOCATION_MESSAGE)
        return self.position


# --------------------------------------------------------------------------------- arguments


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ItemArgs(Args):
    item: str = Field(min_length=1, max_length=200, description="사용자가 말한 물건 이름이나 설명 (한국어)")


class NearbyArgs(Args):
    kind: Literal["all", "recycling", "zero_waste"] = Field(
        "all", description="recycling: 재활용 거점·회수기, zero_waste: 제로웨이스트·리필 가게, all: 모두"
    )
    pickup: Literal["clear_pet", "colored_pet", "can", "paper", "plastic", "glass", "textile", "electronics"] | None = (
        Field(None, description="이 품목을 받는 곳만")
    )
    radius_m: int = Field(5000, ge=100, le=20000)


class NoArgs(Args):
    pass


class PriceArgs(Args):
    item: str = Field(min_length=1, max_length=100, description="재질이나 품목 (예: 고철, 알루미늄캔, 신문지)")
    region: str | None = Field(None, max_length=20, description="지역 (예: 서울, 경남); 없으면 전국 평균")


class BulkyArgs(Args):
    item: str = Field(min_length=1, max_length=100, description="대형폐기물 품목 (예: 소파, 냉장고)")
    district: str | None = Field(None, max_length=20, description="구 이름 (예: 마포구)")


class CollectionArgs(Args):
    kind: Literal["battery", "lamp", "clothing", "small_electronics"]


class SearchArgs(Args):
    query: str = Field(min_length=1, max_length=200)


class ImageArgs(Args):
    prompt: str = Field(min_length=1, max_length=500)


# ----------------------------------------------------------------------------------- results


class Result(BaseModel):
    ok: bool = True
    note: str | None = None  # why nothing could be looked up (Korean, user-facing)


class CharacterRef(BaseModel):
    name: str
    code: str
    match: str | None
    type: str
    dialog: str

    @classmethod
    def of(cls, c: Character) -> CharacterRef:
        return cls(name=c.name, code=c.code, match=c.match, type=c.type, dialog=c.dialog)


class DisposalResult(Result):
    item: str = ""
    major: str = ""
    middle: str = ""
    rule_name: str | None = None
    answer: str = ""
    steps: list[str] = []
    tips: list[str] = []
    not_accepted: list[str] = []
    question: str | None = None
    confidence: float = 0.0
    character: CharacterRef | None = None


class NearbyResult(Result):
    sites: list[Site] = []
    radius_m: int = 5000
    has_position: bool = True


class CharacterResult(Result):
    word: str = ""
    character: CharacterRef | None = None
    owned: bool | None = None
    category: str | None = None  # what the word is when it earns no character


class OwnedResult(Result):
    names: list[str] = []
    missing: list[str] = []


class PriceRow(BaseModel):
    name: str
    category: str
    price: int
    nationwide: int


class PriceResult(Result):
    region: str = "전국평균"
    month: str = ""
    source: str = ""
    rows: list[PriceRow] = []


class FeeRow(BaseModel):
    item: str
    group: str
    fee: int


class DistrictInfo(BaseModel):
    name: str
    phone: str
    how: str
    payment: str


class BulkyResult(Result):
    rows: list[FeeRow] = []
    district: DistrictInfo | None = None
    free_appliance_pickup: str = ""
    steps: list[str] = []


class CollectionResult(Result):
    kind: str = ""
    rule_name: str = ""
    steps: list[str] = []
    sites: list[Site] = []
    has_position: bool = False


class WeatherResult(Result):
    summary: str = ""
    tips: list[str] = []
    forecast_for: str = ""


class SearchHit(BaseModel):
    title: str
    url: str
    snippet: str


class SearchResultOut(Result):
    results: list[SearchHit] = []


class ImageResult(Result):
    url: str | None = None


COLLECTION_KINDS: dict[str, tuple[str, str | None]] = {
    # kind → (recyclable middle whose document says how, pickup category of the site data)
    "battery": ("전지", None),
    "lamp": ("조명제품", None),
    "clothing": ("의류및원단", "textile"),
    "small_electronics": ("전기전자제품", "electronics"),
}
COLLECTION_WORDS = {
    "battery": ("건전지", "배터리", "전지"),
    "lamp": ("형광등", "전구", "램프"),
    "clothing": ("의류", "옷", "헌옷"),
    "small_electronics": ("가전", "전자제품", "휴대폰", "충전기"),
}


def collection_kind(text: str) -> str | None:
    key = squash(text)
    return next((kind for kind, words in COLLECTION_WORDS.items() if any(w in key for w in words)), None)


# ------------------------------------------------------------------------------------ toolbox


@dataclass
class Toolbox:
    kb: KnowledgeBase
    location: LocationClient | None = None
    owned: OwnedClient | None = None
    weather_provider: WeatherProvider | None = None
    search_provider: SearchProvider | None = None
    image_generator: Callable[[str], Awaitable[str]] | None = None
    fact_table: Facts = field(default_factory=facts)

    # ------------------------------------------------------------------------------ waste

    async def disposal_guidance(self, caller: Caller, args: ItemArgs) -> DisposalResult:
        guidance = read_item(self.kb, args.item)
        classification = Classification.from_guidance(guidance)
        rule = self.kb.rule_for(guidance.major, guidance.middle)
        final = compose_answer(self.kb, classification, rule)
        character = character_for_middle(guidance.middle) if guidance.major == RECYCLABLE else None
        return DisposalResult(
            ok=rule is not None,
            item=guidance.minor,
            major=guidance.major,
            middle=guidance.middle,
            rule_name=rule.name if rule else None,
            answer=final.user_answer,
            steps=list(final.disposal_steps.values()),
            tips=final.insufficiencies if rule else [],
            not_accepted=list(rule.not_accepted)[:4] if rule else [],
            question=guidance.question,
            confidence=guidance.confidence,
            character=CharacterRef.of(character) if character else None,
        )

    # --------------------------------------------------------------------------- location

    async def nearby_sites(self, caller: Caller, args: NearbyArgs) -> NearbyResult:
        position = await caller.position_or_ask()
        if position is None:
            return NearbyResult(ok=False, has_position=False, note="위치를 알 수 없어요.")
        if self.location is None:
            raise ToolUnavailable("location service not configured")
        store = "refill_zero" if args.kind == "zero_waste" else None
        sites = await self.location.nearby(
            position.latitude,
            position.longitude,
            radius_m=args.radius_m,
            limit=5,
            store_category=store,
            pickup_category=args.pickup,
        )
        return NearbyResult(sites=sites, radius_m=args.radius_m)

    # -------------------------------------------------------------------------- characters

    def character_for_word(self, text: str) -> tuple[Character | None, str | None]:
        """The character a word earns, and otherwise what the word is (a non-recyclable category)."""
        key = squash(text).lower()
        catalog = characters()
        for c in catalog:
            if squash(c.name) in key:
                return c, None
        if any(squash(w) in key for w in NO_CHARACTER_WORDS):
            return None, "음식물류폐기물" if "음식물" in key else "일반종량제폐기물"
        pairs: list[tuple[str, Character | None]] = [
            (squash(a).lower(), c) for c in catalog for a in c.aliases if len(a) > 1
        ]
        pairs += [(squash(w), character_for_middle(m)) for w, m in COLLOQUIAL.items()]
        guidance = read_item(self.kb, text)
        if guidance.confidence >= 0.8 and guidance.major == RECYCLABLE:
            return character_for_middle(guidance.middle), None
        for alias, character in sorted(pairs, key=lambda p: -len(p[0])):
            if character is not None and alias in key:
                return character, None
        if guidance.major == RECYCLABLE:
            return character_for_middle(guidance.middle), None
        if guidance.confidence > 0:
            return None, guidance.major
        return None, None

    async def character_info(self, caller: Caller, args: ItemArgs) -> CharacterResult:
        character, category = self.character_for_word(args.item)
        if character is None:
            return CharacterResult(ok=False, word=args.item, category=category)
        owned: bool | None = None
        if self.owned is not None:
            try:
                owned = character.code in {o.code for o in await self.owned.owned(caller.user_id)}
            except ToolUnavailable:
                owned = None  # the character is still the answer; ownership is an extra
        return CharacterResult(word=args.item, character=CharacterRef.of(character), owned=owned)

    async def owned_characters(self, caller: Caller, args: NoArgs) -> OwnedResult:
        if self.owned is None:
            raise ToolUnavailable("my service not configured")
        owned = await self.owned.owned(caller.user_id)
        names = [o.name for o in owned]
        return OwnedResult(names=names, missing=[c.name for c in characters() if c.name not in names])

    # ------------------------------------------------------------------------- prices, fees

    async def recyclable_price(self, caller: Caller, args: PriceArgs) -> PriceResult:
        table = self.fact_table
        region = table.region_in(args.region or "") or "nationwide"
        survey = table.data.survey
        rows = [
            PriceRow(name=p.name, category=p.category, price=table.price_of(p, region), nationwide=p.prices[0])
            for p in table.prices_for(args.item)
        ]
        return PriceResult(
            ok=bool(rows), region=table.region_names[region], month=survey.month, source=survey.source, rows=rows
        )

    async def bulky_waste_fee(self, caller: Caller, args: BulkyArgs) -> BulkyResult:
        table = self.fact_table
        rows = [FeeRow(item=i, group=g, fee=f) for i, g, f in table.fees_for(args.item)]
        district = table.district_in(args.district or args.item)
        rule = self.kb.rule("대형폐기물")
        return BulkyResult(
            ok=bool(rows),
            rows=rows,
            district=DistrictInfo.model_validate(district.model_dump()) if district else None,
            free_appliance_pickup=table.data.bulky.free_appliance_pickup,
            steps=rule.steps(None) if rule else [],
        )

    async def collection_point(self, caller: Caller, args: CollectionArgs) -> CollectionResult:
        middle, pickup = COLLECTION_KINDS[args.kind]
        rule = self.kb.rule_for(RECYCLABLE, middle)
        assert rule is not None  # the 12 recyclable documents are checked at load
        result = CollectionResult(kind=args.kind, rule_name=rule.name, steps=rule.steps(None))
        position = caller.position
        if position is not None and self.location is not None:
            try:
                result.sites = await self.location.nearby(
                    position.latitude, position.longitude, limit=3, pickup_category=pickup
                )
                result.has_position = True
            except ToolUnavailable:
                result.note = "주변 수거 장소는 지금 찾지 못했어요."
        return result

    # ----------------------------------------------------------------------------- weather

    async def weather(self, caller: Caller, args: NoArgs, *, food_waste: bool = False) -> WeatherResult:
        if self.weather_provider is None:
            return WeatherResult(ok=False, note="날씨 정보가 연결되어 있지 않아요.")
        position = await caller.position_or_ask()
        if position is None:
            return WeatherResult(ok=False, note="위치를 알 수 없어요.")
        current = await self.weather_provider.current(position.latitude, position.longitude)
        return WeatherResult(
            summary=current.summary(),
            tips=weather_tips(current, food_waste=food_waste),
            forecast_for=current.forecast_for,
        )

    # --------------------------------------------------------------------- search, images

    async def web_search(self, caller: Caller, args: SearchArgs) -> SearchResultOut:
        if self.search_provider is None:
            return SearchResultOut(ok=False, note="실시간 검색이 연결되어 있지 않아요.")
        hits = await self.search_provider.search(args.query, 5)
        return SearchResultOut(results=[SearchHit(title=h.title, url=h.url, snippet=h.snippet) for h in hits])

    async def generate_image(self, caller: Caller, args: ImageArgs) -> ImageResult:
        if self.image_generator is None:
            return ImageResult(ok=False, note="그림 그리기 기능은 꺼져 있어요.")
        return ImageResult(url=await self.image_generator(args.prompt))


# ------------------------------------------------------------------------------- the catalog


@dataclass(frozen=True)
class Tool:
    name: str
    stage: str
    description: str
    args: type[Args]
    run: Callable[[Toolbox, Caller, Any], Awaitable[Result]]

    def schema(self) -> dict[str, Any]:
        parameters = self.args.model_json_schema()
        parameters.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": parameters},
        }


TOOLS: dict[str, Tool] = {
    t.name: t
    for t in (
        Tool("disposal_guidance", "waste_rag", "물건의 분리배출 방법(배출 규정 문서의 단계와 팁)을 찾는다.",
             ItemArgs, Toolbox.disposal_guidance),
        Tool("nearby_sites", "location", "사용자 위치 주변의 재활용 거점·제로웨이스트 가게를 가까운 순으로 찾는다.",
             NearbyArgs, Toolbox.nearby_sites),
        Tool("character_info", "character", "어떤 물건이나 단어로 받을 수 있는 캐릭터와 보유 여부를 찾는다.",
             ItemArgs, Toolbox.character_info),
        Tool("owned_characters", "character", "사용자가 이미 모은 캐릭터와 아직 없는 캐릭터 목록.",
             NoArgs, Toolbox.owned_characters),
        Tool("recyclable_price", "recyclable_price", "재활용 자원(고철, 폐지, 캔 등)의 kg당 참고 시세.",
             PriceArgs, Toolbox.recyclable_price),
        Tool("bulky_waste_fee", "bulk_waste", "대형폐기물 수수료 예시와 구청 신청 방법.",
             BulkyArgs, Toolbox.bulky_waste_fee),
        Tool("collection_point", "collection_point", "폐건전지·폐형광등·의류·소형가전 전용 수거함 안내.",
             CollectionArgs, Toolbox.collection_point),
        Tool("weather", "weather", "사용자 위치의 날씨와 날씨에 맞는 배출 팁.", NoArgs, Toolbox.weather),
        Tool("web_search", "web_search", "뉴스·새 정책 등 실시간 정보를 웹에서 검색한다 (출처 포함).",
             SearchArgs, Toolbox.web_search),
        Tool("generate_image", "image_generation", "캐릭터나 분리배출 안내 그림을 그린다.",
             ImageArgs, Toolbox.generate_image),
    )
}  # fmt: skip


async def call_tool(toolbox: Toolbox, caller: Caller, name: str, raw_arguments: str | dict[str, Any]) -> Result:
    """Validate the model's arguments and run the tool; bad arguments come back as a failed result."""
    tool = TOOLS.get(name)
    if tool is None:
        return Result(ok=False, note=f"unknown tool {name!r}")
    try:
        args = (
            tool.args.model_validate_json(raw_arguments or "{}")
            if isinstance(raw_arguments, str)
            else tool.args.model_validate(raw_arguments)
        )
    except ValidationError as exc:
        return Result(ok=False, note=f"invalid arguments: {exc.errors(include_url=False)}")
    return await tool.run(toolbox, caller, args)
