"""The scan pipeline: vision → rule → answer → reward, run by a worker for one job at a time.

Durability rules (docs/api.md, scan: pipeline and result):
- each finished stage's output is written to the job's ``checkpoint`` before its ``completed`` event,
  so a redelivered job (worker crash) skips stages that already ran and only re-emits a missing
  ``completed`` event; vision + rule share one checkpoint, and answer + reward are stored with the
  result (the reward is decided instantly, in the finishing transaction: ``reward.py``);
- the result is stored — with the character claim and ``scan.reward_granted`` in the same
  transaction — before ``done``;
- every write is one Core statement outside a transaction (one round trip, no ORM unit of work) —
  the eligible finish too on PostgreSQL (one statement with CTEs; a short transaction on SQLite); on
  PostgreSQL the claim, the checkpoint and that finish run on the asyncpg connection itself
  (``Database.driver``, ``DriverStatement``), SQLite runs them on an autocommit connection;
- storing a terminal result is a compare-and-set on the job's status, so a worker and the deadline
  sweeper can race and exactly one of them finishes the job;
- every job ends within its deadline: the pipeline runs under a timeout, and the sweeper fails jobs
  that no worker is running.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import Row, Table, bindparam, literal, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

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
from services.common.db import Database, DriverStatement
from services.common.errors import dependency_unavailable
from services.common.jobs import Frame, JobEventLog, event_data, stage_span
from services.common.knowledge import KnowledgeBase
from services.common.logging import get_logger
from services.common.outbox import announce
from services.scan.config import ScanSettings
from services.scan.models import OPEN, TERMINAL, Job
from services.scan.reward import (
    OUTBOX_SCHEMA,
    claim,
    eligible_character,
    emit,
    finish_rewarded,
    granted,
    reward_object,
)

log = get_logger("eco2.scan.pipeline")

STAGES = (("vision", 25), ("rule", 50), ("answer", 75), ("reward", 100))
# Stages that wait on a model: their ``started`` is sent before they run. The rule lookup is instant
# and rides with vision; the reward is instant and rides with the result.
SLOW_STAGES = frozenset({"vision", "answer"})
# The one checkpoint before the finish: after rule (vision + rule together). Answer and reward are
# stored with the result, so every stage is stored before its ``completed`` event goes out.
CHECKPOINT_AFTER = frozenset({"rule"})
JOBS: Table = Job.__table__  # type: ignore[assignment]
# The worker's statements, built once: building them per call (``where``/``values`` coercions, the
# cache key) was ≈ 4 % of the worker's samples. ``key`` is the job id; an ``UPDATE`` without
# ``values()`` sets the columns named by the execution's other parameters.
_KEY = bindparam("key", type_=JOBS.c.id.type)
LOAD = select(JOBS).where(JOBS.c.id == _KEY)
CLAIM = update(JOBS).where(JOBS.c.id == _KEY, JOBS.c.status == "queued").values(status="processing").returning(*JOBS.c)
# Writes only while the job is unfinished: a finished job is never reopened, and a terminal write is
# a compare-and-set (the sweeper and a worker race; exactly one finishes the job).
WRITE_OPEN = update(JOBS).where(JOBS.c.id == _KEY, JOBS.c.status.in_(OPEN))
# The checkpoint write: ``WRITE_OPEN`` with its values named and the open statuses as literals, so it
# compiles to a fixed text for the asyncpg connection (``DriverStatement`` takes no expanding ``IN``).
CHECKPOINT = (
    update(JOBS)
    .where(JOBS.c.id == _KEY, JOBS.c.status.in_([literal(status) for status in OPEN]))
    .values(
        checkpoint=bindparam("c_checkpoint", type_=JOBS.c.checkpoint.type),
        stage=bindparam("c_stage", type_=JOBS.c.stage.type),
        progress=bindparam("c_progress", type_=JOBS.c.progress.type),
        status="processing",
    )
    .returning(JOBS.c.id)
)


@dataclass(frozen=True)
class _DriverStatements:
    """PostgreSQL: the claim, its fallback read and the checkpoint, run on the pooled asyncpg
    connection itself (``Database.driver``): ≈ 0.1 ms of CPU less per statement than ``execute``.
    SQLite runs the Core statements."""

    claim: DriverStatement
    load: DriverStatement
    checkpoint: DriverStatement


@functools.cache
def _driver_statements(dialect: Dialect) -> _DriverStatements:
    return _DriverStatements(DriverStatement(CLAIM, dialect), DriverStatement(LOAD, dialect),
                             DriverStatement(CHECKPOINT, dialect))  # fmt: skip


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
    http: httpx.AsyncClient  # the image service's resolve call (ScanService); the pipeline itself calls no service
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
        async with self.db.autocommit() as conn:
            return _job((await conn.execute(LOAD, {"key": key})).first())

    async def _claim(self, job_id: str) -> Job | None:
        """Load the job and, if nobody started it, mark it ``processing`` — one autocommit statement in
        the usual case (the sweeper re-enqueues only jobs no worker has started)."""
        key = self._key(job_id)
        if key is None:
            return None
        if not self.db.is_sqlite:
            statements = _driver_statements(self.db.engine.dialect)
            async with self.db.driver() as pg:
                record = await pg.fetchrow(statements.claim.sql, *statements.claim.args({"key": key}))
                if record is None:
                    record = await pg.fetchrow(statements.load.sql, *statements.load.args({"key": key}))
            return None if record is None else Job(**record)
        async with self.db.autocommit() as conn:
            row = (await conn.execute(CLAIM, {"key": key})).first()
            if row is None:
                row = (await conn.execute(LOAD, {"key": key})).first()
        return _job(row)

    @staticmethod
    def _current_stage(job: Job) -> str:
        return next((stage for stage, _ in STAGES if stage not in job.checkpoint), "reward")

    # ------------------------------------------------------------------------------ stages

    async def _run_stages(self, job: Job) -> None:
        """Run the stages not in the checkpoint. Events are written in batches (one log round trip):
        a stage's ``started`` goes out before a slow stage runs, and a ``completed`` only once the
        stage's output is durable — in the checkpoint (one write for vision + rule) or, for answer and
        reward, in the result that ``_complete`` stores."""
        job_id = str(job.id)
        checkpoint = dict(job.checkpoint or {})
        if checkpoint:
            await self._reemit_missing(job, checkpoint)
        pending: list[tuple[str, dict[str, Any]]] = []
        progress = 0
        for stage, stage_progress in STAGES[:-1]:
            if stage in checkpoint:
                progress = stage_progress
                continue
            pending.append((stage, event_data(job_id, stage, "started", progress)))
            if stage in SLOW_STAGES:
                # Every ``completed`` still pending is durable here (see CHECKPOINT_AFTER).
                await self.events.append_many(job_id, pending)
                pending.clear()
            with stage_span("scan", stage, job_id):
                output = await getattr(self, f"_{stage}")(job, checkpoint)
            checkpoint[stage] = output
            progress = stage_progress
            result = self._event_result(stage, output)
            pending.append((stage, event_data(job_id, stage, "completed", progress, result)))
            if stage in CHECKPOINT_AFTER:
                await self._save_checkpoint(job, checkpoint, stage, stage_progress)
        pending.append(("reward", event_data(job_id, "reward", "started", progress)))
        with stage_span("scan", "reward", job_id):  # the outbox row carries this span's context
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
        """Write only while the job is unfinished: a finished job is never reopened by a late delivery."""
        if not self.db.is_sqlite:
            write = _driver_statements(self.db.engine.dialect).checkpoint
            values = {"key": job.id, "c_checkpoint": checkpoint, "c_stage": stage, "c_progress": progress}
            async with self.db.driver() as pg:
                updated = await pg.fetchval(write.sql, *write.args(values))
        else:
            async with self.db.autocommit() as conn:
                values = {"checkpoint": checkpoint, "stage": stage, "progress": progress, "status": "processing"}
                updated = (await conn.execute(WRITE_OPEN, {"key": job.id, **values})).rowcount
        if not updated:
            raise AlreadyFinished(str(job.id))
        job.checkpoint = checkpoint

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

    # ---------------------------------------------------------------------------- finishing

    async def _complete(self, job: Job, checkpoint: dict[str, Any], pending: list[tuple[str, dict[str, Any]]]) -> None:
        """Decide the reward and store it with the answer and the result — with the character claim and
        ``scan.reward_granted`` when eligible (one statement on PostgreSQL, one transaction on SQLite),
        one autocommit statement otherwise —
        then send ``pending`` (answer ``completed``, reward ``started``), reward ``completed`` and ``done``."""
        c = self._classification(checkpoint)
        key = checkpoint["rule"]["key"]
        rule = self.kb.rules.get(key) if key else None
        character = eligible_character(self.kb, checkpoint, enabled=self.settings.rewards_enabled)
        completed_at = utcnow()

        def stored(reward: dict[str, Any] | None) -> dict[str, Any]:
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
            return {
                "status": "completed",
                "stage": "reward",
                "result": result,
                "completed_at": completed_at,
                "reward_character": character.code if reward and character else None,
                "progress": 100,
                "checkpoint": {**checkpoint, "reward": {"reward": reward}},
            }

        if character is None:
            values = stored(None)
            async with self.db.autocommit() as conn:
                won = await self._store(conn, job, values)
        elif not self.db.is_sqlite:
            # One statement (reward.finish_rewarded): the values for both outcomes of the claim go along.
            outcomes = {received: stored(reward_object(character, c, received)) for received in (True, False)}
            won, received = await finish_rewarded(self.db, job.id, job.user_id, character, outcomes)
            values = outcomes[received]
            if won:
                announce(self.db, OUTBOX_SCHEMA)  # committed: the relay hears of it within OUTBOX_ANNOUNCE_INTERVAL
        else:
            try:
                async with self.db.transaction() as conn:
                    received = await claim(conn, job.user_id, character.code, job.id)
                    values = stored(reward_object(character, c, received))
                    if not await self._store(conn, job, values):
                        raise AlreadyFinished(str(job.id))  # rolls the claim back: nothing granted
                    await emit(conn, granted(job.user_id, job.id, character, received))
                won = True
                announce(self.db, OUTBOX_SCHEMA)
            except AlreadyFinished:
                won = False
        if won:
            reward = values["result"]["reward"]
            pending.append(("reward", event_data(str(job.id), "reward", "completed", 100, reward)))
        await self._finished(job, won, values, pending)

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
        values = {
            "status": "failed",
            "result": failed_result(job, code, message, completed_at, reason),
            "completed_at": completed_at,
            "reward_character": None,
            "progress": 100,
        }
        async with self.db.autocommit() as conn:
            won = await self._store(conn, job, values)
        await self._finished(job, won, values, [])

    @staticmethod
    async def _store(conn: AsyncConnection, job: Job, values: dict[str, Any]) -> bool:
        """The terminal compare-and-set: ``True`` iff the job was still unfinished and is now stored."""
        stored = await conn.execute(WRITE_OPEN, {"key": job.id, **values})
        return bool(stored.rowcount)

    async def _finished(self, job: Job, won: bool, values: dict[str, Any],
                        pending: list[tuple[str, dict[str, Any]]]) -> None:  # fmt: skip
        if not won:
            # Someone else (the sweeper, another delivery) finished it first, or the job was erased
            # (account deleted): their result stands, nothing of this run was stored.
            fresh = await self._load(str(job.id))
            if fresh is not None:
                await self.ensure_done(fresh)
            return
        job.status, job.result = values["status"], values["result"]
        if "checkpoint" in values:
            job.checkpoint = values["checkpoint"]
        log.info("scan_job_finished", job_id=str(job.id), status=job.status,
                 code=(job.result.get("error") or {}).get("code"))  # fmt: skip
        await self._emit_done(job, pending)

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
        before: list[tuple[str, dict[str, Any]]] = []
        if job.status == "completed":
            # A crash between storing the result and sending its events: the answer and the reward are
            # stored with the result (the checkpoint), so their missing ``completed`` events go out now.
            job_id = str(job.id)
            seen = {(f.event, _status(f)) for f in frames}
            checkpoint = job.checkpoint or {}
            for stage, progress in STAGES:
                if (stage, "completed") in seen or (stage not in checkpoint and stage != "reward"):
                    continue
                output = job.result.get("reward") if stage == "reward" else self._event_result(stage, checkpoint[stage])
                before.append((stage, event_data(job_id, stage, "completed", progress, output)))
        await self._emit_done(job, before)
        frames = await self.events.read(str(job.id))
        return next((f for f in reversed(frames) if f.event == "done"), None)


def _job(row: Row[Any] | None) -> Job | None:
    """A detached ``Job`` from a Core row (the same attributes the service and the sweeper pass in)."""
    return None if row is None else Job(**row._mapping)


def _status(frame: Frame) -> str:
    marker = '"status":"'
    start = frame.data.find(marker)
    return frame.data[start + len(marker) : frame.data.find('"', start + len(marker))] if start >= 0 else ""
