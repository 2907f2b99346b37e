"""Access-token verification for every service: RS256 JWTs checked against the auth service's JWKS.

Only public keys live here. The JWKS comes over HTTP in production (cached, re-fetched on an unknown
``kid`` at most once a minute) or, embedded, from the public key files the auth service writes.
Revocation (logout, refresh-token theft, account deletion) is a set of TTL'd keys in the shared
key-value store.

Hot path: a token whose signature was verified once is remembered (by its exact string) until it
expires, so the RS256 check and claim parsing run once per token, not once per request. The
revocation keys are re-read per token every ``REVOCATION_RECHECK_SECONDS`` in the background (a
request waits for the read only once the last answer is ``REVOCATION_MAX_STALENESS_SECONDS`` old),
and at once after any revocation made by this process: a revoked token is refused everywhere
within about 0.8 s (contract: within 1 s) and immediately by the process that revoked it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import RSAAlgorithm

from services.common.clock import CLOCK
from services.common.errors import Unauthorized
from services.common.kv import KeyValueStore
from services.common.logging import get_logger

ACCESS_COOKIE = "s_access"
REFRESH_COOKIE = "s_refresh"
JWKS_REFETCH_INTERVAL = 60.0
# A remembered token's revocation keys are re-read once it is this old, in the background; requests
# wait for the read only once the last answer is MAX_STALENESS old. Contract: refused within 1 s.
REVOCATION_RECHECK_SECONDS = 0.4
REVOCATION_MAX_STALENESS_SECONDS = 0.8
VERIFIED_CACHE_SIZE = 20_000

log = get_logger("eco2.security")


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: uuid.UUID
    jti: str
    sid: str
    type: str
    provider: str
    exp: int
    iat: int

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> TokenClaims:
        return cls(
            user_id=uuid.UUID(str(payload["sub"])),
            jti=str(payload["jti"]),
            sid=str(payload["sid"]),
            type=str(payload["type"]),
            provider=str(payload.get("provider", "")),
            exp=int(payload["exp"]),
            iat=int(payload["iat"]),
        )


class KeySet(ABC):
    """Public verification keys by ``kid``."""

    @abstractmethod
    async def get(self, kid: str) -> RSAPublicKey | None: ...


class _CachingKeySet(KeySet):
    def __init__(self) -> None:
        self._keys: dict[str, RSAPublicKey] = {}
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    @abstractmethod
    async def _load(self) -> dict[str, RSAPublicKey]: ...

    async def get(self, kid: str) -> RSAPublicKey | None:
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._lock:
            key = self._keys.get(kid)
            if key is None and time.monotonic() - self._loaded_at >= self._refetch_interval():
                try:
                    self._keys = await self._load()
                except Exception as exc:  # a JWKS outage must not turn into 500s; the kid stays unknown
                    log.warning("jwks_load_failed", error=str(exc))
                self._loaded_at = time.monotonic()
                key = self._keys.get(kid)
        return key

    def _refetch_interval(self) -> float:
        return JWKS_REFETCH_INTERVAL if self._keys else 1.0


class HttpKeySet(_CachingKeySet):
    def __init__(self, url: str, client: httpx.AsyncClient | None = None) -> None:
        super().__init__()
        self.url = url
        self._client = client

    async def _load(self) -> dict[str, RSAPublicKey]:
        client = self._client or httpx.AsyncClient(timeout=5)
        try:
            response = await client.get(self.url)
            response.raise_for_status()
            return parse_jwks(response.json())
        finally:
            if self._client is None:
                await client.aclose()


class DirectoryKeySet(_CachingKeySet):
    """Embedded mode: the ``<kid>.pub.pem`` files the auth service writes next to its private keys."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory

    def _refetch_interval(self) -> float:
        return 0.5  # a local directory is cheap to re-read

    async def _load(self) -> dict[str, RSAPublicKey]:
        return await asyncio.to_thread(self._read)

    def _read(self) -> dict[str, RSAPublicKey]:
        keys: dict[str, RSAPublicKey] = {}
        for path in sorted(self.directory.glob("*.pub.pem")):
            key = load_pem_public_key(path.read_bytes())
            if isinstance(key, RSAPublicKey):
                keys[path.name.removesuffix(".pub.pem")] = key
        return keys


def parse_jwks(document: dict[str, Any]) -> dict[str, RSAPublicKey]:
    keys: dict[str, RSAPublicKey] = {}
    for jwk in document.get("keys", []):
        if jwk.get("kty") != "RSA" or "kid" not in jwk:
            continue
        key = RSAAlgorithm.from_jwk(json.dumps(jwk))
        if isinstance(key, RSAPublicKey):
            keys[str(jwk["kid"])] = key
    return keys


class Revocations:
    """Revoked token ids, sessions and users, each kept until the tokens it covers expire."""

    # Bumped by every revocation made in this process (whichever service made it): verifiers re-check
    # their remembered tokens at once instead of waiting for the recheck interval.
    generation = 0

    def __init__(self, kv: KeyValueStore) -> None:
        self.kv = kv

    @classmethod
    def _bump(cls) -> None:
        cls.generation += 1

    async def revoke_token(self, jti: str, ttl: float) -> None:
        await self.kv.set(f"revoked:jti:{jti}", "1", ttl=max(1.0, ttl))
        self._bump()

    async def revoke_session(self, sid: str, ttl: float) -> None:
        await self.kv.set(f"revoked:sid:{sid}", "1", ttl=max(1.0, ttl))
        self._bump()

    async def revoke_user(self, user_id: uuid.UUID | str, ttl: float) -> None:
        await self.kv.set(f"revoked:user:{user_id}", "1", ttl=max(1.0, ttl))
        self._bump()

    async def is_revoked(self, claims: TokenClaims) -> bool:
        return (
            await self.kv.count_existing(
                f"revoked:jti:{claims.jti}", f"revoked:sid:{claims.sid}", f"revoked:user:{claims.user_id}"
            )
            > 0
        )


@dataclass(slots=True)
class _Verified:
    claims: TokenClaims
    checked_at: float  # monotonic time of the last revocation check
    generation: int  # Revocations.generation at that check
    revoked: bool = False
    checking: asyncio.Future[bool] | None = None  # the revocation read in flight, shared by callers
    checking_generation: int = -1


class TokenVerifier:
    def __init__(
        self,
        keys: KeySet,
        revocations: Revocations,
        *,
        issuer: str,
        audience: str,
        leeway: int = 30,
        recheck_seconds: float = REVOCATION_RECHECK_SECONDS,
        max_staleness: float = REVOCATION_MAX_STALENESS_SECONDS,
        cache_size: int = VERIFIED_CACHE_SIZE,
    ) -> None:
        self.keys = keys
        self.revocations = revocations
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.recheck_seconds = recheck_seconds
        self.max_staleness = max(max_staleness, recheck_seconds)
        self.cache_size = cache_size
        self._verified: dict[str, _Verified] = {}

    async def decode(self, token: str, expected_type: str, *, prefix: str = "TOKEN") -> TokenClaims:
        """Verify signature, algorithm, kid, issuer, audience, times and type. No revocation check."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("token is malformed", f"{prefix}_INVALID") from None
        # Only RS256: refuses "none" and the HMAC-with-the-public-key confusion up front.
        if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
            raise Unauthorized("token algorithm or key id not accepted", f"{prefix}_INVALID")
        key = await self.keys.get(header["kid"])
        if key is None:
            raise Unauthorized("token signed with an unknown key", f"{prefix}_INVALID")
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                # Expiry is checked below against this process's clock (the one tests can move).
                options={
                    "require": ["exp", "iat", "nbf", "sub", "jti", "sid", "type", "iss", "aud"],
                    "verify_exp": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"token rejected: {exc}", f"{prefix}_INVALID") from None
        if not isinstance(payload["exp"], int | float) or isinstance(payload["exp"], bool):
            raise Unauthorized("token expiry is not a number", f"{prefix}_INVALID")
        if CLOCK.time() >= payload["exp"] + self.leeway:
            raise Unauthorized("token expired", "TOKEN_EXPIRED" if prefix == "TOKEN" else f"{prefix}_INVALID")
        if payload.get("type") != expected_type:
            raise Unauthorized("wrong token type", f"{prefix}_INVALID")
        try:
            return TokenClaims.from_payload(payload)
        except (ValueError, KeyError):
            raise Unauthorized("token claims malformed", f"{prefix}_INVALID") from None

    async def verify_access(self, token: str) -> TokenClaims:
        entry = self._verified.get(token)
        if entry is not None and CLOCK.time() > entry.claims.exp + self.leeway:
            del self._verified[token]
            entry = None
        if entry is None:
            # decode() also refuses an expired token, so a cached entry never outlives its token.
            entry = _Verified(await self.decode(token, "access"), checked_at=-1e18, generation=-1)
            self._remember(token, entry)
        if entry.revoked:
            raise Unauthorized("token revoked", "TOKEN_REVOKED")
        now = time.monotonic()
        generation = Revocations.generation
        age = now - entry.checked_at
        if age >= self.recheck_seconds or entry.generation != generation:
            # One read per token at a time, started by whichever request notices it is due.
            if entry.checking is None or entry.checking_generation != generation:
                entry.checking = asyncio.ensure_future(self._recheck(entry, now, generation))
                entry.checking_generation = generation
                entry.checking.add_done_callback(_consume_exception)
            # While that read runs, the previous answer still stands if it is recent enough (refresh
            # ahead): requests do not queue behind the store every interval. A revocation made by
            # this process (generation changed) or an answer older than ``max_staleness`` waits.
            must_wait = entry.generation != generation or age >= self.max_staleness
            if must_wait and await asyncio.shield(entry.checking):
                raise Unauthorized("token revoked", "TOKEN_REVOKED")
        return entry.claims

    async def _recheck(self, entry: _Verified, now: float, generation: int) -> bool:
        try:
            if await self.revocations.is_revoked(entry.claims):
                entry.revoked = True  # revocation entries outlive the token: it never comes back
                return True
            if generation >= entry.generation:
                entry.checked_at, entry.generation = now, generation
            return False
        finally:
            if entry.checking_generation == generation:
                entry.checking = None

    def _remember(self, token: str, entry: _Verified) -> None:
        if len(self._verified) >= self.cache_size:
            cutoff = CLOCK.time() - self.leeway
            for key in [k for k, v in self._verified.items() if v.claims.exp < cutoff]:
                del self._verified[key]
            if len(self._verified) >= self.cache_size:
                # Still full of live tokens: forget the oldest half (dicts keep insertion order).
                for key in list(self._verified)[: self.cache_size // 2]:
                    del self._verified[key]
        self._verified[token] = entry


def _consume_exception(future: asyncio.Future[bool]) -> None:
    # A background re-read that failed (store down) is reported to the request that waits for the
    # next one; this only keeps asyncio from logging "exception was never retrieved".
    if not future.cancelled():
        future.exception()


class StaticKeySet(KeySet):
    """Keys known in-process (the auth service verifying the tokens it signed itself)."""

    def __init__(self, keys: dict[str, RSAPublicKey]) -> None:
        self._keys = keys

    async def get(self, kid: str) -> RSAPublicKey | None:
        return self._keys.get(kid)
