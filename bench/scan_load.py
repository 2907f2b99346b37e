"""Benchmark (a): N concurrent users, each submitting a scan, following its SSE stream to ``done`` and
fetching the result, for several cycles, in real mode on this machine, with the fake model's latency
set to vision 4.5 s / answer 6.7 s.

Prints completion %, submit latency p50/p95, pipeline overhead (submit → ``done`` received, minus the
model time) p50/p99, errors by kind, and **CPU per completed scan**: user + system CPU time of every
project process (API replicas, scan worker, relay, character + my consumers — not the fake model, moto or
the shared servers), read from ``/proc`` once a second, over the full-load window (from the 10th
percentile of completions to the 90th of submissions: users both submit and finish scans there, so
both sides of a scan are paid inside it; needs ``--cycles`` ≥ 2), beside the earlier completion-window
figure and the whole run's, with the per-process split and the load average. CPU per scan is the
figure that stays meaningful on a shared, loaded machine. Submit latency is also split into before
and after the first completion (submissions only, then the full load).
Over the same window it prints where the whole machine's CPU went (``/proc/stat``): our processes,
moto, the fake model, the load client itself and the rest, so a saturated machine is told from a slow stack.
Goals (issue 19): 100 %, submit p95 ≤ 50 ms, overhead p99 ≤ 1 s, CPU per scan ≤ 15 ms.

    uv run python bench/scan_load.py [--users 1000] [--cycles 2] [--worker-concurrency 1200]
        [--api-processes 1] [--ramp 12] [--py-spy DIR]

``--py-spy DIR`` records the API, worker, relay and consumers with py-spy (collapsed stacks, ``DIR/<process>.txt``)
during the steady-state part of the run (from the end of the ramp, for ``--py-spy-seconds``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rawsse import StreamError, request, sse_frames
from bench.scan_env import Env, cpu_seconds, machine_busy_seconds, rss_mb, stack, tokens
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
    stats["submitted_at"].append(started)
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
        stats["done_at"].append(done_at)
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


def _between(samples: list[tuple[float, dict[str, float]]], start: float, end: float,
             ) -> tuple[tuple[float, dict[str, float]], tuple[float, dict[str, float]]]:  # fmt: skip
    return min(samples, key=lambda s: abs(s[0] - start)), min(samples, key=lambda s: abs(s[0] - end))


def cpu_per_scan(samples: list[tuple[float, dict[str, float]]], done_at: list[float],
                 submitted_at: list[float]) -> dict[str, float]:  # fmt: skip
    """CPU seconds per scan, per process and in total, over the full-load window: from the 10th
    percentile of completions to the 90th percentile of submissions, where users both submit and
    finish scans (each scan's submit side and its finishing side are both in the window, as in a
    long steady state); the scans of the window are the mean of its submissions and completions.
    Empty when there is no such window (one cycle: every submit comes before every completion)."""
    window = full_load_window(samples, done_at, submitted_at)
    if window is None:
        return {}
    first, last = window
    scans = (sum(first[0] < t <= last[0] for t in done_at) + sum(first[0] < t <= last[0] for t in submitted_at)) / 2
    return _split(first, last, scans)


def full_load_window(samples: list[tuple[float, dict[str, float]]], done_at: list[float], submitted_at: list[float],
                     ) -> tuple[tuple[float, dict[str, float]], tuple[float, dict[str, float]]] | None:  # fmt: skip
    """The samples nearest the 10th percentile of completions and the 90th of submissions, or None."""
    if len(done_at) < 10 or len(submitted_at) < 10 or len(samples) < 2:
        return None
    done, sent = sorted(done_at), sorted(submitted_at)
    first, last = _between(samples, done[len(done) // 10], sent[(9 * len(sent)) // 10])
    return (first, last) if last[0] - first[0] >= 3.0 else None


def machine_split(samples: list[tuple[float, dict[str, float]]], done_at: list[float], submitted_at: list[float],
                  ) -> str:  # fmt: skip
    """Where the whole machine's CPU went in the full-load window, in % of one core: our processes,
    the stand-ins for what production runs elsewhere (moto for S3, the fake model, this load client),
    and the rest (PostgreSQL, Redis, RabbitMQ, the kernel). Latency goals need idle cores; this line
    tells a saturated machine from a slow stack."""
    window = full_load_window(samples, done_at, submitted_at)
    if window is None:
        return ""
    (start, first), (end, last) = window
    share = {name: 100 * (last[name] - first[name]) / (end - start) for name in last}
    machine = share.pop("machine")
    ours = share.pop("ours")
    rest = machine - ours - sum(share.values())
    cores = os.cpu_count() or 1
    parts = ", ".join(f"{name} {value:.0f} %" for name, value in share.items())
    return (f"machine in the full-load window: {machine:.0f} % busy of {100 * cores} % — ours {ours:.0f} %, "
            f"{parts}, the rest (PostgreSQL, Redis, RabbitMQ, kernel) {rest:.0f} %")  # fmt: skip


def cpu_per_completion(samples: list[tuple[float, dict[str, float]]], done_at: list[float]) -> dict[str, float]:
    """The same between the 10th and 90th percentile of completion times: the method of the runs in
    docs/benchmarks.md before 2026-12-03 night. Past the last submission this window holds only the
    finishing side of its scans, so it reads low; kept to compare with those runs."""
    if len(done_at) < 10 or len(samples) < 2:
        return {}
    ordered = sorted(done_at)
    first, last = _between(samples, ordered[len(ordered) // 10], ordered[(9 * len(ordered)) // 10])
    return _split(first, last, sum(1 for t in ordered if first[0] < t <= last[0]))


def _split(first: tuple[float, dict[str, float]], last: tuple[float, dict[str, float]], scans: float,
           ) -> dict[str, float]:  # fmt: skip
    if scans <= 0 or last[0] <= first[0]:
        return {}
    split = {name: (last[1][name] - first[1].get(name, 0.0)) / scans for name in last[1]}
    return {"total": sum(split.values()), "window_s": last[0] - first[0], "completed": scans, **split}


def py_spy(pids: dict[str, int], out: Path, delay: float, seconds: float) -> list[subprocess.Popen[bytes]]:
    spy = Path(sys.executable).with_name("py-spy")
    out.mkdir(parents=True, exist_ok=True)
    command = (
        "sleep {delay}; exec {spy} record --nonblocking --format raw --rate 200 -d {seconds:.0f} -p {pid} -o {out}"
    )
    return [
        subprocess.Popen(
            ["sh", "-c", command.format(delay=delay, spy=spy, seconds=seconds, pid=pid, out=out / f"{name}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
        if name.startswith(("api", "worker", "relay", "consumers"))
    ]


async def main(users: int, cycles: int, ramp: float, env: Env, spy_dir: Path | None = None,
               spy_seconds: float = 30) -> None:  # fmt: skip
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

        pids = env.project_pids()
        harness = {"moto (S3)": env.procs["moto"].pid, "fake model": env.procs["llm"].pid, "load client": os.getpid()}
        cpu: list[tuple[float, dict[str, float]]] = []
        machine: list[tuple[float, dict[str, float]]] = []

        async def sample_cpu() -> None:
            while True:
                now = time.perf_counter()
                cpu.append((now, {name: cpu_seconds(pid) for name, pid in pids.items()}))
                machine.append((now, {
                    "machine": machine_busy_seconds(), "ours": sum(cpu[-1][1].values()),
                    **{name: cpu_seconds(pid) for name, pid in harness.items()},
                }))  # fmt: skip
                await asyncio.sleep(1.0)

        print(f"{time.strftime('%H:%M:%S')} running {users} users × {cycles} cycles …", flush=True)
        load_before = os.getloadavg()
        sampler = asyncio.create_task(sample())
        cpu_sampler = asyncio.create_task(sample_cpu())
        spies = py_spy(pids, spy_dir, ramp, spy_seconds) if spy_dir else []
        wall = time.perf_counter()
        cpu_start = {name: cpu_seconds(pid) for name, pid in pids.items()}
        completed = sum(await asyncio.gather(*(user(h, i) for h, i in zip(headers, images, strict=True))))
        wall = time.perf_counter() - wall
        cpu_whole = {name: cpu_seconds(pid) - cpu_start[name] for name, pid in pids.items()}
        load_after = os.getloadavg()
        sampler.cancel()
        cpu_sampler.cancel()
        for spy in spies:
            spy.wait()
    attempts = users * cycles
    ms = 1000
    print(f"\nscans: {attempts} ({users} users × {cycles}, arrivals over {ramp:.0f} s), wall {wall:.1f} s, "
          f"model time per scan {model_time:.1f} s")  # fmt: skip
    print(f"completion: {completed}/{attempts} = {100 * completed / attempts:.2f} %")
    print(f"submit latency: p50 {pct(stats['submit'], 50) * ms:.1f} ms, p95 {pct(stats['submit'], 95) * ms:.1f} ms, "
          f"max {max(stats['submit'] or [0]) * ms:.1f} ms")  # fmt: skip
    if stats["done_at"]:
        # Before the first completion the stack only takes submissions; afterwards it also finishes
        # scans (the full load): the two phases' latencies tell headroom from saturation.
        first_done = min(stats["done_at"])
        phases: dict[str, list[float]] = {"before the first completion": [], "after it": []}
        for at, latency in zip(stats["submitted_at"], stats["submit"], strict=True):
            phases["before the first completion" if at < first_done else "after it"].append(latency)
        print("submit latency by phase: " + "; ".join(
            f"{name} p50 {pct(values, 50) * ms:.1f} ms, p95 {pct(values, 95) * ms:.1f} ms ({len(values)})"
            for name, values in phases.items() if values
        ))  # fmt: skip
    print(f"submit → done: p50 {pct(stats['total'], 50):.3f} s, p99 {pct(stats['total'], 99):.3f} s")
    print(f"pipeline overhead beyond model time: p50 {pct(stats['overhead'], 50) * ms:.1f} ms, "
          f"p99 {pct(stats['overhead'], 99) * ms:.1f} ms, mean {statistics.fmean(stats['overhead'] or [0]) * ms:.1f} ms")  # fmt: skip
    print(f"errors by kind: {dict(errors) or 'none'}")
    print(f"RSS api {rss_before[0]:.0f} → peak {peak[0]:.0f} MB; worker {rss_before[1]:.0f} → peak {peak[1]:.0f} MB")
    for label, steady in (
        ("full-load window", cpu_per_scan(cpu, stats["done_at"], stats["submitted_at"])),
        ("completion window, the earlier method", cpu_per_completion(cpu, stats["done_at"])),
    ):
        if steady:
            split = ", ".join(f"{name} {steady[name] * ms:.1f}" for name in pids)
            print(f"CPU per completed scan ({label}, {steady['window_s']:.0f} s, {steady['completed']:.0f} scans): "
                  f"**{steady['total'] * ms:.1f} ms** ({split} ms)")  # fmt: skip
    if split_line := machine_split(machine, stats["done_at"], stats["submitted_at"]):
        print(split_line)
    done = len(stats["done_at"])
    if done:
        split = ", ".join(f"{name} {cpu_whole[name] / done * ms:.1f}" for name in pids)
        print(
            f"CPU per completed scan (whole run, {done} scans): {sum(cpu_whole.values()) / done * ms:.1f} ms ({split} ms)"
        )
    print("load average (1/5/15 min): before " + " ".join(f"{x:.1f}" for x in load_before)
          + ", after " + " ".join(f"{x:.1f}" for x in load_after))  # fmt: skip
    await asyncio.sleep(1.0)  # the last rewards reach my
    print(await reward_latency(env))


async def reward_latency(env: Env) -> str:
    """Outbox → my inbox latency of the run's ``scan.reward_granted`` events (the scan's event path)."""
    from sqlalchemy import text

    from bench.event_path import LATENCY
    from services.common.db import Database

    db = Database(env.vars["DATABASE_URL"], "scan", pool_size=1)
    try:
        async with db.engine.connect() as conn:
            count, p50, p95, worst = (await conn.execute(text(LATENCY))).one()
    finally:
        await db.dispose()
    if not count:
        return "outbox → my inbox: no events"
    return f"outbox → my inbox ({count} events): p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {worst:.0f} ms"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--worker-concurrency", type=int, default=1200)
    parser.add_argument("--api-processes", type=int, default=1)
    parser.add_argument("--ramp", type=float, default=12.0, help="seconds over which users arrive (≈ one cycle)")
    parser.add_argument("--vision", type=float, default=4.5)
    parser.add_argument("--answer", type=float, default=6.7)
    parser.add_argument(
        "--py-spy", type=Path, default=None, metavar="DIR", help="record API, worker, relay and consumers with py-spy"
    )
    parser.add_argument("--py-spy-seconds", type=float, default=30.0)
    args = parser.parse_args()
    with stack(worker_concurrency=args.worker_concurrency, vision=args.vision, answer=args.answer,
               rate_per_window=6, api_processes=args.api_processes) as environment:  # fmt: skip
        asyncio.run(main(args.users, args.cycles, args.ramp, environment, args.py_spy, args.py_spy_seconds))
