"""OAuth 2.0 providers: authorization URLs, the code exchange and the profile fetch (httpx).

Endpoints are settings, so tests point them at local servers that speak each provider's protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from services.auth.config import AuthSettings
from services.common.config import Environment

PROVIDERS = ("kakao", "google", "naver", "dev")


class ProviderError(Exception):
    """The provider refused or answered something we cannot use; the login fails."""


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    client_id: str
    client_secret: str | None
    authorize_url: str
    token_url: str
    profile_url: str
    scope: str | None
    pkce: bool
    redirect_uris: tuple[str, ...]
    default_redirect_uri: str
    # Served by this backend's development login form: ``dev`` itself, and in development a social
    # provider without credentials (the client's Kakao/Google/Naver buttons then still work).
    dev_backed: bool = False

    @property
    def identity_provider(self) -> str:
        """The provider recorded for the identity and the session: a stand-in logs in as ``dev``."""
        return "dev" if self.dev_backed else self.name

    def authorization_url(self, *, state: str, redirect_uri: str, code_challenge: str | None) -> str:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
        }
        if self.scope:
            params["scope"] = self.scope
        if self.pkce and code_challenge:
            params |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
        return f"{self.authorize_url}?{urlencode(params)}"

    def accepts_redirect(self, redirect_uri: str) -> bool:
        return redirect_uri == self.default_redirect_uri or redirect_uri in self.redirect_uris


@dataclass(frozen=True)
class ProviderProfile:
    subject: str
    nickname: str | None
    email: str | None
    profile_image_url: str | None


def configured_providers(settings: AuthSettings, auth_url: str) -> dict[str, ProviderConfig]:
    """Providers that can be used: those with a client id, plus ``dev`` when enabled. In development
    with dev login enabled, a social provider without a client id is served by the dev login form.

    ``auth_url`` is this service's public URL (``<public API base>/api/v1/auth``)."""
    stand_ins = settings.dev_login_enabled and settings.environment is Environment.DEVELOPMENT
    found: dict[str, ProviderConfig] = {}
    for name, pkce in (("kakao", True), ("google", True), ("naver", False)):
        client_id = getattr(settings, f"{name}_client_id")
        if client_id:
            found[name] = ProviderConfig(
                name=name,
                client_id=client_id,
                client_secret=getattr(settings, f"{name}_client_secret"),
                authorize_url=getattr(settings, f"{name}_authorize_url"),
                token_url=getattr(settings, f"{name}_token_url"),
                profile_url=getattr(settings, f"{name}_profile_url"),
                scope=getattr(settings, f"{name}_scope"),
                pkce=pkce,
                redirect_uris=tuple(getattr(settings, f"{name}_redirect_uris")),
                default_redirect_uri=f"{auth_url}/{name}/callback",
            )
        elif stand_ins:
            found[name] = _dev_backed(name, auth_url)
    if settings.dev_login_enabled:
        found["dev"] = _dev_backed("dev", auth_url)
    return found


def _dev_backed(name: str, auth_url: str) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        client_id="eco2-dev",
        client_secret=None,
        authorize_url=f"{auth_url}/dev/authorize",
        token_url="",
        profile_url="",
        scope=None,
        pkce=True,
        redirect_uris=(),
        default_redirect_uri=f"{auth_url}/{name}/callback",
        dev_backed=True,
    )


async def exchange_code(
    http: httpx.AsyncClient,
    provider: ProviderConfig,
    *,
    code: str,
    redirect_uri: str,
    verifier: str | None,
    state: str,
) -> str:
    form = {"grant_type": "authorization_code", "client_id": provider.client_id, "code": code}
    form["redirect_uri"] = redirect_uri
    if provider.client_secret:
        form["client_secret"] = provider.client_secret
    if provider.pkce and verifier:
        form["code_verifier"] = verifier
    if provider.name == "naver":
        form["state"] = state  # Naver has no PKCE and asks for the state again at the token step
    try:
        response = await http.post(provider.token_url, data=form, headers={"Accept": "application/json"})
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderError(f"token endpoint unreachable or not JSON: {exc!r}") from exc
    token = body.get("access_token") if isinstance(body, dict) else None
    if response.status_code != 200 or not isinstance(token, str) or not token:
        raise ProviderError(f"token exchange refused: {response.status_code} {str(body)[:200]}")
    return token


async def fetch_profile(http: httpx.AsyncClient, provider: ProviderConfig, access_token: str) -> ProviderProfile:
    try:
        response = await http.get(provider.profile_url, headers={"Authorization": f"Bearer {access_token}"})
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderError(f"profile endpoint unreachable or not JSON: {exc!r}") from exc
    if response.status_code != 200 or not isinstance(body, dict):
        raise ProviderError(f"profile request refused: {response.status_code}")
    parse = {"kakao": _kakao, "google": _google, "naver": _naver}[provider.name]
    profile = parse(body)
    if not profile.subject:
        raise ProviderError("profile has no subject")
    return profile


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _kakao(body: dict[str, Any]) -> ProviderProfile:
    account = body.get("kakao_account") or {}
    profile = account.get("profile") or {}
    properties = body.get("properties") or {}
    subject = body.get("id")
    return ProviderProfile(
        subject=str(subject) if isinstance(subject, int | str) and str(subject) else "",
        nickname=_text(profile.get("nickname")) or _text(properties.get("nickname")),
        email=_text(account.get("email")),
        profile_image_url=_text(profile.get("profile_image_url")) or _text(properties.get("profile_image")),
    )


def _google(body: dict[str, Any]) -> ProviderProfile:
    return ProviderProfile(
        subject=str(body.get("sub") or ""),
        nickname=_text(body.get("given_name")) or _text(body.get("name")),
        email=_text(body.get("email")),
        profile_image_url=_text(body.get("picture")),
    )


def _naver(body: dict[str, Any]) -> ProviderProfile:
    if body.get("resultcode") not in ("00", None):
        raise ProviderError(f"naver profile error: {body.get('message')}")
    response = body.get("response") or {}
    return ProviderProfile(
        subject=str(response.get("id") or ""),
        nickname=_text(response.get("nickname")) or _text(response.get("name")),
        email=_text(response.get("email")),
        profile_image_url=_text(response.get("profile_image")),
    )
