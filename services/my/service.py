"""The my service's rules: profiles, phone numbers, nicknames, owned characters, points, account deletion.

No HTTP here. Reads of ``/me`` come from an in-process cache (``services.common.cache``); everything else reads
the database. Events from other services are applied in ``consumers.py`` with the helpers below.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.cache import InvalidatedCache
from services.common.clock import iso_ms, utcnow
from services.common.db import Database, insert_ignoring, upsert
from services.common.domain_events import UserDeleted
from services.common.errors import BadRequest, NotFound, Unauthorized
from services.common.knowledge import Character, characters, mascot, nfc
from services.common.logging import get_logger
from services.common.security import Revocations
from services.my.models import DeletedUser, Outbox, OwnedCharacter, PointEntry, Profile

log = get_logger("eco2.my")

# Where profile invalidations are broadcast (the ``InvalidatedCache`` of every process listens).
PROFILE_CHANNEL = "my:profile-invalidations"
DISPLAY_NAME_FALLBACK = "사용자"
NICKNAME_MAX = 30
# docs/api.md, users: adjective + noun, no space, uniformly at random (100 combinations).
ADJECTIVES = ("초록", "맑은", "푸른", "따뜻한", "빛나는", "싱그러운", "잔잔한", "깨끗한", "산뜻한", "포근한")
NOUNS = ("씨앗", "숲지기", "바람", "별빛", "이코", "물결", "햇살", "나뭇잎", "자연", "지구친구")

# Ledger reasons; the amounts come with the ``scan.reward_granted`` event.
SCAN_REWARD = "scan_reward"
CHARACTER_COLLECTED = "character_collected"

_NON_DIGITS = re.compile(r"\D")


def default_nickname() -> str:
    return secrets.choice(ADJECTIVES) + secrets.choice(NOUNS)


class InvalidPhoneNumber(ValueError):
    pass


def normalise_phone(raw: str) -> str:
    """Contract §3.2: digits only; leading 82 → 0; 010 + 8 digits or 01X + 7 digits, hyphenated."""
    digits = _NON_DIGITS.sub("", raw)
    if digits.startswith("82"):
        digits = "0" + digits[2:]
    if len(digits) == 11 and digits.startswith("010"):
        return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    if len(digits) == 10 and digits.startswith("01"):
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    raise InvalidPhoneNumber(raw)


def display_name(nickname: str | None) -> str:
    return (nickname or "").strip() or DISPLAY_NAME_FALLBACK


@dataclass(frozen=True, slots=True)
class ProfileView:
    """What ``GET /me`` shows, minus the provider (that comes from the caller's token)."""

    user_id: uuid.UUID
    nickname: str
    phone_number: str | None
    profile_image_url: str | None
    last_login_provider: str | None
    last_login_at: datetime | None
    created_at: datetime
    # Rendered bodies by provider: a cached view is immutable, so its JSON is built once.
    _rendered: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)

    def render(self, provider: str) -> bytes:
        body = self._rendered.get(provider)
        if body is None:
            body = self._rendered[provider] = self._render(provider)
        return body

    def _render(self, provider: str) -> bytes:
        name = display_name(self.nickname)
        return orjson.dumps(
            {
                "id": str(self.user_id),
                "username": name,
                "display_name": name,
                "nickname": self.nickname.strip() or name,
                "phone_number": self.phone_number,
                "provider": provider or self.last_login_provider or "",
                "profile_image_url": self.profile_image_url,
                "last_login_at": iso_ms(self.last_login_at) if self.last_login_at else None,
                "created_at": iso_ms(self.created_at),
            }
        )


_PROFILE_COLUMNS = (
    Profile.user_id,
    Profile.nickname,
    Profile.phone_number,
    Profile.profile_image_url,
    Profile.last_login_provider,
    Profile.last_login_at,
    Profile.created_at,
)


@dataclass(frozen=True)
class Owned:
    character: Character
    source: str
    acquired_at: datetime


@dataclass(frozen=True)
class PointsPage:
    balance: int
    entries: list[PointEntry]
    next_cursor: str | None


# ----------------------------------------------------------------------------- shared writes


# The consumers' per-event statements are built once (``insert_ignoring`` for the inserts): building
# them per call — ``values`` coercions, the cache key — costs more CPU than the round trip.
_LEDGER_KEY = ("user_id", "job_id", "reason")  # one ledger entry per (user, job, reason)
_DELETED = select(DeletedUser.user_id).where(DeletedUser.user_id == bindparam("uid", type_=DeletedUser.user_id.type))


async def is_deleted(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return (await session.execute(_DELETED, {"uid": user_id})).first() is not None


async def insert_profile(session: AsyncSession, user_id: uuid.UUID, **values: Any) -> bool:
    """Create the profile unless it exists; True if this call created it."""
    now = utcnow()
    row = {"nickname": default_nickname(), "created_at": now, "updated_at": now} | values
    result = await session.execute(upsert(session, Profile).values(user_id=user_id, **row).on_conflict_do_nothing())
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def grant_character(
    session: AsyncSession, user_id: uuid.UUID, code: str, source: str, acquired_at: datetime
) -> bool:
    """Record ownership once per (user, character); True if this call granted it."""
    row = {"user_id": user_id, "character_code": code, "source": source, "acquired_at": acquired_at}
    conn = await session.connection()  # Core: ``session.execute(insert, params)`` is the ORM's bulk path
    return bool((await conn.execute(insert_ignoring(conn.dialect.name, OwnedCharacter), row)).rowcount)


async def add_points(
    session: AsyncSession,
    user_id: uuid.UUID,
    job_id: uuid.UUID,
    deltas: dict[str, int],
    character_name: str | None,
    at: datetime,
) -> None:
    """Ledger entries of one scan job (``deltas``: reason → points), each at most once, in one statement."""
    rows = [
        {"id": uuid.uuid4(), "user_id": user_id, "job_id": job_id, "reason": reason, "delta": delta,
         "character_name": character_name, "created_at": at}
        for reason, delta in deltas.items()
    ]  # fmt: skip
    conn = await session.connection()
    await conn.execute(insert_ignoring(conn.dialect.name, PointEntry, _LEDGER_KEY), rows[0] if len(rows) == 1 else rows)


# ------------------------------------------------------------------------------------ cursors


def encode_cursor(entry: PointEntry) -> str:
    # Full precision (not the API's milliseconds): the cursor must sort exactly like the stored rows.
    raw = orjson.dumps([entry.created_at.isoformat(), str(entry.id)])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, entry_id = orjson.loads(raw)
        at = datetime.fromisoformat(str(stamp))
        if at.tzinfo is None:
            raise ValueError("naive timestamp")
        return at, uuid.UUID(str(entry_id))
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise BadRequest("cursor cannot be decoded", "INVALID_CURSOR") from None


# ------------------------------------------------------------------------------------ service


class MyService:
    def __init__(
        self,
        db: Database,
        revocations: Revocations,
        cache: InvalidatedCache[ProfileView],
        *,
        refresh_ttl_seconds: int,
    ) -> None:
        self.db = db
        self.revocations = revocations
        self.cache = cache
        self.refresh_ttl_seconds = refresh_ttl_seconds
        self._loading: dict[str, tuple[int, asyncio.Future[ProfileView]]] = {}

    async def profile(self, user_id: uuid.UUID) -> ProfileView:
        key = str(user_id)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        # Concurrent misses for one user share a single database read — but never one that started
        # before an invalidation (it may predate the write that caused it: read-your-writes).
        generation = self.cache.generation
        loading = self._loading.get(key)
        if loading is None or loading[0] != generation:
            loading = self._loading[key] = (
                generation,
                asyncio.ensure_future(self._load_and_cache(key, user_id, generation)),
            )
        return await asyncio.shield(loading[1])

    async def _load_and_cache(self, key: str, user_id: uuid.UUID, generation: int) -> ProfileView:
        try:
            view = await self._load_or_create(user_id)
            self.cache.put(key, view, generation)
            return view
        finally:
            if self._loading.get(key, (None,))[0] == generation:
                self._loading.pop(key, None)

    async def _load_or_create(self, user_id: uuid.UUID) -> ProfileView:
        async with self.db.session() as session:
            view = await self._load(session, user_id)
            if view is not None:
                return view
            # The request beat the ``user.created`` event (or the event is delayed): create the
            # profile now so a freshly logged-in user never sees a 404. The event, when it comes,
            # fills in the account's own nickname unless the user has chosen one meanwhile.
            if await is_deleted(session, user_id):
                raise Unauthorized("account deleted", "TOKEN_REVOKED")
            now = utcnow()
            await insert_profile(session, user_id, created_at=now, updated_at=now)
            await grant_character(session, user_id, mascot().code, "default", now)
            view = await self._load(session, user_id)
            assert view is not None
            return view

    @staticmethod
    async def _load(session: AsyncSession, user_id: uuid.UUID) -> ProfileView | None:
        row = (await session.execute(select(*_PROFILE_COLUMNS).where(Profile.user_id == user_id))).first()
        return ProfileView(*row) if row is not None else None

    async def update(self, user_id: uuid.UUID, changes: dict[str, str | None]) -> ProfileView:
        """Apply a PATCH (keys present = fields to change; validated by the schema, except phone)."""
        if not changes:
            raise BadRequest("provide nickname and/or phone_number", "NO_CHANGES_PROVIDED")
        values: dict[str, Any] = {"updated_at": utcnow()}
        if "nickname" in changes:
            values |= {"nickname": changes["nickname"], "nickname_customised": True}
        if "phone_number" in changes:
            raw = (changes["phone_number"] or "").strip()
            try:
                values["phone_number"] = normalise_phone(raw) if raw else None
            except InvalidPhoneNumber:
                raise BadRequest(
                    "phone_number must be a Korean mobile number such as 010-1234-5678", "INVALID_PHONE_NUMBER"
                ) from None
        await self.profile(user_id)  # exists (or is created) before it is changed
        try:
            async with self.db.session() as session:
                await session.execute(update(Profile).where(Profile.user_id == user_id).values(**values))
        except IntegrityError:
            raise BadRequest("phone_number is registered to another account", "INVALID_PHONE_NUMBER") from None
        await self._invalidate(user_id)
        return await self.profile(user_id)

    async def delete(self, user_id: uuid.UUID) -> None:
        """Erase this service's rows now, announce ``user.deleted``, revoke every session."""
        now = utcnow()
        async with self.db.session() as session:
            for model in (Profile, OwnedCharacter, PointEntry):
                await session.execute(delete(model).where(model.user_id == user_id))
            await session.execute(
                upsert(session, DeletedUser).values(user_id=user_id, deleted_at=now).on_conflict_do_nothing()
            )
            Outbox.emit(session, UserDeleted(user_id=user_id, deleted_at=now))
        await self._invalidate(user_id)
        # After the commit, not before: revoking first and then failing to delete would lock the
        # account out for the refresh lifetime. Should the store be down, the auth service's
        # consumer of ``user.deleted`` revokes again (and is retried until it can).
        for attempt in range(3):
            try:
                await self.revocations.revoke_user(user_id, self.refresh_ttl_seconds)
                break
            except Exception as exc:
                log.error("delete_revocation_failed", user_id=str(user_id), attempt=attempt + 1, error=repr(exc))
                await asyncio.sleep(0.1 * (attempt + 1))
        log.info("user_deleted", user_id=str(user_id))

    async def characters(self, user_id: uuid.UUID) -> list[Owned]:
        profile = await self.profile(user_id)
        catalog = {c.code: c for c in characters()}
        async with self.db.session() as session:
            rows = await self._owned(session, user_id)
            if mascot().code not in {row.character_code for row in rows}:
                # Contract: 이코 is always listed; if it is somehow missing, grant it during the read.
                await grant_character(session, user_id, mascot().code, "default", profile.created_at)
                rows = await self._owned(session, user_id)
        owned = [Owned(catalog[r.character_code], r.source, r.acquired_at) for r in rows if r.character_code in catalog]
        # 이코 first, then by acquisition (docs/api.md, users), whatever the timestamps say.
        owned.sort(key=lambda o: (o.character.code != mascot().code, o.acquired_at, o.character.code))
        return owned

    @staticmethod
    async def _owned(session: AsyncSession, user_id: uuid.UUID) -> list[OwnedCharacter]:
        result = await session.execute(select(OwnedCharacter).where(OwnedCharacter.user_id == user_id))
        return list(result.scalars().all())

    async def owns(self, user_id: uuid.UUID, character_name: str) -> tuple[str, bool]:
        name = nfc(character_name.strip())
        character = next((c for c in characters() if c.name == name), None)
        if character is None:
            raise NotFound(f"no character named '{character_name}' in the catalog", "CHARACTER_NOT_FOUND")
        if character.code == mascot().code:
            await self.characters(user_id)  # the mascot is granted on any read that misses it
            return character.name, True
        async with self.db.session() as session:
            row = await session.get(OwnedCharacter, (user_id, character.code))
        return character.name, row is not None

    async def points(self, user_id: uuid.UUID, limit: int, cursor: str | None) -> PointsPage:
        position = decode_cursor(cursor) if cursor else None
        async with self.db.session() as session:
            balance = await session.scalar(
                select(func.coalesce(func.sum(PointEntry.delta), 0)).where(PointEntry.user_id == user_id)
            )
            query = select(PointEntry).where(PointEntry.user_id == user_id)
            if position is not None:
                at, entry_id = position
                query = query.where(
                    or_(PointEntry.created_at < at, (PointEntry.created_at == at) & (PointEntry.id < entry_id))
                )
            query = query.order_by(PointEntry.created_at.desc(), PointEntry.id.desc()).limit(limit + 1)
            entries = list((await session.execute(query)).scalars().all())
        next_cursor = encode_cursor(entries[limit - 1]) if len(entries) > limit else None
        return PointsPage(int(balance or 0), entries[:limit], next_cursor)

    async def _invalidate(self, user_id: uuid.UUID) -> None:
        try:
            await self.cache.invalidate(str(user_id))
        except Exception as exc:
            # Dropped here already; other processes catch up when their entry expires.
            log.warning("profile_invalidation_broadcast_failed", user_id=str(user_id), error=repr(exc))
