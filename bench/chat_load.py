"""Benchmark: N concurrent chats, each sending messages whose answers stream from the fake model at a
realistic token rate, in real mode on this machine (issue 15).

Each simulated user creates a chat, then ``--cycles`` times: ``POST /chat/{id}/messages``, follows the
job's SSE stream to ``done`` (counting ``token`` frames) and checks ``done`` is ``completed`` with the
stored message ids in ``result.persistence``. Users arrive over ``--ramp`` seconds, so after the ramp
all N chats stream at once.

The model is the fake streaming OpenAI-compatible server (``tests/support/fake_chat_model.py``) run
as its own process with a fixed policy: a plain text answer (no tool calls, so one model request per
message) of ``--reply-tokens`` content chunks, the first after ``--first-token-latency`` +
``--token-interval`` seconds, then one every ``--token-interval`` (default 0.3 s, then 30 tokens/s: a
hosted model's streaming rate). The assistant reaches it through the ``openai`` SDK exactly as it
would a provider (``CHAT_LLM_BASE_URL``/``_API_KEY``/``_MODEL``).

Printed:

- completion: jobs that ended with a ``completed`` ``done`` out of those submitted, errors by kind;
- **time to first token** (submit → first ``token`` frame at the client) and its **overhead beyond
  the model**: minus the model's own time to first token. The model's figure is *measured in the
  same run*: a probe streams from the fake model directly every ``--probe-interval`` seconds, so a
  loaded machine slowing the model process (harness) is not billed to the chat service. Overhead
  p50/p95/p99 = chat TTFT p50/p95/p99 − the probes' same percentile. Goal: p95 ≤ 50 ms;
- **CPU per 1,000 streamed tokens**: user + system CPU (``/proc/<pid>/stat``) of every project
  process (the API process(es) and ``eco2 worker chat``; not the fake model or the shared servers)
  over the streaming part of the run, divided by the ``token`` frames the clients received, with the
  per-process split; the load average before and after (the machine is shared).

The stack reuses ``bench/scan_env.py``'s ``Env`` (own database, Redis key prefix and queue namespace
on the local PostgreSQL/Redis/RabbitMQ, removed afterwards): the API serves only the chat service
behind the gateway's prefix dispatcher (``--api-processes``, ``SO_REUSEPORT``), ``eco2 worker chat``
runs as its own process with ``--worker-concurrency`` job slots.

    uv run python bench/chat_load.py [--users 500] [--cycles 2] [--ramp 5] [--reply-tokens 120]
        [--token-interval 0.033] [--first-token-latency 0.3] [--worker-concurrency 600]
        [--api-processes 1] [--probe-interval 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rawsse import StreamError, request, sse_frames
from bench.scan_env import ROOT, Env, cpu_seconds, eco2, rss_mb, serve_api, tokens, wait_http

QUESTION = "이코야, 분리배출 잘하는 요령 좀 길게 알려 줄래?"
# Four characters per chunk (the fake model's chunk size): one chunk ≈ one model token.
REPLY_TEXT = "분리배출은 비우고 헹구고 분리하고 섞지 않는 것이 기본이에요. "


class ChatEnv(Env):
    """``scan_env.Env`` with the chat service behind the API and ``eco2 worker chat`` on the fake model."""

    def __init__(self, *, worker_concurrency: int, token_interval: float, first_token_latency: float,
                 reply_tokens: int, api_processes: int = 1) -> None:  # fmt: skip
        super().__init__(worker_concurrency=worker_concurrency, vision=0.0, answer=0.0, rate_per_window=100000,
                         api_processes=api_processes)  # fmt: skip
        self.token_interval, self.first_token_latency = token_interval, first_token_latency
        self.reply_tokens = reply_tokens
        self.vars.update({
            "CHAT_LLM_BASE_URL": f"http://127.0.0.1:{self.llm_port}/v1",
            "CHAT_LLM_API_KEY": "sk-bench",
            "CHAT_LLM_MODEL": "fake-chat",
            "CHAT_LLM_MAX_CONCURRENCY": str(worker_concurrency),
            "CHAT_LLM_TIMEOUT_SECONDS": "120",
            "CHAT_WORKER_CONCURRENCY": str(worker_concurrency),
            "CHAT_RATE_PER_WINDOW": "100000",
            "CHAT_RATE_PER_DAY": "100000",
        })  # fmt: skip

    @property
    def model_first_token(self) -> float:
        """The fake model's nominal time to its first content chunk (it sleeps once more before it)."""
        return self.first_token_latency + self.token_interval

    def prepare(self) -> None:
        self.create_database("chat")
        self.spawn("llm", "-m", "bench.chat_load", "model", "--port", str(self.llm_port),
                   "--token-interval", str(self.token_interval), "--first-token-latency",
                   str(self.first_token_latency), "--reply-tokens", str(self.reply_tokens))  # fmt: skip
        for index in range(self.api_processes):  # SO_REUSEPORT: the kernel spreads connections
            self.spawn(f"api{index}", "-m", "bench.chat_load", "api", "--port", str(self.api_port))
        log = (self.data_dir / "worker.log").open("wb")
        self.procs["worker"] = subprocess.Popen(
            [eco2(), "worker", "chat"], cwd=ROOT, env=self.env(), stdout=log, stderr=log
        )
        wait_http(f"{self.base}/health")
        time.sleep(2)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Stats:
    def __init__(self) -> None:
        self.ttft: list[float] = []
        self.total: list[float] = []
        self.tokens = 0
        self.completed = 0
        self.recoveries = 0
        self.errors: collections.Counter[str] = collections.Counter()


async def one_message(base: str, headers: dict[str, str], chat_id: str, stats: Stats, expected: int = 0) -> bool:
    body = json.dumps({"message": QUESTION}).encode()
    started = time.perf_counter()
    try:
        status, _, payload = await request(base, "POST", f"/api/v1/chat/{chat_id}/messages", headers, body)
    except OSError as exc:
        stats.errors[f"submit:{type(exc).__name__}"] += 1
        return False
    if status != 202:
        stats.errors[f"submit:{status}:{json.loads(payload or b'{}').get('code')}"] += 1
        return False
    job = json.loads(payload)
    first, received, ok = None, 0, False
    try:
        async for event, data in sse_frames(base, job["stream_url"], headers):
            if event == "token":
                first = first or time.perf_counter()
                received += 1
            elif event == "token_recovery" and (accumulated := json.loads(data).get("accumulated")):
                # The stream opened after the first tokens: the snapshot holds them (4 characters each).
                first = first or time.perf_counter()
                stats.recoveries += 1
                received += -(-len(accumulated) // 4)
            elif event == "done":
                done = json.loads(data)
                persistence = (done.get("result") or {}).get("persistence") or {}
                ok = done["status"] == "completed" and bool(persistence.get("assistant_message"))
                if not ok:
                    stats.errors[f"done:{done['status']}:{(done.get('error') or {}).get('code')}"] += 1
                break
            elif event == "error":
                stats.errors[f"stream:error:{json.loads(data).get('error')}"] += 1
                break
        else:
            stats.errors["stream:no_done"] += 1
    except (OSError, StreamError) as exc:
        stats.errors[f"stream:{type(exc).__name__}"] += 1
    stats.tokens += received
    if ok and expected and received != expected:  # e.g. the offline fallback answered instead of the model
        stats.errors[f"tokens:{received}!={expected}"] += 1
        ok = False
    if ok:
        stats.completed += 1
        stats.total.append(time.perf_counter() - started)
        if first is not None:
            stats.ttft.append(first - started)
    return ok


async def probe_model(port: int, interval: float, samples: list[float], stop: asyncio.Event) -> None:
    """The fake model's own time to first content chunk, measured from this process during the run."""
    body = json.dumps({"model": "fake-chat", "stream": True, "messages": [{"role": "user", "content": "probe"}]})

    async def once() -> None:
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body.encode())}\r\n\r\n")  # fmt: skip
            writer.write(head.encode() + body.encode())
            await writer.drain()
            while line := await reader.readline():
                if line.startswith(b"data: {") and b'"content": "' in line and b'"content": ""' not in line:
                    samples.append(time.perf_counter() - started)
                    return
        finally:
            writer.close()

    tasks: set[asyncio.Task[None]] = set()
    while not stop.is_set():
        task = asyncio.create_task(once())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        await asyncio.sleep(interval)
    for task in list(tasks):
        task.cancel()


async def main(env: ChatEnv, users: int, cycles: int, ramp: float, probe_interval: float) -> None:
    base = env.base
    headers = tokens(env, users)
    semaphore = asyncio.Semaphore(50)

    async def new_chat(h: dict[str, str]) -> str:
        async with semaphore:
            status, _, payload = await request(base, "POST", "/api/v1/chat", h, b"{}")
            if status != 201:
                raise RuntimeError(f"create chat: {status} {payload[:200]!r}")
            return str(json.loads(payload)["id"])

    print(f"creating {users} chats …", flush=True)
    chats = await asyncio.gather(*(new_chat(h) for h in headers))
    # Warm-up: one answer end to end (worker consuming, SDK connection, prepared statements).
    for _ in range(30):
        if await one_message(base, headers[0], chats[0], Stats()):
            break
        await asyncio.sleep(1)
    pids = {name: p.pid for name, p in env.procs.items() if name != "llm"}
    stats = Stats()
    probes: list[float] = []
    stop = asyncio.Event()

    async def user(h: dict[str, str], chat_id: str) -> None:
        await asyncio.sleep(random.uniform(0, ramp))
        for _ in range(cycles):
            await one_message(base, h, chat_id, stats, env.reply_tokens)

    rss_peak = 0.0

    async def sample_rss() -> None:
        nonlocal rss_peak
        while True:
            rss_peak = max(rss_peak, sum(rss_mb(pid) for pid in pids.values()))
            await asyncio.sleep(0.5)

    print(f"{time.strftime('%H:%M:%S')} running {users} chats × {cycles} messages …", flush=True)
    load_before = os.getloadavg()
    prober = asyncio.create_task(probe_model(env.llm_port, probe_interval, probes, stop))
    sampler = asyncio.create_task(sample_rss())
    cpu_start = {name: cpu_seconds(pid) for name, pid in pids.items()}
    model_cpu = cpu_seconds(env.procs["llm"].pid)
    wall = time.perf_counter()
    await asyncio.gather(*(user(h, c) for h, c in zip(headers, chats, strict=True)))
    wall = time.perf_counter() - wall
    cpu = {name: cpu_seconds(pid) - cpu_start[name] for name, pid in pids.items()}
    load_after = os.getloadavg()
    model_cpu = cpu_seconds(env.procs["llm"].pid) - model_cpu
    stop.set()
    sampler.cancel()
    await prober

    attempts, ms = users * cycles, 1000
    print(f"\nchats: {users} concurrent × {cycles} messages (arrivals over {ramp:.0f} s), wall {wall:.1f} s; model: "
          f"first token after {env.model_first_token * ms:.0f} ms, then one every {env.token_interval * ms:.0f} ms, "
          f"{env.reply_tokens} tokens per answer")  # fmt: skip
    print(f"completion: {stats.completed}/{attempts} = {100 * stats.completed / attempts:.2f} %; "
          f"errors by kind: {dict(stats.errors) or 'none'}")  # fmt: skip
    print(
        f"tokens streamed to clients: {stats.tokens} ({stats.tokens / wall:.0f}/s); "
        f"streams opened after the first token (token_recovery): {stats.recoveries}"
    )
    print(f"submit → done: p50 {pct(stats.total, 50):.2f} s, p99 {pct(stats.total, 99):.2f} s")
    line = ", ".join(f"p{p} {pct(stats.ttft, p) * ms:.0f}" for p in (50, 95, 99))
    print(f"time to first token (submit → first token frame): {line} ms")
    line = ", ".join(f"p{p} {pct(probes, p) * ms:.0f}" for p in (50, 95, 99))
    print(f"the model's own time to first token ({len(probes)} probes in the same run): {line} ms")
    line = ", ".join(f"p{p} {(pct(stats.ttft, p) - pct(probes, p)) * ms:.0f}" for p in (50, 95, 99))
    print(f"**TTFT overhead beyond the model: {line} ms** (goal p95 ≤ 50 ms)")
    line = ", ".join(f"p{p} {(pct(stats.ttft, p) - env.model_first_token) * ms:.0f}" for p in (50, 95, 99))
    print(f"   (beyond the model's nominal {env.model_first_token * ms:.0f} ms: {line} ms)")
    if stats.tokens:
        total = sum(cpu.values())
        split = ", ".join(f"{name} {cpu[name] / stats.tokens * 1e6:.0f}" for name in pids)
        print(f"**CPU per 1,000 streamed tokens: {total / stats.tokens * 1e6:.0f} ms** ({split} ms); "
              f"total {total:.1f} CPU-s over {wall:.1f} s")  # fmt: skip
    print(f"(harness, not counted: the fake model used {model_cpu:.1f} CPU-s)")
    print(f"RSS of the project processes: peak {rss_peak:.0f} MB")
    print(f"load average (1/5/15 min, {os.cpu_count()} CPUs): before " + " ".join(f"{x:.1f}" for x in load_before)
          + ", after " + " ".join(f"{x:.1f}" for x in load_after))  # fmt: skip


def _serve_model(port: int, token_interval: float, first_token_latency: float, reply_tokens: int) -> None:
    import uvicorn

    from tests.support.fake_chat_model import FakeChatModel, Reply

    text = (REPLY_TEXT * (reply_tokens * 4 // len(REPLY_TEXT) + 1))[: reply_tokens * 4]

    def policy(body: dict[str, Any]) -> Reply:
        return Reply(text)

    fake = FakeChatModel(policy=policy, token_interval=token_interval, first_token_latency=first_token_latency,
                         chunk_chars=4, record=False)  # fmt: skip
    uvicorn.run(fake.app(), host="127.0.0.1", port=port, log_level="warning", backlog=4096)


def _serve_api(port: int) -> None:
    from services.common.config import CommonSettings
    from services.gateway import create_gateway
    from services.registry import SERVICES

    serve_api(create_gateway([SERVICES["chat"]], CommonSettings(), run_workers=False), port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="role")
    api = sub.add_parser("api", help="(internal) one API process of the stack")
    api.add_argument("--port", type=int, required=True)
    model = sub.add_parser("model", help="(internal) the fake model with the benchmark's answer")
    model.add_argument("--port", type=int, required=True)
    model.add_argument("--token-interval", type=float, required=True)
    model.add_argument("--first-token-latency", type=float, required=True)
    model.add_argument("--reply-tokens", type=int, required=True)
    parser.add_argument("--users", type=int, default=500, help="concurrent chats (default 500)")
    parser.add_argument("--cycles", type=int, default=2, help="messages per chat, back to back (default 2)")
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds over which users arrive (default 5)")
    parser.add_argument("--reply-tokens", type=int, default=120, help="content chunks per answer (default 120)")
    parser.add_argument("--token-interval", type=float, default=0.033, help="s between chunks (default 0.033)")
    parser.add_argument("--first-token-latency", type=float, default=0.3, help="model's wait, s (default 0.3)")
    parser.add_argument("--worker-concurrency", type=int, default=600, help="worker job slots (default 600)")
    parser.add_argument("--api-processes", type=int, default=1, help="API processes sharing the port (default 1)")
    parser.add_argument("--probe-interval", type=float, default=0.5, help="s between direct model probes")
    args = parser.parse_args()
    if args.role == "api":
        _serve_api(args.port)
    elif args.role == "model":
        _serve_model(args.port, args.token_interval, args.first_token_latency, args.reply_tokens)
    else:
        environment = ChatEnv(worker_concurrency=args.worker_concurrency, token_interval=args.token_interval,
                              first_token_latency=args.first_token_latency, reply_tokens=args.reply_tokens,
                              api_processes=args.api_processes)  # fmt: skip
        try:
            environment.prepare()
            asyncio.run(main(environment, args.users, args.cycles, args.ramp, args.probe_interval))
        except BaseException:
            for log in sorted(environment.data_dir.glob("*.log")):  # why a process did not come up
                print(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
            raise
        finally:
            environment.cleanup()
