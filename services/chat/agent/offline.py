"""The offline answerer: Korean Markdown composed from tool results, no model involved.

Used when no model is configured (``eco2 dev`` without a key) and as the fallback when a configured
model fails. It answers from the same tools the agent calls, so its facts are the agent's facts:
rule-document steps, site names and distances, the character catalog, the price survey, the fee
examples. It speaks as 이코 (docs/chat.md): what the item is and where it goes first, then the
steps, then tips; it says plainly when it could not look something up instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from services.chat.agent.tools import (
    BulkyResult,
    CharacterResult,
    CollectionResult,
    DisposalResult,
    ImageResult,
    NearbyResult,
    OwnedResult,
    PriceResult,
    Result,
    SearchResultOut,
    WeatherResult,
)

STORE_LABELS = {
    "refill_zero": "제로웨이스트·리필",
    "cafe_bakery": "카페",
    "vegan_dining": "비건 식당",
    "upcycle_recycle": "재활용·업사이클",
    "book_workshop": "센터·공방",
    "market_mart": "마켓",
    "lodging": "숙소",
    "public_dropbox": "무인 수거함",
    "general": "기타",
}
CATEGORY_LABELS = {
    "일반종량제폐기물": "종량제봉투에 버리는 일반쓰레기",
    "음식물류폐기물": "음식물쓰레기",
    "대형폐기물": "대형폐기물",
    "불연성종량제폐기물": "불연성 쓰레기",
    "생활계유해폐기물": "생활계 유해폐기물",
    "공사장생활폐기물": "공사장 생활폐기물",
}
COLLECTION_LABELS = {
    "battery": "폐건전지",
    "lamp": "폐형광등",
    "clothing": "헌 옷",
    "small_electronics": "소형 가전",
}
NO_LOCATION = (
    "위치를 알 수 없어서 가까운 곳을 찾지 못했어요. 앱에서 위치 권한을 허용하고 다시 물어봐 주시면 "
    "가까운 재활용 거점을 거리순으로 알려 드릴게요. 📍"
)
UNAVAILABLE = "지금은 {what} 정보를 불러오지 못했어요. 잠시 후 다시 물어봐 주세요."
CAPABILITIES = (
    "안녕하세요, 분리배출 도우미 이코예요! 🌱\n"
    "물건 이름을 알려 주시면 버리는 방법을 단계별로 알려 드리고, 가까운 재활용 거점, 재활용 자원 시세, "
    "대형폐기물 수수료, 전용 수거함, 날씨에 맞는 배출 팁, 그리고 모을 수 있는 캐릭터 친구들도 안내해 드려요. "
    "무엇이 궁금하세요?"
)


def won(value: int) -> str:
    return f"{value:,}원"


def _site_line(index: int, site: object) -> str:
    from services.chat.agent.clients import Site

    assert isinstance(site, Site)
    parts = [f"{index}. **{site.name}** — {site.distance_text}"]
    if site.road_address:
        parts.append(f"   {site.road_address}")
    details = [STORE_LABELS.get(site.store_category, "")]
    if site.is_open:
        details.append(f"지금 영업 중 ({site.start_time}~{site.end_time})")
    if site.phone:
        details.append(f"☎ {site.phone}")
    detail = " · ".join(d for d in details if d)
    return "\n".join(parts) + (f"\n   {detail}" if detail else "")


def waste(result: DisposalResult) -> str:
    if not result.ok:
        return result.answer  # the apology with the question or the next step (compose_answer)
    lines = [result.answer.split("\n")[0]]
    lines += ["", "**배출 방법**", *(f"{i}. {step}" for i, step in enumerate(result.steps, 1))]
    if result.tips:
        lines += ["", "**챙겨 주세요**", *(f"- {tip}" for tip in result.tips)]
    if result.not_accepted:
        lines += ["", f"참고로 {', '.join(result.not_accepted)}은(는) 여기에 넣지 않아요."]
    rest = result.answer.split("\n")[2:]  # the doubt line of compose_answer, if any
    lines += [line for line in rest if line]
    if result.character:
        lines += ["", f"이렇게 잘 버리면 제 친구 **{result.character.name}**를 만날 수 있어요! ✨"]
    return "\n".join(lines)


def location(result: NearbyResult) -> str:
    if not result.has_position:
        return NO_LOCATION
    if not result.sites:
        return f"반경 {result.radius_m / 1000:g}km 안에서는 등록된 재활용 거점을 찾지 못했어요. 조금 더 넓은 지역에서 찾아볼까요?"
    lines = [f"가까운 곳을 거리순으로 {len(result.sites)}곳 찾았어요. 📍", ""]
    lines += [_site_line(i, site) for i, site in enumerate(result.sites, 1)]
    lines += ["", "방문 전에 운영 시간을 한 번 확인해 주세요."]
    return "\n".join(lines)


def character(result: CharacterResult | OwnedResult) -> str:
    if isinstance(result, OwnedResult):
        have = ", ".join(result.names) or "아직 없어요"
        text = f"지금까지 모은 친구는 {len(result.names)}명이에요: {have}."
        if result.missing:
            text += f"\n아직 만나지 못한 친구: {', '.join(result.missing)}. 사진을 찍어 올바르게 분리배출하면 만날 수 있어요!"
        return text
    if result.character is None:
        if result.category:
            label = CATEGORY_LABELS.get(result.category, result.category)
            return (
                f"{label}에는 캐릭터가 없어요. 캐릭터는 재활용품을 올바르게 분리배출했을 때 만날 수 있어요. "
                "예를 들어 페트병은 **페티**, 캔은 **메탈리**예요."
            )
        return "어떤 물건인지 조금 더 알려 주시면 받을 수 있는 캐릭터를 찾아 드릴게요."
    c = result.character
    lines = [
        f"**{c.match}**를 올바르게 분리배출하면 제 친구 **{c.name}**를 받을 수 있어요! ✨",
        f"{c.name}는 {c.type}을(를) 맡고 있어요.",
        f"{c.name}의 한마디: “{c.dialog}”",
    ]
    if result.owned is True:
        lines.append(f"벌써 {c.name}와 친구가 되었네요!")
    elif result.owned is False:
        lines.append("아직 만나지 못했어요. 스캔으로 올바르게 버리면 바로 만날 수 있어요.")
    return "\n".join(lines)


def price(result: PriceResult) -> str:
    if not result.ok:
        return "그 품목의 시세 자료는 아직 없어요. 고철, 폐지(신문지·골판지), 캔, 페트, 유리 등의 시세를 알려 드릴 수 있어요."
    lines = [f"{result.month} {result.source} 기준 **{result.region}** 참고 시세예요 (kg당)."]
    for row in result.rows:
        extra = f" (전국평균 {won(row.nationwide)})" if result.region != "전국평균" else ""
        lines.append(f"- **{row.name}**: {won(row.price)}{extra}")
    lines.append("매입처마다 가격이 달라서, 실제로 파실 때는 가까운 고물상이나 재활용센터에 확인해 주세요.")
    return "\n".join(lines)


def bulky(result: BulkyResult) -> str:
    lines: list[str] = []
    if result.rows:
        lines.append("대형폐기물 수수료 예시예요 (서울 한 자치구 기준이라 지역마다 달라요).")
        lines += [f"- {row.item}: {won(row.fee)}" for row in result.rows]
    else:
        lines.append("대형폐기물은 구청에 신고하고 수수료를 낸 뒤 내놓아요. 수수료는 지자체와 품목마다 달라요.")
    if any(row.group == "가전류" for row in result.rows) or not result.rows:
        lines.append(f"가전제품은 폐가전 무상 방문수거({result.free_appliance_pickup})를 이용하면 무료예요.")
    if result.district:
        d = result.district
        lines.append(f"**{d.name}**: {d.how} 결제는 {d.payment}, 문의 {d.phone}.")
    else:
        lines += ["", "**신청 방법**", *(f"{i}. {s}" for i, s in enumerate(result.steps, 1))]
        lines.append("정확한 금액은 사시는 구청 누리집에서 확인해 주세요.")
    return "\n".join(lines)


def collection(result: CollectionResult) -> str:
    label = COLLECTION_LABELS.get(result.kind, result.rule_name)
    lines = [f"{label}는 전용 수거함이나 정해진 방법으로 따로 배출해요.", ""]
    lines += [f"{i}. {step}" for i, step in enumerate(result.steps, 1)]
    if result.sites:
        lines += ["", "가까운 수거 장소예요."]
        lines += [_site_line(i, site) for i, site in enumerate(result.sites, 1)]
    elif not result.has_position:
        lines += ["", "아파트 단지나 주민센터에 전용 수거함이 많아요. 위치를 공유해 주시면 가까운 곳도 찾아 드릴게요."]
    if result.note:
        lines.append(result.note)
    return "\n".join(lines)


def weather(result: WeatherResult, *, extra: bool = False) -> str:
    if not result.ok:
        if extra:
            return ""
        return f"{result.note or '날씨 정보를 불러오지 못했어요.'} 날씨에 맞는 배출 팁은 지금 드리기 어려워요."
    tip = " ".join(result.tips) if result.tips else "오늘은 날씨 걱정 없이 분리배출하기 좋아요."
    if extra:
        return f"🌤️ 오늘 날씨({result.summary}) 팁: {tip}" if result.tips else ""
    return f"지금 날씨는 {result.summary}예요 ({result.forecast_for} 예보). {tip}"


def web(result: SearchResultOut) -> str:
    if not result.ok:
        return (
            "지금은 실시간 검색을 할 수 없어서 최신 소식은 찾아볼 수 없어요. 😢 "
            "분리배출 방법이나 재활용 정보라면 제가 가진 자료로 바로 알려 드릴게요."
        )
    if not result.results:
        return "검색 결과를 찾지 못했어요. 다른 표현으로 다시 물어봐 주세요."
    lines = ["찾아본 결과예요."]
    lines += [f"- [{hit.title}]({hit.url}){': ' + hit.snippet if hit.snippet else ''}" for hit in result.results]
    return "\n".join(lines)


def image(result: ImageResult) -> str:
    if result.url:
        return f"그림을 그려 봤어요!\n\n![이코가 그린 그림]({result.url})"
    return "지금은 그림 그리기 기능이 꺼져 있어서 그림을 그려 드릴 수 없어요. 대신 말로 자세히 설명해 드릴게요!"


def general(text: str) -> str:
    return CAPABILITIES


def photo_unseen(*, vision_configured: bool) -> str:
    """The first line of an answer to a message whose photo could not be looked at: the user should
    know the answer comes from their words alone, not from the picture."""
    if vision_configured:
        return "📷 사진 속 물건을 알아보지 못해서, 적어 주신 글을 보고 답할게요."
    return "📷 지금은 사진을 볼 수 있는 기능이 연결되어 있지 않아서, 적어 주신 글만 보고 답할게요."


def unavailable(stage: str) -> str:
    what = {
        "location": "주변 장소",
        "character": "캐릭터",
        "weather": "날씨",
        "web_search": "검색",
        "collection_point": "수거함",
        "image_generation": "그림",
    }.get(stage, "관련")
    return UNAVAILABLE.format(what=what)


def section(intent: str, result: Result | None, text: str) -> str:
    """One sub-question's answer."""
    match result:
        case DisposalResult():
            return waste(result)
        case NearbyResult():
            return location(result)
        case CharacterResult() | OwnedResult():
            return character(result)
        case PriceResult():
            return price(result)
        case BulkyResult():
            return bulky(result)
        case CollectionResult():
            return collection(result)
        case WeatherResult():
            return weather(result)
        case SearchResultOut():
            return web(result)
        case ImageResult():
            return image(result)
    return general(text)


_PIECES = re.compile(r"\S+\s*|\s+")


def chunks(text: str, size: int = 12) -> Iterator[str]:
    """Token-like deltas (a few words each) whose concatenation is exactly ``text``."""
    current = ""
    for piece in _PIECES.findall(text):
        current += piece
        if len(current) >= size or "\n" in piece:
            yield current
            current = ""
    if current:
        yield current
