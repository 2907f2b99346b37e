"""The scan pipeline: vision → rule → answer → reward, run by a worker for one job at a time.

Durability rules (docs/api.md, scan: pipeline and result):
- each finished stage's output is written to the job's ``checkpoint`` before its ``completed`` event,
  so a redelivered job (worker crash) skips stages that already ran and only re-emits a missing
  ``completed`` event;
- the result is stored — with ``scan.completed`` in the same transaction — before ``done``;
- storing a terminal result is a compare-and-set on the job's status, so a worker and the deadline
  sweeper can race and exactly one of them finishes the job;
- every job ends within its deadline: the pipeline runs under a timeout, and the sweeper fails jobs
  that no worker is running.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.ai import (
    Classification,
    FinalAnswer,
    InvalidModelOutput,
    ModelError,
    ModelProvider,
    VisionUnavailable,
    compose_answer,
)
from services.common.blobs import BlobStore
from services.common.clock import iso_ms, utcnow
from services.common.db import Database
from services.common.domain_events import FinishedScan, ScanCompleted, reward_points
from services.common.errors import dependency_unavailable
from services.common.internal import internal_headers
from services.common.jobs import Frame, JobEventLog, event_data
from services.common.knowledge import RECYCLABLE, KnowledgeBase, character_for_middle
from services.common.logging import get_logger
from services.registry import SERVICES
from services.scan.config import ScanSettings
from services.scan.models import TERMINAL, Job, Outbox

log = get_logger("eco2.scan.pipeline")

STAGES = (("vision", 25), ("rule", 50), ("answer", 75), ("reward", 100))
# Stages that wait on something slow (a model, the character service): their ``started`` is sent
# before they run. The rule lookup is instant and rides with vision.
SLOW_STAGES = frozenset({"vision", "answer", "reward"})
# One durable checkpoint per slow stage: after rule (vision + rule together) and after answer; the
# reward is stored with the result in the finishing transaction. Every stage before a slow one is
# therefore stored before its ``completed`` event goes out.
CHECKPOINT_AFTER = frozenset({"rule", "answer"})
PROGRESS = {"queued": 0, **dict(STAGES), "done": 100}
STAGE_MESSAGES = {
    "queued": "요청을 접수했어요.",
    "vision": "사진 속 물건을 살펴보고 있어요.",
    "rule": "배출 규정을 찾고 있어요.",
    "answer": "배출 방법을 정리하고 있어요.",
    "reward": "보상을 확인하고 있어요.",
}
COMPLETED_MESSAGE = "분리배출 방법을 정리했어요."
ERRORS = {
    "CLASSIFICATION_FAILED": "사진 속 물건을 분류하지 못했어요. 잠시 후 다시 시도해 주세요.",
    "ANSWER_FAILED": "배출 방법 안내를 만들지 못했어요. 잠시 후 다시 시도해 주세요.",
    "IMAGE_UNREADABLE": "사진을 읽을 수 없어요. 다시 찍어서 올려 주세요.",
    "SCAN_TIMEOUT": "분석이 너무 오래 걸려 중단했어요. 다시 시도해 주세요.",
    "INTERNAL_ERROR": "일시적인 오류로 분석을 마치지 못했어요. 다시 시도해 주세요.",
}
# A photo with no vision model configured. The documented closed set of result codes (docs/api.md, scan) wins, so
# ``error.code`` stays CLASSIFICATION_FAILED — a client switching on codes keeps working — and the
# distinct cause travels beside it as ``error.reason`` (also on the failed ``vision`` event).
VISION_UNAVAILABLE = "VISION_UNAVAILABLE"
VISION_UNAVAILABLE_MESSAGE = (
    "사진으로 물건을 알아보려면 이미지 인식 모델이 필요한데, 이 서버에는 아직 연결되어 있지 않아요. "
    "(서버 운영자: OpenAI 호환 이미지 모델을 연결하세요 — 개발 서버는 eco2 dev --model-url <주소>, "
    "운영 환경은 SCAN_LLM_BASE_URL·SCAN_MODELS·SCAN_LLM_API_KEY)"
)


class AlreadyFinished(Exception):
    """Another delivery of the same job finished it while this one was running."""


class StageFailed(Exception):
    def __init__(self, code: str, message: str, reason: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.reason = reason


def failed_result(
    job: Job, code: str, message: str, completed_at: datetime, reason: str | None = None
) -> dict[str, Any]:
    return {
        "job_id": str(job.id),
        "task_id": str(job.id),
        "status": "failed",
        "message": message,
        "pipeline_result": None,
        "reward": None,
        # ``reason``: the finer cause beside the contract's code (VISION_UNAVAILABLE, MODEL_UNAVAILABLE,
        # INVALID_OUTPUT), else null.
        "error": {"code": code, "message": message, "reason": reason},
        "created_at": iso_ms(job.created_at),
        "completed_at": iso_ms(completed_at),
    }


@dataclass
class ScanPipeline:
    settings: ScanSettings
    db: Database
    events: JobEventLog
    provider: ModelProvider
    kb: KnowledgeBase
    blobs: BlobStore
    http: httpx.AsyncClient
    character_base: str
    internal_token: str

    # ------------------------------------------------------------------------------- entry

    async def run(self, job_id: str, delivery: int) -> None:
        """Run (or resume) one job; raising makes the queue deliver it again."""
        job = await self._claim(job_id)
        if job is None:
            return  # erased (account deleted) or purged
        if job.status in TERMINAL:
            await self.ensure_done(job)  # a crash between storing the result and emitting done
            return
        remaining = (job.deadline_at - utcnow()).total_seconds()
        if remaining <= 0:
            await self.fail(job, "SCAN_TIMEOUT")
            return
        try:
            async with asyncio.timeout(remaining):
                await self._run_stages(job)
        except AlreadyFinished:
            fresh = await self._load(job_id)
            if fresh is not None:
                await self.ensure_done(fresh)
        except TimeoutError:
            await self.fail(job, "SCAN_TIMEOUT", stage=self._current_stage(job))
        except StageFailed as failure:
            await self.fail(job, failure.code, failure.message, stage=self._current_stage(job), reason=failure.reason)
        except Exception as exc:
            # A store outage is not the job's fault: the queue retries it in place until the store is back.
            if delivery >= self.settings.max_deliveries and not dependency_unavailable(exc):
                log.exception("scan_job_gave_up", job_id=job_id, delivery=delivery)
                await self.fail(job, "INTERNAL_ERROR", stage=self._current_stage(job))
                return
            raise

    @staticmethod
    def _key(job_id: str) -> uuid.UUID | None:
        try:
            return uuid.UUID(job_id)
        except ValueError:
            return None

    async def _load(self, job_id: str) -> Job | None:
        key = self._key(job_id)
        if key is None:
            return None
        async with self.db.session() as session:
            return await session.get(Job, key)

    async def _claim(self, job_id: str) -> Job | None:
        """Load the job and, if nobody started it, mark it ``processing`` — one statement in the usual
        case (the sweeper re-enqueues only jobs no worker has started)."""
        key = self._key(job_id)
        if key is None:
            return None
        async with self.db.session() as session:
            claim = update(Job).where(Job.id == key, Job.status == "queued").values(status="processing")
            job = (await session.execute(claim.returning(Job))).scalar_one_or_none()
            return job if job is not None else await session.get(Job, key)

    @staticmethod
    def _current_stage(job: Job) -> str:
        return next((stage for stage, _ in STAGES if stage not in job.checkpoint), "reward")

    # ------------------------------------------------------------------------------ stages

    async def _run_stages(self, job: Job) -> None:
        """Run the stages not in the checkpoint. Events are written in batches (one log round trip):
        a stage's ``started`` goes out before a slow stage runs, and a ``completed`` only once the
        stage's output is durable — in the checkpoint (one commit for vision + rule, one for answer)
        or, for reward, in the result that ``_complete`` stores."""
        job_id = str(job.id)
        checkpoint = dict(job.checkpoint or {})
        if checkpoint:
            await self._reemit_missing(job, checkpoint)
        pending: list[tuple[str, dict[str, Any]]] = []
        progress = 0
        for stage, stage_progress in STAGES:
            if stage in checkpoint:
                progress = stage_progress
                continue
            pending.append((stage, event_data(job_id, stage, "started", progress)))
            if stage in SLOW_STAGES:
                # Every ``completed`` still pending is durable here (see CHECKPOINT_AFTER).
                await self.events.append_many(job_id, pending)
                pending.clear()
            output = await getattr(self, f"_{stage}")(job, checkpoint)
            checkpoint[stage] = output
            progress = stage_progress
            result = self._event_result(stage, output)
            pending.append((stage, event_data(job_id, stage, "completed", progress, result)))
            if stage in CHECKPOINT_AFTER:
                await self._save_checkpoint(job, checkpoint, stage, stage_progress)
        await self._complete(job, checkpoint, pending)

    async def _reemit_missing(self, job: Job, checkpoint: dict[str, Any]) -> None:
        """After a crash: stages whose output is stored but whose ``completed`` never went out."""
        job_id = str(job.id)
        seen = {(f.event, _status(f)) for f in await self.events.read(job_id)}
        for stage, progress in STAGES:
            if stage in checkpoint and (stage, "completed") not in seen:
                result = self._event_result(stage, checkpoint[stage])
                await self.events.append(job_id, stage, event_data(job_id, stage, "completed", progress, result))

    async def _save_checkpoint(self, job: Job, checkpoint: dict[str, Any], stage: str, progress: int) -> None:
        await self._guarded_update(job, checkpoint=checkpoint, stage=stage, progress=progress, status="processing")
        job.checkpoint = checkpoint

    async def _guarded_update(self, job: Job, **values: Any) -> None:
        """Write only while the job is unfinished: a finished job is never reopened by a late delivery."""
        async with self.db.session() as session:
            updated = await session.execute(
                update(Job).where(Job.id == job.id, Job.status.in_(("queued", "processing"))).values(**values)
            )
        if not updated.rowcount:  # type: ignore[attr-defined]
            raise AlreadyFinished(str(job.id))

    @staticmethod
    def _event_result(stage: str, output: dict[str, Any]) -> Any:
        if stage == "vision":
            return output
        if stage == "rule":
            return {"key": output["key"], "name": output["name"]} if output["key"] else None
        if stage == "answer":
            return output
        return output["reward"]

    async def _vision(self, job: Job, checkpoint: dict[str, Any]) -> dict[str, Any]:
        async def image() -> tuple[bytes, str]:
            data = await self.blobs.read(job.image_key)
            if not data:
                raise StageFailed("IMAGE_UNREADABLE", ERRORS["IMAGE_UNREADABLE"])
            return data, job.image_type

        try:
            result = await self.provider.classify(user_input=job.user_input, image=image, model=self._model(job))
        except VisionUnavailable as exc:
            raise StageFailed("CLASSIFICATION_FAILED", VISION_UNAVAILABLE_MESSAGE, VISION_UNAVAILABLE) from exc
        except InvalidModelOutput as exc:
            raise StageFailed("CLASSIFICATION_FAILED", ERRORS["CLASSIFICATION_FAILED"], "INVALID_OUTPUT") from exc
        except ModelError as exc:
            raise StageFailed("CLASSIFICATION_FAILED", ERRORS["CLASSIFICATION_FAILED"], "MODEL_UNAVAILABLE") from exc
        return result.as_dict()

    def _model(self, job: Job) -> str | None:
        return None if job.model not in self.settings.models else job.model

    @staticmethod
    def _classification(checkpoint: dict[str, Any]) -> Classification:
        return Classification.from_dict(checkpoint["vision"])

    async def _rule(self, job: Job, checkpoint: dict[str, Any]) -> dict[str, Any]:
        c = self._classification(checkpoint)
        rule = self.kb.rule_for(c.major, c.middle)
        return {"key": rule.key if rule else None, "name": rule.name if rule else None}

    async def _answer(self, job: Job, checkpoint: dict[str, Any]) -> dict[str, Any]:
        c = self._classification(checkpoint)
        key = checkpoint["rule"]["key"]
        rule = self.kb.rules.get(key) if key else None
        try:
            answer: FinalAnswer = await self.provider.answer(
                classification=c, rule=rule, user_input=job.user_input, model=self._model(job)
            )
        except ModelError as exc:
            # The rule document itself is the grounded answer; a model outage only costs phrasing.
            log.warning("answer_model_failed_using_rule_document", job_id=str(job.id), error=repr(exc))
            answer = compose_answer(self.kb, c, rule)
        return answer.as_dict()

    async def _reward(self, job: Job, checkpoint: dict[str, Any]) -> dict[str, Any]:
        c = self._classification(checkpoint)
        rule_found = checkpoint["rule"]["key"] is not None
        insufficiencies = [i for i in checkpoint["answer"]["insufficiencies"] if str(i).strip()]
        eligible = c.major == RECYCLABLE and c.middle in self.kb.middles and rule_found and not insufficiencies
        if not eligible:
            return {"reward": None, "source": "not_eligible"}
        request = self._finished(job, c, rule_found, insufficiencies).model_dump(mode="json")
        for attempt in range(self.settings.reward_attempts):
            try:
                response = await self.http.post(
                    SERVICES["character"].internal_url(self.character_base, "/rewards"),
                    json=request,
                    headers=internal_headers(self.internal_token),
                    timeout=self.settings.reward_timeout_seconds,
                )
                if response.status_code == 200:
                    body = response.json()
                    reward = _reward_fields(body["reward"]) if body.get("eligible") and body.get("reward") else None
                    return {"reward": reward, "source": "character"}
                log.warning("reward_call_refused", job_id=str(job.id), status=response.status_code)
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                log.warning("reward_call_failed", job_id=str(job.id), attempt=attempt + 1, error=repr(exc))
            await asyncio.sleep(0.1 * (attempt + 1))
        # Character is unreachable: finish the scan with the reward it will grant. scan.completed
        # (outbox) makes character decide by job id later, exactly once.
        return {"reward": await self._local_reward(job, c), "source": "pending"}

    @staticmethod
    def _finished(job: Job, c: Classification, rule_found: bool, insufficiencies: list[str]) -> FinishedScan:
        return FinishedScan(
            user_id=job.user_id,
            job_id=job.id,
            major_category=c.major,
            middle_category=c.middle,
            minor_category=c.minor,
            rule_found=rule_found,
            insufficiencies=insufficiencies,
        )

    async def _local_reward(self, job: Job, c: Classification) -> dict[str, Any] | None:
        character = character_for_middle(c.middle)
        if character is None:
            return None
        async with self.db.session() as session:
            owned = await session.scalar(
                select(Job.id)
                .where(Job.user_id == job.user_id, Job.reward_character == character.code, Job.id != job.id)
                .limit(1)
            )
        received = owned is None
        return {
            "name": character.name,
            "dialog": character.dialog,
            "match_reason": f"{c.middle}>{c.minor}",
            "type": character.type,
            "received": received,
            "already_owned": not received,
            "points_awarded": reward_points(received),
        }

    # ---------------------------------------------------------------------------- finishing

    async def _complete(self, job: Job, checkpoint: dict[str, Any], pending: list[tuple[str, dict[str, Any]]]) -> None:
        """Store the result (with the reward and ``scan.completed``), then send ``pending`` and ``done``."""
        c = self._classification(checkpoint)
        key = checkpoint["rule"]["key"]
        rule = self.kb.rules.get(key) if key else None
        reward = checkpoint["reward"]["reward"]
        completed_at = utcnow()
        result = {
            "job_id": str(job.id),
            "task_id": str(job.id),
            "status": "completed",
            "message": COMPLETED_MESSAGE,
            "pipeline_result": {
                "classification_result": checkpoint["vision"],
                "disposal_rules": rule.as_dict() if rule else None,
                "final_answer": checkpoint["answer"],
            },
            "reward": reward,
            "error": None,
            "created_at": iso_ms(job.created_at),
            "completed_at": iso_ms(completed_at),
        }
        character = character_for_middle(c.middle) if reward else None
        finished = self._finished(job, c, rule is not None, list(checkpoint["answer"]["insufficiencies"]))
        event = ScanCompleted(**finished.model_dump(), completed_at=completed_at)

        async def outbox(session: AsyncSession) -> None:
            Outbox.emit(session, event)

        reward_character = character.code if character else None
        await self._finish(job, "completed", result, completed_at, reward_character, outbox, pending, checkpoint)

    async def fail(self, job: Job, code: str, message: str | None = None, *, stage: str | None = None,
                   reason: str | None = None) -> None:  # fmt: skip
        message = message or ERRORS[code]
        job_id = str(job.id)
        progress = max((PROGRESS[s] for s in job.checkpoint or {}), default=0)
        if stage is not None:
            try:
                await self.events.append(
                    job_id,
                    stage,
                    event_data(job_id, stage, "failed", progress, {"reason": reason} if reason else None, message),
                )
            except Exception as exc:  # best effort: the result must still be stored and `done` tried
                log.warning("stage_failed_event_not_written", job_id=job_id, error=repr(exc))
        completed_at = utcnow()
        result = failed_result(job, code, message, completed_at, reason)
        await self._finish(job, "failed", result, completed_at, None, None)

    async def _finish(self, job: Job, status: str, result: dict[str, Any], completed_at: datetime,
                      reward_character: str | None, extra: Any,
                      pending: list[tuple[str, dict[str, Any]]] | None = None,
                      checkpoint: dict[str, Any] | None = None) -> None:  # fmt: skip
        # The reward's checkpoint rides with the result: one commit stores both.
        stored_checkpoint = {} if checkpoint is None else {"checkpoint": checkpoint}
        async with self.db.session() as session:
            stored = await session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status.in_(("queued", "processing")))
                .values(
                    status=status,
                    result=result,
                    completed_at=completed_at,
                    reward_character=reward_character,
                    progress=100,
                    **stored_checkpoint,
                )
            )
            won = bool(stored.rowcount)  # type: ignore[attr-defined]
            if won and extra is not None:
                await extra(session)
        if not won:
            # Someone else (the sweeper, another delivery) finished it first; their result stands.
            fresh = await self._load(str(job.id))
            if fresh is not None:
                await self.ensure_done(fresh)
            return
        job.status, job.result = status, result
        log.info("scan_job_finished", job_id=str(job.id), status=status, code=(result.get("error") or {}).get("code"))
        await self._emit_done(job, pending or [])

    async def _emit_done(self, job: Job, before: list[tuple[str, dict[str, Any]]]) -> Frame:
        """``done`` (after ``before``, events whose outputs the stored result holds), in one append."""
        job_id = str(job.id)
        assert job.result is not None
        status = "completed" if job.status == "completed" else "failed"
        done = event_data(job_id, "done", status, 100, job.result, job.result["message"])
        seqs = await self.events.append_many(job_id, [*before, ("done", done)])
        return Frame(seqs[-1], "done", "")

    async def ensure_done(self, job: Job) -> Frame | None:
        """For a finished job: its ``done`` event, appended now if the log lacks it. ``None`` if not finished."""
        if job.status not in TERMINAL or job.result is None:
            return None
        frames = await self.events.read(str(job.id))
        done = next((f for f in reversed(frames) if f.event == "done"), None)
        if done is not None:
            return done
        before = []
        if job.status == "completed" and not any(f.event == "reward" and _status(f) == "completed" for f in frames):
            # A crash between storing the result and sending its events: the reward is in the result.
            job_id = str(job.id)
            before.append(("reward", event_data(job_id, "reward", "completed", 100, job.result.get("reward"))))
        await self._emit_done(job, before)
        frames = await self.events.read(str(job.id))
        return next((f for f in reversed(frames) if f.event == "done"), None)


def _reward_fields(reward: dict[str, Any]) -> dict[str, Any]:
    """Exactly the reward object of docs/api.md (scan: reward), whatever else the character service returns."""
    return {
        "name": reward["name"],
        "dialog": reward["dialog"],
        "match_reason": reward["match_reason"],
        "type": reward["type"],
        "received": bool(reward["received"]),
        "already_owned": bool(reward["already_owned"]),
        "points_awarded": int(reward["points_awarded"]),
    }


def _status(frame: Frame) -> str:
    marker = '"status":"'
    start = frame.data.find(marker)
    return frame.data[start + len(marker) : frame.data.find('"', start + len(marker))] if start >= 0 else ""
