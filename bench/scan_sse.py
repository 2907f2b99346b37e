"""Benchmark (b): N concurrent SSE streams held open with keepalives; extra RSS of the serving process.

Jobs are submitted with no worker running, so every stream stays open on a queued job and receives
only keepalives (every 15 s). The API process's RSS is sampled before the streams open and while they
are held. Goal (issue 4): ≤ 150 MB extra for 2,000 streams.

    uv run python bench/scan_sse.py [--streams 2000] [--hold 40]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rawsse import StreamError, sse_frames
from bench.scan_env import Env, rss_mb, stack, tokens
from bench.scan_load import upload


async def main(streams: int, hold: float, env: Env) -> None:
    users = max(1, streams // 10)
    limits = httpx.Limits(max_connections=streams + 200, max_keepalive_connections=streams + 200)
    async with httpx.AsyncClient(base_url=env.base, limits=limits, timeout=120) as client:
        headers = tokens(env, users)
        gate = asyncio.Semaphore(40)
        raw = httpx.AsyncClient(timeout=60)

        async def prepare(h: dict[str, str]) -> list[tuple[dict[str, str], str]]:
            async with gate:
                image = await upload(client, raw, h)
                jobs = []
                for _ in range(10):
                    r = await client.post("/api/v1/scan", json={"image_url": image, "user_input": "생수병"}, headers=h)
                    r.raise_for_status()
                    jobs.append((h, r.json()["stream_url"]))
                return jobs

        print(f"submitting {users * 10} jobs (no worker: they stay queued) …", flush=True)
        jobs = [job for batch in await asyncio.gather(*(prepare(h) for h in headers)) for job in batch][:streams]
        await raw.aclose()
        pid = env.procs["api"].pid
        gc.collect()
        await asyncio.sleep(3)
        baseline = rss_mb(pid)
        opened = asyncio.Event()
        counts: collections.Counter[str] = collections.Counter()
        ready = 0
        stop = asyncio.Event()

        async def follow(h: dict[str, str], url: str) -> None:
            nonlocal ready
            first = True
            try:
                async for event, _ in sse_frames(env.base, url, h):
                    counts[event] += 1
                    if first:
                        first = False
                        ready += 1
                        if ready == len(jobs):
                            opened.set()
                    if stop.is_set():
                        return
            except (OSError, StreamError) as exc:
                counts[f"error:{type(exc).__name__}:{str(exc)[:40]}"] += 1

        print(f"opening {len(jobs)} streams …", flush=True)
        started = time.perf_counter()
        tasks = [asyncio.create_task(follow(h, url)) for h, url in jobs]
        try:
            await asyncio.wait_for(opened.wait(), timeout=120)
        except TimeoutError:
            print(f"only {ready} streams opened within 120 s")
        open_seconds = time.perf_counter() - started
        peak = rss_mb(pid)
        end = time.monotonic() + hold
        while time.monotonic() < end:
            await asyncio.sleep(1)
            peak = max(peak, rss_mb(pid))
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    print(f"\nstreams open: {ready}/{len(jobs)} (all open after {open_seconds:.1f} s), held {hold:.0f} s")
    print(f"frames received: {dict(counts)}")
    print(f"API process RSS: {baseline:.1f} MB before, peak {peak:.1f} MB while held → extra {peak - baseline:.1f} MB "
          f"({(peak - baseline) * 1024 / max(ready, 1):.1f} KB per stream)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--hold", type=float, default=40.0)
    args = parser.parse_args()
    with stack(worker_concurrency=16, vision=4.5, answer=6.7, rate_per_window=1000) as environment:
        asyncio.run(main(args.streams, args.hold, environment))
