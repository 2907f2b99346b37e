"""A minimal HTTP/1.1 SSE client on asyncio streams for the benchmarks.

httpx's connection pool spends O(open connections) per request, which at thousands of concurrent
streams makes the *client* the bottleneck on a 2-core box; this reads chunked ``text/event-stream``
frames directly from a socket and costs almost nothing per stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit


class StreamError(Exception):
    pass


async def sse_frames(base: str, path: str, headers: dict[str, str]) -> AsyncIterator[tuple[str, str]]:
    """Yield ``(event, data)`` for each frame (``retry`` lines are skipped)."""
    url = urlsplit(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port or 80, limit=1 << 20)
    try:
        lines = [f"GET {path} HTTP/1.1", f"Host: {url.netloc}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise StreamError(status.decode(errors="replace").strip())
        chunked = False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower():
                chunked = True
        buffer = b""
        while True:
            if chunked:
                size_line = await reader.readline()
                if not size_line:
                    return
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    return
                chunk = await reader.readexactly(size + 2)
                buffer += chunk[:-2]
            else:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                event, data = "", ""
                for raw in block.decode().split("\n"):
                    name, _, value = raw.partition(": ")
                    if name == "event":
                        event = value
                    elif name == "data":
                        data = value
                if event:
                    yield event, data
    finally:
        writer.close()


async def request(base: str, method: str, path: str, headers: dict[str, str], body: bytes | None = None,
                  content_type: str = "application/json") -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    """One HTTP/1.1 request on a fresh loopback connection (``Connection: close``). Response header
    names are lower-cased; repeated headers (``set-cookie``) are joined with newlines."""
    url = urlsplit(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port or 80)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {url.netloc}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    response_headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        response_headers[name] = f"{response_headers[name]}\n{value}" if name in response_headers else value
    if response_headers.get("transfer-encoding") == "chunked":
        decoded, rest = b"", payload
        while rest:
            size_text, _, rest = rest.partition(b"\r\n")
            size = int(size_text.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            decoded, rest = decoded + rest[:size], rest[size + 2 :]
        payload = decoded
    return int(status_line.split()[1]), response_headers, payload
