"""Fault runs: the scan stack under load while one piece breaks, and what it costs.

The stack is bench/scan_env.py's (API, ``eco2 worker scan``, fake model, moto S3 as separate
processes) on PRIVATE PostgreSQL, Redis and RabbitMQ servers (tests/support/private.py: own ports,
own data, removed afterwards) — the shared servers on the standard ports are never stopped.

Scenarios (``--scenario``):

- ``worker-kill``: jobs in flight, the worker process is SIGKILLed mid-answer and a new one started.
  Every job must end ``done``/completed, no finished stage may run again (one ``completed`` per
  stage, one ``vision started``: the model is not asked twice).
- ``postgres-restart``: constant submit + result-polling load; PostgreSQL stops for a few seconds
  and comes back. The API processes are not restarted: errors are allowed only while the database is
  down (plus a short reconnect grace), every accepted job must end ``done``.
- ``redis-restart``: jobs followed over SSE (reconnecting with ``Last-Event-ID`` as the client does)
  while Redis restarts (AOF on, as deployed). Every stream must still end with ``done``, every job
  must complete.
- ``api-shutdown``: SSE streams open on running jobs, the API process gets SIGTERM: every stream must
  receive ``error``/``connection_reset`` before its connection closes.

Each prints one line: load held (requests, errors inside/outside the fault window), faults survived,
lost = 0. Exit status 1 if any check fails.

    uv run python bench/scan_faults.py [--scenario all] [--jobs 24]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import scan_env
from bench.rawsse import StreamError, request, sse_frames
from bench.scan_env import Env, tokens
from bench.scan_load import upload
from tests.support.private import (
    PrivatePostgres,
    PrivateRabbit,
    PrivateRedis,
    private_postgres,
    private_rabbitmq,
    private_redis,
)

RECONNECT_GRACE = 3.0  # seconds after a server is back during which errors still count as the outage


@dataclass
class Servers:
    pg: PrivatePostgres
    redis: PrivateRedis
    rabbit: PrivateRabbit


@dataclass
class Outcome:
    scenario: str
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.failures.append(what)

    def report(self) -> None:
        verdict = "OK" if not self.failures else "FAILED: " + "; ".join(self.failures)
        print(f"{self.scenario}: " + " ".join(self.lines) + f"  [{verdict}]", flush=True)


@contextlib.contextmanager
def scan_stack(servers: Servers, **kwargs: float | int) -> Iterator[Env]:
    # scan_env reads these module globals at call time: point it at the private servers.
    scan_env.PG_ADMIN, scan_env.REDIS, scan_env.RABBIT = servers.pg.url, servers.redis.url, servers.rabbit.url
    with scan_env.stack(**kwargs) as env:
        yield env


async def submit(base: str, headers: dict[str, str], image_url: str) -> tuple[int, dict[str, str]]:
    body = json.dumps({"image_url": image_url, "user_input": "생수병"}).encode()
    status, _, payload = await request(base, "POST", "/api/v1/scan", headers, body)
    return status, json.loads(payload or b"{}")


@dataclass
class Followed:
    events: list[tuple[str, str]] = field(default_factory=list)
    resets: collections.Counter[str] = field(default_factory=collections.Counter)
    done: str | None = None


async def follow(
    base: str, stream_url: str, headers: dict[str, str], deadline: float, seen: Followed | None = None
) -> Followed:
    """Follow a job's stream to ``done`` like the client: reconnect with ``Last-Event-ID`` after an
    ``error`` frame, a closed connection or a refused one. ``seen`` fills in as frames arrive."""
    seen = seen if seen is not None else Followed()
    last = 0
    while time.monotonic() < deadline:
        sent = dict(headers, **({"Last-Event-ID": str(last)} if last else {}))
        try:
            async for event, data in sse_frames(base, stream_url, sent):
                if event == "keepalive":
                    continue
                payload = json.loads(data)
                if event == "error":
                    seen.resets[payload["error"]] += 1
                    break
                last = max(last, int(payload["seq"]))
                seen.events.append((event, payload["status"]))
                if event == "done":
                    seen.done = payload["status"]
                    return seen
            else:
                seen.resets["closed"] += 1
        except (OSError, StreamError, asyncio.IncompleteReadError) as exc:
            seen.resets[type(exc).__name__] += 1
        await asyncio.sleep(0.5)
    return seen


def repeated(followed: Followed) -> collections.Counter[str]:
    """Extra copies, by ``event:status``, of a finished stage's ``completed`` or of ``vision started``
    (a second vision run); empty when nothing ran twice."""
    copies = collections.Counter(
        f"{e}:{s}" for e, s in followed.events if s == "completed" or (e, s) == ("vision", "started")
    )
    return collections.Counter({key: count - 1 for key, count in copies.items() if count > 1})


def stage_repeats(followed: Followed) -> int:
    return sum(repeated(followed).values())


def repeats_line(results: list[Followed]) -> str:
    """``finished_stage_repeats=N``, naming which events repeated when any did."""
    extra: collections.Counter[str] = collections.Counter()
    for followed in results:
        extra.update(repeated(followed))
    return f"finished_stage_repeats={sum(extra.values())}" + (f" {dict(extra)}" if extra else "")


async def prepared_users(env: Env, count: int) -> tuple[list[dict[str, str]], list[str]]:
    headers = tokens(env, count)
    async with httpx.AsyncClient(base_url=env.base, timeout=60) as client, httpx.AsyncClient(timeout=60) as raw:
        images = [await upload(client, raw, h) for h in headers]
    return headers, images


async def running_jobs(env: Env, jobs: int) -> list[tuple[dict[str, str], str]]:
    """One job per user, submitted with the worker running: (user's headers, stream URL) of each accepted."""
    headers, images = await prepared_users(env, jobs)
    env.start_worker()
    accepted = [await submit(env.base, h, i) for h, i in zip(headers, images, strict=True)]
    return [(h, body["stream_url"]) for h, (status, body) in zip(headers, accepted, strict=True) if status == 202]


# ------------------------------------------------------------------------------------ scenarios


async def worker_kill(env: Env, servers: Servers, jobs: int) -> Outcome:
    outcome = Outcome("worker-kill")
    job_urls = await running_jobs(env, jobs)
    deadline = time.monotonic() + 120
    progress = [Followed() for _ in job_urls]
    followers = [
        asyncio.create_task(follow(env.base, url, h, deadline, seen))
        for (h, url), seen in zip(job_urls, progress, strict=True)
    ]
    # Kill once every job is inside its 3 s answer stage (vision and rule finished and stored).
    while sum(("answer", "started") in f.events for f in progress) < len(job_urls):
        assert time.monotonic() < deadline, "jobs never reached the answer stage"
        await asyncio.sleep(0.05)
    env.procs["worker"].send_signal(signal.SIGKILL)
    env.procs["worker"].wait()
    await asyncio.sleep(0.5)
    env.start_worker()  # a replacement (Kubernetes would restart the pod)
    results = await asyncio.gather(*followers)
    interrupted = sum(1 for f in results if f.events.count(("answer", "started")) > 1)
    completed = sum(1 for f in results if f.done == "completed")
    repeats = sum(stage_repeats(f) for f in results)
    lost = len(job_urls) - completed
    outcome.lines += [f"jobs={len(job_urls)}/{jobs} accepted", f"interrupted_mid_answer={interrupted}",
                      f"completed={completed}", repeats_line(results), f"lost={lost}"]  # fmt: skip
    outcome.check(len(job_urls) == jobs, "a submission was refused")
    outcome.check(interrupted > 0, "the kill hit no running job")
    outcome.check(repeats == 0, "a finished stage ran again")
    outcome.check(lost == 0, "jobs lost")
    return outcome


@dataclass
class Load:
    """Submit + result polling by ``users`` clients until stopped; every answer timestamped."""

    env: Env
    headers: list[dict[str, str]]
    images: list[str]
    answers: list[tuple[float, str, int]] = field(default_factory=list)  # (time, what, status or 0)
    accepted: list[tuple[dict[str, str], str]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def user(self, headers: dict[str, str], image: str) -> None:
        while not self.stop.is_set():
            try:
                status, body = await submit(self.env.base, headers, image)
            except OSError:
                status, body = 0, {}
            self.answers.append((time.monotonic(), "submit", status))
            if status == 202:
                self.accepted.append((headers, body["result_url"]))
                for _ in range(3):
                    try:
                        polled, _, _ = await request(self.env.base, "GET", body["result_url"], headers)
                    except OSError:
                        polled = 0
                    self.answers.append((time.monotonic(), "result", polled))
                    await asyncio.sleep(0.2)
            await asyncio.sleep(0.1)

    def errors(self, start: float, end: float) -> tuple[collections.Counter[int], int]:
        """(errors inside [start, end] by status (0 = no answer), errors outside it)."""
        bad = [(t, s) for t, _, s in self.answers if s == 0 or s >= 500]
        inside = collections.Counter(s for t, s in bad if start <= t <= end)
        return inside, len(bad) - sum(inside.values())


async def terminal_results(
    env: Env, accepted: list[tuple[dict[str, str], str]], timeout: float
) -> collections.Counter[str]:
    """Poll every accepted job's result until it is over; counts by final status."""
    statuses: collections.Counter[str] = collections.Counter()
    deadline = time.monotonic() + timeout
    for headers, url in accepted:
        while True:
            status, _, payload = await request(env.base, "GET", url, headers)
            if status == 200:
                statuses[json.loads(payload)["status"]] += 1
                break
            if time.monotonic() > deadline:
                statuses["unfinished"] += 1
                break
            await asyncio.sleep(0.3)
    return statuses


async def with_outage(
    load: Load, users: int, before: float, outage: Callable[[], None], after: float
) -> tuple[float, float]:
    """Run the load, call ``outage`` (blocking: stop, wait, start) in a thread after ``before`` s,
    keep the load ``after`` s more; returns when the fault began and when the server was back."""
    tasks = [
        asyncio.create_task(load.user(h, i)) for h, i in zip(load.headers[:users], load.images[:users], strict=True)
    ]
    await asyncio.sleep(before)
    began = time.monotonic()
    await asyncio.to_thread(outage)
    back = time.monotonic()
    await asyncio.sleep(after)
    load.stop.set()
    await asyncio.gather(*tasks)
    return began, back


async def postgres_restart(env: Env, servers: Servers, jobs: int) -> Outcome:
    outcome = Outcome("postgres-restart")
    users = max(4, jobs // 4)
    headers, images = await prepared_users(env, users)
    env.start_worker()
    pids = {name: proc.pid for name, proc in env.procs.items()}
    load = Load(env, headers, images)
    began, back = await with_outage(load, users, 4.0, lambda: servers.pg.restart(down_seconds=3.0), 6.0)
    inside, outside = load.errors(began, back + RECONNECT_GRACE)
    tail = [s for t, _, s in load.answers if t > back + RECONNECT_GRACE]
    statuses = await terminal_results(env, load.accepted, 90)
    alive = all(proc.poll() is None and proc.pid == pids[name] for name, proc in env.procs.items())
    outcome.lines += [f"requests={len(load.answers)}", f"db_down={back - began:.1f}s",
                      f"errors_during_outage={dict(inside)}", f"errors_outside={outside}",
                      f"ok_after_recovery={sum(1 for s in tail if 0 < s < 500)}/{len(tail)}",
                      f"accepted={len(load.accepted)}", f"completed={statuses['completed']}",
                      f"failed={statuses['failed']}", f"lost={statuses['unfinished']}",
                      f"processes_restarted={0 if alive else 'yes'}"]  # fmt: skip
    outcome.check(outside == 0, "errors outside the outage")
    outcome.check(bool(tail) and all(0 < s < 500 for s in tail), "the API did not recover")
    outcome.check(statuses["unfinished"] == 0, "accepted jobs never finished")
    outcome.check(alive, "a process had to be restarted")
    return outcome


async def redis_restart(env: Env, servers: Servers, jobs: int) -> Outcome:
    outcome = Outcome("redis-restart")
    job_urls = await running_jobs(env, jobs)
    deadline = time.monotonic() + 120
    followers = [asyncio.create_task(follow(env.base, url, h, deadline)) for h, url in job_urls]
    await asyncio.sleep(1.2)  # streams open, jobs between vision and answer
    began = time.monotonic()
    await asyncio.to_thread(servers.redis.restart, 2.0)
    back = time.monotonic()
    results = await asyncio.gather(*followers)
    done = sum(1 for f in results if f.done == "completed")
    reconnects = sum(sum(f.resets.values()) for f in results)
    repeats = sum(stage_repeats(f) for f in results)
    outcome.lines += [f"streams={len(job_urls)}/{jobs}", f"redis_down={back - began:.1f}s",
                      f"stream_reconnects={reconnects}", f"done={done}", repeats_line(results),
                      f"lost={len(job_urls) - done}"]  # fmt: skip
    outcome.check(len(job_urls) == jobs, "a submission was refused")
    outcome.check(done == len(job_urls), "a stream never saw done")
    outcome.check(repeats == 0, "a finished stage ran again")
    return outcome


async def api_shutdown(env: Env, servers: Servers, jobs: int) -> Outcome:
    outcome = Outcome("api-shutdown")
    urls = await running_jobs(env, jobs)
    deadline = time.monotonic() + 10  # one connection each: the API does not come back

    async def first_connection(h: dict[str, str], url: str) -> tuple[str | None, float]:
        async for event, data in sse_frames(env.base, url, h):
            if event == "error":
                return json.loads(data)["error"], time.monotonic()
        return None, time.monotonic()

    streams = [asyncio.create_task(first_connection(h, url)) for h, url in urls]
    await asyncio.sleep(1.0)
    signalled = time.monotonic()
    env.procs["api"].send_signal(signal.SIGTERM)
    ends = await asyncio.wait_for(asyncio.gather(*streams, return_exceptions=True), max(1.0, deadline - signalled))
    env.procs["api"].wait(timeout=30)
    resets = [end for end in ends if isinstance(end, tuple) and end[0] == "connection_reset"]
    slowest = max((end[1] - signalled for end in resets), default=float("nan"))
    outcome.lines += [f"streams={len(urls)}", f"connection_reset={len(resets)}", f"closed_within={slowest:.2f}s",
                      f"lost={len(urls) - len(resets)}"]  # fmt: skip
    outcome.check(len(resets) == len(urls) == jobs, "a stream closed without connection_reset")
    return outcome


Scenario = Callable[[Env, Servers, int], Awaitable[Outcome]]
# name -> (scenario, the stack it runs on: model latencies, worker concurrency)
SCENARIOS: dict[str, tuple[Scenario, dict[str, float]]] = {
    "worker-kill": (worker_kill, {"vision": 0.3, "answer": 3.0}),
    "postgres-restart": (postgres_restart, {"vision": 0.2, "answer": 0.3}),
    "redis-restart": (redis_restart, {"vision": 1.0, "answer": 2.0}),
    "api-shutdown": (api_shutdown, {"vision": 5.0, "answer": 5.0}),
}


def unhandled_errors(env: Env) -> collections.Counter[str]:
    """500s the API logged (``unhandled_error``), by exception type: an outage should cause none."""
    found: collections.Counter[str] = collections.Counter()
    for log in env.data_dir.glob("api*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if '"unhandled_error"' in line:
                record = json.loads(line)
                lines = [ln for ln in str(record.get("exception", "")).splitlines() if ln[:1].isalpha()]
                found[(lines[-1] if lines else "?")[:160]] += 1
    return found


def run(names: list[str], jobs: int) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with private_postgres() as pg, private_redis() as redis, private_rabbitmq() as rabbit:
        servers = Servers(pg, redis, rabbit)
        print(f"private servers: postgres {pg.port}, redis {redis.port}, rabbitmq {rabbit.port}", flush=True)
        for name in names:
            scenario, latencies = SCENARIOS[name]
            with scan_stack(servers, worker_concurrency=max(32, jobs), rate_per_window=10_000, **latencies) as env:
                outcome = asyncio.run(scenario(env, servers, jobs))
                crashes = unhandled_errors(env)
                if os.environ.get("ECO2_FAULTS_DEBUG"):
                    for log in sorted(env.data_dir.glob("*.log")):
                        events = collections.Counter(
                            json.loads(line).get("event")
                            for line in log.read_text(errors="replace").splitlines()
                            if line.startswith("{") and '"level": "info"' not in line
                        )
                        print(f"  {log.name}: {dict(events)}")
            outcome.lines.append(f"unhandled_errors={sum(crashes.values())}{dict(crashes) if crashes else ''}")
            outcome.report()
            outcomes.append(outcome)
    return outcomes


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=["all", *SCENARIOS], default="all")
    parser.add_argument("--jobs", type=int, default=24)
    args = parser.parse_args()
    chosen = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    started = time.monotonic()
    results = run(chosen, args.jobs)
    print(f"total {time.monotonic() - started:.0f}s", flush=True)
    sys.exit(1 if any(o.failures for o in results) else 0)
