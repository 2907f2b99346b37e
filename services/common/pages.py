"""The HTML pages this backend serves (dev landing page, dev login form, API docs) and their headers.

Each page gets a Content-Security-Policy built from its own markup: inline ``<script>``/``<style>``
blocks are allowed by their SHA-256 hash, nothing else runs, and no other site may frame the page.
So a page cannot be turned into a script-injection or clickjacking target even where it echoes input
(the dev login form echoes ``state``). The framing, sniffing and referrer headers come from
``SecurityHeadersMiddleware`` like on every other answer; the policy here replaces its default.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
import zlib
from collections.abc import Callable, Iterable

from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

_INLINE = re.compile(r"<(script|style)(?![^>]*\bsrc=)[^>]*>(.*?)</\1>", re.DOTALL | re.IGNORECASE)
# Swagger UI as FastAPI serves it: bundle and stylesheet from jsDelivr, its favicon from fastapi's site.
SWAGGER_CDN = "https://cdn.jsdelivr.net"
SWAGGER_FAVICON_HOST = "https://fastapi.tiangolo.com"


def _hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def content_security_policy(
    html: str,
    *,
    script_src: Iterable[str] = (),
    style_src: Iterable[str] = (),
    img_src: Iterable[str] = ("'self'", "data:"),
    connect_src: Iterable[str] = (),
    form_action: Iterable[str] = (),
) -> str:
    scripts, styles = list(script_src), list(style_src)
    for tag, body in _INLINE.findall(html):
        (scripts if tag.lower() == "script" else styles).append(_hash(body))
    directives = {
        "default-src": ["'none'"],
        "script-src": scripts,
        "style-src": styles,
        "img-src": list(img_src),
        "connect-src": list(connect_src),
        "form-action": list(form_action) or ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(dict.fromkeys(values))}" for name, values in directives.items() if values)


def html_page(html: str, status_code: int = 200, **policy: Iterable[str]) -> HTMLResponse:
    """An HTML answer with its own CSP (see ``content_security_policy`` for the keyword arguments)."""
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={"Content-Security-Policy": content_security_policy(html, **policy), "Cache-Control": "no-store"},
    )


def swagger_page(openapi_url: str, title: str) -> HTMLResponse:
    html = bytes(get_swagger_ui_html(openapi_url=openapi_url, title=f"{title} - Swagger UI").body).decode()
    return html_page(
        html,
        script_src=[SWAGGER_CDN],
        # Swagger UI styles some elements from script; only scripts are restricted to hashes here.
        style_src=[SWAGGER_CDN, "'unsafe-inline'"],
        img_src=["'self'", "data:", SWAGGER_FAVICON_HOST],
        connect_src=["'self'"],
    )


def _png(size: int, pixel: Callable[[int, int], tuple[int, int, int, int]]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(size)) for y in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _leaf(x: int, y: int) -> tuple[int, int, int, int]:
    """A green disc with a lighter diagonal vein: the project's colour, recognisable in a tab."""
    dx, dy = x - 15.5, y - 15.5
    if dx * dx + dy * dy > 15.5 * 15.5:
        return (0, 0, 0, 0)
    if abs(dx + dy) < 1.2 and dx < 8:
        return (211, 249, 216, 255)
    return (47, 158, 68, 255)


def _ico(png: bytes, size: int) -> bytes:
    # An ICO whose one image is a PNG (supported by every current browser).
    return struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(png), 22) + png


FAVICON = _ico(_png(32, _leaf), 32)


def favicon_response() -> Response:
    return Response(FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})
