"""Events the users service applies: accounts and logins (auth), rewards (character).

Every handler is idempotent twice over: the inbox skips an event id seen before, and every write is
an upsert on a natural key, so even the same fact arriving under another event id changes nothing.
Events may arrive in any order (RabbitMQ consumers work on several messages at once); each write is
written so that order does not matter.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.clock import utcnow
from services.common.events import Event, Subscription, idempotent_handler
from services.common.knowledge import characters, mascot
from services.common.runtime import ServiceRuntime
from services.my.cache import CHANNEL
from services.my.models import Inbox, OwnedCharacter, Profile
from services.my.service import (
    CHARACTER_COLLECTED,
    COLLECTED_POINTS,
    NICKNAME_MAX,
    SCAN_REWARD,
    SCAN_REWARD_POINTS,
    add_points,
    grant_character,
    insert_profile,
    is_deleted,
)

CONSUMER = "my"
EVENT_TYPES: dict[str, tuple[str, ...]] = {CONSUMER: ("user.created", "user.logged_in", "scan.reward_granted")}
# Events that change what ``GET /me`` shows: the profile caches of every process are told.
_PROFILE_EVENTS = frozenset({"user.created", "user.logged_in"})


def _uuid(value: object) -> uuid.UUID:
    return uuid.UUID(str(value))


def _datetime(value: object) -> datetime:
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without offset: {value!r}")
    return parsed


def _text(value: object, limit: int) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text[:limit] or None


async def user_created(session: AsyncSession, event: Event) -> None:
    payload = event.payload
    user_id = _uuid(payload["user_id"])
    if await is_deleted(session, user_id):
        return
    created_at = _datetime(payload["created_at"])
    nickname = _text(payload.get("nickname"), NICKNAME_MAX)
    email = _text(payload.get("email"), 320)
    image = _text(payload.get("profile_image_url"), 2048)
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
        # (the provider's, contract §2.2) replaces it — unless the user already chose one.
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


async def user_logged_in(session: AsyncSession, event: Event) -> None:
    payload = event.payload
    user_id = _uuid(payload["user_id"])
    if await is_deleted(session, user_id):
        return
    at = _datetime(payload["logged_in_at"])
    provider = _text(payload.get("provider"), 16)
    # The login may be seen before the account event; the profile then starts here.
    await insert_profile(session, user_id, last_login_at=at, last_login_provider=provider)
    await grant_character(session, user_id, mascot().code, "default", at)
    profile = await session.get(Profile, user_id, with_for_update=True)
    assert profile is not None
    # Only ever forward: an older login delivered late must not hide a newer one.
    if profile.last_login_at is None or profile.last_login_at < at:
        profile.last_login_at = at
        profile.last_login_provider = provider


async def reward_granted(session: AsyncSession, event: Event) -> None:
    payload = event.payload
    user_id = _uuid(payload["user_id"])
    job_id = _uuid(payload["job_id"])
    received = payload["received"]
    if not isinstance(received, bool):
        raise ValueError(f"received must be a boolean, got {received!r}")
    if await is_deleted(session, user_id):
        return
    code = str(payload["character_code"])
    name = _text(payload.get("character_name"), 40)
    now = utcnow()
    known = {c.code for c in characters()}
    if received and code in known:
        await grant_character(session, user_id, code, "scan", now)
    await add_points(session, user_id, job_id, SCAN_REWARD, SCAN_REWARD_POINTS, name, now)
    if received:
        await add_points(session, user_id, job_id, CHARACTER_COLLECTED, COLLECTED_POINTS, name, now)


APPLIERS = {"user.created": user_created, "user.logged_in": user_logged_in, "scan.reward_granted": reward_granted}


async def apply(session: AsyncSession, event: Event) -> None:
    await APPLIERS[event.type](session, event)


def build(runtime: ServiceRuntime) -> list[Subscription]:
    assert runtime.db is not None
    handle = idempotent_handler(runtime.db, Inbox, CONSUMER, apply)
    kv = runtime.kv

    async def handle_and_invalidate(event: Event) -> None:
        await handle(event)
        if event.type in _PROFILE_EVENTS:
            # After the commit (handle returned): API processes drop their cached profile. A failure
            # here fails the delivery; the redelivery is a no-op apart from this broadcast.
            await kv.publish(CHANNEL, str(_uuid(event.payload["user_id"])))

    return [Subscription(CONSUMER, EVENT_TYPES[CONSUMER], handle_and_invalidate)]
