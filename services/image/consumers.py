"""Events the image service applies: ``user.deleted`` erases the user's objects and upload records."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.domain_events import UserDeleted
from services.common.events import Consumer, Subscription
from services.common.runtime import ServiceRuntime
from services.image.config import ImageSettings
from services.image.models import Inbox
from services.image.service import ImageService

consumer: Consumer[ImageService] = Consumer("image", Inbox)


@consumer.on(UserDeleted)
async def erase_uploads(service: ImageService, session: AsyncSession, event: UserDeleted) -> None:
    await service.delete_user(session, event.user_id)


EVENT_TYPES = consumer.topology()


def build(runtime: ServiceRuntime, settings: ImageSettings | None = None) -> list[Subscription]:
    settings = settings or ImageSettings()
    assert runtime.db is not None
    return [consumer.subscription(runtime.db, ImageService.create(runtime.common, settings))]
