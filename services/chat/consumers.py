"""Events the chat service applies: ``user.deleted`` erases chats, messages, jobs and job event logs."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.chat.config import ChatSettings
from services.chat.jobs import erase_user
from services.chat.models import Inbox
from services.common.domain_events import UserDeleted
from services.common.events import Consumer, Subscription
from services.common.jobs import JobEventLog, create_job_log
from services.common.runtime import ServiceRuntime

consumer: Consumer[JobEventLog] = Consumer("chat", Inbox)


@consumer.on(UserDeleted)
async def erase_chats(events: JobEventLog, session: AsyncSession, event: UserDeleted) -> None:
    await erase_user(session, events, event.user_id)


EVENT_TYPES = consumer.topology()


def build(runtime: ServiceRuntime, settings: ChatSettings | None = None) -> list[Subscription]:
    settings = settings or ChatSettings()
    events = create_job_log(runtime.common, runtime.name, settings.retention_seconds)
    runtime.on_close(events.close)
    assert runtime.db is not None
    return [consumer.subscription(runtime.db, events)]
