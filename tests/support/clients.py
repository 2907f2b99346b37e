"""Driving a service app in-process: lifespan started, httpx over the ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

BASE_URL = "https://testserver"  # https: the auth cookies are Secure and httpx honours that


@asynccontextmanager
async def app_clients(app: FastAPI, *hosts: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Clients of one running app, one per client address given: each has its own cookie jar, as
    separate browsers would (an attacker's and a victim's, or many addresses for throttling)."""
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager, AsyncExitStack() as stack:
        clients = []
        for host in hosts:
            transport = httpx.ASGITransport(app=manager.app, client=(host, 40000))
            client = httpx.AsyncClient(transport=transport, base_url=BASE_URL, follow_redirects=False)
            clients.append(await stack.enter_async_context(client))
        yield clients


@asynccontextmanager
async def app_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app_clients(app, "127.0.0.1") as (client,):
        yield client
