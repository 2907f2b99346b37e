"""Benchmark: ``GET /api/v1/users/me`` with a valid cookie vs a bare FastAPI ``hello``, side by side.

Real mode: PostgreSQL and Redis (URLs below, overridable). Both endpoints are served by the same
uvicorn process (``bench/users_me_server.py``: same server settings, same connections) and loaded by
``wrk`` with the same connection count; the rounds alternate (hello, me, naive, hello, me, naive…)
and the median of each is reported.

Needs ``wrk`` (Debian/Ubuntu: ``apt-get install -y wrk``). Run:

    uv run python bench/users_me.py                   # 64 connections, 3 rounds of 10 s
    uv run python bench/users_me.py --duration 5 --rounds 1

Prints numbers; it is not a test and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("ECO2_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("ECO2_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
ME = "/api/v1/users/me"
HELLO = "/bench/hello"
NAIVE = "/bench/naive/users/me"


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def parse_wrk(output: str) -> Result:
    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not match:
            raise RuntimeError(f"wrk output without {label}%:\n{output}")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not rps:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    failed = int(errors.group(1)) if errors else 0
    if socket_errors:
        failed += sum(int(n) for n in socket_errors.groups())
    return Result(float(rps.group(1)), ms("50"), ms("99"), failed)


def wrk(url: str, cookie: str, connections: int, threads: int, duration: int) -> Result:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-H", f"Cookie: {cookie}", url]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout)


async def create_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (keep the server's core free)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per round and endpoint")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=18731)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get update && apt-get install -y wrk  (or build it from github.com/wg/wrk)")

    sys.path.insert(0, str(ROOT))
    from services.auth.keys import KeyRing
    from services.auth.tokens import TokenIssuer
    from services.common.db import database_url_for  # noqa: F401 - the server imports the same package
    from services.common.migrations import upgrade

    run = uuid.uuid4().hex[:8]
    database = f"eco2_bench_me_{run}"
    data_dir = Path(tempfile.mkdtemp(prefix="eco2-bench-"))
    asyncio.run(create_database(database))
    server: subprocess.Popen[bytes] | None = None
    try:
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        database_url = f"{base}/{database}"
        upgrade("my", database_url)
        public = f"http://127.0.0.1:{args.port}"
        env = os.environ | {
            "ENVIRONMENT": "test",
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "REDIS_KEY_PREFIX": f"eco2bench:{run}:",
            "ECO2_DATA_DIR": str(data_dir),
            "PUBLIC_API_BASE_URL": public,
            "INTERNAL_TOKEN": "bench-internal-token",
            "LOG_LEVEL": "WARNING",
        }
        keyring = KeyRing.load(data_dir / "keys", None, generate=True)
        issuer = TokenIssuer(
            keyring, issuer=f"{public}/api/v1/auth", audience="eco2-api", access_ttl=3600, refresh_ttl=3600
        )
        token = issuer.issue(uuid.uuid4(), uuid.uuid4(), "kakao", int(time.time())).access
        cookie = f"s_access={token}"
        server = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "bench.users_me_server:app",
                "--host", "127.0.0.1", "--port", str(args.port), "--workers", "1",
                "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
            ],
            cwd=ROOT,
            env=env,
        )  # fmt: skip
        with httpx.Client(base_url=public, cookies={"s_access": token}, timeout=5) as client:
            for _ in range(200):
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            first = client.get(ME)
            require(first.status_code == 200, f"GET {ME}: {first.status_code} {first.text}")
            profile = first.json()
            require(bool(profile["username"]) and profile["provider"] == "kakao", f"unexpected profile {profile}")
            require(client.get(NAIVE).status_code == 200, "the naive endpoint does not answer")
            # Correctness under the caches: a user's own write is visible to their next read.
            require(client.patch(ME, json={"nickname": "벤치마크"}).status_code == 200, "PATCH failed")
            require(client.get(ME).json()["nickname"] == "벤치마크", "PATCH not visible to the next GET")
        print(
            f"server: uvicorn, 1 worker, uvloop + httptools, access log off; client: wrk -t{args.threads}"
            f" -c{args.connections}, {args.duration}s x {args.rounds} rounds; {os.cpu_count()} CPUs"
        )
        for path in (HELLO, ME, NAIVE):  # warm-up
            wrk(public + path, cookie, args.connections, args.threads, 2)
        results: dict[str, list[Result]] = {HELLO: [], ME: [], NAIVE: []}
        for round_ in range(args.rounds):
            for path in results:
                result = wrk(public + path, cookie, args.connections, args.threads, args.duration)
                results[path].append(result)
                print(
                    f"  round {round_ + 1} {path:<24} {result.rps:9.0f} req/s  p50 {result.p50_ms:6.2f} ms"
                    f"  p99 {result.p99_ms:6.2f} ms  errors {result.errors}"
                )
        print("\nmedians:")
        median = {path: summarise(rows) for path, rows in results.items()}
        for path, (rps, p50, p99, errors) in median.items():
            print(f"  {path:<24} {rps:9.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  errors {errors}")
        hello_rps, me = median[HELLO][0], median[ME]
        print(
            f"\n/users/me = {100 * me[0] / hello_rps:.1f} % of bare hello RPS, p99 {me[2]:.2f} ms"
            f" (target ≥ 35 %, ≤ 20 ms); naive version = {100 * median[NAIVE][0] / hello_rps:.1f} %"
            f", p99 {median[NAIVE][2]:.2f} ms"
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        asyncio.run(drop_database(database))
        shutil.rmtree(data_dir, ignore_errors=True)


def require(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"benchmark setup failed: {message}")


def summarise(rows: list[Result]) -> tuple[float, float, float, int]:
    return (
        statistics.median(r.rps for r in rows),
        statistics.median(r.p50_ms for r in rows),
        statistics.median(r.p99_ms for r in rows),
        sum(r.errors for r in rows),
    )


if __name__ == "__main__":
    main()
