"""Events the auth service applies: ``user.deleted`` erases the account and ends every session.

The my service revokes the sessions itself when the user deletes the account; doing it here as
well covers a revocation store that was down at that moment (this delivery is retried until it
succeeds) and marks the session rows revoked for the audit trail until they are erased.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.config import AuthSettings
from services.auth.models import Account, Identity, Inbox, LoginEvent, Session
from services.common.domain_events import UserDeleted
from services.common.events import Consumer, Subscription
from services.common.logging import get_logger
from services.common.runtime import ServiceRuntime
from services.common.security import Revocations

log = get_logger("eco2.auth")


@dataclass(frozen=True)
class Context:
    revocations: Revocations
    refresh_ttl: int


consumer: Consumer[Context] = Consumer("auth", Inbox)


@consumer.on(UserDeleted)
async def erase_account(ctx: Context, session: AsyncSession, event: UserDeleted) -> None:
    user_id = event.user_id
    # Revoke before erasing, inside the transaction: if the store is down the delivery fails,
    # nothing is erased yet, and the retry does both.
    await ctx.revocations.revoke_user(user_id, ctx.refresh_ttl)
    sessions = (await session.execute(select(Session.id).where(Session.account_id == user_id))).scalars().all()
    for sid in sessions:
        await ctx.revocations.revoke_session(str(sid), ctx.refresh_ttl)
    for model in (LoginEvent, Session, Identity):
        await session.execute(delete(model).where(model.account_id == user_id))
    await session.execute(delete(Account).where(Account.id == user_id))
    log.info("account_erased", user_id=str(user_id), sessions=len(sessions))


EVENT_TYPES = consumer.topology()


def build(runtime: ServiceRuntime, settings: AuthSettings | None = None) -> list[Subscription]:
    assert runtime.db is not None
    refresh_ttl = (settings or AuthSettings()).refresh_ttl_seconds
    return [consumer.subscription(runtime.db, Context(runtime.revocations, refresh_ttl))]
