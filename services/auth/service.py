"""Auth rules: login state, PKCE, user resolution, sessions, refresh rotation with reuse detection.

No HTTP here; the router turns results and errors into redirects, cookies and status codes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.config import AuthSettings
from services.auth.models import Account, Identity, LoginEvent, Outbox, Session
from services.auth.providers import (
    ProviderConfig,
    ProviderError,
    ProviderProfile,
    exchange_code,
    fetch_profile,
)
from services.auth.tokens import TokenIssuer, TokenPair
from services.common.clock import utcnow
from services.common.db import Database
from services.common.domain_events import UserCreated, UserLoggedIn
from services.common.errors import BadRequest, Unauthorized
from services.common.kv import KeyValueStore
from services.common.logging import get_logger
from services.common.metrics import AUTH_LOGINS, AUTH_REFRESHES
from services.common.security import Revocations, TokenClaims, TokenVerifier

log = get_logger("eco2.auth")


class RefreshReuse(Unauthorized):
    """A rotated refresh token presented outside the grace window: the session is revoked."""


DEV_LOGIN_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
DEV_CODE_TTL = 60


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def browser_digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


@dataclass(frozen=True)
class LoginStart:
    provider: str
    state: str
    authorization_url: str
    expires_at: datetime
    # Set as the login cookie of the browser that started the flow; the callback must present it.
    browser_nonce: str


@dataclass(frozen=True)
class LoginState:
    provider: str
    redirect_uri: str
    frontend_origin: str | None
    code_verifier: str | None
    # SHA-256 of the browser nonce: binds the state to the browser that started the login, so a
    # callback link made by someone else fails in the victim's browser (login CSRF).
    browser: str = ""

    @classmethod
    def load(cls, raw: str) -> LoginState:
        return cls(**json.loads(raw))


class LoginFailed(Exception):
    """Any failure of the callback; carries where the browser goes back to."""

    def __init__(self, frontend_origin: str, reason: str) -> None:
        super().__init__(reason)
        self.frontend_origin = frontend_origin
        self.reason = reason


class DevLoginError(Exception):
    """Invalid input or state on the dev login page (rendered as a 400 HTML page)."""


@dataclass(kw_only=True)
class AuthService:
    settings: AuthSettings
    allowed_origins: frozenset[str]
    kv: KeyValueStore
    revocations: Revocations
    issuer: TokenIssuer
    verifier: TokenVerifier
    providers: dict[str, ProviderConfig]
    http: httpx.AsyncClient

    def __post_init__(self) -> None:
        secret = hashlib.sha256(self.settings.secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(secret))

    # ----------------------------------------------------------------- login start

    def provider(self, name: str) -> ProviderConfig:
        config = self.providers.get(name)
        if config is None:
            raise BadRequest(f"provider '{name}' is not supported or not configured", "UNSUPPORTED_PROVIDER")
        return config

    def accepted_origin(self, *candidates: str | None) -> str | None:
        for candidate in candidates:
            if candidate:
                # First one given wins; never reflect an origin that is not on the allow-list.
                origin = candidate.strip().rstrip("/")
                return origin if origin in self.allowed_origins else None
        return None

    async def start_login(
        self,
        provider_name: str,
        redirect_uri: str | None,
        frontend_origin: str | None,
        origin_header: str | None,
    ) -> LoginStart:
        provider = self.provider(provider_name)
        if redirect_uri is not None and not provider.accepts_redirect(redirect_uri):
            raise BadRequest("redirect_uri is not a registered callback URL", "INVALID_REDIRECT_URI")
        redirect = redirect_uri or provider.default_redirect_uri
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48) if provider.pkce else None  # 64 URL-safe characters
        nonce = secrets.token_urlsafe(32)
        origin = self.accepted_origin(frontend_origin, origin_header)
        record = LoginState(provider.name, redirect, origin, verifier, browser_digest(nonce))
        ttl = self.settings.state_ttl_seconds
        await self.kv.set(f"auth:state:{state}", json.dumps(record.__dict__), ttl=ttl)
        url = provider.authorization_url(
            state=state, redirect_uri=redirect, code_challenge=s256(verifier) if verifier else None
        )
        return LoginStart(provider.name, state, url, utcnow() + timedelta(seconds=ttl), nonce)

    # -------------------------------------------------------------- login callback

    async def complete_login(self, session: AsyncSession, provider_name: str, **callback: Any) -> tuple[str, TokenPair]:
        """The login callback, counted by provider and outcome (``eco2_auth_logins_total``)."""
        label = provider_name if provider_name in self.providers else "unknown"  # bounded: a path segment
        try:
            result = await self._complete_login(session, provider_name, **callback)
        except LoginFailed:
            AUTH_LOGINS(label, "failed").inc()
            raise
        AUTH_LOGINS(label, "success").inc()
        return result

    async def _complete_login(
        self,
        session: AsyncSession,
        provider_name: str,
        *,
        code: str | None,
        state: str | None,
        error: str | None,
        browser_nonce: str | None,
        ip: str | None,
        user_agent: str | None,
    ) -> tuple[str, TokenPair]:
        raw = await self.kv.getdel(f"auth:state:{state}") if state else None  # single use, atomically
        record = LoginState.load(raw) if raw else None
        origin = (record.frontend_origin if record else None) or self.settings.frontend_url
        if record is None:
            raise LoginFailed(origin, "unknown, expired or replayed state")
        presented = browser_digest(browser_nonce) if browser_nonce else ""
        if not record.browser or not hmac.compare_digest(record.browser, presented):
            raise LoginFailed(origin, "state was started by another browser (login cookie missing or different)")
        if record.provider != provider_name:
            raise LoginFailed(origin, f"state was issued for {record.provider}, not {provider_name}")
        if error:
            raise LoginFailed(origin, f"provider returned error={error}")
        if not code:
            raise LoginFailed(origin, "callback without code")
        provider = self.providers.get(provider_name)
        if provider is None:
            raise LoginFailed(origin, "provider not configured")
        try:
            if provider.dev_backed:
                profile = await self._dev_profile(code, state or "", record)
            else:
                async with asyncio.timeout(self.settings.provider_timeout_seconds):
                    token = await exchange_code(
                        self.http,
                        provider,
                        code=code,
                        redirect_uri=record.redirect_uri,
                        verifier=record.code_verifier,
                        state=state or "",
                    )
                    profile = await fetch_profile(self.http, provider, token)
        except (ProviderError, TimeoutError) as exc:
            raise LoginFailed(origin, f"{provider.name}: {exc!r}") from exc
        identity = provider.identity_provider
        account_id = await self._resolve_account(session, identity, profile, ip, user_agent)
        tokens = await self._open_session(session, account_id, identity)
        return origin, tokens

    async def _dev_profile(self, code: str, state: str, record: LoginState) -> ProviderProfile:
        raw = await self.kv.getdel(f"auth:devcode:{code}")
        if raw is None:
            raise ProviderError("dev code unknown, expired or used")
        grant = json.loads(raw)
        if grant["state"] != state or not record.code_verifier or s256(record.code_verifier) != grant["challenge"]:
            raise ProviderError("dev code does not match state or PKCE verifier")
        return ProviderProfile(subject=grant["login"], nickname=grant["nickname"], email=None, profile_image_url=None)

    async def _resolve_account(
        self,
        session: AsyncSession,
        provider: str,
        profile: ProviderProfile,
        ip: str | None,
        user_agent: str | None,
    ) -> uuid.UUID:
        now = utcnow()
        identity = await self._identity(session, provider, profile.subject)
        created = False
        if identity is None:
            try:
                async with session.begin_nested():
                    identity = self._new_account(session, provider, profile, now)
                created = True
            except IntegrityError:
                # A concurrent first login of the same social account won the race; use its row.
                identity = await self._identity(session, provider, profile.subject)
                if identity is None:
                    raise
        else:
            # Later logins refresh contact data but never the nickname the user may have changed.
            identity.email = profile.email or identity.email
            identity.profile_image_url = profile.profile_image_url or identity.profile_image_url
        identity.last_login_at = now
        await session.execute(update(Account).where(Account.id == identity.account_id).values(last_login_at=now))
        session.add(
            LoginEvent(
                account_id=identity.account_id,
                provider=provider,
                new_account=created,
                ip=ip,
                user_agent=(user_agent or "")[:512] or None,
                created_at=now,
            )
        )
        Outbox.emit(session, UserLoggedIn(user_id=identity.account_id, provider=provider, logged_in_at=now))
        log.info("login", user_id=str(identity.account_id), provider=provider, new_account=created)
        return identity.account_id

    async def _identity(self, session: AsyncSession, provider: str, subject: str) -> Identity | None:
        result = await session.execute(
            select(Identity).where(Identity.provider == provider, Identity.subject == subject)
        )
        return result.scalar_one_or_none()

    def _new_account(self, session: AsyncSession, provider: str, profile: ProviderProfile, now: datetime) -> Identity:
        account = Account(id=uuid.uuid4(), created_at=now, last_login_at=now)
        nickname = (profile.nickname or "").strip()[:30] or f"에코친구{secrets.randbelow(10_000):04d}"
        identity = Identity(
            account_id=account.id,
            provider=provider,
            subject=profile.subject,
            email=profile.email,
            nickname=nickname,
            profile_image_url=profile.profile_image_url,
            created_at=now,
        )
        session.add_all([account, identity])
        # The my service creates the profile (and grants 이코) from this event.
        Outbox.emit(
            session,
            UserCreated(
                user_id=account.id,
                provider=provider,
                nickname=nickname,
                email=profile.email,
                profile_image_url=profile.profile_image_url,
                created_at=now,
            ),
        )
        return identity

    async def _open_session(self, session: AsyncSession, account_id: uuid.UUID, provider: str) -> TokenPair:
        sid = uuid.uuid4()
        now = int(time.time())
        tokens = self.issuer.issue(account_id, sid, provider, now)
        session.add(
            Session(
                id=sid,
                account_id=account_id,
                provider=provider,
                current_refresh_jti=tokens.refresh_jti,
                created_at=utcnow(),
                expires_at=datetime.fromtimestamp(tokens.refresh_exp, UTC),
            )
        )
        await self.revocations.record_refresh(str(sid), tokens.refresh_jti, tokens.refresh_exp)
        return tokens

    # -------------------------------------------------------------------- refresh

    async def refresh(self, session: AsyncSession, token: str | None) -> TokenPair:
        """Rotate a refresh token, counted by outcome (``eco2_auth_refreshes_total``)."""
        try:
            pair, outcome = await self._refresh(session, token)
        except RefreshReuse:
            AUTH_REFRESHES("reuse_detected").inc()
            raise
        except Unauthorized:
            AUTH_REFRESHES("refused").inc()
            raise
        AUTH_REFRESHES(outcome).inc()
        return pair

    async def _refresh(self, session: AsyncSession, token: str | None) -> tuple[TokenPair, str]:
        if not token:
            raise Unauthorized("refresh token missing", "REFRESH_TOKEN_MISSING")
        claims = await self.verifier.decode(token, "refresh", prefix="REFRESH_TOKEN")
        if await self.revocations.is_revoked(claims):
            raise Unauthorized("session revoked", "REFRESH_TOKEN_REVOKED")
        row = await session.get(Session, uuid.UUID(claims.sid))
        if row is None or row.revoked_at is not None or row.account_id != claims.user_id:
            raise Unauthorized("session revoked", "REFRESH_TOKEN_REVOKED")
        if await session.get(Account, claims.user_id) is None:
            raise Unauthorized("user no longer exists", "REFRESH_TOKEN_REVOKED")

        grace_key = f"auth:grace:{claims.jti}"
        if row.current_refresh_jti == claims.jti:
            candidate = self.issuer.issue(claims.user_id, row.id, row.provider, int(time.time()))
            # The first of several concurrent refreshes claims the rotation; the others reuse its pair.
            if await self.kv.set(grace_key, self._seal(candidate), ttl=self.settings.refresh_grace_seconds, nx=True):
                rotated = await session.execute(
                    update(Session)
                    .where(Session.id == row.id, Session.current_refresh_jti == claims.jti)
                    .values(
                        current_refresh_jti=candidate.refresh_jti,
                        refreshed_at=utcnow(),
                        expires_at=datetime.fromtimestamp(candidate.refresh_exp, UTC),
                    )
                )
                if rotated.rowcount == 1:  # type: ignore[attr-defined]
                    await self.revocations.record_refresh(
                        str(row.id),
                        candidate.refresh_jti,
                        candidate.refresh_exp,
                        previous=claims.jti,
                        grace_seconds=self.settings.refresh_grace_seconds,
                    )
                    return candidate, "rotated"
                await self.kv.delete(grace_key)
        successor = await self.kv.get(grace_key)
        if successor is not None:
            pair = self._open(successor)
            if pair is not None:
                return pair, "grace"
        # A rotated refresh token presented outside the grace window: treat it as stolen.
        await self._revoke_session_row(session, row, "refresh_reuse")
        await session.commit()  # the revocation must stick although the request fails
        await self.revocations.revoke_session(str(row.id), self._session_ttl(row))
        log.warning("refresh_token_reuse", user_id=str(claims.user_id), sid=claims.sid)
        raise RefreshReuse("refresh token reuse detected; session revoked", "REFRESH_TOKEN_REVOKED")

    def _seal(self, pair: TokenPair) -> str:
        return self._fernet.encrypt(json.dumps(pair.to_dict()).encode()).decode()

    def _open(self, sealed: str) -> TokenPair | None:
        try:
            return TokenPair(**json.loads(self._fernet.decrypt(sealed.encode())))
        except (InvalidToken, ValueError, TypeError):
            return None

    @staticmethod
    def _session_ttl(row: Session) -> float:
        return max(1.0, (row.expires_at - utcnow()).total_seconds())

    @staticmethod
    async def _revoke_session_row(session: AsyncSession, row: Session, reason: str) -> None:
        await session.execute(
            update(Session)
            .where(Session.id == row.id, Session.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoked_reason=reason)
        )

    # --------------------------------------------------------------------- logout

    async def logout(self, db: Database, access: str | None, refresh: str | None) -> None:
        """Revoke whatever valid tokens were presented. Never raises: logout always succeeds (R3)."""
        now = time.time()
        sessions: set[str] = set()
        for token, kind in ((access, "access"), (refresh, "refresh")):
            if not token:
                continue
            try:
                claims = await self.verifier.decode(token, kind)
            except Unauthorized:
                continue  # missing, malformed or expired: nothing to revoke
            sessions.add(claims.sid)
            try:
                if kind == "access":
                    await self.revocations.revoke_token(claims.jti, claims.exp - now)
                await self.revocations.revoke_session(claims.sid, self.settings.refresh_ttl_seconds)
            except Exception as exc:
                log.error("logout_revocation_store_failed", error=repr(exc))
        if not sessions:
            return
        try:
            async with db.session() as session:
                await session.execute(
                    update(Session)
                    .where(Session.id.in_([uuid.UUID(s) for s in sessions]), Session.revoked_at.is_(None))
                    .values(revoked_at=utcnow(), revoked_reason="logout")
                )
        except Exception as exc:
            log.error("logout_session_update_failed", error=repr(exc))

    async def claims_or_none(self, token: str | None, kind: str) -> TokenClaims | None:
        if not token:
            return None
        try:
            return await self.verifier.decode(token, kind)
        except Unauthorized:
            return None

    # ------------------------------------------------------------------ dev login

    async def dev_authorize(self, state: str, redirect_uri: str, code_challenge: str, method: str) -> LoginState:
        record = await self._dev_state(state)
        if redirect_uri != record.redirect_uri:
            raise DevLoginError("redirect_uri does not match the login request")
        if method != "S256" or not code_challenge:
            raise DevLoginError("PKCE with code_challenge_method=S256 is required")
        ttl = await self.kv.ttl(f"auth:state:{state}") or 1
        payload = {"challenge": code_challenge, "redirect_uri": redirect_uri}
        await self.kv.set(f"auth:devauth:{state}", json.dumps(payload), ttl=ttl)
        return record

    async def dev_submit(self, state: str, login: str, nickname: str | None) -> str:
        await self._dev_state(state)
        login = login.strip()
        nickname = (nickname or "").strip() or None
        if not DEV_LOGIN_PATTERN.fullmatch(login):
            raise DevLoginError("login must be 1–64 characters of letters, digits, '.', '_' or '-'")
        if nickname is not None and len(nickname) > 30:
            raise DevLoginError("nickname must be at most 30 characters")
        raw = await self.kv.getdel(f"auth:devauth:{state}")
        if raw is None:
            raise DevLoginError("open the login page from the authorization URL first")
        authorization = json.loads(raw)
        code = secrets.token_urlsafe(32)
        grant: dict[str, Any] = {"state": state, "challenge": authorization["challenge"]}
        grant |= {"login": login, "nickname": nickname}
        await self.kv.set(f"auth:devcode:{code}", json.dumps(grant), ttl=DEV_CODE_TTL)
        separator = "&" if "?" in authorization["redirect_uri"] else "?"
        return f"{authorization['redirect_uri']}{separator}code={code}&state={state}"

    async def _dev_state(self, state: str) -> LoginState:
        raw = await self.kv.get(f"auth:state:{state}") if state else None
        record = LoginState.load(raw) if raw else None
        provider = self.providers.get(record.provider) if record else None
        if record is None or provider is None or not provider.dev_backed:
            raise DevLoginError("this login request is unknown or has expired; start again")
        return record
