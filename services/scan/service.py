"""Scan rules of docs/api.md, scan that are not the pipeline: submission (allow-list, idempotency, rate
limit), ownership, the result view, the sweeper, and erasing a user's data."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.clock import utcnow
from services.common.db import Database
from services.common.errors import BadRequest, Conflict, NotFound
from services.common.jobs import Frame, JobEventLog, JobQueue, event_data, record_backlog
from services.common.logging import get_logger
from services.common.ratelimit import RateLimiter
from services.common.uploads import ImageResolver
from services.registry import SERVICES
from services.scan.config import ScanSettings
from services.scan.models import TERMINAL, IdempotencyKey, Job
from services.scan.pipeline import STAGE_MESSAGES, STAGES, ScanPipeline
from services.scan.schemas import ScanRequest, SubmitResponse

log = get_logger("eco2.scan")


def request_hash(body: ScanRequest, model: str) -> str:
    canonical = json.dumps(
        {"image_url": body.image_url, "user_input": body.user_input, "model": model}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_response(job_id: uuid.UUID) -> SubmitResponse:
    # Relative paths of exactly this shape: the client prefixes them with its API base (docs/api.md).
    scan = SERVICES["scan"]
    return SubmitResponse(
        job_id=str(job_id),
        stream_url=scan.public_url("", f"/{job_id}/events"),
        result_url=scan.public_url("", f"/{job_id}/result"),
        status="queued",
    )


@dataclass
class ScanService:
    """The API side of scan; it shares the pipeline's settings, database, event log and HTTP client."""

    pipeline: ScanPipeline
    queue: JobQueue
    limiter: RateLimiter
    image_base: str
    _images: ImageResolver | None = None

    @property
    def settings(self) -> ScanSettings:
        return self.pipeline.settings

    @property
    def db(self) -> Database:
        return self.pipeline.db

    @property
    def events(self) -> JobEventLog:
        return self.pipeline.events

    @property
    def http(self) -> httpx.AsyncClient:
        return self.pipeline.http

    @property
    def internal_token(self) -> str:
        return self.pipeline.internal_token

    # --------------------------------------------------------------------------------- submit

    async def submit(
        self, session: AsyncSession, user_id: uuid.UUID, body: ScanRequest, idempotency_key: str | None
    ) -> SubmitResponse:
        model = body.model or self.settings.allowed_models[0]
        if model not in self.settings.allowed_models:
            raise BadRequest(f"unknown model {model!r}", "UNSUPPORTED_MODEL")
        digest = request_hash(body, model)
        if idempotency_key is not None:
            replay = await self._replay(session, user_id, idempotency_key, digest)
            if replay is not None:
                return replay  # no new job, no rate-limit cost
        # The image is checked first so that a refused request (400) does not use up the user's quota.
        image = await self._resolve_image(body.image_url, user_id)
        await self.limiter.enforce(str(user_id))

        now = utcnow()
        job = Job(
            id=uuid.uuid4(),
            user_id=user_id,
            image_url=body.image_url,
            image_key=image["key"],
            image_type=image["content_type"],
            user_input=body.user_input,
            model=model,
            status="queued",
            stage="queued",
            progress=0,
            checkpoint={},
            created_at=now,
            deadline_at=now + timedelta(seconds=self.settings.job_deadline_seconds),
            enqueued_at=now,
        )
        session.add(job)
        if idempotency_key is not None:
            session.add(
                IdempotencyKey(user_id=user_id, key=idempotency_key, request_hash=digest, job_id=job.id, created_at=now)
            )
        job_id = str(job.id)
        # The queued event is stored before the job row commits: a stream opened right after the
        # 202 finds it, and a failed commit leaves only an invisible log that expires.
        await self.events.append(
            job_id, "queued", event_data(job_id, "queued", "completed", 0, None, STAGE_MESSAGES["queued"])
        )
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            assert idempotency_key is not None  # the only unique key a concurrent request can take
            await self.events.delete(job_id)
            replay = await self._replay(session, user_id, idempotency_key, digest)
            if replay is None:
                raise
            return replay
        try:
            await self.queue.enqueue(job_id)
        except Exception as exc:
            # Accepted anyway: the sweeper re-enqueues jobs still queued after a while.
            log.warning("scan_enqueue_failed", job_id=job_id, error=repr(exc))
        return submit_response(job.id)

    async def _replay(self, session: AsyncSession, user_id: uuid.UUID, key: str, digest: str) -> SubmitResponse | None:
        record = await session.get(IdempotencyKey, (user_id, key))
        if record is None:
            return None
        if record.created_at < utcnow() - timedelta(seconds=self.settings.idempotency_ttl_seconds):
            await session.delete(record)  # remembered 24 h only; afterwards the key is new again
            await session.flush()
            return None
        if record.request_hash != digest:
            raise Conflict("idempotency key reused with a different request", "IDEMPOTENCY_KEY_REUSED")
        return submit_response(record.job_id)

    async def _resolve_image(self, image_url: str, user_id: uuid.UUID) -> dict[str, Any]:
        """Allow-list + first-use verification, answered by the image service (``common.uploads``)."""
        if self._images is None:
            resolve_url = SERVICES["image"].internal_url(self.image_base, "/resolve")
            self._images = ImageResolver(
                self.http, resolve_url, self.internal_token, self.settings.image_timeout_seconds
            )
        return await self._images.resolve(image_url, user_id)

    # -------------------------------------------------------------------------------- reading

    async def owned_job(self, session: AsyncSession, user_id: uuid.UUID, job_id: str) -> Job:
        """The caller's job; anything else — unknown, expired, someone else's — is JOB_NOT_FOUND."""
        try:
            key = uuid.UUID(job_id)
        except ValueError:
            raise NotFound("job not found", "JOB_NOT_FOUND") from None
        if not self.db.is_sqlite:
            # One read needs no transaction: autocommit saves the BEGIN and COMMIT round trips of the
            # two reads every scan makes here (stream open, result) — a third of their CPU cost.
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        job = await session.get(Job, key)
        retained = utcnow() - timedelta(seconds=self.settings.retention_seconds)
        if job is None or job.user_id != user_id or (job.completed_at is not None and job.completed_at < retained):
            raise NotFound("job not found", "JOB_NOT_FOUND")
        return job

    async def result_view(self, job: Job) -> tuple[int, dict[str, Any]]:
        if job.status not in TERMINAL and utcnow() > job.deadline_at + timedelta(seconds=5):
            # No worker finished it in time (all down?): end it here rather than answer 202 forever.
            await self.pipeline.fail(job, "SCAN_TIMEOUT")
            async with self.db.session() as session:
                fresh = await session.get(Job, job.id)
            job = fresh or job
        if job.status in TERMINAL and job.result is not None:
            return 200, job.result
        if job.status == "queued" and not job.checkpoint:
            stage = "queued"
        else:
            stage = next((name for name, _ in STAGES if name not in (job.checkpoint or {})), "reward")
        return 202, {
            "job_id": str(job.id),
            "status": "processing",
            "current_stage": stage,
            "progress": job.progress,
            "message": STAGE_MESSAGES[stage],
        }

    async def terminal_frame(self, job_id: uuid.UUID) -> Frame | None:
        async with self.db.session() as session:
            job = await session.get(Job, job_id)
        return await self.pipeline.ensure_done(job) if job is not None else None

    # ------------------------------------------------------------------------------- upkeep

    async def sweep(self) -> None:
        """Fail overdue jobs, re-enqueue stuck ones, purge what is past retention."""
        now = utcnow()
        async with self.db.session() as session:
            overdue = (
                (
                    await session.execute(
                        select(Job).where(Job.status.in_(("queued", "processing")), Job.deadline_at < now).limit(200)
                    )
                )
                .scalars()
                .all()
            )
            stuck = (
                (
                    await session.execute(
                        select(Job.id)
                        .where(
                            Job.status == "queued",
                            Job.enqueued_at < now - timedelta(seconds=self.settings.requeue_after_seconds),
                            Job.deadline_at >= now,
                        )
                        .limit(200)
                    )
                )
                .scalars()
                .all()
            )
            if stuck:
                await session.execute(update(Job).where(Job.id.in_(stuck)).values(enqueued_at=now))
            unfinished = Job.status.in_(("queued", "processing"))
            record_backlog("scan", overdue=len(overdue), now=now,
                           oldest_unfinished=await session.scalar(select(func.min(Job.created_at)).where(unfinished)))  # fmt: skip
        for job in overdue:
            await self.pipeline.fail(job, "SCAN_TIMEOUT", stage=self.pipeline._current_stage(job))
        for job_id in stuck:
            await self.queue.enqueue(str(job_id))
        if stuck:
            log.info("scan_jobs_requeued", count=len(stuck))
        await self.purge(now)

    async def purge(self, now: Any) -> None:
        retained = now - timedelta(seconds=self.settings.retention_seconds)
        async with self.db.session() as session:
            old = (await session.execute(select(Job.id).where(Job.completed_at < retained).limit(500))).scalars().all()
            if old:
                await session.execute(delete(Job).where(Job.id.in_(old)))
            await session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.created_at < now - timedelta(seconds=self.settings.idempotency_ttl_seconds)
                )
            )
        for job_id in old:
            await self.events.delete(str(job_id))


async def erase_user(session: AsyncSession, events: JobEventLog, user_id: uuid.UUID) -> int:
    """``user.deleted``: the user's jobs (results, checkpoints), event logs and idempotency keys."""
    job_ids = (await session.execute(select(Job.id).where(Job.user_id == user_id))).scalars().all()
    await session.execute(delete(Job).where(Job.user_id == user_id))
    await session.execute(delete(IdempotencyKey).where(IdempotencyKey.user_id == user_id))
    for job_id in job_ids:
        await events.delete(str(job_id))
    return len(job_ids)
