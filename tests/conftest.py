"""Test modes. The same suite runs twice:

- embedded (default): SQLite files, in-process cache and bus; needs nothing installed.
- real (``ECO2_TEST_MODE=real``): PostgreSQL, Redis and RabbitMQ on this machine (URLs below may be
  overridden). Each test session gets its own PostgreSQL database and Redis key prefix, so runs do
  not see each other's data.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from services.common.clock import CLOCK
from services.common.config import CommonSettings, Environment
from services.common.db import database_url_for
from services.common.migrations import upgrade
from services.registry import SERVICES

# ECO2_RECORD_QUERIES=<file>: write the SQL this run issued (the release's query corpus, docs/migrations.md).
pytest_plugins = ["tests.migrations.recorder"]

MODE = os.environ.get("ECO2_TEST_MODE", "embedded")
REAL = MODE == "real"
DRILL = os.environ.get("ECO2_DRILL") == "1"
PG_ADMIN_URL = os.environ.get("ECO2_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("ECO2_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("ECO2_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"
TEST_ORIGINS = ["https://app.eco2.test", "https://localhost:5173"]
# Every in-process test client comes from 127.0.0.1, and in real mode the throttles' counters live in
# Redis for the whole run: the suite's many logins would trip the production defaults. The throttle
# tests set their own limits and client addresses.
for _kind in ("LOGIN", "CALLBACK", "REFRESH"):
    os.environ.setdefault(f"AUTH_{_kind}_PER_ADDRESS", "1000000")
    os.environ.setdefault(f"AUTH_{_kind}_GLOBAL", "1000000")


def pytest_report_header() -> str:
    return f"eco2 test mode: {MODE}"


INFRA_DIRS = ("tests/infra/", "tests/deploy/")  # Terraform, Ansible, scripts, manifests, image, workflows


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Infrastructure checks are their own CI step (``make test-infra``); ``make test`` leaves them out.
    for item in items:
        if item.nodeid.startswith(INFRA_DIRS):
            item.add_marker(pytest.mark.infra)
    # The restore drill starts its own servers and takes a minute or two: it runs as its own CI step
    # (`make drill`), not inside both test modes.
    if not DRILL:
        skip_drill = pytest.mark.skip(reason="the restore drill runs on its own: make drill (ECO2_DRILL=1)")
        for item in items:
            if "drill" in item.keywords:
                item.add_marker(skip_drill)
    if REAL:
        return
    skip = pytest.mark.skip(reason="needs ECO2_TEST_MODE=real (PostgreSQL, Redis, RabbitMQ)")
    for item in items:
        if "real_only" in item.keywords:
            item.add_marker(skip)


class ClockControl:
    """Moves the process's clock (``services.common.clock.CLOCK``) instead of sleeping."""

    def advance(self, seconds: float) -> None:
        """For expiries this code decides itself (tokens, the embedded store's TTLs)."""
        CLOCK.advance(seconds)

    async def advance_stores(self, seconds: float) -> None:
        """Also for TTLs kept by the stores: Redis keeps its own time, so real mode waits for it."""
        CLOCK.advance(seconds)
        if REAL:
            await asyncio.sleep(seconds)


@pytest.fixture
def clock() -> Iterator[ClockControl]:
    yield ClockControl()
    CLOCK.reset()


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def database_url(run_id: str) -> Iterator[str | None]:
    if not REAL:
        yield None
        return
    name = f"eco2_test_{run_id}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    yield f"{base}/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def common_settings(
    tmp_path_factory: pytest.TempPathFactory, database_url: str | None, run_id: str
) -> Iterator[CommonSettings]:
    settings = CommonSettings(
        environment=Environment.TEST,
        database_url=database_url,
        redis_url=REDIS_URL if REAL else None,
        redis_key_prefix=f"eco2test:{run_id}:",
        rabbitmq_url=RABBITMQ_URL if REAL else None,
        data_dir=tmp_path_factory.mktemp("eco2-data"),
        public_api_base_url="https://api.eco2.test",
        cors_allowed_origins=TEST_ORIGINS,
        log_json=True,
        log_level="WARNING",
        internal_token="test-internal-token",
        # Exchanges and queues of this run only: other runs (and other engineers) share the broker.
        events_namespace=f"eco2test-{run_id}",
        events_max_deliveries=3,
    )
    yield settings
    if REAL:
        from tests.support.events import delete_broker_objects

        asyncio.run(delete_broker_objects(settings))


@pytest.fixture(scope="session")
def migrated(common_settings: CommonSettings) -> CommonSettings:
    """Every service's migrations applied once per session (the real schema, not create_all)."""
    for name, entry in SERVICES.items():
        if entry.has_migrations:
            upgrade(name, database_url_for(name, common_settings.database_url, common_settings.data_dir))
    return common_settings
