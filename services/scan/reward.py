"""The scan reward (docs/api.md, scan: reward), decided in the worker's own finishing transaction.

Eligibility and the character follow from the stored stage outputs alone. Ownership is
``claimed_characters`` (user, character): the finishing transaction inserts the row with
``ON CONFLICT DO NOTHING``, so of two jobs finishing at once for the same character exactly one
inserts it (``received``) and the other waits on the key and then finds it (``already_owned``). The
insert, the job's compare-and-set finish and the ``scan.reward_granted`` outbox row commit together:
a job that lost the race to the sweeper, or whose user was erased, rolls its claim back and grants
nothing; a redelivery of a finished job re-reads the stored result and never decides again.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import Table, bindparam, case, delete, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.common.ai import Classification
from services.common.clock import utcnow
from services.common.db import Database, DriverStatement, insert_ignoring
from services.common.domain_events import DomainEvent, ScanRewardGranted, reward_points
from services.common.knowledge import RECYCLABLE, Character, KnowledgeBase, character_for_middle
from services.common.tracing import OUTBOX_TRACE_KEY, inject
from services.scan.models import OPEN, ClaimedCharacter, Job, Outbox

OUTBOX_SCHEMA = str(Outbox.__table__.schema)
# Built once (see pipeline.py): the row's values come as the execution's parameters.
EMIT = insert(Outbox)


def eligible_character(kb: KnowledgeBase, checkpoint: dict[str, Any], *, enabled: bool = True) -> Character | None:
    """The character an eligible scan earns, ``None`` when not eligible: recyclable, one of the twelve
    middles, a rule document found, nothing missing (never the mascot as a fallback)."""
    if not enabled:
        return None
    c = Classification.from_dict(checkpoint["vision"])
    missing = [item for item in checkpoint["answer"]["insufficiencies"] if str(item).strip()]
    if c.major != RECYCLABLE or c.middle not in kb.middles or checkpoint["rule"]["key"] is None or missing:
        return None
    return character_for_middle(c.middle)


def reward_object(character: Character, c: Classification, received: bool) -> dict[str, Any]:
    """Exactly the seven fields of the contract's reward object."""
    return {
        "name": character.name,
        "dialog": character.dialog,
        "match_reason": f"{c.middle}>{c.minor}" if c.minor else c.middle,
        "type": character.type,
        "received": received,
        "already_owned": not received,
        "points_awarded": reward_points(received),
    }


async def claim(conn: AsyncConnection, user_id: uuid.UUID, character_code: str, job_id: uuid.UUID) -> bool:
    """Claim the character for the user inside the caller's transaction; ``True`` iff this job got it."""
    statement = insert_ignoring(conn.dialect.name, ClaimedCharacter)
    row = {"user_id": user_id, "character_code": character_code, "job_id": job_id, "claimed_at": utcnow()}
    return bool((await conn.execute(statement, row)).rowcount)


def granted(user_id: uuid.UUID, job_id: uuid.UUID, character: Character, received: bool) -> ScanRewardGranted:
    return ScanRewardGranted(
        user_id=user_id,
        job_id=job_id,
        character_code=character.code,
        character_name=character.name,
        received=received,
        points=reward_points(received),
    )


async def emit(conn: AsyncConnection, event: DomainEvent) -> None:
    """``Outbox.emit`` for a Core transaction (no ORM session on the worker's path): the same row —
    type, payload as JSON, the writer's trace context for the relay to move to the message headers."""
    row = {"id": uuid.uuid4(), "type": str(event.name), "payload": _payload(event), "occurred_at": utcnow()}
    await conn.execute(EMIT, row)


def _payload(event: DomainEvent) -> dict[str, Any]:
    payload = event.payload()
    trace = inject()
    if trace:
        payload[OUTBOX_TRACE_KEY] = dict(trace)
    return payload


async def finish_rewarded(
    db: Database,
    job_id: uuid.UUID,
    user_id: uuid.UUID,
    character: Character,
    stored: dict[bool, dict[str, Any]],
) -> tuple[bool, bool]:
    """PostgreSQL: the eligible finish — claim, the job's compare-and-set, the outbox row — as one
    statement outside a transaction (one round trip instead of ``BEGIN`` + three statements +
    ``COMMIT``). ``stored[received]``: the job's terminal values for either outcome of the claim (the
    result's reward says ``received``/``already_owned``). Returns (won, received); nothing is
    written unless won.

    Why it is the same as the transaction (SQLite keeps that one): the job row is locked first
    (``FOR UPDATE``; re-checked against its newest version, so a job the sweeper or another delivery
    finished meanwhile is not returned) and the claim, the update and the outbox row are all read
    from that locked row — no row, no claim, no event. The claim's ``ON CONFLICT DO NOTHING`` waits on
    a concurrent claim of the same character and then finds it, as in the transaction. One
    statement commits or fails as a whole."""
    now = utcnow()
    params: dict[str, Any] = {
        "f_key": job_id,
        "f_user_id": user_id,
        "f_character_code": character.code,
        "f_claimed_at": now,
        "f_event_id": uuid.uuid4(),
        "f_event_type": str(ScanRewardGranted.name),
        "f_occurred_at": now,
    }
    for received, label in ((True, "received"), (False, "owned")):
        values = stored[received]
        params[f"f_result_{label}"] = values["result"]
        params[f"f_checkpoint_{label}"] = values["checkpoint"]
        params[f"f_payload_{label}"] = _payload(granted(user_id, job_id, character, received))
    params["f_completed_at"] = stored[True]["completed_at"]
    # On the asyncpg connection itself (``Database.driver``): the statement compiled once, SQLAlchemy's
    # bind processing applied by ``DriverStatement`` (the JSON values serialised as its JSON type does).
    statement = _finish_driver_statement(db.engine.dialect)
    async with db.driver() as pg:
        record = await pg.fetchrow(statement.sql, *statement.args(params))
    return bool(record["won"]), bool(record["received"])


@functools.cache
def _finish_driver_statement(dialect: Dialect) -> DriverStatement:
    return DriverStatement(_finish_statement(), dialect)


@functools.cache
def _finish_statement() -> Any:
    """``WITH job (locked), claimed (INSERT … ON CONFLICT DO NOTHING), finished (UPDATE), emitted
    (INSERT into the outbox) SELECT received, won``; built once. The parameters are named ``f_…``: an
    ``UPDATE`` would take a parameter named like one of its columns as a value to set."""
    jobs: Table = Job.__table__  # type: ignore[assignment]
    claims: Table = ClaimedCharacter.__table__  # type: ignore[assignment]
    outbox: Table = Outbox.__table__  # type: ignore[assignment]
    unfinished = jobs.c.status.in_([literal(status) for status in OPEN])  # no expanding IN (DriverStatement)
    job = (
        select(jobs.c.id)
        .where(jobs.c.id == bindparam("f_key", type_=jobs.c.id.type), unfinished)
        .with_for_update()
        .cte("job")
    )
    code = bindparam("f_character_code", type_=claims.c.character_code.type)
    claim_row = select(
        bindparam("f_user_id", type_=claims.c.user_id.type), code, job.c.id,
        bindparam("f_claimed_at", type_=claims.c.claimed_at.type),
    )  # fmt: skip
    claimed = (
        pg_insert(claims)
        .from_select(["user_id", "character_code", "job_id", "claimed_at"], claim_row)
        .on_conflict_do_nothing()
        .returning(claims.c.job_id)
        .cte("claimed")
    )
    received = select(claimed.c.job_id).exists()

    def either(name: str, column: Any) -> Any:
        return case(
            (received, bindparam(f"f_{name}_received", type_=column.type)),
            else_=bindparam(f"f_{name}_owned", type_=column.type),
        )

    finished = (
        update(jobs)
        .where(jobs.c.id == job.c.id, unfinished)
        .values(
            status="completed",
            stage="reward",
            progress=100,
            completed_at=bindparam("f_completed_at", type_=jobs.c.completed_at.type),
            reward_character=code,
            result=either("result", jobs.c.result),
            checkpoint=either("checkpoint", jobs.c.checkpoint),
        )
        .returning(jobs.c.id)
        .cte("finished")
    )
    event_row = select(
        bindparam("f_event_id", type_=outbox.c.id.type),
        bindparam("f_event_type", type_=outbox.c.type.type),
        either("payload", outbox.c.payload),
        bindparam("f_occurred_at", type_=outbox.c.occurred_at.type),
    ).select_from(finished)
    emitted = insert(outbox).from_select(["id", "type", "payload", "occurred_at"], event_row).cte("emitted")
    won = select(finished.c.id).exists()
    return select(received.label("received"), won.label("won")).add_cte(emitted)


async def erase_claims(session: AsyncSession, user_id: uuid.UUID) -> None:
    """``user.deleted``: the user's collection goes with their jobs."""
    await session.execute(delete(ClaimedCharacter).where(ClaimedCharacter.user_id == user_id))
