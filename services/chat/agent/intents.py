"""Intent routing: which of the ten intents a message asks, split into sub-questions.

Rule-based on purpose: it runs before (and without) any model, so the offline answerer and the
tool-calling agent agree on the intent reported in ``done.result.intent``, and it costs microseconds.

- Keyword hints per intent are the domain's (docs/chat.md lists them), plus a few of our own
  (weather words, live-information words, the routing fact's "주변"/"찾아줘"). A *decisive* hint
  (캐릭터, 어디/근처, 시세, 수수료, 수거함, 날씨 …) weighs 2, any other hint 1.
- Scan's classifier (``KnowledgeBase.classify``) adds 1 to ``waste`` when the text names a known item
  with confidence ≥ 0.8, and to ``bulk_waste`` when that item is bulky waste; a fee-table item turns
  "얼마/가격" into a bulky-waste fee question rather than a material price.
- Confidence = 0.45 + 0.2 × score (capped at 0.95); below 0.6 the intent is ``general`` (routing
  fact). A message with no hint and no known item is ``general``.
- Multi-intent: the message is cut at connectors (그리고, 또한, sentence ends); each clause is routed
  and clauses naming nothing join the previous one. A *complex* message (connector words or longer than
  100 characters) may also carry a second decisive intent inside one clause. At most three
  sub-questions, one per intent, in the order asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from services.chat.agent.facts import Facts, facts
from services.common.knowledge import KnowledgeBase, knowledge_base, squash

CONFIDENCE_FLOOR = 0.6
MAX_SUBQUESTIONS = 3
COMPLEX_WORDS = ("그리고", "또한", "차이", "비교", "여러", "같이", "둘 다", "둘다")
COMPLEX_LENGTH = 100

# The domain's keyword hints (data), per intent.
HINTS: dict[str, tuple[str, ...]] = {
    "waste": ("버려", "버리", "분리", "재활용", "쓰레기", "폐기"),
    "character": ("캐릭터", "얻", "모아", "컬렉션"),
    "location": ("어디", "근처", "가까", "위치", "샵", "제로웨이스트", "재활용센터"),
    "bulk_waste": (
        "대형폐기물",
        "대형",
        "소파",
        "냉장고",
        "세탁기",
        "가구",
        "수수료",
        "신청",
        "가전",
        "매트리스",
        "침대",
    ),
    "recyclable_price": ("시세", "가격", "얼마", "고철", "폐지", "매입", "kg", "킬로"),
    "collection_point": ("수거함", "의류수거", "폐건전지", "폐형광등", "형광등", "건전지", "의류"),
    "image_generation": ("이미지", "그림", "인포그래픽", "시각", "보여줘", "그려"),
    "general": ("안녕", "뭐야", "왜", "어때"),
    # Ours: the domain gives no hints for these two.
    "weather": ("날씨", "기온", "비와", "비올", "눈와", "눈올", "더워", "추워", "습도", "우산", "예보", "온도"),
    "web_search": ("최신", "최근", "뉴스", "정책", "규제", "발표", "공지", "검색해", "찾아봐"),
}
# Hints that settle the intent on their own (weight 2). "주변"/"찾아줘" are the routing fact's.
DECISIVE: dict[str, tuple[str, ...]] = {
    "character": ("캐릭터", "컬렉션"),
    "location": ("어디", "근처", "주변", "찾아줘", "재활용센터", "제로웨이스트"),
    "bulk_waste": ("대형폐기물", "수수료"),
    "recyclable_price": ("시세", "매입", "kg", "킬로"),
    "collection_point": ("수거함", "의류수거", "폐건전지", "폐형광등"),
    "image_generation": ("그려", "인포그래픽"),
    "weather": ("날씨", "예보"),
    "web_search": ("뉴스", "최신", "검색해"),
    "general": ("안녕",),
}
# Where two intents tie, the more specific one wins (location before waste: "재활용센터 어디").
PRIORITY = (
    "location",
    "collection_point",
    "character",
    "bulk_waste",
    "recyclable_price",
    "weather",
    "image_generation",
    "web_search",
    "waste",
    "general",
)
_CLAUSE_SPLIT = re.compile(r"(?:[?？!！。\n]+|(?<=[요다까])\.\s*|\s*(?:그리고|또한|그리고요)\s*)")


@dataclass(frozen=True)
class SubQuestion:
    intent: str
    text: str
    confidence: float
    scores: dict[str, int] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Routing:
    questions: tuple[SubQuestion, ...]
    complex: bool

    @property
    def intent(self) -> str:
        return self.questions[0].intent

    @property
    def intents(self) -> tuple[str, ...]:
        return tuple(q.intent for q in self.questions)

    def as_result(self) -> dict[str, object]:
        return {
            "intent": self.intent,
            "intents": [
                {"intent": q.intent, "text": q.text, "confidence": round(q.confidence, 2)} for q in self.questions
            ],
            "complex": self.complex,
        }


def confidence(score: int) -> float:
    return 0.0 if score <= 0 else min(0.95, 0.45 + 0.2 * score)


class IntentRouter:
    def __init__(self, kb: KnowledgeBase | None = None, fact_table: Facts | None = None) -> None:
        self.kb = kb or knowledge_base()
        self.facts = fact_table or facts()

    def scores(self, text: str) -> dict[str, int]:
        key = squash(text).lower()
        scores: dict[str, int] = {}
        for intent, words in HINTS.items():
            decisive = DECISIVE.get(intent, ())
            total = 0
            for word in {*words, *decisive}:
                if squash(word).lower() in key:
                    total += 2 if word in decisive else 1
            if total:
                scores[intent] = total
        guidance = self.kb.classify(text)
        if guidance.confidence >= 0.8:
            scores["waste"] = scores.get("waste", 0) + 1
        bulky = guidance.major == "대형폐기물" or bool(self.facts.fees_for(text))
        if bulky:
            scores["bulk_waste"] = scores.get("bulk_waste", 0) + 1
            # "소파 버리는데 얼마야": a fee, not a material price.
            if "recyclable_price" in scores and not any(squash(w) in key for w in DECISIVE["recyclable_price"]):
                scores["bulk_waste"] += scores.pop("recyclable_price")
        return scores

    def _best(self, scores: dict[str, int]) -> tuple[str, float]:
        if not scores:
            return "general", 0.0
        intent = max(scores, key=lambda i: (scores[i], -PRIORITY.index(i)))
        conf = confidence(scores[intent])
        return (intent, conf) if conf >= CONFIDENCE_FLOOR else ("general", conf)

    def route(self, message: str, history_hint: str | None = None) -> Routing:
        text = message.strip()
        is_complex = len(text) > COMPLEX_LENGTH or any(squash(w) in squash(text) for w in COMPLEX_WORDS)
        clauses = [c.strip() for c in _CLAUSE_SPLIT.split(text) if c and c.strip()] or [text]
        routed: list[tuple[str, str, float, dict[str, int]]] = []
        for clause in clauses:
            scores = self.scores(clause)
            intent, conf = self._best(scores)
            if routed and (not scores or (intent == "general" and routed[-1][0] != "general")):
                last = routed[-1]
                routed[-1] = (last[0], f"{last[1]} {clause}", last[2], last[3])  # a clause naming nothing joins
                continue
            routed.append((intent, clause, conf, scores))
            if is_complex:
                for other in sorted(scores, key=lambda i: (-scores[i], PRIORITY.index(i))):
                    if other != intent and scores[other] >= 2 and other != "general":
                        routed.append((other, clause, confidence(scores[other]), scores))
        if len(routed) == 1 and routed[0][0] == "general" and history_hint:
            # "그럼 그건?" after a waste answer: a follow-up keeps the earlier topic when it names nothing.
            routed = [(history_hint, text, CONFIDENCE_FLOOR, routed[0][3])]
        merged: dict[str, SubQuestion] = {}
        for intent, clause, conf, scores in routed:
            if intent in merged:
                old = merged[intent]
                joined = old.text if clause in old.text else f"{old.text} {clause}"
                merged[intent] = SubQuestion(intent, joined, max(old.confidence, conf), old.scores)
            elif len(merged) < MAX_SUBQUESTIONS:
                merged[intent] = SubQuestion(intent, clause, conf, scores)
        questions = tuple(merged.values())
        if len(questions) > 1:
            # "general" next to a real question is filler ("안녕! 페트병은?"): answer the question.
            questions = tuple(q for q in questions if q.intent != "general") or questions[:1]
        return Routing(questions, is_complex)
