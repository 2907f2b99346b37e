"""The app as the drill runs it: ``eco2 dev`` in its own process (every service, the outbox relay,
the event consumers and the scan worker) against a given PostgreSQL, driven over HTTP like the
mobile client drives it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

from tests.auth.flows import dev_login, set_cookies
from tests.support.images import PNG
from tests.support.servers import free_port

# Variables that would point the app at the shared servers: the drill's app uses its own PostgreSQL
# and the embedded (in-process) key-value store and event bus.
_SHARED = ("REDIS_URL", "RABBITMQ_URL", "DATABASE_URL", "JWKS_URL", "ENVIRONMENT")


@contextlib.contextmanager
def app_process(database_url: str, data_dir: Path, log_file: Path) -> Iterator[str]:
    """Run ``eco2 dev`` on a free port until the block ends; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if key not in _SHARED}
    env |= {
        "DATABASE_URL": database_url,
        "ECO2_DATA_DIR": str(data_dir),
        "PUBLIC_API_BASE_URL": base,
        "AUTH_FRONTEND_URL": base,
        # The restored app listens on another port; tokens issued before the restore stay valid.
        "JWT_ISSUER": "https://api.eco2.drill/api/v1/auth",
        "ENVIRONMENT": "development",
        "LOG_LEVEL": "WARNING",
        "LOG_JSON": "true",
    }
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "dev", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"eco2 dev exited with {process.returncode}: see {log_file}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"eco2 dev not ready after 120 s: see {log_file}")
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown: workers stop, pools close
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class User:
    login: str
    access: str
    id: uuid.UUID
    jobs: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


async def sign_up(client: httpx.AsyncClient, login: str, nickname: str) -> User:
    """The dev login flow end to end (authorize page, form, callback), as a browser does it."""
    response = await dev_login(client, login, nickname)
    assert response.status_code == 302, response.text
    access = set_cookies(response)["s_access"].split(";", 1)[0].split("=", 1)[1]
    subject = jwt.decode(access, options={"verify_signature": False})["sub"]
    return User(login, access, uuid.UUID(subject))


async def scan(client: httpx.AsyncClient, user: User, note: str, timeout: float = 60) -> dict[str, Any]:
    """Upload a photo, submit it with a note, poll the result until the job is over."""
    issued = await client.post(
        "/api/v1/images/scan", json={"filename": "photo.png", "content_type": "image/png"}, headers=user.headers
    )
    assert issued.status_code == 200, issued.text
    upload = issued.json()
    put = await client.put(upload["upload_url"], content=PNG, headers={"Content-Type": "image/png"})
    assert put.status_code == 200, put.text
    submitted = await client.post(
        "/api/v1/scan", json={"image_url": upload["cdn_url"], "user_input": note}, headers=user.headers
    )
    assert submitted.status_code == 202, submitted.text
    job_id = str(submitted.json()["job_id"])
    user.jobs.append(job_id)
    deadline = time.monotonic() + timeout
    while True:
        result = await client.get(f"/api/v1/scan/{job_id}/result", headers=user.headers)
        if result.status_code == 200:
            return dict(result.json())
        assert result.status_code == 202, result.text
        assert time.monotonic() < deadline, f"scan {job_id} still running after {timeout} s"
        await asyncio.sleep(0.1)


async def rename(client: httpx.AsyncClient, user: User, nickname: str) -> None:
    response = await client.patch("/api/v1/users/me", json={"nickname": nickname}, headers=user.headers)
    assert response.status_code == 200, response.text


@dataclass(frozen=True)
class Seen:
    """What one user sees through the API: nickname, characters, balance, ledger size, job outcomes."""

    nickname: str
    characters: tuple[str, ...]
    balance: int
    ledger: int
    jobs: tuple[tuple[str, int, str, int], ...]  # (job id, HTTP status, scan status, points awarded)


async def seen_by(client: httpx.AsyncClient, user: User, jobs: list[str]) -> Seen:
    me = await client.get("/api/v1/users/me", headers=user.headers)
    assert me.status_code == 200, me.text
    characters = await client.get("/api/v1/users/me/characters", headers=user.headers)
    points = await client.get("/api/v1/users/me/points", params={"limit": 100}, headers=user.headers)
    assert points.status_code == 200, points.text
    outcomes = []
    for job_id in jobs:
        result = await client.get(f"/api/v1/scan/{job_id}/result", headers=user.headers)
        body = result.json()
        outcomes.append((job_id, result.status_code, str(body.get("status", body.get("code"))), awarded(body)))
    return Seen(
        nickname=me.json()["nickname"],
        characters=tuple(sorted(c["name"] for c in characters.json())),
        balance=int(points.json()["balance"]),
        ledger=len(points.json()["history"]),
        jobs=tuple(outcomes),
    )


def awarded(result: dict[str, Any]) -> int:
    reward = result.get("reward") or {}
    return int(reward.get("points_awarded") or 0)
