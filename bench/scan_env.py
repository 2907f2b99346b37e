"""Shared set-up for the scan benchmarks: a real-mode stack of separate processes on this machine.

Processes: the API (image, scan and character apps behind the dev gateway's prefix dispatcher, no
background workers), ``eco2 worker scan``, ``eco2 worker relay`` and ``eco2 worker consumers character my``
(the project's processes, whose CPU the load benchmark counts; ``my`` applies ``scan.reward_granted``), the fake OpenAI-compatible model server
(tests/support/fake_openai.py) and moto's S3 server (harness, not counted). PostgreSQL, Redis and RabbitMQ are the local
servers (URLs from ECO2_BENCH_PG_ADMIN_URL / _REDIS_URL / _RABBITMQ_URL or the test defaults); the
benchmark gets its own database, key prefix and queue names and removes them afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("ECO2_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("ECO2_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBIT = os.environ.get("ECO2_BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def eco2() -> str:
    """The project's command line, from PATH or next to this interpreter (``.venv/bin``)."""
    return shutil.which("eco2") or str(Path(sys.executable).with_name("eco2"))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/<pid>/stat``, fields 14 and 15)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time all cores spent on anything but idling (``/proc/stat``'s first line, summed over cores:
    a saturated 2-core machine gains 2 s per second)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def wait_http(url: str, timeout: float = 60.0) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.support.servers import wait_until

    def answers() -> bool:
        with urllib.request.urlopen(url, timeout=2) as response:  # local bench servers only
            return bool(response.status < 500)

    wait_until(answers, url, timeout)


class Env:
    """Environment variables of every benchmark process, and the processes themselves."""

    def __init__(self, *, worker_concurrency: int, vision: float, answer: float, rate_per_window: int,
                 api_processes: int = 1) -> None:  # fmt: skip
        self.api_processes = api_processes
        self.run = uuid.uuid4().hex[:8]
        self.data_dir = Path(tempfile.mkdtemp(prefix="eco2-bench-scan-"))
        self.db_name = f"eco2_bench_{self.run}"
        self.api_port, self.llm_port, self.s3_port = (free_port() for _ in range(3))
        self.base = f"http://127.0.0.1:{self.api_port}"
        self.bucket = f"eco2-bench-{self.run}"
        base_pg = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        self.vision, self.answer = vision, answer
        self.vars = {
            "ENVIRONMENT": "test",
            "ECO2_DATA_DIR": str(self.data_dir),
            "DATABASE_URL": f"{base_pg}/{self.db_name}",
            "REDIS_URL": REDIS,
            "REDIS_KEY_PREFIX": f"eco2bench:{self.run}:",
            "RABBITMQ_URL": RABBIT,
            "EVENTS_NAMESPACE": f"eco2bench-{self.run}",
            "PUBLIC_API_BASE_URL": self.base,
            "INTERNAL_TOKEN": "bench-internal-token",
            "LOG_LEVEL": "WARNING",
            "IMAGE_S3_BUCKET": self.bucket,
            "IMAGE_S3_ENDPOINT_URL": f"http://127.0.0.1:{self.s3_port}",
            "IMAGE_S3_ACCESS_KEY_ID": "bench",
            "IMAGE_S3_SECRET_ACCESS_KEY": "bench",
            "IMAGE_CDN_BASE_URL": "https://cdn.eco2.bench",
            "SCAN_LLM_BASE_URL": f"http://127.0.0.1:{self.llm_port}/v1",
            "SCAN_LLM_API_KEY": "sk-bench",
            "SCAN_MODELS": "fake-vlm",
            "SCAN_WORKER_CONCURRENCY": str(worker_concurrency),
            "SCAN_LLM_MAX_CONCURRENCY": str(worker_concurrency * 2),
            "SCAN_RATE_PER_WINDOW": str(rate_per_window),
            "SCAN_RATE_PER_DAY": "100000",
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def env(self) -> dict[str, str]:
        return {**os.environ, **self.vars, "PYTHONPATH": str(ROOT)}

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.data_dir / f"{name}.log").open("wb")
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=self.env(), stdout=log, stderr=log)
        self.procs[name] = proc
        return proc

    def create_database(self, *services: str) -> None:
        """The benchmark's own database on the local server, migrated (``services``: all if none)."""
        import asyncpg

        async def create() -> None:
            conn = await asyncpg.connect(PG_ADMIN)
            try:
                await conn.execute(f'CREATE DATABASE "{self.db_name}"')
            finally:
                await conn.close()

        asyncio.run(create())
        subprocess.run([eco2(), "migrate", *services], cwd=ROOT, env=self.env(), check=True, capture_output=True)

    def prepare(self) -> None:
        self.create_database()  # every service: the relay reads every outbox
        self.spawn("moto", "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.s3_port))
        wait_http(f"http://127.0.0.1:{self.s3_port}/moto-api/")
        import boto3

        boto3.client(
            "s3", endpoint_url=self.vars["IMAGE_S3_ENDPOINT_URL"], region_name="ap-northeast-2",
            aws_access_key_id="bench", aws_secret_access_key="bench",
        ).create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})  # fmt: skip
        self.spawn("llm", "-m", "tests.support.fake_openai", "--port", str(self.llm_port),
                   "--vision-latency", str(self.vision), "--answer-latency", str(self.answer))  # fmt: skip
        for index in range(self.api_processes):  # SO_REUSEPORT: the kernel spreads connections
            self.spawn(
                "api" if index == 0 else f"api{index}", "-m", "bench.scan_env", "api", "--port", str(self.api_port)
            )
        wait_http(f"{self.base}/health")
        time.sleep(2)

    def start_worker(self) -> None:
        for name, args in (
            ("worker", ["worker", "scan"]),
            ("relay", ["worker", "relay"]),
            ("consumers", ["worker", "consumers", "character", "my"]),
        ):
            if name in self.procs and self.procs[name].poll() is None:
                continue  # still running (the fault run restarts only the worker it killed)
            log = (self.data_dir / f"{name}.log").open("wb")
            self.procs[name] = subprocess.Popen([eco2(), *args], cwd=ROOT, env=self.env(), stdout=log, stderr=log)

    def project_pids(self) -> dict[str, int]:
        """The project's processes (API replicas, worker, relay, consumers): what CPU per scan counts."""
        return {name: p.pid for name, p in self.procs.items() if name not in ("moto", "llm")}

    def cleanup(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        import aio_pika
        import asyncpg
        import redis.asyncio as aioredis

        from services.workers import topology

        async def drop() -> None:
            conn = await asyncpg.connect(PG_ADMIN)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            finally:
                await conn.close()
            client = aioredis.from_url(REDIS)
            async for key in client.scan_iter(match=f"{self.vars['REDIS_KEY_PREFIX']}*", count=1000):
                await client.delete(key)
            await client.aclose()
            # Every consumer queue the workers declared (from the same topology) and both job queues,
            # each with its dead-letter queue: nothing of the run stays on the shared broker.
            queues = [*topology(), "scan.jobs", "chat.jobs"]
            connection = await aio_pika.connect_robust(RABBIT)
            async with connection.channel() as channel:
                for name in queues + [f"{queue}.dlq" for queue in queues]:
                    await channel.queue_delete(f"{self.vars['EVENTS_NAMESPACE']}.{name}")
                for exchange in ("events", "dlx"):
                    await channel.exchange_delete(f"{self.vars['EVENTS_NAMESPACE']}.{exchange}")
            await connection.close()

        asyncio.run(drop())
        shutil.rmtree(self.data_dir, ignore_errors=True)


@contextlib.contextmanager
def stack(**kwargs: float | int) -> Iterator[Env]:
    env = Env(**kwargs)  # type: ignore[arg-type]
    try:
        env.prepare()
        yield env
    finally:
        env.cleanup()


def tokens(env: Env, count: int) -> list[dict[str, str]]:
    """Bearer headers for ``count`` users, signed with the key the API reads from the data dir."""
    sys.path.insert(0, str(ROOT))
    from services.common.config import CommonSettings
    from tests.support.tokens import auth_headers

    common = CommonSettings(data_dir=env.data_dir, public_api_base_url=env.base)
    return [auth_headers(common) for _ in range(count)]


def serve_api(app: Any, port: int) -> None:
    """Serve one API process of a benchmark stack; ``SO_REUSEPORT`` lets several share the port."""
    from services.common import serving

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    serving.run(app, sockets=[sock], log_level="warning", backlog=4096, timeout_keep_alive=60, lifespan="on")


def _serve_api(port: int) -> None:
    from services.common.config import CommonSettings
    from services.gateway import create_gateway
    from services.registry import SERVICES

    common = CommonSettings()
    serve_api(create_gateway([SERVICES[n] for n in ("image", "scan", "character")], common, run_workers=False), port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["api"])
    parser.add_argument("--port", type=int, required=True)
    _serve_api(parser.parse_args().port)
