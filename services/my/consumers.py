"""Events the my service applies: accounts and logins (auth), rewards (scan).

Every handler is idempotent twice over: the inbox skips an event id seen before, and every write is
an upsert on a natural key, so even the same fact arriving under another event id changes nothing.
Events may arrive in any order (RabbitMQ consumers work on several messages at once); each write is
written so that order does not matter.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.clock import utcnow
from services.common.domain_events import ScanRewardGranted, UserCreated, UserLoggedIn
from services.common.events import Consumer, Subscription
from services.common.knowledge import characters, mascot
from services.common.kv import KeyValueStore
from services.common.runtime import ServiceRuntime
from services.my.models import DeletedUser, Inbox, OwnedCharacter, PointEntry, Profile
from services.my.service import (
    CHARACTER_COLLECTED,
    NICKNAME_MAX,
    PROFILE_CHANNEL,
    SCAN_REWARD,
    add_points,
    grant_character,
    insert_profile,
    is_deleted,
)


@dataclass(frozen=True)
class Context:
    kv: KeyValueStore


consumer: Consumer[Context] = Consumer("my", Inbox)


def _text(value: str | None, limit: int) -> str | None:
    text = value.strip() if value is not None else ""
    return text[:limit] or None


@consumer.on(UserCreated)
async def user_created(ctx: Context, session: AsyncSession, event: UserCreated) -> None:
    user_id = event.user_id
    if await is_deleted(session, user_id):
        return
    created_at = event.created_at
    nickname = _text(event.nickname, NICKNAME_MAX)
    email = _text(event.email, 320)
    image = _text(event.profile_image_url, 2048)
    account = {"account_synced": True, "created_at": created_at, "updated_at": utcnow()}
    created = await insert_profile(
        session,
        user_id,
        **account,
        **({"nickname": nickname} if nickname else {}),
        email=email,
        profile_image_url=image,
    )
    if not created:
        # An early request made the profile with a generated nickname. The account's own nickname
        # (the provider's, docs/api.md auth → login) replaces it — unless the user already chose one.
        profile = await session.get(Profile, user_id, with_for_update=True)
        assert profile is not None
        if nickname and not profile.nickname_customised:
            profile.nickname = nickname
        profile.email = profile.email or email
        profile.profile_image_url = profile.profile_image_url or image
        profile.created_at = min(profile.created_at, created_at)
        profile.account_synced = True
        profile.updated_at = utcnow()
        # The mascot was granted at the early request; it belongs to the account's creation.
        await session.execute(
            update(OwnedCharacter)
            .where(
                OwnedCharacter.user_id == user_id,
                OwnedCharacter.character_code == mascot().code,
                OwnedCharacter.source == "default",
            )
            .values(acquired_at=created_at)
        )
    await grant_character(session, user_id, mascot().code, "default", created_at)


@consumer.on(UserLoggedIn)
async def user_logged_in(ctx: Context, session: AsyncSession, event: UserLoggedIn) -> None:
    user_id = event.user_id
    if await is_deleted(session, user_id):
        return
    at = event.logged_in_at
    provider = _text(event.provider, 16)
    # The login may be seen before the account event; the profile then starts here.
    await insert_profile(session, user_id, last_login_at=at, last_login_provider=provider)
    await grant_character(session, user_id, mascot().code, "default", at)
    profile = await session.get(Profile, user_id, with_for_update=True)
    assert profile is not None
    # Only ever forward: an older login delivered late must not hide a newer one.
    if profile.last_login_at is None or profile.last_login_at < at:
        profile.last_login_at = at
        profile.last_login_provider = provider


@consumer.on(ScanRewardGranted)
async def reward_granted(ctx: Context, session: AsyncSession, event: ScanRewardGranted) -> None:
    user_id = event.user_id
    if await is_deleted(session, user_id):
        return
    name = _text(event.character_name, 40)
    now = utcnow()
    known = {c.code for c in characters()}
    if event.received and event.character_code in known:
        await grant_character(session, user_id, event.character_code, "scan", now)
    # The points are the scan pipeline's decision: recorded as the event states them.
    deltas = {SCAN_REWARD: event.scan_points}
    if event.received:
        deltas[CHARACTER_COLLECTED] = event.collected_points
    await add_points(session, user_id, event.job_id, deltas, name, now)


def _table(model: Any) -> str:
    return str(model.__table__.fullname)


# The same writes on PostgreSQL as one autocommit statement with the inbox claim (the per-scan event:
# one round trip instead of seven — docs/events.md, inbox). Every write reads ``FROM alive``: no row
# when the event was applied before or the account is deleted. Table names are the models' own.
_REWARD_CTES = f"""
alive AS (
    SELECT 1 FROM claimed
    WHERE NOT EXISTS (SELECT 1 FROM {_table(DeletedUser)} WHERE user_id = CAST(:user_id AS uuid))
), owned AS (
    INSERT INTO {_table(OwnedCharacter)} (user_id, character_code, source, acquired_at)
    SELECT CAST(:user_id AS uuid), CAST(:character_code AS varchar), 'scan', CAST(:now AS timestamptz)
    FROM alive WHERE CAST(:grant AS boolean)
    ON CONFLICT DO NOTHING
), ledger AS (
    INSERT INTO {_table(PointEntry)} (id, user_id, job_id, reason, delta, character_name, created_at)
    SELECT entry.id, CAST(:user_id AS uuid), CAST(:job_id AS uuid), entry.reason, entry.delta,
           CAST(:character_name AS varchar), CAST(:now AS timestamptz)
    FROM alive, (VALUES
        (CAST(:scan_entry AS uuid), '{SCAN_REWARD}', CAST(:scan_points AS integer), true),
        (CAST(:collected_entry AS uuid), '{CHARACTER_COLLECTED}', CAST(:collected_points AS integer),
         CAST(:received AS boolean))
    ) AS entry (id, reason, delta, keep)
    WHERE entry.keep
    ON CONFLICT (user_id, job_id, reason) DO NOTHING
)"""  # noqa: S608


@consumer.in_one_statement(ScanRewardGranted, _REWARD_CTES)
def reward_granted_params(ctx: Context, event: ScanRewardGranted) -> dict[str, object]:
    received = bool(event.received)
    return {
        "user_id": event.user_id,
        "job_id": event.job_id,
        "character_code": event.character_code,
        "character_name": _text(event.character_name, 40),
        "grant": received and event.character_code in {c.code for c in characters()},
        "received": received,
        "scan_entry": uuid.uuid4(),
        "scan_points": event.scan_points,
        "collected_entry": uuid.uuid4(),
        "collected_points": event.collected_points,
        "now": utcnow(),
    }


@consumer.then(UserCreated, UserLoggedIn)
async def invalidate_profile(ctx: Context, event: UserCreated | UserLoggedIn) -> None:
    # After the commit: API processes drop their cached profile (``GET /me`` shows these events). A
    # failure here fails the delivery; the redelivery is a no-op apart from this broadcast.
    await ctx.kv.publish(PROFILE_CHANNEL, str(event.user_id))


EVENT_TYPES = consumer.topology()


def build(runtime: ServiceRuntime) -> list[Subscription]:
    assert runtime.db is not None
    return [consumer.subscription(runtime.db, Context(runtime.kv))]
