"""Events the character service applies: finished scans (rewards) and deleted accounts."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.character.config import CharacterSettings
from services.character.models import Inbox
from services.character.service import ScanOutcome, decide, erase_user
from services.common.domain_events import ScanCompleted, UserDeleted
from services.common.events import Consumer, Subscription
from services.common.runtime import ServiceRuntime

consumer: Consumer[CharacterSettings] = Consumer("character", Inbox)


@consumer.on(ScanCompleted)
async def decide_reward(settings: CharacterSettings, session: AsyncSession, event: ScanCompleted) -> None:
    # Same decision as the internal endpoint; a job decided there is only recalled here.
    await decide(session, ScanOutcome.of(event), rewards_enabled=settings.rewards_enabled)


@consumer.on(UserDeleted)
async def erase_collection(settings: CharacterSettings, session: AsyncSession, event: UserDeleted) -> None:
    await erase_user(session, event.user_id, event.deleted_at)


EVENT_TYPES = consumer.topology()


def build(runtime: ServiceRuntime, settings: CharacterSettings | None = None) -> list[Subscription]:
    assert runtime.db is not None
    return [consumer.subscription(runtime.db, settings or CharacterSettings())]
