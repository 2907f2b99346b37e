"""The SSRF-safe client: non-public addresses refused (also behind redirects), bodies and time bounded,
concurrency capped; the loopback test server is reachable only when allowed explicitly."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from services.common.safehttp import (
    AddressPolicy,
    FetchTimeout,
    ResponseTooLarge,
    SafeHttpClient,
    UnsafeAddress,
    is_public,
)
from tests.support.servers import serve_asgi

LOOPBACK = ["127.0.0.1/32"]
in_flight = {"now": 0, "max": 0}  # requests tagged ``count=1`` only (an earlier test may still hang)


async def hello(_: Request) -> Response:
    return PlainTextResponse("hello")


async def redirect(request: Request) -> Response:
    return RedirectResponse(request.query_params["to"], status_code=302)


async def big(request: Request) -> Response:
    size = int(request.query_params["size"])
    declared = request.query_params.get("declare") == "1"

    async def chunks() -> object:
        for _ in range(size // 1000):
            yield b"x" * 1000

    if declared:
        return Response(b"x" * size)
    return StreamingResponse(chunks())  # no Content-Length: the cap must hold while streaming


async def slow(request: Request) -> Response:
    counted = int(request.query_params.get("count", "0"))
    in_flight["now"] += counted
    in_flight["max"] = max(in_flight["max"], in_flight["now"])
    try:
        await asyncio.sleep(float(request.query_params.get("s", "0.2")))
    finally:
        in_flight["now"] -= counted
    return PlainTextResponse("late")


app = Starlette(routes=[Route("/hello", hello), Route("/redirect", redirect), Route("/big", big), Route("/slow", slow)])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve_asgi(app) as base:
        yield base


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("239.255.255.250", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:8.8.8.8", True),
        ("2002:7f00:0001::1", False),  # 6to4 around 127.0.0.1
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


async def test_loopback_is_refused_unless_allowed(server: str) -> None:
    client = SafeHttpClient()
    try:
        with pytest.raises(UnsafeAddress):
            await client.get(f"{server}/hello")
    finally:
        await client.aclose()
    allowed = SafeHttpClient(allow_networks=LOOPBACK)
    try:
        fetched = await allowed.get(f"{server}/hello")
        assert (fetched.status, fetched.content) == (200, b"hello")
    finally:
        await allowed.aclose()


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.2/",  # loopback, but outside the allowed /32
        "http://[::1]/",
        "http://10.0.0.1:8080/admin",
    ],
)
async def test_redirects_to_non_public_addresses_are_refused(server: str, target: str) -> None:
    client = SafeHttpClient(allow_networks=LOOPBACK, timeout=3)
    try:
        with pytest.raises(UnsafeAddress):
            await client.get(f"{server}/redirect", params={"to": target})
    finally:
        await client.aclose()


async def test_names_are_resolved_and_checked_before_connecting() -> None:
    policy = AddressPolicy(LOOPBACK)
    assert await policy.resolve("127.0.0.1", 80) == "127.0.0.1"
    for host in ("127.0.0.1", "localhost"):  # a literal, and a name that resolves to loopback
        with pytest.raises(UnsafeAddress):
            await AddressPolicy().resolve(host, 80)


async def test_body_size_is_capped_streamed_or_declared(server: str) -> None:
    client = SafeHttpClient(allow_networks=LOOPBACK, max_bytes=10_000)
    try:
        with pytest.raises(ResponseTooLarge):
            await client.get(f"{server}/big", params={"size": 50_000})
        with pytest.raises(ResponseTooLarge):
            await client.get(f"{server}/big", params={"size": 50_000, "declare": 1})
        head = await client.get(f"{server}/big", params={"size": 50_000}, truncate=True)
        assert (len(head.content), head.truncated) == (10_000, True)
        whole = await client.get(f"{server}/big", params={"size": 5_000})
        assert (len(whole.content), whole.truncated) == (5_000, False)
    finally:
        await client.aclose()


async def test_a_hanging_server_costs_at_most_the_deadline(server: str) -> None:
    client = SafeHttpClient(allow_networks=LOOPBACK, timeout=0.3)
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(FetchTimeout):
            await client.get(f"{server}/slow", params={"s": 1.5})
        assert asyncio.get_running_loop().time() - started < 2
    finally:
        await client.aclose()


async def test_at_most_n_fetches_in_flight(server: str) -> None:
    in_flight["max"] = 0
    client = SafeHttpClient(allow_networks=LOOPBACK, max_concurrency=2)
    try:
        results = await asyncio.gather(*(client.get(f"{server}/slow", params={"s": 0.1, "count": 1}) for _ in range(6)))
        assert all(r.status == 200 for r in results)
        assert in_flight["max"] == 2
    finally:
        await client.aclose()
