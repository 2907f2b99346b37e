"""Events the scan service applies: ``user.deleted`` erases jobs, results, event logs, idempotency keys and
the user's claimed characters."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.domain_events import UserDeleted
from services.common.events import Consumer, Subscription
from services.common.jobs import JobEventLog, create_job_log
from services.common.runtime import ServiceRuntime
from services.scan.config import ScanSettings
from services.scan.models import Inbox
from services.scan.reward import erase_claims
from services.scan.service import erase_user

consumer: Consumer[JobEventLog] = Consumer("scan", Inbox)


@consumer.on(UserDeleted)
async def erase_jobs(events: JobEventLog, session: AsyncSession, event: UserDeleted) -> None:
    await erase_user(session, events, event.user_id)
    await erase_claims(session, event.user_id)


EVENT_TYPES = consumer.topology()


def build(runtime: ServiceRuntime, settings: ScanSettings | None = None) -> list[Subscription]:
    settings = settings or ScanSettings()
    events = create_job_log(runtime.common, runtime.name, settings.retention_seconds)
    runtime.on_close(events.close)
    assert runtime.db is not None
    return [consumer.subscription(runtime.db, events)]
