"""What a service process holds while it runs: settings, database, key-value store, token verifier.

Built in the app's lifespan; domain code reaches it through the dependencies in ``deps.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from services.common.config import CommonSettings
from services.common.db import Database, database_url_for
from services.common.kv import KeyValueStore, create_kv
from services.common.logging import get_logger
from services.common.security import DirectoryKeySet, HttpKeySet, KeySet, Revocations, TokenVerifier

log = get_logger("eco2.runtime")
ReadyCheck = Callable[[], Awaitable[None]]


def keys_directory(common: CommonSettings) -> str:
    return str(common.data_dir / "keys")


class ServiceRuntime:
    def __init__(self, name: str, schema: str | None, common: CommonSettings) -> None:
        self.name = name
        self.common = common
        self.db: Database | None = (
            Database(database_url_for(name, common.database_url, common.data_dir), schema) if schema else None
        )
        self.kv: KeyValueStore = create_kv(common.redis_url, common.redis_key_prefix)
        self.revocations = Revocations(self.kv)
        keyset: KeySet = HttpKeySet(common.jwks_url) if common.jwks_url else DirectoryKeySet(common.data_dir / "keys")
        self.verifier = TokenVerifier(
            keyset,
            self.revocations,
            issuer=common.issuer,
            audience=common.jwt_audience,
            leeway=common.jwt_leeway_seconds,
        )
        self.ready_checks: dict[str, ReadyCheck] = {"kv": self.kv.ping}
        if self.db is not None:
            self.ready_checks["database"] = self.db.ping
        self._closers: list[Callable[[], Awaitable[None]]] = []

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        self._closers.append(closer)

    async def readiness(self, timeout: float = 2.0) -> dict[str, str]:
        async def run(check: ReadyCheck) -> str:
            try:
                await asyncio.wait_for(check(), timeout)
            except Exception as exc:
                log.warning("ready_check_failed", service=self.name, error=repr(exc))
                return "error"
            return "ok"

        names = list(self.ready_checks)
        results = await asyncio.gather(*(run(self.ready_checks[n]) for n in names))
        return dict(zip(names, results, strict=True))

    async def close(self) -> None:
        for closer in reversed(self._closers):
            await closer()
        await self.kv.close()
        if self.db is not None:
            await self.db.dispose()
