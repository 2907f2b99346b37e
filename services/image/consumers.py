"""Events the image service applies: ``user.deleted`` erases the user's objects and upload records."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.blobs import create_blob_store
from services.common.events import Event, Subscription, idempotent_handler
from services.common.runtime import ServiceRuntime
from services.image.config import ImageSettings
from services.image.models import Inbox
from services.image.service import ImageService

EVENT_TYPES: dict[str, tuple[str, ...]] = {"image": ("user.deleted",)}


def build(runtime: ServiceRuntime, settings: ImageSettings | None = None) -> list[Subscription]:
    settings = settings or ImageSettings()
    service = ImageService(settings, create_blob_store(runtime.common, settings), settings.hosts(runtime.common))
    assert runtime.db is not None

    async def apply(session: AsyncSession, event: Event) -> None:
        await service.delete_user(session, uuid.UUID(str(event.payload["user_id"])))

    return [Subscription("image", EVENT_TYPES["image"], idempotent_handler(runtime.db, Inbox, "image", apply))]
