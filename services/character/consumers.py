"""Events the character service applies: deleted accounts (the ownership rows written by earlier releases)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.character.config import CharacterSettings
from services.character.models import Inbox
from services.character.service import erase_user
from services.common.domain_events import UserDeleted
from services.common.events import Consumer, Subscription
from services.common.runtime import ServiceRuntime

consumer: Consumer[CharacterSettings] = Consumer("character", Inbox)


@consumer.on(UserDeleted)
async def erase_collection(settings: CharacterSettings, session: AsyncSession, event: UserDeleted) -> None:
    await erase_user(session, event.user_id, event.deleted_at)


EVENT_TYPES = consumer.topology()


def build(runtime: ServiceRuntime, settings: CharacterSettings | None = None) -> list[Subscription]:
    assert runtime.db is not None
    return [consumer.subscription(runtime.db, settings or CharacterSettings())]
