"""Events the auth service applies: ``user.deleted`` erases the account and ends every session.

The users service revokes the sessions itself when the user deletes the account; doing it here as
well covers a revocation store that was down at that moment (this delivery is retried until it
succeeds) and marks the session rows revoked for the audit trail until they are erased.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.config import AuthSettings
from services.auth.models import Account, Identity, Inbox, LoginEvent, Session
from services.common.events import Event, Subscription, idempotent_handler
from services.common.logging import get_logger
from services.common.runtime import ServiceRuntime

log = get_logger("eco2.auth")

CONSUMER = "auth"
EVENT_TYPES: dict[str, tuple[str, ...]] = {CONSUMER: ("user.deleted",)}


def build(runtime: ServiceRuntime, settings: AuthSettings | None = None) -> list[Subscription]:
    assert runtime.db is not None
    refresh_ttl = (settings or AuthSettings()).refresh_ttl_seconds
    revocations = runtime.revocations

    async def apply(session: AsyncSession, event: Event) -> None:
        user_id = uuid.UUID(str(event.payload["user_id"]))
        # Revoke before erasing, inside the transaction: if the store is down the delivery fails,
        # nothing is erased yet, and the retry does both.
        await revocations.revoke_user(user_id, refresh_ttl)
        sessions = (await session.execute(select(Session.id).where(Session.account_id == user_id))).scalars().all()
        for sid in sessions:
            await revocations.revoke_session(str(sid), refresh_ttl)
        for model in (LoginEvent, Session, Identity):
            await session.execute(delete(model).where(model.account_id == user_id))
        await session.execute(delete(Account).where(Account.id == user_id))
        log.info("account_erased", user_id=str(user_id), sessions=len(sessions))

    return [Subscription(CONSUMER, EVENT_TYPES[CONSUMER], idempotent_handler(runtime.db, Inbox, CONSUMER, apply))]
