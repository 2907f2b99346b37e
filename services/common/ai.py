"""Model providers behind one small interface: classify a waste photo, write the disposal answer.

- ``OpenAICompatibleProvider``: the ``openai`` SDK against any OpenAI-compatible ``base_url`` (OpenAI,
  Gemini's compatibility endpoint, a local VLM server). Structured output is constrained by a JSON
  schema built from the knowledge base (enums for major/middle and tags) and checked again here;
  invalid output is retried a bounded number of times. Timeouts and transport retries with backoff
  come from the SDK; a semaphore caps concurrent calls per process; token usage is logged.
  A model's classification is mapped onto the taxonomy by the knowledge base
  (``check_classification``): near names are corrected ("유색페트병" as a middle → 플라스틱류),
  unknown tags dropped, anything that cannot be placed refused and asked again — never passed on.
- ``OfflineProvider`` (no model configured): classifies only from the user's note with the
  knowledge base's classifier (``KnowledgeBase.classify``: confidence, candidates, situation tags)
  and composes answers from the rule document. Without a note it refuses (``VisionUnavailable``)
  instead of inventing a classification.

Both share ``compose_answer`` for the parts that are fixed by the contract (no rule → apology) and as
the grounded fallback when a model's answer cannot be used. Chat's waste answers use the same two
functions: ``KnowledgeBase.classify`` (or a provider) and ``compose_answer``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from services.common.knowledge import (
    MAJORS,
    MIDDLES,
    RECYCLABLE,
    UNCLASSIFIED,
    Candidate,
    Guidance,
    KnowledgeBase,
    RuleDocument,
    TaxonomyViolation,
)
from services.common.knowledge.classifier import CONFIDENT
from services.common.logging import get_logger
from services.common.metrics import MODEL_ERRORS, MODEL_LATENCY
from services.common.tracing import Span, SpanKind, mark_error, span

log = get_logger("eco2.ai")

DEFAULT_QUESTION = "이 물건은 어떻게 버려야 하나요?"
NO_RULE_INSUFFICIENCY = "이 품목에 맞는 배출 규정을 찾지 못했어요."
ImageLoader = Callable[[], Awaitable[tuple[bytes, str]]]


@dataclass(frozen=True)
class Classification:
    """A classification as the scan result carries it, plus the guidance extras (additive fields)."""

    major: str
    middle: str
    minor: str
    situation_tags: tuple[str, ...] = ()
    confidence: float | None = None  # offline: the classifier's; model: agreement with the classifier
    reason: str | None = None
    candidates: tuple[Candidate, ...] = ()
    question: str | None = None  # asked when the material decides (ambiguous words)
    group: str | None = None  # the rule document's detailed-method group of the item

    @classmethod
    def from_guidance(cls, guidance: Guidance) -> Classification:
        return cls(
            guidance.major,
            guidance.middle,
            guidance.minor,
            guidance.situation_tags,
            guidance.confidence,
            guidance.reason,
            guidance.candidates,
            guidance.question,
            guidance.group,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Classification:
        """The inverse of ``as_dict`` (a stored ``classification_result``)."""
        c = data["classification"]
        extra = data.get("guidance") or {}
        return cls(
            c["major_category"],
            c["middle_category"],
            c["minor_category"],
            tuple(data.get("situation_tags", ())),
            extra.get("confidence"),
            extra.get("reason"),
            tuple(Candidate.model_validate(x) for x in extra.get("candidates", ())),
            extra.get("question"),
            extra.get("group"),
        )

    def as_dict(self) -> dict[str, Any]:
        """The contract's ``classification_result``; ``guidance`` is additive (clients may ignore it)."""
        return {
            "classification": {
                "major_category": self.major,
                "middle_category": self.middle,
                "minor_category": self.minor,
            },
            "situation_tags": list(self.situation_tags),
            "guidance": {
                "confidence": self.confidence,
                "reason": self.reason,
                "candidates": [c.model_dump(mode="json") for c in self.candidates],
                "question": self.question,
                "group": self.group,
            },
        }


@dataclass(frozen=True)
class FinalAnswer:
    disposal_steps: dict[str, str]
    insufficiencies: list[str]
    user_answer: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "disposal_steps": dict(self.disposal_steps),
            "insufficiencies": list(self.insufficiencies),
            "user_answer": self.user_answer,
        }


class ModelError(Exception):
    """A model call failed for good (after the bounded retries)."""


class VisionUnavailable(ModelError):
    """No vision model is configured and the user gave no text to classify from."""


class InvalidModelOutput(ModelError):
    """The model kept answering outside the schema or the taxonomy."""


class ModelProvider(ABC):
    name: str

    @abstractmethod
    async def classify(self, *, user_input: str, image: ImageLoader | None, model: str | None) -> Classification: ...

    @abstractmethod
    async def answer(
        self, *, classification: Classification, rule: RuleDocument | None, user_input: str, model: str | None
    ) -> FinalAnswer: ...


# ------------------------------------------------------------------------------------ composition


def _final(word: str) -> int | None:
    """The final-consonant index of the word's last Hangul syllable (0 = none), ``None`` if not Hangul."""
    core = word.split("(")[0].strip() if word.endswith(")") else word
    last = core[-1] if core else ""
    return (ord(last) - 0xAC00) % 28 if "가" <= last <= "힣" else None


def _topic(word: str) -> str:
    """``word`` + 은/는."""
    final = _final(word)
    return word + ("은(는)" if final is None else "은" if final else "는")


def _towards(word: str) -> str:
    """``word`` + 으로/로 (로 after a vowel or ㄹ, whose index is 8)."""
    final = _final(word)
    return word + ("(으)로" if final is None else "으로" if final not in (0, 8) else "로")


def steps_object(steps: list[str]) -> dict[str, str]:
    """``단계1`` … ``단계N`` in order (dicts keep insertion order, and so does the JSON)."""
    return {f"단계{i}": step for i, step in enumerate(steps, start=1)}


def _apology(classification: Classification) -> str:
    """No rule matched: apologise, then the most useful next step (the question, or what to add)."""
    first = "죄송해요, 이 물건에 맞는 분리배출 규정을 찾지 못했어요."
    if classification.question:
        return f"{first}\n{classification.question}"
    if classification.candidates:
        guess = classification.candidates[0]
        return f"{first}\n혹시 {guess.name}인가요? 맞다면 물건 이름을 그대로 적어 다시 물어봐 주세요."
    return f"{first}\n물건 이름과 재질(예: 플라스틱 컵, 유리병)을 함께 적어 주시면 다시 찾아볼게요."


def compose_answer(kb: KnowledgeBase, classification: Classification, rule: RuleDocument | None) -> FinalAnswer:
    """The grounded answer: steps from the rule document, insufficiencies from the situation tags."""
    if rule is None:
        return FinalAnswer({}, [NO_RULE_INSUFFICIENCY], _apology(classification))
    tags = frozenset(classification.situation_tags)
    steps = rule.steps(classification.minor, tags, classification.group)
    insufficiencies = kb.insufficiencies(list(classification.situation_tags), rule.category)
    item = classification.minor or rule.name
    verb = "분리배출해요" if rule.major == RECYCLABLE else "처리해요"
    first = f"{_topic(item)} {_towards(rule.name)} {verb}."
    if insufficiencies:
        second = f"내놓기 전에 한 가지만 챙겨 주세요: {insufficiencies[0]}"
    else:
        second = "안내한 순서대로 내놓으면 충분해요."
    lines = [first, second]
    if classification.confidence is not None and 0 < classification.confidence < CONFIDENT:
        lines.append("이름만으로는 확실하지 않아요. 다른 물건이라면 이름을 조금 더 자세히 알려 주세요.")
    return FinalAnswer(steps_object(steps), insufficiencies, "\n".join(lines))


# ---------------------------------------------------------------------------------------- offline


class OfflineProvider(ModelProvider):
    name = "offline"

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    async def classify(self, *, user_input: str, image: ImageLoader | None, model: str | None) -> Classification:
        text = user_input.strip()
        if not text:
            raise VisionUnavailable("no vision model configured and no text to classify from")
        # Unknown stays unknown: a note naming nothing known (or something ambiguous) gives 미분류.
        return Classification.from_guidance(self.kb.classify(text))

    async def answer(
        self, *, classification: Classification, rule: RuleDocument | None, user_input: str, model: str | None
    ) -> FinalAnswer:
        return compose_answer(self.kb, classification, rule)


# -------------------------------------------------------------------------------- OpenAI-compatible


@dataclass
class OpenAIConfig:
    base_url: str | None
    api_key: str
    models: tuple[str, ...]  # the first is the default
    timeout_seconds: float = 30.0
    max_retries: int = 2  # transport-level (connection errors, 408/429/5xx), with the SDK's backoff
    output_attempts: int = 2  # schema/taxonomy violations
    max_concurrency: int = 64
    temperature: float = 0.0
    # The SDK's HTTP transport: "aiohttp" (the SDK's ``DefaultAioHttpClient``, the ``openai[aiohttp]``
    # extra) costs less CPU per call than "httpx" (the SDK's default); docs/kernel.md, HTTP clients.
    transport: str = "aiohttp"


@dataclass
class OpenAICompatibleProvider(ModelProvider):
    kb: KnowledgeBase
    config: OpenAIConfig
    name: str = "openai"
    _client: Any = field(init=False, repr=False)
    _slots: asyncio.Semaphore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from services.common.model_client import ModelClient

        self._client = ModelClient(
            base_url=self.config.base_url,
            api_key=self.config.api_key,
            timeout=self.config.timeout_seconds,
            max_retries=self.config.max_retries,
            http_client=_http_client(self.config),
        )
        self._slots = asyncio.Semaphore(self.config.max_concurrency)

    async def close(self) -> None:
        await self._client.close()

    # -------------------------------------------------------------------------------- schemas

    def classification_schema(self) -> dict[str, Any]:
        middles = [*MIDDLES, *(m for m in MAJORS if m != RECYCLABLE)]
        return {
            "type": "object",
            "additionalProperties": False,
            "required": ["major_category", "middle_category", "minor_category", "situation_tags"],
            "properties": {
                "major_category": {"type": "string", "enum": list(MAJORS)},
                "middle_category": {"type": "string", "enum": middles},
                "minor_category": {"type": ["string", "null"]},
                "situation_tags": {"type": "array", "items": {"type": "string", "enum": sorted(self.kb.tags)}},
            },
        }

    @staticmethod
    def answer_schema() -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "required": ["disposal_steps", "insufficiencies", "user_answer"],
            "properties": {
                "disposal_steps": {"type": "array", "items": {"type": "string"}},
                "insufficiencies": {"type": "array", "items": {"type": "string"}},
                "user_answer": {"type": "string"},
            },
        }

    # ---------------------------------------------------------------------------------- calls

    async def _complete(self, kind: str, model: str, messages: list[dict[str, Any]], schema: dict[str, Any]) -> Any:
        # The body goes to the SDK serialised (orjson: compact UTF-8, as the SDK's own encoder) and the
        # raw response comes back: its retries, timeouts, auth and typed errors stay, while the per-call
        # work of ``chat.completions.create`` (walking the request through its TypedDict transforms,
        # copying the body per attempt, building the response models) goes; ``ModelClient`` also
        # skips the generic URL and header merging. That work was a measurable share of a scan
        # worker's CPU (docs/benchmarks.md).
        body = orjson.dumps({
            "model": model,
            "messages": messages,
            "temperature": self.config.temperature,
            "response_format": {"type": "json_schema", "json_schema": {"name": kind, "strict": True, "schema": schema}},
        })  # fmt: skip
        async with self._slots:
            started = time.perf_counter()
            raw = await self._client.complete(body)
        response = orjson.loads(raw.content)
        if not isinstance(response, dict):
            raise ValueError("the completion is not a JSON object")  # asked again, like invalid output
        usage = response.get("usage") or {}
        log.info(
            "model_call",
            kind=kind,
            model=model,
            ms=round((time.perf_counter() - started) * 1000),
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            total_tokens=usage.get("total_tokens"),
        )
        choices = response.get("choices") or []
        content = choices[0]["message"]["content"] if choices else None
        return orjson.loads(content or "")

    async def _structured(self, kind: str, model: str, messages: list[dict[str, Any]], schema: dict[str, Any],
                          check: Callable[[Any], Any]) -> Any:  # fmt: skip
        with model_call(self.name, kind, model):
            return await self._attempts(kind, model, messages, schema, check)

    async def _attempts(self, kind: str, model: str, messages: list[dict[str, Any]], schema: dict[str, Any],
                        check: Callable[[Any], Any]) -> Any:  # fmt: skip
        from openai import OpenAIError

        last: Exception | None = None
        for attempt in range(self.config.output_attempts):
            try:
                return check(await self._complete(kind, model, messages, schema))
            except (ValueError, KeyError, TypeError) as exc:  # JSON or taxonomy violation: ask again
                last = exc
                MODEL_ERRORS(self.name, kind, "invalid_output").inc()
                log.warning("model_output_invalid", kind=kind, model=model, attempt=attempt + 1, error=str(exc))
            except OpenAIError as exc:  # the SDK already retried transport failures with backoff
                MODEL_ERRORS(self.name, kind, _error_kind(exc)).inc()
                log.warning("model_call_failed", kind=kind, model=model, error=repr(exc))
                raise ModelError(f"{kind} call failed: {exc.__class__.__name__}") from exc
            await asyncio.sleep(0.2 * (attempt + 1))
        raise InvalidModelOutput(f"{kind}: output invalid after {self.config.output_attempts} attempts: {last}")

    def _model(self, model: str | None) -> str:
        return model or self.config.models[0]

    def _classification_prompt(self, subject: str) -> str:
        return (
            f"You classify one household-waste item {subject} for Korean recycling rules. Answer with JSON only. "
            f"major_category is one of {list(MAJORS)}. When it is {RECYCLABLE}, middle_category is one of "
            f"{list(MIDDLES)}; otherwise middle_category equals major_category. minor_category is the "
            "item's Korean name (free text), or null when unclear. Coloured PET bottles are 플라스틱류, not "
            "무색페트병. situation_tags: only tags from the enum that the photo clearly shows. If several "
            "different objects are shown or the item is unclear, add 미분류_소분류; if nothing can be "
            f"determined, use {UNCLASSIFIED} with 미분류_전체."
        )

    async def classify(self, *, user_input: str, image: ImageLoader | None, model: str | None) -> Classification:
        if image is None:
            raise ModelError("classification needs the image")
        data, content_type = await image()
        url = f"data:{content_type};base64,{base64.b64encode(data).decode()}"
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": self._classification_prompt("in a photo")},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": user_input.strip() or DEFAULT_QUESTION},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            },
        ]
        return await self._structured("classification", self._model(model), messages, self.classification_schema(),
                                      self._check_classification)  # fmt: skip

    async def classify_text(self, *, text: str, model: str | None) -> Classification:
        """Classify from a description alone (chat, and ``eco2 eval guidance --model``)."""
        messages = [
            {"role": "system", "content": self._classification_prompt("described in Korean text")},
            {"role": "user", "content": text.strip() or DEFAULT_QUESTION},
        ]
        return await self._structured("classification", self._model(model), messages, self.classification_schema(),
                                      self._check_classification)  # fmt: skip

    def _check_classification(self, raw: Any) -> Classification:
        """The model's output mapped onto the taxonomy (corrected or refused, never passed through)."""
        try:
            checked = self.kb.check_classification(
                str(raw["major_category"]),
                str(raw["middle_category"]),
                str(raw.get("minor_category") or ""),
                [str(t) for t in raw.get("situation_tags") or ()],
            )
        except TaxonomyViolation as exc:
            raise ValueError(str(exc)) from exc
        if checked.corrections:
            log.info("model_output_corrected", corrections=list(checked.corrections))
        confidence, candidates = self._agreement(checked.major, checked.middle, checked.minor)
        return Classification(checked.major, checked.middle, checked.minor, checked.situation_tags,
                              confidence, "model", candidates)  # fmt: skip

    def _agreement(self, major: str, middle: str, minor: str) -> tuple[float, tuple[Candidate, ...]]:
        """How far the offline classifier, reading the model's item name, agrees with the model.

        Not a calibrated probability: two independent readings that agree (0.9), an item name the
        classifier does not know (0.7), or a disagreement (0.55, the classifier's reading offered as
        a candidate)."""
        if major == UNCLASSIFIED:
            return 0.0, ()
        reading = self.kb.classify(minor)
        if (reading.major, reading.middle) == (major, middle):
            return 0.9, ()
        if reading.major == UNCLASSIFIED:
            return 0.7, reading.candidates
        alternative = Candidate(
            item_id=reading.item_id, name=reading.minor, major=reading.major, middle=reading.middle,
            minor=reading.minor, rule_id=reading.rule_id, confidence=reading.confidence,
        )  # fmt: skip
        return 0.55, (alternative,)

    async def answer(
        self, *, classification: Classification, rule: RuleDocument | None, user_input: str, model: str | None
    ) -> FinalAnswer:
        if rule is None:
            return compose_answer(self.kb, classification, None)  # fixed by the contract, no model needed
        grounded = compose_answer(self.kb, classification, rule)
        system = (
            "너는 분리배출 도우미 이코야. 아래 배출 규정 문서만 근거로 답해. 문서에 없는 내용은 추측하지 마. "
            "disposal_steps: 문서의 공통 배출 방법과 해당 세부 방법을 순서대로, 최대 10단계, 짧은 한국어 문장. "
            "insufficiencies: 상황 태그로 보아 사용자가 아직 하지 않은 준비(라벨, 내용물, 세척 등)를 친절한 제안 문장으로. "
            "이미 잘한 것은 넣지 말고, 준비가 다 되었으면 빈 배열. user_answer: 1~3문장, 읽기 좋게 줄바꿈."
        )
        context = {
            "rule_document": rule.as_dict(),
            "classification": classification.as_dict(),
            "candidate_insufficiencies": grounded.insufficiencies,
            "user_note": user_input.strip() or DEFAULT_QUESTION,
        }
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": json.dumps(context, ensure_ascii=False)},
        ]
        return await self._structured("answer", self._model(model), messages, self.answer_schema(), self._check_answer)

    @staticmethod
    def _check_answer(raw: Any) -> FinalAnswer:
        steps = [str(s).strip() for s in raw["disposal_steps"] if str(s).strip()]
        insufficiencies = [str(s).strip() for s in raw["insufficiencies"] if str(s).strip()]
        answer = str(raw["user_answer"]).strip()
        if not steps or len(steps) > 10 or not answer:
            raise ValueError("answer needs 1-10 steps and a user_answer")
        return FinalAnswer(steps_object(steps), insufficiencies, answer)


@contextmanager
def model_call(provider: str, operation: str, model: str) -> Iterator[Span | None]:
    """One call to a model, for every caller of the ``openai`` SDK (this provider, chat's agent): its
    CLIENT span ``model <operation>`` (a child of the current stage's span) and
    ``eco2_model_request_duration_seconds`` by outcome (ok, error, invalid_output, cancelled).

    A failure leaving the block is counted in ``eco2_model_errors_total`` by kind (``_error_kind``);
    a ``ModelError`` is this provider's own verdict, counted where it was made (per attempt)."""
    started = time.perf_counter()
    outcome = "cancelled"  # left as is only by a cancellation (a job's deadline, a lost lease)
    with span(f"model {operation}", kind=SpanKind.CLIENT,
              attributes={"gen_ai.request.model": model, "eco2.provider": provider}) as current:  # fmt: skip
        try:
            yield current
            outcome = "ok"
        except InvalidModelOutput:
            outcome = "invalid_output"
            mark_error(current, outcome)
            raise
        except ModelError:
            outcome = "error"
            mark_error(current, "model_error")
            raise
        except Exception as exc:
            outcome = "error"
            MODEL_ERRORS(provider, operation, _error_kind(exc)).inc()
            mark_error(current, _error_kind(exc))
            raise
        finally:
            MODEL_LATENCY(provider, operation, outcome).observe(time.perf_counter() - started)


def _http_client(config: OpenAIConfig) -> Any:
    """The SDK's own async HTTP client (its defaults: redirects, timeout), on the configured transport,
    with one kept-alive connection per call slot: the SDK's default keeps 100, so past 100 calls in
    flight every call would open (and then drop) a connection of its own."""
    import httpx2
    from openai import DefaultAioHttpClient, DefaultAsyncHttpxClient

    slots = config.max_concurrency
    # Idle connections expire after the SDK's (and httpx's) 5 s, within common servers' keep-alive.
    limits = httpx2.Limits(max_connections=slots, max_keepalive_connections=slots, keepalive_expiry=5.0)
    if config.transport == "aiohttp":
        return DefaultAioHttpClient(limits=limits)
    return DefaultAsyncHttpxClient(limits=limits)


def _refused(exc: BaseException) -> bool:
    """A connection that could not be made or broke, under the aiohttp transport: its exception map
    turns every ``ClientConnectionError`` (a refused connect too) into a connect *timeout*, which the
    SDK reports as ``APITimeoutError``; the cause chain still says what happened."""
    import aiohttp

    cause = exc.__cause__
    for _ in range(4):
        if cause is None:
            return False
        if isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(cause, TimeoutError):
            return True
        cause = cause.__cause__
    return False


def _error_kind(exc: Exception) -> str:
    """A bounded label for a failed call: timeout, connection, rate_limited, status_<code>, or other
    (a stream broken off midway that the SDK does not wrap is the transport's: timeout or connection)."""
    import httpx
    from openai import APIConnectionError, APIStatusError, APITimeoutError, RateLimitError

    if _refused(exc):
        return "connection"
    if isinstance(exc, APITimeoutError | httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, APIConnectionError | httpx.TransportError):
        return "connection"
    if isinstance(exc, RateLimitError):
        return "rate_limited"
    if isinstance(exc, APIStatusError):
        return f"status_{exc.status_code // 100}xx"
    return "other"
