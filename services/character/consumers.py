"""Events the character service applies: finished scans (rewards) and deleted accounts."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.character.config import CharacterSettings
from services.character.models import Inbox
from services.character.service import ScanOutcome, decide, erase_user
from services.common.events import Event, Subscription, idempotent_handler
from services.common.runtime import ServiceRuntime

CONSUMER = "character"
EVENT_TYPES: dict[str, tuple[str, ...]] = {CONSUMER: ("scan.completed", "user.deleted")}


def build(runtime: ServiceRuntime, settings: CharacterSettings | None = None) -> list[Subscription]:
    assert runtime.db is not None
    rewards_enabled = (settings or CharacterSettings()).rewards_enabled

    async def apply(session: AsyncSession, event: Event) -> None:
        if event.type == "scan.completed":
            # Same decision as the internal endpoint; a job decided there is only recalled here.
            await decide(session, ScanOutcome.from_payload(event.payload), rewards_enabled=rewards_enabled)
        elif event.type == "user.deleted":
            user_id = uuid.UUID(str(event.payload["user_id"]))
            await erase_user(session, user_id, event.payload.get("deleted_at"))

    return [Subscription(CONSUMER, EVENT_TYPES[CONSUMER], idempotent_handler(runtime.db, Inbox, CONSUMER, apply))]
