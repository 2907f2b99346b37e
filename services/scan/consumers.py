"""Events the scan service applies: ``user.deleted`` erases jobs, results, event logs, idempotency keys."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.events import Event, Subscription, idempotent_handler
from services.common.jobs import create_job_log
from services.common.runtime import ServiceRuntime
from services.scan.config import ScanSettings
from services.scan.models import Inbox
from services.scan.service import erase_user

EVENT_TYPES: dict[str, tuple[str, ...]] = {"scan": ("user.deleted",)}


def build(runtime: ServiceRuntime, settings: ScanSettings | None = None) -> list[Subscription]:
    settings = settings or ScanSettings()
    events = create_job_log(runtime.common, "scan", settings.retention_seconds)
    runtime.on_close(events.close)
    assert runtime.db is not None

    async def apply(session: AsyncSession, event: Event) -> None:
        await erase_user(session, events, uuid.UUID(str(event.payload["user_id"])))

    return [Subscription("scan", EVENT_TYPES["scan"], idempotent_handler(runtime.db, Inbox, "scan", apply))]
