"""An HTTP client for URLs that come from outside (article pages, feed redirects): SSRF-safe.

Every connection, including each hop of a redirect, goes through one guarded network backend that
resolves the host itself and refuses it when *any* address it resolves to is not public (private,
loopback, link-local such as the cloud metadata address, multicast, reserved, CGNAT, unspecified,
and IPv4 hidden inside IPv6 forms). The socket is then opened to the checked address, not to the
name, so a DNS answer cannot change between the check and the connect (rebinding). TLS still
verifies the certificate against the host name.

Bounds: one deadline for the whole call (redirects included), a body-size cap (read as a stream, so
a huge or endless body costs at most the cap), at most ``max_redirects`` hops, at most
``max_concurrency`` fetches in flight per client. Environment proxies are ignored (``trust_env``
off): a proxy would connect on our behalf and bypass the check.

Tests (and operators with an internal feed) allow specific networks explicitly with
``allow_networks`` (``["127.0.0.1/32"]``); nothing is allowed by default.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_USER_AGENT = "Eco2Bot/1.0 (+https://github.com/eco2)"


class FetchError(Exception):
    """The fetch did not produce a response we may use; ``reason`` is a short machine-readable word."""

    reason = "error"


class UnsafeAddress(FetchError):
    reason = "unsafe_address"


class ResponseTooLarge(FetchError):
    reason = "too_large"


class FetchTimeout(FetchError):
    reason = "timeout"


class TransportFailed(FetchError):
    reason = "transport"


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped ``::ffff:a.b.c.d``, 6to4, Teredo), if any."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip.teredo is not None:
            return ip.teredo[1]
    return None


def is_public(ip: IPAddress) -> bool:
    """Routable on the public internet: what an outside URL may make us connect to."""
    inner = embedded_ipv4(ip)
    if inner is not None and not is_public(inner):
        return False
    # ``is_global`` excludes private, loopback, link-local, reserved, unspecified and shared (CGNAT)
    # space but calls most multicast ranges global, hence the second test.
    return ip.is_global and not ip.is_multicast


class AddressPolicy:
    def __init__(self, allow_networks: Iterable[str] = ()) -> None:
        self.allowed: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n, strict=False) for n in allow_networks)

    def permits(self, ip: IPAddress) -> bool:
        return is_public(ip) or any(ip in network for network in self.allowed)

    async def resolve(self, host: str, port: int) -> str:
        """One address of ``host`` to connect to, after checking every address it resolves to."""
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        if not addresses:
            raise UnsafeAddress(f"{host} does not resolve")
        refused = [str(ip) for ip in addresses if not self.permits(ip)]
        if refused:
            raise UnsafeAddress(f"{host} resolves to a non-public address ({', '.join(refused)})")
        return str(addresses[0])


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the address check in front of every TCP connect."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await self.policy.resolve(host, port)
        return await self.inner.connect_tcp(
            address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeAddress("unix sockets are never reachable from an outside URL")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: AddressPolicy, limits: httpx.Limits) -> None:
        super().__init__(trust_env=False, limits=limits)
        # httpx builds its pool without a way to pass a network backend; rebuild it with ours (same
        # settings httpx uses). tests/common/test_safehttp.py fails if an httpx upgrade breaks this.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(policy),
        )


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    status: int
    headers: httpx.Headers
    content: bytes
    truncated: bool  # the body was longer than the cap and ``truncate`` was asked for

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self) -> str:
        encoding = httpx.Response(self.status, headers=self.headers).charset_encoding or "utf-8"
        try:
            return self.content.decode(encoding, errors="replace")
        except LookupError:  # an unknown charset name in the header
            return self.content.decode("utf-8", errors="replace")


class SafeHttpClient:
    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_bytes: int = 2_000_000,
        max_concurrency: int = 4,
        max_redirects: int = 3,
        allow_networks: Iterable[str] = (),
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._slots = asyncio.Semaphore(max_concurrency)
        limits = httpx.Limits(max_connections=max(max_concurrency, 1) * 2, max_keepalive_connections=max_concurrency)
        self._http = httpx.AsyncClient(
            transport=_GuardedTransport(AddressPolicy(allow_networks), limits),
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            max_redirects=max_redirects,
            trust_env=False,
            headers={"User-Agent": user_agent},
        )

    async def get(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
        truncate: bool = False,
        timeout: float | None = None,
    ) -> Fetched:
        """GET ``url``; any status is returned (the caller decides), every failure is a ``FetchError``.

        ``truncate``: keep the first ``max_bytes`` of a longer body instead of failing (an HTML page
        whose ``<head>`` is all we need)."""
        cap = max_bytes or self.max_bytes
        try:
            async with self._slots, asyncio.timeout(timeout or self.timeout):
                return await self._get(url, params, headers, cap, truncate)
        except TimeoutError:
            raise FetchTimeout(f"no complete answer from {url} in time") from None
        except httpx.TooManyRedirects as exc:
            raise TransportFailed(f"too many redirects from {url}") from exc
        except (httpx.HTTPError, OSError) as exc:  # (our own FetchErrors pass through untouched)
            raise TransportFailed(f"{type(exc).__name__}: {exc}"[:300]) from exc

    async def _get(
        self,
        url: str,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str] | None,
        cap: int,
        truncate: bool,
    ) -> Fetched:
        async with self._http.stream("GET", url, params=params, headers=headers) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap and not truncate:
                raise ResponseTooLarge(f"{url} declares {declared} bytes (cap {cap})")
            body = bytearray()
            truncated = False
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > cap:
                    if not truncate:
                        raise ResponseTooLarge(f"{url} sent more than {cap} bytes")
                    del body[cap:]
                    truncated = True
                    break
            return Fetched(str(response.url), response.status_code, response.headers, bytes(body), truncated)

    async def aclose(self) -> None:
        await self._http.aclose()
