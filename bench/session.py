"""Whole-product benchmark: the mobile client's typical session as N concurrent users against the real
stack, next to a bare FastAPI ``hello`` served by the same API process and measured in the same run.

One session (what the client does from opening the app to looking at its characters):

1. **login** — the dev provider's OAuth flow, as a browser does it: ``GET /auth/dev`` (start),
   ``GET /auth/dev/authorize`` (the form), ``POST /auth/dev/authorize`` (the typed login),
   ``GET /auth/dev/callback`` (session cookies);
2. **profile** — ``GET /users/me``;
3. **map** — ``GET /locations/centers`` (zoom 3 around the sample sites in Mapo-gu, Seoul);
4. **scan** — ``POST /images/scan``, the PUT straight to S3 (moto), ``POST /images/scan/callback``,
   ``POST /scan``, its SSE stream followed to ``done``, ``GET /scan/{id}/result``;
5. **characters** — ``GET /users/me/characters``.

Each of N users runs sessions back to back for ``--duration`` seconds (arrivals spread over the first
``--ramp`` seconds). Then, with the same client and the same N connections' worth of concurrency,
``GET /bench/hello`` for ``--hello-duration`` seconds — a bare FastAPI app with one route, dispatched
by the same uvicorn process(es) in front of the services (so both sides share the process, the event
loop, the machine's load at that moment and the client's cost per request). Printed: requests/s of the
session mix and of hello, their ratio, and p50/p95 per endpoint.

The stack (``bench/scan_env.py``'s, extended): PostgreSQL, Redis and RabbitMQ are the local servers in
**real mode** (own database, key prefix and queue namespace, removed afterwards); the API is auth, my,
character, image, scan and location behind the gateway's prefix dispatcher (``--api-processes``,
``SO_REUSEPORT``); ``eco2 worker scan``, ``eco2 worker relay`` and ``eco2 worker consumers`` run as their
own processes; the model is the fake OpenAI-compatible server (``tests/support/fake_openai.py``, latency
``--vision``/``--answer``); S3 is moto's server. The map reads the project's sample sites
(``services/location/data``), imported with ``eco2 location import``.

The client opens one connection per request (``bench/rawsse.py``, ``Connection: close``) for both the
session and hello, and runs in this process: on a 2-core machine it competes with the server, which is
why the figure to compare across changes is the *ratio* to hello measured in the same run.

    uv run python bench/session.py [--users 50] [--duration 60] [--ramp 5] [--hello-duration 20]
        [--api-processes 1] [--vision 0.5] [--answer 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import scan_env
from bench.rawsse import StreamError, request, sse_frames
from bench.scan_env import RABBIT, ROOT, Env, wait_http
from tests.support.images import PNG

SERVICES = ("auth", "my", "character", "image", "scan", "location")
MAP_CENTRE = (37.5559, 126.9106)  # Mapo-gu, where the sample sites are
ENDPOINTS = (
    "login start", "login form", "login post", "login callback", "profile", "map",
    "upload url", "s3 put", "upload callback", "scan submit", "scan sse (to done)", "scan result", "characters",
)  # fmt: skip


class SessionEnv(Env):
    """``scan_env.Env`` with the whole product behind the API and the event workers running."""

    def __init__(self, **kwargs: float | int) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.vars.update({
            "AUTH_DEV_LOGIN_ENABLED": "true",
            "AUTH_SECRET_KEY": secrets.token_urlsafe(32),
            "AUTH_FRONTEND_URL": "https://app.eco2.bench",
            # Every simulated user logs in from 127.0.0.1: the per-address limits would be the benchmark.
            "AUTH_LOGIN_PER_ADDRESS": "1000000",
            "AUTH_LOGIN_GLOBAL": "1000000",
            "AUTH_CALLBACK_PER_ADDRESS": "1000000",
            "AUTH_CALLBACK_GLOBAL": "1000000",
            "SCAN_RATE_PER_WINDOW": "100000",
            "LOCATION_SEED_SAMPLE_DATA": "false",
        })  # fmt: skip

    def prepare(self) -> None:
        self.create_database(*SERVICES)
        eco2 = scan_env.eco2()
        run = {"cwd": ROOT, "env": self.env(), "check": True, "capture_output": True}
        data = ROOT / "services" / "location" / "data"
        for name, fmt in (("sample_keco.csv", "keco"), ("sample_zerowaste.csv", "zerowaste")):
            subprocess.run([eco2, "location", "import", str(data / name), "--format", fmt], **run)  # type: ignore[call-overload]
        self.spawn("moto", "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.s3_port))
        wait_http(f"http://127.0.0.1:{self.s3_port}/moto-api/")
        import boto3

        boto3.client(
            "s3", endpoint_url=self.vars["IMAGE_S3_ENDPOINT_URL"], region_name="ap-northeast-2",
            aws_access_key_id="bench", aws_secret_access_key="bench",
        ).create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})  # fmt: skip
        self.spawn("llm", "-m", "tests.support.fake_openai", "--port", str(self.llm_port),
                   "--vision-latency", str(self.vision), "--answer-latency", str(self.answer))  # fmt: skip
        for index in range(self.api_processes):
            self.spawn(f"api{index}", "-m", "bench.session", "api", "--port", str(self.api_port))
        for name, args in (("worker", ["scan"]), ("relay", ["relay"]), ("consumers", ["consumers"])):
            log = (self.data_dir / f"{name}.log").open("wb")
            self.procs[name] = subprocess.Popen(
                [eco2, "worker", *args], cwd=ROOT, env=self.env(), stdout=log, stderr=log
            )
        wait_http(f"{self.base}/health")
        time.sleep(2)

    def cleanup(self) -> None:
        super().cleanup()  # processes, database, Redis keys, the scan queues

        async def broker() -> None:
            from services.common.config import CommonSettings
            from tests.support.events import delete_broker_objects

            await delete_broker_objects(
                CommonSettings(rabbitmq_url=RABBIT, events_namespace=self.vars["EVENTS_NAMESPACE"])
            )

        asyncio.run(broker())


def cookies(headers: dict[str, str]) -> dict[str, str]:
    """name → value of every ``Set-Cookie`` of a response."""
    found = {}
    for line in headers.get("set-cookie", "").split("\n"):
        name, _, rest = line.partition("=")
        if name:
            found[name.strip()] = rest.split(";", 1)[0]
    return found


class Recorder:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.errors: collections.Counter[str] = collections.Counter()
        self.requests = 0
        self.sessions = 0

    async def call(self, name: str, base: str, method: str, path: str, headers: dict[str, str],
                   body: bytes | None = None, content_type: str = "application/json",
                   expect: int = 200) -> tuple[dict[str, str], bytes]:  # fmt: skip
        started = time.perf_counter()
        status, response_headers, payload = await request(base, method, path, headers, body, content_type)
        self.latency[name].append(time.perf_counter() - started)
        self.requests += 1
        if status != expect:
            raise SessionFailed(f"{name}:{status}:{payload[:80]!r}")
        return response_headers, payload


class SessionFailed(Exception):
    pass


async def login(rec: Recorder, base: str, user: str) -> dict[str, str]:
    headers, payload = await rec.call("login start", base, "GET", "/api/v1/auth/dev", {})
    start = json.loads(payload)["data"]
    bound = {"Cookie": f"s_oauth={cookies(headers)['s_oauth']}"}
    authorize = urlsplit(start["authorization_url"])
    _, page = await rec.call("login form", base, "GET", f"{authorize.path}?{authorize.query}", {})
    state = re.search(rb'name="state" value="([^"]+)"', page)
    if state is None:
        raise SessionFailed("login form: no state")
    form = urlencode({"state": state.group(1).decode(), "login": user, "nickname": ""}).encode()
    headers, _ = await rec.call("login post", base, "POST", "/api/v1/auth/dev/authorize", {}, form,
                                "application/x-www-form-urlencoded", expect=302)  # fmt: skip
    callback = urlsplit(headers["location"])
    headers, _ = await rec.call("login callback", base, "GET", f"{callback.path}?{callback.query}", bound, expect=302)
    session = cookies(headers)
    if "s_access" not in session:
        raise SessionFailed("login callback: no session cookie")
    return {"Cookie": f"s_access={session['s_access']}; s_refresh={session['s_refresh']}"}


async def scan(rec: Recorder, base: str, auth: dict[str, str]) -> None:
    body = json.dumps({"filename": "bottle.png", "content_type": "image/png"}).encode()
    _, payload = await rec.call("upload url", base, "POST", "/api/v1/images/scan", auth, body)
    issued = json.loads(payload)
    target = urlsplit(issued["upload_url"])
    await rec.call("s3 put", f"{target.scheme}://{target.netloc}", "PUT", f"{target.path}?{target.query}", {},
                   PNG, "image/png")  # fmt: skip
    body = json.dumps({"key": issued["key"]}).encode()
    await rec.call("upload callback", base, "POST", "/api/v1/images/scan/callback", auth, body)
    body = json.dumps({"image_url": issued["cdn_url"], "user_input": "생수병"}).encode()
    _, payload = await rec.call("scan submit", base, "POST", "/api/v1/scan", auth, body, expect=202)
    job = json.loads(payload)
    started, done = time.perf_counter(), False
    try:
        async for event, data in sse_frames(base, job["stream_url"], auth):
            if event in ("done", "error"):
                done = event == "done" and json.loads(data)["status"] == "completed"
                break
    except (OSError, StreamError) as exc:
        raise SessionFailed(f"scan sse: {type(exc).__name__}") from exc
    rec.latency["scan sse (to done)"].append(time.perf_counter() - started)
    rec.requests += 1
    if not done:
        raise SessionFailed("scan sse: no completed done")
    _, payload = await rec.call("scan result", base, "GET", job["result_url"], auth)
    if json.loads(payload)["status"] != "completed":
        raise SessionFailed("scan result: not completed")


async def one_session(rec: Recorder, base: str, user: str) -> None:
    auth = await login(rec, base, user)
    _, payload = await rec.call("profile", base, "GET", "/api/v1/users/me", auth)
    assert json.loads(payload)["provider"] == "dev"
    lat, lon = MAP_CENTRE
    map_path = f"/api/v1/locations/centers?{urlencode({'lat': lat, 'lon': lon, 'zoom': 3})}"
    _, payload = await rec.call("map", base, "GET", map_path, auth)
    if not json.loads(payload):
        raise SessionFailed("map: no sites")
    await scan(rec, base, auth)
    await rec.call("characters", base, "GET", "/api/v1/users/me/characters", auth)
    rec.sessions += 1


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (``/proc/<pid>/stat``)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def run(env: SessionEnv, users: int, duration: float, ramp: float, hello_duration: float) -> None:
    base = env.base
    rec = Recorder()
    # Warm-up: one whole session (first logins, JWKS, prepared statements, the worker's consumer).
    for attempt in range(60):
        try:
            await one_session(rec, base, "warmup")
            break
        except SessionFailed:
            if attempt == 59:
                raise
            await asyncio.sleep(1)
    stack_pids = [p.pid for name, p in env.procs.items() if name not in ("llm", "moto")]
    load_start = os.getloadavg()[0]
    rec = Recorder()
    deadline = time.perf_counter() + duration

    async def user(index: int) -> None:
        await asyncio.sleep(random.uniform(0, ramp))
        while time.perf_counter() < deadline:
            try:
                await one_session(rec, base, f"bench-user-{index}")
            except (SessionFailed, OSError, KeyError, ValueError) as exc:
                # "endpoint:status" (the body is left out), or the exception's type.
                kind = ":".join(str(exc).split(":")[:2]) if isinstance(exc, SessionFailed) else type(exc).__name__
                rec.errors[kind] += 1
                await asyncio.sleep(0.5)

    cpu_before, wall = cpu_seconds(stack_pids), time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(users)))
    wall = time.perf_counter() - wall
    stack_cpu = cpu_seconds(stack_pids) - cpu_before

    hello: list[float] = []
    hello_deadline = time.perf_counter() + hello_duration

    async def hello_user() -> None:
        while time.perf_counter() < hello_deadline:
            started = time.perf_counter()
            status, _, _ = await request(base, "GET", "/bench/hello", {})
            if status == 200:
                hello.append(time.perf_counter() - started)

    hello_wall = time.perf_counter()
    await asyncio.gather(*(hello_user() for _ in range(users)))
    hello_wall = time.perf_counter() - hello_wall
    load_end = os.getloadavg()[0]

    session_rps, hello_rps = rec.requests / wall, len(hello) / hello_wall
    print(f"\n{users} users, {wall:.0f} s of sessions (model {env.vision} + {env.answer} s per scan), "
          f"{hello_wall:.0f} s of hello; load average {load_start:.2f} → {load_end:.2f} ({os.cpu_count()} CPUs)")  # fmt: skip
    print(f"sessions completed: {rec.sessions} ({rec.sessions / wall:.2f}/s); failed: {dict(rec.errors) or 'none'}")
    print(f"stack CPU (API, workers, relay, consumers): {stack_cpu:.1f} s → "
          f"{1000 * stack_cpu / max(rec.sessions, 1):.0f} ms per session")  # fmt: skip
    print(f"\nrequests/s: session mix {session_rps:.1f}, bare hello {hello_rps:.1f} "
          f"→ ratio {100 * session_rps / hello_rps:.1f} %")  # fmt: skip
    print(f"\n{'endpoint':<22}{'count':>7}{'p50':>10}{'p95':>10}")
    for name in ENDPOINTS:
        samples = rec.latency.get(name, [])
        print(f"{name:<22}{len(samples):>7}{pct(samples, 50) * 1000:>8.1f}ms{pct(samples, 95) * 1000:>8.1f}ms")
    print(f"{'bare hello':<22}{len(hello):>7}{pct(hello, 50) * 1000:>8.1f}ms{pct(hello, 95) * 1000:>8.1f}ms")


def _serve_api(port: int) -> None:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Receive, Scope, Send

    from services.common.config import CommonSettings
    from services.gateway import create_gateway
    from services.registry import SERVICES as REGISTRY

    bare = FastAPI()

    @bare.get("/bench/hello")
    async def hello() -> dict[str, str]:
        return {"message": "hello"}

    gateway = create_gateway([REGISTRY[name] for name in SERVICES], CommonSettings(), run_workers=False)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        target: ASGIApp = bare if scope["type"] == "http" and scope["path"] == "/bench/hello" else gateway
        await target(scope, receive, send)

    scan_env.serve_api(app, port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="role")
    api = sub.add_parser("api", help="(internal) one API process of the stack")
    api.add_argument("--port", type=int, required=True)
    parser.add_argument("--users", type=int, default=50, help="concurrent simulated users (default 50)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of sessions (default 60)")
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds over which users arrive (default 5)")
    parser.add_argument("--hello-duration", type=float, default=20.0, help="seconds of hello (default 20)")
    parser.add_argument("--api-processes", type=int, default=1, help="API processes sharing the port (default 1)")
    parser.add_argument("--vision", type=float, default=0.5, help="fake model: vision latency, s (default 0.5)")
    parser.add_argument("--answer", type=float, default=0.5, help="fake model: answer latency, s (default 0.5)")
    parser.add_argument("--worker-concurrency", type=int, default=200)
    args = parser.parse_args()
    if args.role == "api":
        _serve_api(args.port)
    else:
        environment = SessionEnv(worker_concurrency=args.worker_concurrency, vision=args.vision,
                                 answer=args.answer, rate_per_window=100000, api_processes=args.api_processes)  # fmt: skip
        try:
            environment.prepare()
            asyncio.run(run(environment, args.users, args.duration, args.ramp, args.hello_duration))
        except BaseException:
            for log in sorted(environment.data_dir.glob("*.log")):  # why a process did not come up
                print(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
            raise
        finally:
            environment.cleanup()
