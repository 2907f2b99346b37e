"""The kernel's HTTP behaviour on a minimal service: access-token verification, CORS, errors, probes."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter

from services.common.app import create_service_app
from services.common.config import CommonSettings, Environment
from services.common.deps import CurrentUser, RuntimeDep, StreamUser
from services.common.errors import NotFound
from services.common.identity import ServiceEntry
from tests.support.clients import app_client
from tests.support.tokens import issue_tokens, issuer

PROBE = ServiceEntry("probe", "/api/v1/probe", "tests.common.test_kernel_http:router", has_migrations=False)
router = APIRouter()


@router.get("/me")
async def me(user: CurrentUser) -> dict[str, str]:
    return {"user_id": str(user.user_id), "provider": user.provider}


@router.get("/stream")
async def stream(user: StreamUser) -> dict[str, str]:
    return {"user_id": str(user.user_id)}


@router.get("/missing")
async def missing() -> None:
    raise NotFound("no such thing", "THING_NOT_FOUND")


@router.get("/crash")
async def crash() -> None:
    raise RuntimeError("boom: internal detail that must not leak")


@router.post("/revoke/{jti}")
async def revoke(jti: str, runtime: RuntimeDep) -> dict[str, bool]:
    await runtime.revocations.revoke_token(jti, 60)
    return {"ok": True}


@pytest.fixture
async def client(migrated: CommonSettings) -> AsyncIterator[httpx.AsyncClient]:
    issue_tokens(migrated)  # make sure the signing key exists before the verifier first looks
    app = create_service_app(PROBE, common=migrated, routers=[router])
    async with app_client(app) as c:
        yield c


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims(common: CommonSettings, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": str(uuid.uuid4()),
        "jti": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "type": "access",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "iss": common.issuer,
        "aud": common.jwt_audience,
        "provider": "kakao",
    }
    base.update(overrides)
    return base


def sign(common: CommonSettings, payload: dict[str, Any], kid: str | None = None) -> str:
    keys = issuer(common).keys
    return jwt.encode(payload, keys.signing.private, algorithm="RS256", headers={"kid": kid or keys.signing.kid})


async def get(client: httpx.AsyncClient, token: str, path: str = "/api/v1/probe/me") -> httpx.Response:
    return await client.get(path, headers={"Authorization": f"Bearer {token}"})


async def test_valid_token_via_header_or_cookie(client: httpx.AsyncClient, migrated: CommonSettings) -> None:
    user = uuid.uuid4()
    pair = issue_tokens(migrated, user, provider="google")
    by_header = await get(client, pair.access)
    assert by_header.status_code == 200
    assert by_header.json() == {"user_id": str(user), "provider": "google"}
    by_cookie = await client.get("/api/v1/probe/me", headers={"Cookie": f"s_access={pair.access}"})
    assert by_cookie.status_code == 200
    # The header wins when both are present.
    other = issue_tokens(migrated)
    both = await client.get(
        "/api/v1/probe/me", headers={"Authorization": f"Bearer {pair.access}", "Cookie": f"s_access={other.access}"}
    )
    assert both.json()["user_id"] == str(user)


async def test_missing_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/probe/me")
    assert response.status_code == 401
    assert response.json() == {"detail": "access token missing", "code": "TOKEN_MISSING"}


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("alg_none", "TOKEN_INVALID"),
        ("hmac_with_public_key", "TOKEN_INVALID"),
        ("wrong_audience", "TOKEN_INVALID"),
        ("wrong_issuer", "TOKEN_INVALID"),
        ("expired", "TOKEN_EXPIRED"),
        ("refresh_type", "TOKEN_INVALID"),
        ("unknown_kid", "TOKEN_INVALID"),
        ("foreign_key", "TOKEN_INVALID"),
        ("not_before_future", "TOKEN_INVALID"),
        ("missing_sid", "TOKEN_INVALID"),
        ("garbage", "TOKEN_INVALID"),
    ],
)
async def test_forged_or_wrong_tokens_are_401(
    client: httpx.AsyncClient, migrated: CommonSettings, case: str, code: str
) -> None:
    good = claims(migrated)
    keys = issuer(migrated).keys
    if case == "alg_none":
        token = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': keys.signing.kid})}.{b64(good)}."
    elif case == "hmac_with_public_key":
        public_pem = keys.signing.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # PyJWT refuses to HMAC-sign with a PEM key, so build the classic confusion token by hand.
        import hashlib
        import hmac

        signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': keys.signing.kid})}.{b64(good)}"
        mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    elif case == "wrong_audience":
        token = sign(migrated, claims(migrated, aud="someone-else"))
    elif case == "wrong_issuer":
        token = sign(migrated, claims(migrated, iss="https://evil.test/api/v1/auth"))
    elif case == "expired":
        token = sign(migrated, claims(migrated, exp=int(time.time()) - 120))
    elif case == "refresh_type":
        token = sign(migrated, claims(migrated, type="refresh"))
    elif case == "unknown_kid":
        token = sign(migrated, good, kid="no-such-key")
    elif case == "foreign_key":
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = jwt.encode(good, stranger, algorithm="RS256", headers={"kid": keys.signing.kid})
    elif case == "not_before_future":
        token = sign(migrated, claims(migrated, nbf=int(time.time()) + 600))
    elif case == "missing_sid":
        payload = claims(migrated)
        del payload["sid"]
        token = sign(migrated, payload)
    else:
        token = "abc.def"
    response = await get(client, token)
    assert response.status_code == 401
    assert response.json()["code"] == code


async def test_leeway_accepts_slightly_expired(client: httpx.AsyncClient, migrated: CommonSettings) -> None:
    token = sign(migrated, claims(migrated, exp=int(time.time()) - 10))
    assert (await get(client, token)).status_code == 200


async def test_revoked_token_session_and_user(client: httpx.AsyncClient, migrated: CommonSettings) -> None:
    pair = issue_tokens(migrated)
    assert (await get(client, pair.access)).status_code == 200
    await client.post(f"/api/v1/probe/revoke/{pair.access_jti}")
    revoked = await get(client, pair.access)
    assert revoked.status_code == 401
    assert revoked.json()["code"] == "TOKEN_REVOKED"


async def test_stream_auth_accepts_refresh_cookie_when_access_is_expired(
    client: httpx.AsyncClient, migrated: CommonSettings
) -> None:
    user = uuid.uuid4()
    pair = issue_tokens(migrated, user)
    expired = sign(migrated, claims(migrated, sub=str(user), exp=int(time.time()) - 120))
    cookie = f"s_access={expired}; s_refresh={pair.refresh}"
    stream = await client.get("/api/v1/probe/stream", headers={"Cookie": cookie})
    assert stream.status_code == 200
    assert stream.json() == {"user_id": str(user)}
    plain = await client.get("/api/v1/probe/me", headers={"Cookie": cookie})
    assert plain.status_code == 401  # only SSE endpoints accept the refresh cookie


async def test_error_shapes(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/probe/missing")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no such thing", "code": "THING_NOT_FOUND"}
    route = await client.get("/api/v1/probe/nowhere")
    assert route.status_code == 404
    assert route.json()["code"] == "NOT_FOUND"
    crash = await client.get("/api/v1/probe/crash", headers={"Origin": "https://app.eco2.test"})
    assert crash.status_code == 500
    assert crash.json() == {"detail": "internal server error", "code": "INTERNAL_ERROR"}
    assert crash.headers["access-control-allow-origin"] == "https://app.eco2.test"  # CORS even on a crash
    wrong_method = await client.delete("/api/v1/probe/me")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "METHOD_NOT_ALLOWED"


async def test_cors_preflight_and_simple_requests(client: httpx.AsyncClient) -> None:
    allowed = await client.options(
        "/api/v1/probe/me",
        headers={
            "Origin": "https://localhost:5173",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "https://localhost:5173"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    # Derived from the route: GET only, and the Authorization header its dependency declares.
    assert allowed.headers["access-control-allow-methods"] == "GET, OPTIONS"
    assert allowed.headers["access-control-allow-headers"] == "Authorization"
    assert allowed.headers["access-control-max-age"] == "600"
    posting = await client.options(
        "/api/v1/probe/revoke/abc",
        headers={"Origin": "https://localhost:5173", "Access-Control-Request-Method": "POST"},
    )
    assert posting.headers["access-control-allow-methods"] == "POST, OPTIONS"
    assert posting.headers["access-control-allow-headers"] == "Content-Type"  # a body-carrying method
    # A path no route matches: the app-wide union, so the browser goes on to read the JSON 404.
    anywhere = await client.options(
        "/api/v1/anything/at/all",
        headers={"Origin": "https://localhost:5173", "Access-Control-Request-Method": "POST"},
    )
    assert anywhere.status_code == 204
    assert anywhere.headers["access-control-allow-methods"] == "GET, HEAD, POST, OPTIONS"
    assert anywhere.headers["access-control-allow-headers"] == "Authorization, Content-Type"
    denied = await client.options(
        "/api/v1/probe/me", headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"}
    )
    assert denied.status_code == 204
    assert "access-control-allow-origin" not in denied.headers
    unauthorized = await client.get("/api/v1/probe/me", headers={"Origin": "https://app.eco2.test"})
    assert unauthorized.status_code == 401
    assert unauthorized.headers["access-control-allow-origin"] == "https://app.eco2.test"
    assert unauthorized.headers["access-control-allow-credentials"] == "true"
    assert unauthorized.headers["access-control-expose-headers"] == "Retry-After"
    assert "Origin" in unauthorized.headers["vary"]
    foreign = await client.get("/api/v1/probe/me", headers={"Origin": "https://evil.test"})
    assert "access-control-allow-origin" not in foreign.headers


async def test_plain_options_and_head(client: httpx.AsyncClient) -> None:
    """OPTIONS answers on every route (RFC 9110 ``Allow``), unknown paths stay 404; HEAD on probes."""
    options = await client.options("/api/v1/probe/revoke/abc")
    assert options.status_code == 204
    assert options.headers["allow"] == "POST, OPTIONS"
    assert (await client.options("/api/v1/probe/nowhere")).status_code == 404
    head = await client.head("/health")
    assert head.status_code == 200
    assert head.headers["content-type"] == "application/json"


async def test_security_headers_on_every_answer(client: httpx.AsyncClient) -> None:
    answers = [await client.get(path) for path in ("/health", "/api/v1/probe/nowhere", "/api/v1/probe/crash")]
    for response in answers:
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    docs = await client.get("/api/v1/probe/docs")
    assert docs.status_code == 200
    policy = docs.headers["content-security-policy"]
    # The Swagger page's own policy: its CDN bundle and its one inline script (by hash), no framing.
    assert "script-src https://cdn.jsdelivr.net 'sha256-" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in policy
    assert docs.headers["x-frame-options"] == "DENY"


async def test_health_ready_metrics(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.json()["status"] == "ok"
    assert health.json()["service"] == "probe"
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"kv": "ok"}}  # the probe service has no database
    await client.get("/api/v1/probe/missing")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert 'eco2_http_requests_total{method="GET",route="/api/v1/probe/missing",service="probe",status="404"}' in (
        metrics.text
    )
    assert "eco2_http_request_duration_seconds_bucket" in metrics.text
    assert (await client.get("/api/v1/probe/docs")).status_code == 200
    assert (await client.get("/api/v1/probe/openapi.json")).status_code == 200


async def test_ready_reports_a_failing_store(migrated: CommonSettings) -> None:
    app = create_service_app(PROBE, common=migrated, routers=[router])
    async with app_client(app) as c:

        async def broken() -> None:
            raise ConnectionError("store down")

        app.state.runtime.ready_checks["queue"] = broken
        response = await c.get("/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "not_ready"
    assert response.json()["checks"]["queue"] == "error"


def test_production_settings_refuse_placeholders_and_dev_login() -> None:
    from pydantic import ValidationError

    from services.auth.config import AuthSettings

    with pytest.raises(ValidationError, match="AUTH_DEV_LOGIN_ENABLED"):
        AuthSettings(environment=Environment.PRODUCTION, dev_login_enabled=True, secret_key="x" * 40)
    with pytest.raises(ValidationError, match="AUTH_SECRET_KEY"):
        AuthSettings(environment=Environment.PRODUCTION, secret_key="changeme")
    with pytest.raises(ValidationError, match="INTERNAL_TOKEN"):
        CommonSettings(environment=Environment.PRODUCTION)
    with pytest.raises(ValidationError, match="never allowed"):
        CommonSettings(environment=Environment.PRODUCTION, internal_token="x" * 40, cors_allowed_origins="*")
    ok = AuthSettings(environment=Environment.PRODUCTION, secret_key="a-real-secret-" + "x" * 30)
    assert ok.dev_login_enabled is False


def test_cors_origins_parse_from_csv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "https://a.example, https://b.example/")
    assert CommonSettings().cors_allowed_origins == ["https://a.example", "https://b.example"]
