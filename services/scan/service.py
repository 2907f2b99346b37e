"""Scan rules of docs/api.md, scan that are not the pipeline: submission (allow-list, idempotency, rate
limit), ownership, the result view, the sweeper, and erasing a user's data."""

from __future__ import annotations

import asyncio
import hashlib
import json
import typing
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import Table, Text, cast, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.clock import utcnow
from services.common.db import Database
from services.common.errors import BadRequest, Conflict, NotFound
from services.common.jobs import TERMINAL_EVENT, Frame, JobEventLog, JobQueue, event_data, record_backlog
from services.common.logging import get_logger
from services.common.ratelimit import RateLimiter
from services.common.uploads import ImageResolver
from services.registry import SERVICES
from services.scan.config import ScanSettings
from services.scan.models import OPEN, TERMINAL, IdempotencyKey, Job
from services.scan.pipeline import STAGE_MESSAGES, STAGES, ScanPipeline
from services.scan.schemas import ScanRequest, SubmitResponse

log = get_logger("eco2.scan")
JOBS = typing.cast(Table, Job.__table__)
KEYS = typing.cast(Table, IdempotencyKey.__table__)
# What the result endpoint reads besides the status; the result as its stored JSON text.
_RESULT_COLUMNS = (
    JOBS.c.deadline_at,
    JOBS.c.progress,
    JOBS.c.checkpoint,
    cast(JOBS.c.result, Text).label("result_json"),
)


@dataclass(slots=True)
class JobView:
    """What the stream and result endpoints read of a job (``ScanService.owned_job``)."""

    id: uuid.UUID
    status: str
    deadline_at: datetime | None = None
    progress: int = 0
    checkpoint: dict[str, Any] = field(default_factory=dict)
    result: str | None = None  # the stored JSON text


def request_hash(body: ScanRequest, model: str) -> str:
    canonical = json.dumps(
        {"image_url": body.image_url, "user_input": body.user_input, "model": model}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(slots=True, frozen=True)
class StreamStart:
    """What the stream endpoint needs of an owned job: its id and the ``finished`` hook of its stream."""

    job_id: uuid.UUID
    finished: Callable[[], Awaitable[Frame | None]] | None
    when_idle: bool = False  # ask ``finished`` at the first keepalive instead of at connect time
    backlog: list[Frame] | None = None  # the log's events after the resume point, read with the owner


async def _ready(frame: Frame) -> Frame:
    return frame


def job_key(job_id: str) -> uuid.UUID:
    """The job id of a path, or JOB_NOT_FOUND; its canonical form is what the event log is keyed by."""
    try:
        return uuid.UUID(job_id)
    except ValueError:
        raise NotFound("job not found", "JOB_NOT_FOUND") from None


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

    async def submit(self, user_id: uuid.UUID, body: ScanRequest, idempotency_key: str | None) -> SubmitResponse:
        model = body.model or self.settings.allowed_models[0]
        if model not in self.settings.allowed_models:
            raise BadRequest(f"unknown model {model!r}", "UNSUPPORTED_MODEL")
        # Only a keyed request is compared with an earlier one.
        digest = request_hash(body, model) if idempotency_key is not None else ""
        if idempotency_key is not None:
            replay = await self._replay(user_id, idempotency_key, digest)
            if replay is not None:
                return replay  # no new job, no rate-limit cost
        # The image is checked first so that a refused request (400) does not use up the user's quota.
        image = await self._resolve_image(body.image_url, user_id)
        await self.limiter.enforce(str(user_id))

        now = utcnow()
        job_id = uuid.uuid4()
        row = {
            "id": job_id,
            "user_id": user_id,
            "image_url": body.image_url,
            "image_key": image["key"],
            "image_type": image["content_type"],
            "user_input": body.user_input,
            "model": model,
            "status": "queued",
            "stage": "queued",
            "progress": 0,
            "checkpoint": {},
            "created_at": now,
            "deadline_at": now + timedelta(seconds=self.settings.job_deadline_seconds),
            "enqueued_at": now,
        }  # result, reward_character, completed_at: SQL NULL (a JSON column would store None as 'null')
        # The queued event (with the owner, same script and TTL as the log: the stream and result
        # endpoints check ownership there before asking the database) and the job row are written side
        # by side; the 202 waits for both, so a stream opened right after it finds the event, and
        # nothing reads either before the enqueue below.
        appended, inserted = await asyncio.gather(
            self.events.append(
                str(job_id),
                "queued",
                event_data(str(job_id), "queued", "completed", 0, None, STAGE_MESSAGES["queued"]),
                owner=str(user_id),
            ),
            self._insert(row, idempotency_key, digest),
            return_exceptions=True,
        )
        if isinstance(inserted, BaseException):
            if not isinstance(appended, BaseException):
                await self.events.delete(str(job_id))  # would expire anyway: nobody can see it
            if isinstance(inserted, IntegrityError) and idempotency_key is not None:
                # The only unique key a concurrent request can take: that request's job is the answer.
                replay = await self._replay(user_id, idempotency_key, digest)
                if replay is not None:
                    return replay
            raise inserted
        if isinstance(appended, BaseException):
            await self._withdraw(job_id)  # a refused request leaves no job behind to run later
            raise appended
        # The job is stored: the 202 does not wait for the broker's confirm (under load, the largest
        # share of submit latency, docs/benchmarks.md twelfth round). A publish that fails, or a process
        # that dies before it, leaves the job queued, and the sweeper re-enqueues it after
        # ``requeue_after_seconds`` — as for a failed enqueue before.
        await self.queue.enqueue_unconfirmed(str(job_id))
        return submit_response(job_id)

    async def _insert(self, row: dict[str, Any], idempotency_key: str | None, digest: str) -> None:
        if idempotency_key is None:
            async with self.db.autocommit() as conn:  # one statement: its own transaction
                await conn.execute(insert(JOBS), row)
            return
        async with self.db.transaction() as conn:  # the job and its key commit together
            await conn.execute(insert(JOBS), row)
            await conn.execute(
                insert(KEYS),
                {"user_id": row["user_id"], "key": idempotency_key, "request_hash": digest, "job_id": row["id"],
                 "created_at": row["created_at"]},
            )  # fmt: skip

    async def _withdraw(self, job_id: uuid.UUID) -> None:
        """Delete a job whose submit failed after its row was stored (and its key with it)."""
        try:
            async with self.db.transaction() as conn:
                await conn.execute(delete(KEYS).where(KEYS.c.job_id == job_id))
                await conn.execute(delete(JOBS).where(JOBS.c.id == job_id))
        except Exception as exc:  # the sweeper then runs it; the caller still gets the original error
            log.warning("scan_withdraw_failed", job_id=str(job_id), error=repr(exc))

    async def _replay(self, user_id: uuid.UUID, key: str, digest: str) -> SubmitResponse | None:
        async with self.db.autocommit() as conn:
            record = (
                await conn.execute(
                    select(KEYS.c.request_hash, KEYS.c.job_id, KEYS.c.created_at).where(
                        KEYS.c.user_id == user_id, KEYS.c.key == key
                    )
                )
            ).first()
            if record is None:
                return None
            if record.created_at < utcnow() - timedelta(seconds=self.settings.idempotency_ttl_seconds):
                # Remembered 24 h only; afterwards the key is new again.
                await conn.execute(
                    delete(KEYS).where(
                        KEYS.c.user_id == user_id, KEYS.c.key == key, KEYS.c.created_at == record.created_at
                    )
                )
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
    #
    # Ownership is answered by the job's event log when it holds the owner written at submit (one Redis
    # round trip), by the database otherwise. The log can only say yes, and only to that exact user:
    # a missing owner (log expired or erased, Redis restarted, a log re-created after a loss) or a
    # different one is asked of the database, which answers 404 for anything not the caller's — as
    # before. The log and its owner expire with the job's retention and are deleted with the job
    # (purge, account erasure), so the log says yes only while the database would.

    async def stream_job(self, user_id: uuid.UUID, job_id: str, after: int = 0) -> StreamStart:
        """The caller's job for its event stream, the log's events after ``after`` (one round trip with
        the owner; the caller has subscribed to the job first, ``events.attach``), and how the stream
        learns that a job is over whose log lacks ``done`` (``JobStreamResponse(finished=…)``)."""
        key = job_key(job_id)
        owner, backlog, last = await self.events.owner_and_backlog(str(key), after)
        if owner == str(user_id):
            if last is not None and last.event == TERMINAL_EVENT:
                done = last
                # over: a resumed client still ends with it
                return StreamStart(key, lambda: _ready(done), backlog=backlog)
            # Running, or over with `done` never appended (a crash in between): asked only if the stream idles.
            return StreamStart(key, lambda: self.terminal_frame(key), when_idle=True, backlog=backlog)
        job = await self.owned_job(user_id, job_id)
        # Only a job already over at connect time can lack a live `done`; running jobs deliver it. The
        # backlog is the log's whoever answered ownership: it was read after the caller subscribed.
        return StreamStart(key, (lambda: self.terminal_frame(key)) if job.status in TERMINAL else None, backlog=backlog)

    async def result(self, user_id: uuid.UUID, job_id: str) -> tuple[int, bytes | dict[str, Any]]:
        """``GET /scan/{id}/result``: from the log's ``done`` event when the log answers for the caller
        (the result it carries is the stored one: ``done`` is appended after the result commits, from
        it), otherwise ``result_view`` of the database read."""
        key = job_key(job_id)
        owner, last = await self.events.owner_and_last(str(key))
        if owner == str(user_id) and last is not None and last.event == TERMINAL_EVENT:
            result = orjson.loads(last.data).get("result")
            if isinstance(result, dict):
                # json.dumps, as the JSON column stored it: the same bytes as the database read sends.
                return 200, json.dumps(result).encode()
        return await self.result_view(await self.owned_job(user_id, job_id, with_result=True))

    async def owned_job(self, user_id: uuid.UUID, job_id: str, *, with_result: bool = False) -> JobView:
        """The caller's job; anything else — unknown, expired, someone else's — is JOB_NOT_FOUND.

        One autocommit read of the columns the endpoints use; the result as its stored JSON text,
        sent as is (no decode and re-encode)."""
        key = job_key(job_id)
        columns: list[Any] = [JOBS.c.user_id, JOBS.c.status, JOBS.c.completed_at]
        if with_result:
            columns += _RESULT_COLUMNS
        async with self.db.autocommit() as conn:
            row = (await conn.execute(select(*columns).where(JOBS.c.id == key))).first()
        retained = utcnow() - timedelta(seconds=self.settings.retention_seconds)
        if row is None or row.user_id != user_id or (row.completed_at is not None and row.completed_at < retained):
            raise NotFound("job not found", "JOB_NOT_FOUND")
        if not with_result:
            return JobView(key, row.status)
        return JobView(key, row.status, row.deadline_at, row.progress, row.checkpoint or {}, row.result_json)

    async def result_view(self, job: JobView) -> tuple[int, bytes | dict[str, Any]]:
        """200 with the stored result (its JSON text), or 202 with where the job is."""
        if (
            job.status not in TERMINAL
            and job.deadline_at is not None
            and utcnow() > job.deadline_at + timedelta(seconds=5)
        ):
            # No worker finished it in time (all down?): end it here rather than answer 202 forever.
            async with self.db.session() as session:
                stored = await session.get(Job, job.id)
            if stored is not None:
                await self.pipeline.fail(stored, "SCAN_TIMEOUT")
            job = await self.owned_job_unchecked(job.id)
        if job.status in TERMINAL and job.result is not None:
            return 200, job.result.encode()
        if job.status == "queued" and not job.checkpoint:
            stage = "queued"
        else:
            stage = next((name for name, _ in STAGES if name not in job.checkpoint), "reward")
        return 202, {
            "job_id": str(job.id),
            "status": "processing",
            "current_stage": stage,
            "progress": job.progress,
            "message": STAGE_MESSAGES[stage],
        }

    async def owned_job_unchecked(self, job_id: uuid.UUID) -> JobView:
        async with self.db.autocommit() as conn:
            row = (await conn.execute(select(JOBS.c.status, *_RESULT_COLUMNS).where(JOBS.c.id == job_id))).one()
        return JobView(job_id, row.status, row.deadline_at, row.progress, row.checkpoint or {}, row.result_json)

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
                (await session.execute(select(Job).where(Job.status.in_(OPEN), Job.deadline_at < now).limit(200)))
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
            unfinished = Job.status.in_(OPEN)
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
