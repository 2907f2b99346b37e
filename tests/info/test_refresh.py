"""The refresher: dedup, categories and page images on store; schedule, backoff and the lease;
failures that never touch stored articles; the worker loop and ``eco2 info refresh``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from services.common.config import CommonSettings
from services.common.db import Database
from services.info.articles import RawArticle
from services.info.models import Article, FeedSource
from services.info.providers import Batch, Source
from services.info.refresh import Refresher
from tests.info.conftest import Clock, item, provider_settings, refresher_for, store
from tests.info.fake_providers import FakeNews


async def articles(db: Database, **where: Any) -> dict[str, Any]:
    async with db.session() as session:
        statement = select(Article).filter_by(**where)
        return {a.url: a for a in await session.scalars(statement)}


async def schedule(db: Database, source: str) -> FeedSource:
    async with db.session() as session:
        row = await session.get(FeedSource, source)
        assert row is not None
        return row


def source(refresher: Refresher, source_id: str) -> Source:
    return next(s for s in refresher.sources if s.id == source_id)


async def test_refresh_stores_clean_deduplicated_categorised_articles(
    empty_db: Database, migrated: CommonSettings, fake: FakeNews
) -> None:
    # The portal also reports the feed's expo article: whoever is stored first keeps it.
    fake.naver_extra.append(
        {
            "title": "박람회 (포털)",
            "originallink": fake.page(10),
            "link": fake.page(10),
            "pubDate": "Mon, 19 Jan 2026 18:00:00 +0900",
        }
    )
    async with refresher_for(migrated, provider_settings(fake)) as refresher:
        reports = [await refresher.refresh(s) for s in refresher.sources]
    assert [(r.source, r.status) for r in reports] == [
        ("naver", "stored"),
        ("newsdata", "stored"),
        ("testpaper", "stored"),
    ]
    assert [r.rejected for r in reports] == [4, 1, 1]
    stored = await articles(empty_db)
    assert len(stored) == 5 + 2 + 2  # feed: 4 linked entries, one of them a duplicate, one taken by the portal

    pet = stored[fake.page(2)]
    assert pet.title == '분리배출 "라벨" 떼고 찌그러뜨려야…투명 페트병 새 기준'
    assert pet.snippet == "환경부는 <무색 페트병> 재활용을 위해 라벨을 떼고 & 압착해 배출하라고 밝혔다."
    assert (pet.source, pet.source_name, pet.category) == ("naver", "127.0.0.1", "environment")
    assert pet.id.startswith("naver_")
    assert len(pet.id) == len("naver_") + 12
    assert pet.published_at == datetime(2026, 1, 20, 1, 30, tzinfo=UTC)
    assert pet.thumbnail_url == f"{fake.base}/images/2.jpg?w=600&h=400"  # og:image, made absolute
    assert stored[fake.page(3)].thumbnail_url is None  # page without og:image
    assert stored[fake.page(3)].category == "energy"
    assert stored[fake.page(4)].thumbnail_url is None  # its page redirects to 169.254.169.254: refused
    assert stored[fake.page(4)].category == "ai"
    assert stored[fake.page(6)].published_at == Clock()()  # unreadable date → fetch time

    ev = stored[f"{fake.base}/en/ev-battery?id=7"]  # tracking parameter dropped
    assert (ev.source, ev.source_name, ev.category) == ("newsdata", "The Korea Herald", "energy")
    assert (ev.thumbnail_url, ev.source_icon_url, ev.keywords) == (
        "https://cdn.example.com/ev.jpg",
        "https://i.bytvi.com/domain_icons/koreaherald.png",
        ["ev", "battery"],
    )
    rules = stored[f"{fake.base}/en/waste-rules"]
    assert (rules.thumbnail_url, rules.category, rules.ai_tag) == (None, "environment", "climate change")
    assert rules.video_url == f"{fake.base}/video/1.mp4"

    expo = stored[fake.page(10)]
    assert (expo.source, expo.title) == ("naver", "박람회 (포털)")  # first seen wins across sources
    plain = stored[fake.page(14)]
    assert (plain.source_name, plain.thumbnail_url) == ("테스트 신문", f"{fake.base}/images/14.jpg?w=600&h=400")

    # A second run finds nothing new and fetches no article page again.
    async with refresher_for(migrated, provider_settings(fake)) as again:
        pages_before = len([r for r in fake.requests if r[0] == "naver"])
        report = await again.refresh(source(again, "naver"), force=True)
    assert (report.status, report.new, report.images) == ("stored", 0, 0)
    assert len([r for r in fake.requests if r[0] == "naver"]) == pages_before + 1
    assert len(await articles(empty_db)) == 9


async def test_schedule_interval_and_exponential_backoff(
    empty_db: Database, migrated: CommonSettings, fake: FakeNews
) -> None:
    clock = Clock()
    settings = provider_settings(
        fake, naver_interval_seconds=600, backoff_base_seconds=60, backoff_max_seconds=200, refresh_jitter=0
    )
    async with refresher_for(migrated, settings, clock) as refresher:
        naver = source(refresher, "naver")
        assert await refresher.seconds_until_due() == 0
        assert (await refresher.refresh(naver)).status == "stored"
        assert (await schedule(empty_db, "naver")).next_run_at == clock() + timedelta(seconds=600)
        assert (await refresher.refresh(naver)).status == "skipped"  # not due yet

        fake.mode["naver"] = "500"
        delays = []
        for _ in range(4):
            clock.advance(10_000)
            report = await refresher.refresh(naver)
            assert report.status == "failed"
            assert report.next_run_at is not None
            delays.append((report.next_run_at - clock()).total_seconds())
        assert delays == [60, 120, 200, 200]  # doubling, capped
        row = await schedule(empty_db, "naver")
        assert row.failures == 4
        assert row.last_error is not None
        assert "HTTP 500" in row.last_error

        fake.mode["naver"] = "429"
        clock.advance(10_000)
        report = await refresher.refresh(naver)
        assert report.next_run_at == clock() + timedelta(seconds=200)  # backoff already longer than Retry-After 120

        fake.mode["naver"] = "ok"
        clock.advance(10_000)
        assert (await refresher.refresh(naver)).status == "stored"
        assert (await schedule(empty_db, "naver")).failures == 0


async def test_jitter_spreads_runs_within_its_fraction(
    empty_db: Database, migrated: CommonSettings, fake: FakeNews
) -> None:
    async with refresher_for(migrated, provider_settings(fake, refresh_jitter=0.2)) as refresher:
        naver = source(refresher, "naver")
        spread = []
        for draw in (0.0, 0.5, 1.0):
            refresher.rng = lambda draw=draw: draw
            spread.append((refresher._success_delay(naver), refresher._failure_delay(1, None)))
    assert spread == [(480, 60), (600, 66), (720, 72)]  # interval 600 ± 20 %, backoff + 0..20 %


async def test_retry_after_wins_when_longer(empty_db: Database, migrated: CommonSettings, fake: FakeNews) -> None:
    clock = Clock()
    fake.mode["naver"] = "429"
    async with refresher_for(migrated, provider_settings(fake), clock) as refresher:
        report = await refresher.refresh(source(refresher, "naver"))
    assert report.next_run_at == clock() + timedelta(seconds=120)


@pytest.mark.parametrize("mode", ["500", "garbage", "shape", "hang", "429"])
async def test_a_failing_provider_never_drops_stored_articles(
    empty_db: Database, migrated: CommonSettings, fake: FakeNews, mode: str
) -> None:
    settings = provider_settings(fake, retention_days=30)
    async with refresher_for(migrated, settings) as refresher:
        await refresher.refresh(source(refresher, "naver"))
        await store(empty_db, item(1, source="naver", published=datetime(2025, 6, 1, tzinfo=UTC)))  # past retention
        before = await articles(empty_db)
        fake.mode["naver"] = mode
        report = await refresher.refresh(source(refresher, "naver"), force=True)
    assert report.status == "failed"
    assert report.error
    assert set(await articles(empty_db)) == set(before)
    assert len(before) == 5  # the old one included: pruning follows a success only


async def test_retention_prunes_only_after_success_and_only_that_source(
    empty_db: Database, migrated: CommonSettings, fake: FakeNews
) -> None:
    old = datetime(2025, 11, 1, tzinfo=UTC)
    await store(empty_db, item(1, source="testpaper", published=old), item(2, source="naver", published=old))
    settings = provider_settings(fake, retention_days=30)
    fake.mode["rss"] = "500"
    async with refresher_for(migrated, settings) as refresher:
        feed = source(refresher, "testpaper")
        assert (await refresher.refresh(feed)).pruned == 0
        assert len(await articles(empty_db)) == 2
        fake.mode["rss"] = "ok"
        report = await refresher.refresh(feed, force=True)
    assert report.pruned == 1
    remaining = await articles(empty_db)
    assert {a.source for a in remaining.values() if a.published_at == old} == {"naver"}


class SlowProvider:
    """Holds its fetch until released, to interleave two refreshers."""

    id = "slow"
    fetch_page_images = False

    def __init__(self, n: int) -> None:
        self.n = n
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def fetch(self) -> Batch:
        self.started.set()
        await self.release.wait()
        url = f"https://slow.example.com/{self.n}"
        return Batch([RawArticle(url=url, title=f"느린 기사 {self.n}", published_at=datetime(2026, 1, 1, tzinfo=UTC))])


def slow_refresher(db: Database, base: Refresher, provider: SlowProvider, clock: Clock) -> Refresher:
    return Refresher(
        db, base.kv, [Source(provider, 600)], base.settings, base.page_images, clock=clock, rng=lambda: 0.5
    )


async def test_one_refresher_per_source_and_a_stale_one_writes_nothing(
    empty_db: Database, migrated: CommonSettings, fake: FakeNews
) -> None:
    clock = Clock()
    async with refresher_for(migrated, provider_settings(fake, lease_seconds=60), clock) as base:
        first, second = SlowProvider(1), SlowProvider(2)
        a, b = slow_refresher(empty_db, base, first, clock), slow_refresher(empty_db, base, second, clock)
        await a.ensure_rows()
        running = asyncio.create_task(a.refresh(a.sources[0]))
        await first.started.wait()
        # While A holds the lease, B (another replica) cannot start the same source, forced or not.
        assert (await b.refresh(b.sources[0], force=True)).status == "skipped"
        # A stalls past its lease; B takes over and stores.
        clock.advance(61)
        second.release.set()
        assert (await b.refresh(b.sources[0], force=True)).status == "stored"
        first.release.set()
        late = await running
    assert (late.status, late.error) == ("skipped", "lease lost to another refresher")
    assert set(await articles(empty_db)) == {"https://slow.example.com/2"}  # A's late results discarded
    row = await schedule(empty_db, "slow")
    assert (row.fence, row.lease_owner) == (2, None)


async def test_concurrent_claims_let_exactly_one_run(
    empty_db: Database, migrated: CommonSettings, fake: FakeNews
) -> None:
    clock = Clock()
    async with refresher_for(migrated, provider_settings(fake), clock) as base:
        providers = [SlowProvider(n) for n in range(4)]
        refreshers = [slow_refresher(empty_db, base, p, clock) for p in providers]
        await refreshers[0].ensure_rows()
        for p in providers:
            p.release.set()
        reports = await asyncio.gather(*(r.refresh(r.sources[0]) for r in refreshers))
    assert sorted(r.status for r in reports) == ["skipped", "skipped", "skipped", "stored"]
    assert len(await articles(empty_db)) == 1


async def test_worker_loop_refreshes_due_sources_until_stopped(
    empty_db: Database, migrated: CommonSettings, fake: FakeNews
) -> None:
    async with refresher_for(migrated, provider_settings(fake, poll_seconds=0.05)) as refresher:
        stop = asyncio.Event()
        task = asyncio.create_task(refresher.run(stop))
        for _ in range(200):
            rows = [await schedule(empty_db, s.id) for s in refresher.sources]
            if all(r.last_success_at for r in rows):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 5)
    assert all(r.last_success_at for r in rows)
    async with empty_db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Article)) == 9


def test_eco2_info_refresh_command(
    empty_db: Database, migrated: CommonSettings, fake: FakeNews, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.cli import app

    env = {
        "DATABASE_URL": migrated.database_url or "",
        "ECO2_DATA_DIR": str(migrated.data_dir),
        "REDIS_URL": migrated.redis_url or "",
        "REDIS_KEY_PREFIX": migrated.redis_key_prefix,
        "ENVIRONMENT": "test",
        "INTERNAL_TOKEN": migrated.internal_token,
        "INFO_RSS_FEEDS": f'[{{"id": "testpaper", "url": "{fake.base}/feed.xml"}}]',
        "INFO_FETCH_ALLOW_NETWORKS": "127.0.0.1/32",
        "LOG_LEVEL": "WARNING",
    }
    for key, value in env.items():
        if value:
            monkeypatch.setenv(key, value)
        else:
            monkeypatch.delenv(key, raising=False)
    runner = CliRunner()
    result = runner.invoke(app, ["info", "refresh", "--source", "testpaper"])
    assert result.exit_code == 0, result.output
    assert "stored" in result.output
    unknown = runner.invoke(app, ["info", "refresh", "--source", "nope"])
    assert unknown.exit_code == 1
    assert "no such source" in unknown.output
    monkeypatch.setenv("INFO_RSS_FEEDS", f'[{{"id": "testpaper", "url": "{fake.base}/nothing.xml"}}]')
    failed = runner.invoke(app, ["info", "refresh"])
    assert failed.exit_code == 1
    assert "failed" in failed.output


async def test_a_hanging_provider_never_blocks_the_feed(
    empty_db: Database, migrated: CommonSettings, fake: FakeNews, client_factory: Any
) -> None:
    await store(empty_db, item(1), item(2))
    fake.mode["rss"] = "hang"  # answers after 3 s; the refresher gives up after 1 s
    async with refresher_for(migrated, provider_settings(fake)) as refresher, client_factory() as client:
        refreshing = asyncio.create_task(refresher.refresh(source(refresher, "testpaper")))
        await asyncio.sleep(0.1)  # the refresh is now waiting on the provider
        started = asyncio.get_running_loop().time()
        page = (await client.get("/api/v1/info/news", params={"limit": 10})).json()
        assert asyncio.get_running_loop().time() - started < 0.5
        assert not refreshing.done()
        assert [a["title"] for a in page["articles"]] == ["기사 2", "기사 1"]
        report = await refreshing
    assert (report.status, report.error) == ("failed", "ProviderError: timeout: no complete answer from "
                                             f"{fake.base}/feed.xml in time")  # fmt: skip
