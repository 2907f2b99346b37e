"""The restore drill: point-in-time recovery of the app's database from barman-cloud backups.

1. A private PostgreSQL archives its WAL with ``barman-cloud-wal-archive`` to moto's S3 — what the
   production cluster does (platform/, docs/runbooks/restore.md).
2. The app (``eco2 dev`` in its own process: every service, relay, consumers, scan worker) runs its
   migrations on it, users sign up through the dev login and scan things through the HTTP API;
   characters and points arrive through the outbox → consumers path.
3. Base backup (``barman-cloud-backup``) while the app runs; more writes; the target time is read
   from the database clock; more writes after it (new users, scans, a renamed profile).
4. The source server is killed. ``barman-cloud-restore`` fetches the base backup into a fresh data
   directory, which recovers to the target time with ``barman-cloud-wal-restore`` and promotes.
5. The app starts on the restored server: every user, job, result, character and point written up to
   the target is there, nothing after it; events that were in flight at the target are delivered
   now; then *every* event is published again, and the consumers' inboxes apply none of them twice.

It prints what it restored and how long each step took (the runbook quotes the figures). Run it with
``make drill``; ``.ci/run`` does. It needs only the PostgreSQL server binaries and PyPI.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from typing import Any

import boto3
import httpx
import pytest

from tests.durability.app import Seen, User, app_process, awarded, rename, scan, seen_by, sign_up
from tests.durability.backup import REGION, ObjectStore, install_tools, wait_archived
from tests.support.events import eventually
from tests.support.images import moto_s3
from tests.support.instances import PrivatePostgres, give_to_server_user, shared_dir

pytestmark = [pytest.mark.drill, pytest.mark.slow]

DATABASE = "eco2"
NOTES = ("라벨 뗀 생수병", "헹군 소주병", "신문지", "찌그러뜨린 철캔", "라벨 뗀 생수병", "이게 뭔지 모르겠어요")
OUTBOXES = ("auth", "my", "character", "scan")
COUNTED = {
    "users": "SELECT count(*) FROM auth.accounts",
    "sessions": "SELECT count(*) FROM auth.sessions",
    "profiles": "SELECT count(*) FROM my.profiles",
    "owned characters": "SELECT count(*) FROM my.owned_characters",
    "ledger entries": "SELECT count(*) FROM my.point_ledger",
    "points": "SELECT coalesce(sum(delta), 0) FROM my.point_ledger",
    "scan jobs": "SELECT count(*) FROM scan.jobs",
    "claimed characters": "SELECT count(*) FROM scan.claimed_characters",
    "inbox rows": "SELECT (SELECT count(*) FROM auth.inbox) + (SELECT count(*) FROM my.inbox)"
    " + (SELECT count(*) FROM character.inbox) + (SELECT count(*) FROM scan.inbox)",
}


class Ledger:
    """What was written, by whom, and when relative to the target time."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.nickname: dict[str, str] = {}
        self.results: dict[str, dict[str, Any]] = {}  # job id -> result as the client got it
        self.after_target = False
        self.late_users: set[str] = set()
        self.late_jobs: set[str] = set()

    async def sign_up(self, client: httpx.AsyncClient, login: str) -> User:
        user = await sign_up(client, login, f"드릴{login}")
        self.users[login] = user
        self.nickname[login] = f"드릴{login}"
        if self.after_target:
            self.late_users.add(login)
        return user

    async def scan(self, client: httpx.AsyncClient, user: User, note: str) -> None:
        result = await scan(client, user, note)
        assert result["status"] == "completed", result
        self.results[user.jobs[-1]] = result
        if self.after_target:
            self.late_jobs.add(user.jobs[-1])

    async def rename(self, client: httpx.AsyncClient, user: User, nickname: str) -> None:
        await rename(client, user, nickname)
        if not self.after_target:
            self.nickname[user.login] = nickname

    def expected(self, login: str) -> Seen:
        """What the user must see after the restore: everything up to the target, nothing after."""
        user = self.users[login]
        kept = [self.results[job] for job in user.jobs if job not in self.late_jobs]
        received = [r["reward"] for r in kept if r.get("reward") and r["reward"]["received"]]
        rewarded = [r for r in kept if r.get("reward")]
        return Seen(
            nickname=self.nickname[login],
            characters=tuple(sorted(["이코", *(reward["name"] for reward in received)])),
            balance=sum(awarded(r) for r in kept),
            ledger=len(rewarded) + len(received),
            jobs=tuple(
                (job, 404, "JOB_NOT_FOUND", 0)
                if job in self.late_jobs
                else (job, 200, "completed", awarded(self.results[job]))
                for job in user.jobs
            ),
        )


async def write_phase(client: httpx.AsyncClient, ledger: Ledger, new_users: list[str], returning: list[str]) -> None:
    """New users sign up and scan twice; returning users scan once more."""
    for index, login in enumerate(new_users):
        user = await ledger.sign_up(client, login)
        for note in (NOTES[index % len(NOTES)], NOTES[(index + 2) % len(NOTES)]):
            await ledger.scan(client, user, note)
    for index, login in enumerate(returning):
        await ledger.scan(client, ledger.users[login], NOTES[(index + 3) % len(NOTES)])


def counts(pg: PrivatePostgres) -> dict[str, int]:
    return {name: int(pg.psql(sql, DATABASE)) for name, sql in COUNTED.items()}


def republish_everything(pg: PrivatePostgres) -> int:
    """Mark every outbox row unpublished: the relay sends each event again."""
    total = 0
    for schema in OUTBOXES:
        sql = f"WITH u AS (UPDATE {schema}.outbox SET published_at = NULL RETURNING 1) SELECT count(*) FROM u"
        total += int(pg.psql(sql, DATABASE))
    return total


def unpublished(pg: PrivatePostgres) -> int:
    union = " UNION ALL ".join(
        f"SELECT count(*) AS n FROM {schema}.outbox WHERE published_at IS NULL" for schema in OUTBOXES
    )
    return int(pg.psql(f"SELECT sum(n) FROM ({union}) t", DATABASE))


async def test_point_in_time_restore_keeps_exactly_the_data_up_to_the_target() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log would bury the report
    work = shared_dir("eco2-drill-")
    timings: dict[str, float] = {}
    started = time.monotonic()
    tools = install_tools(work / "tools")
    timings["install barman-cloud"] = time.monotonic() - started
    source = restored = None
    try:
        with moto_s3() as endpoint:
            bucket = "eco2-drill-backups"
            boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            ).create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
            store = ObjectStore(tools, endpoint, bucket)
            source = PrivatePostgres(work / "source", env=store.env)
            source.init({"wal_level": "replica", "archive_mode": "on", "archive_command": f"'{store.archive_command}'"})
            source.start()
            source.psql(f"CREATE DATABASE {DATABASE}")

            ledger = Ledger()
            app_dir = work / "app"  # signing keys and uploaded photos: kept across the restore
            with app_process(source.url(DATABASE), app_dir, work / "app-source.log") as base:
                async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                    step = time.monotonic()
                    await write_phase(client, ledger, [f"a{i}" for i in range(6)], [])
                    timings["writes before the base backup"] = time.monotonic() - step
                    step = time.monotonic()
                    backup_id = await asyncio.to_thread(store.base_backup, source)
                    timings["base backup"] = time.monotonic() - step
                    await write_phase(client, ledger, [f"b{i}" for i in range(6)], [f"a{i}" for i in range(6)])
                    await ledger.rename(client, ledger.users["a0"], "시점이전이름")
                    target = source.psql("SELECT clock_timestamp()")
                    ledger.after_target = True
                    await write_phase(client, ledger, [f"c{i}" for i in range(4)], [*ledger.nickname][:12])
                    await ledger.rename(client, ledger.users["a0"], "시점이후이름")
                    await ledger.rename(client, ledger.users["b1"], "시점이후이름")
            before = counts(source)
            wal_end = wait_archived(source)
            wal_files = store.wal_segments()
            source.stop("immediate")  # the disaster: from here on only the object store has the data

            restored = PrivatePostgres(work / "restored", env=store.env)
            step = time.monotonic()
            await asyncio.to_thread(store.restore, backup_id, restored.data_dir)
            timings["restore: fetch base backup"] = time.monotonic() - step
            restored.data_dir.chmod(0o700)
            restored.configure(
                {
                    "restore_command": f"'{store.restore_command}'",
                    "recovery_target_time": f"'{target}'",
                    "recovery_target_action": "'promote'",
                    # A restored cluster must never archive into the source's WAL history.
                    "archive_mode": "off",
                }
            )
            (restored.data_dir / "recovery.signal").touch()
            give_to_server_user(restored.data_dir)
            replay = time.monotonic()
            restored.start()
            while restored.psql("SELECT pg_is_in_recovery()") == "t":
                assert time.monotonic() - replay < 300, restored.log_tail()
                await asyncio.sleep(0.1)
            timings["restore: WAL replay to target + promote"] = time.monotonic() - replay
            timings["restore: total"] = time.monotonic() - step
            at_restore = counts(restored)
            in_flight = unpublished(restored)
            size = restored.psql(f"SELECT pg_size_pretty(pg_database_size('{DATABASE}'))")
            cluster_size = restored.psql("SELECT pg_size_pretty(sum(pg_database_size(oid))) FROM pg_database")

            with app_process(restored.url(DATABASE), app_dir, work / "app-restored.log") as base:
                async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                    kept = [login for login in ledger.users if login not in ledger.late_users]
                    want = {login: ledger.expected(login) for login in kept}

                    async def everything_as_at_target() -> bool:
                        return all(
                            [await seen_by(client, ledger.users[u], ledger.users[u].jobs) == want[u] for u in kept]
                        )

                    # Events committed before the target but not yet delivered are delivered now.
                    await eventually(everything_as_at_target, timeout=60, interval=0.5)
                    settled = counts(restored)
                    # Publish every event ever written again, as a broker redelivering everything would.
                    republished = republish_everything(restored)

                    async def all_published() -> bool:
                        return unpublished(restored) == 0

                    await eventually(all_published, timeout=60, interval=0.2)
                    await asyncio.sleep(2.0)  # a second application would have landed by now
                    for login in kept:
                        assert await seen_by(client, ledger.users[login], ledger.users[login].jobs) == want[login]
                    after_replay = counts(restored)
                    late_accounts = int(
                        restored.psql(
                            "SELECT count(*) FROM auth.accounts WHERE id IN ("
                            + ",".join(f"'{ledger.users[u].id}'" for u in ledger.late_users)
                            + ")",
                            DATABASE,
                        )
                    )
    finally:
        for server in (source, restored):
            if server is not None:
                server.stop("immediate")
        shutil.rmtree(work, ignore_errors=True)

    assert after_replay == settled, "replaying every event changed the data"
    assert late_accounts == 0
    assert after_replay["users"] == len(ledger.users) - len(ledger.late_users)
    assert after_replay["scan jobs"] == len(ledger.results) - len(ledger.late_jobs)
    assert before["scan jobs"] == len(ledger.results)

    lines = [
        "",
        "restore drill (barman-cloud → moto S3, PostgreSQL point-in-time recovery):",
        f"  target time {target}; base backup {backup_id}; WAL archived up to {wal_end} ({wal_files} files)",
        f"  restored database {DATABASE}: {size} (whole cluster {cluster_size})",
        f"  {'':<18}{'source at end':>14}{'restored':>10}{'settled':>9}{'replayed':>9}",
        *(
            f"  {name:<18}{before[name]:>14}{at_restore[name]:>10}{settled[name]:>9}{after_replay[name]:>9}"
            for name in COUNTED
        ),
        f"  written after the target and absent: {len(ledger.late_users)} users, {len(ledger.late_jobs)} scans, 2 renames",
        f"  events in flight at the target (delivered after restore): {in_flight}; republished and ignored: {republished}",
        *(f"  {name:<40}{seconds:7.1f} s" for name, seconds in timings.items()),
    ]
    print("\n".join(lines))
