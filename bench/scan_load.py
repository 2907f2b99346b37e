"""Benchmark (a): N concurrent users, each submitting a scan, following its SSE stream to ``done`` and
fetching the result, for several cycles, in real mode on this machine, with the fake model's latency
set to vision 4.5 s / answer 6.7 s.

Prints completion %, submit latency p50/p95, pipeline overhead (submit → ``done`` received, minus the
model time) p50/p99, and errors by kind. Goals (issue 4): 100 %, p95 ≤ 50 ms, overhead p99 ≤ 100 ms.

    uv run python bench/scan_load.py [--users 1000] [--cycles 2] [--worker-concurrency 1200]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rawsse import StreamError, request, sse_frames
from bench.scan_env import Env, rss_mb, stack, tokens
from tests.support.images import PNG


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def upload(client: httpx.AsyncClient, raw: httpx.AsyncClient, headers: dict[str, str]) -> str:
    issued = (await client.post("/api/v1/images/scan", json={"filename": "b.png", "content_type": "image/png"},
                                headers=headers)).json()  # fmt: skip
    # Straight to S3 (moto) with only Content-Type, as the mobile client does.
    put = await raw.put(issued["upload_url"], content=PNG, headers={"Content-Type": "image/png"})
    put.raise_for_status()
    callback = await client.post("/api/v1/images/scan/callback", json={"key": issued["key"]}, headers=headers)
    callback.raise_for_status()
    return str(issued["cdn_url"])


async def one_scan(base: str, headers: dict[str, str], image_url: str, model_time: float,
                   stats: dict[str, list[float]], errors: collections.Counter[str]) -> bool:  # fmt: skip
    body = json.dumps({"image_url": image_url, "user_input": "생수병"}).encode()
    started = time.perf_counter()
    try:
        status, _, payload = await request(base, "POST", "/api/v1/scan", headers, body)
    except OSError as exc:
        errors[f"submit:{type(exc).__name__}"] += 1
        return False
    stats["submit"].append(time.perf_counter() - started)
    if status != 202:
        errors[f"submit:{status}:{json.loads(payload or b'{}').get('code')}"] += 1
        return False
    job = json.loads(payload)
    done_at = None
    try:
        async for event, data in sse_frames(base, job["stream_url"], headers):
            if event == "done":
                done_at = time.perf_counter()
                if json.loads(data)["status"] != "completed":
                    errors["done:failed"] += 1
                break
            if event == "error":
                errors[f"stream:error:{json.loads(data)['error']}"] += 1
                break
    except (OSError, StreamError) as exc:
        errors[f"stream:{type(exc).__name__}"] += 1
    if done_at is None:
        errors["stream:no_done"] += 1
    else:
        stats["total"].append(done_at - started)
        stats["overhead"].append(done_at - started - model_time)
    try:
        status, _, payload = await request(base, "GET", job["result_url"], headers)
    except OSError as exc:
        errors[f"result:{type(exc).__name__}"] += 1
        return False
    if status != 200:
        errors[f"result:{status}"] += 1
        return False
    result = json.loads(payload)
    if result["status"] != "completed":
        errors[f"result:failed:{result['error']['code']}"] += 1
        return False
    return done_at is not None


async def main(users: int, cycles: int, ramp: float, env: Env) -> None:
    async with httpx.AsyncClient(base_url=env.base, timeout=60) as client, httpx.AsyncClient(timeout=60) as raw:
        headers = tokens(env, users)
        semaphore = asyncio.Semaphore(50)

        async def prepared(h: dict[str, str]) -> str:
            async with semaphore:
                return await upload(client, raw, h)

        print(f"uploading {users} images …", flush=True)
        images = await asyncio.gather(*(prepared(h) for h in headers))
        env.start_worker()
        # Warm-up: one scan end to end, so the clock starts with the worker consuming.
        warm: collections.Counter[str] = collections.Counter()
        for _ in range(60):
            if await one_scan(env.base, headers[0], images[0], 0, collections.defaultdict(list), warm):
                break
        api_pids = [p.pid for name, p in env.procs.items() if name.startswith("api")]
        worker_pid = env.procs["worker"].pid
        rss_before = (sum(rss_mb(pid) for pid in api_pids), rss_mb(worker_pid))
        stats: dict[str, list[float]] = collections.defaultdict(list)
        errors: collections.Counter[str] = collections.Counter()
        model_time = env.vision + env.answer
        peak = [0.0, 0.0]

        async def sample() -> None:
            while True:
                peak[0] = max(peak[0], sum(rss_mb(pid) for pid in api_pids))
                peak[1] = max(peak[1], rss_mb(worker_pid))
                await asyncio.sleep(0.5)

        async def user(h: dict[str, str], image: str) -> int:
            await asyncio.sleep(random.uniform(0, ramp))  # users arrive over the ramp, then loop back to back
            ok = 0
            for _ in range(cycles):
                ok += await one_scan(env.base, h, image, model_time, stats, errors)
            return ok

        print(f"{time.strftime('%H:%M:%S')} running {users} users × {cycles} cycles …", flush=True)
        sampler = asyncio.create_task(sample())
        wall = time.perf_counter()
        completed = sum(await asyncio.gather(*(user(h, i) for h, i in zip(headers, images, strict=True))))
        wall = time.perf_counter() - wall
        sampler.cancel()
    attempts = users * cycles
    ms = 1000
    print(f"\nscans: {attempts} ({users} users × {cycles}, arrivals over {ramp:.0f} s), wall {wall:.1f} s, "
          f"model time per scan {model_time:.1f} s")  # fmt: skip
    print(f"completion: {completed}/{attempts} = {100 * completed / attempts:.2f} %")
    print(f"submit latency: p50 {pct(stats['submit'], 50) * ms:.1f} ms, p95 {pct(stats['submit'], 95) * ms:.1f} ms, "
          f"max {max(stats['submit'] or [0]) * ms:.1f} ms")  # fmt: skip
    print(f"submit → done: p50 {pct(stats['total'], 50):.3f} s, p99 {pct(stats['total'], 99):.3f} s")
    print(f"pipeline overhead beyond model time: p50 {pct(stats['overhead'], 50) * ms:.1f} ms, "
          f"p99 {pct(stats['overhead'], 99) * ms:.1f} ms, mean {statistics.fmean(stats['overhead'] or [0]) * ms:.1f} ms")  # fmt: skip
    print(f"errors by kind: {dict(errors) or 'none'}")
    print(f"RSS api {rss_before[0]:.0f} → peak {peak[0]:.0f} MB; worker {rss_before[1]:.0f} → peak {peak[1]:.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--worker-concurrency", type=int, default=1200)
    parser.add_argument("--api-processes", type=int, default=1)
    parser.add_argument("--ramp", type=float, default=12.0, help="seconds over which users arrive (≈ one cycle)")
    parser.add_argument("--vision", type=float, default=4.5)
    parser.add_argument("--answer", type=float, default=6.7)
    args = parser.parse_args()
    with stack(worker_concurrency=args.worker_concurrency, vision=args.vision, answer=args.answer,
               rate_per_window=6, api_processes=args.api_processes) as environment:  # fmt: skip
        asyncio.run(main(args.users, args.cycles, args.ramp, environment))
