"""Settings shared by every service, read from unprefixed environment variables.

Each domain service adds its own ``Settings`` class (in its ``config.py``) with an ``env_prefix``;
the values here are the ones every process needs and that an operator sets once per deployment.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Values that mean "nobody configured this yet"; refusing them outside development keeps a
# copy-pasted example from reaching production. Compared lower-cased with "_" read as "-", so
# Terraform's SSM placeholder ``CHANGE_ME`` is one of them.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "changethis", "change-this", "replace-me", "todo", "secret", "dev", "development"}
)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


def _csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip().rstrip("/") for item in value.split(",") if item.strip()]
    return value


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    environment: Environment = Environment.DEVELOPMENT
    # None selects the embedded adapter (SQLite file, in-process cache/bus, local blob dir).
    database_url: str | None = None
    redis_url: str | None = None
    redis_key_prefix: str = "eco2:"
    rabbitmq_url: str | None = None
    # Exchange/queue names start with this, so several deployments (or test runs) share a broker.
    events_namespace: str = "eco2"
    # Deliveries of one event to one consumer before it is parked in that consumer's dead-letter queue.
    events_max_deliveries: int = 5
    # Core writers (the scan worker's finish) wake the relay with at most one ``NOTIFY`` per this many
    # seconds per process (``outbox.announce``): the longest an announced event waits for its relay
    # pass, and the window whose commits share one pass and one consumer delivery. At ~6 scans/s per
    # worker, 0.1 s held ~1 commit (a pass and a consumer statement per event); 0.3 s costs ≈ 1.4 ms
    # less CPU per scan (relay + consumers + the worker's notices) for rewards reaching my in
    # ≈ 0.2 s (p50) / 0.3 s (p95) instead of ≈ 0.06 / 0.14 s (docs/benchmarks.md, ninth round).
    outbox_announce_interval: float = Field(default=0.3, ge=0.0, le=5.0)
    data_dir: Path = Field(default=Path("var/dev"), validation_alias=AliasChoices("ECO2_DATA_DIR", "data_dir"))
    public_api_base_url: str = "http://localhost:8000"
    cors_allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:8000", "http://localhost:5173", "https://localhost:5173"]
    )
    docs_enabled: bool = True
    jwt_issuer: str | None = None
    jwt_audience: str = "eco2-api"
    # Where services read the auth service's public keys: an HTTP JWKS URL (production) or, when unset,
    # the public halves of the key files in ``<data_dir>/keys`` (embedded: one process, one machine).
    jwks_url: str | None = None
    jwt_leeway_seconds: int = 30
    log_level: str = "INFO"
    log_json: bool = True
    # Workers (relay, consumers, job workers) serve ``/metrics`` on this port; APIs serve it on their own.
    metrics_port: int | None = None
    # Peers whose X-Forwarded-For / X-Forwarded-Proto uvicorn believes (addresses or CIDRs, comma-separated):
    # the load balancer and the nodes that forward its traffic to pods. The address taken from that
    # header is the identity of the per-address rate limits (login, callback, refresh), so trusting
    # any peer ("*") would let a client on the internet pick a fresh identity per request.
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    # Shared secret for service-to-service calls that must not be reachable from the public edge.
    internal_token: str = "dev-internal-token"  # noqa: S105 - refused outside development below

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        return _csv(value)

    @field_validator("forwarded_allow_ips", mode="before")
    @classmethod
    def _split_trusted(cls, value: Any) -> Any:
        return [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _trusted_are_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            if item != "*":
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(f"FORWARDED_ALLOW_IPS: {item!r} is not an IP address or CIDR") from None
        return value

    @field_validator("public_api_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _guards(self) -> CommonSettings:
        # Every environment but development (test, staging, production…): the internal token guards
        # the /internal routes, and a placeholder there is a published password.
        refuse_placeholder(self.environment, "INTERNAL_TOKEN", self.internal_token)
        if self.environment is Environment.PRODUCTION and "*" in self.cors_allowed_origins:
            raise ValueError("CORS_ALLOWED_ORIGINS must be an exact list, '*' is never allowed")
        if self.environment is Environment.PRODUCTION and "*" in self.forwarded_allow_ips:
            raise ValueError("FORWARDED_ALLOW_IPS must name the load balancer's and nodes' networks, never '*'")
        return self

    @property
    def issuer(self) -> str:
        # The documented default ``iss`` (docs/api.md, tokens): a claim value every service agrees on,
        # not a route, so it is spelled here rather than read from the auth service's registry entry.
        return self.jwt_issuer or f"{self.public_api_base_url}/api/v1/auth"

    @property
    def is_development(self) -> bool:
        return self.environment is Environment.DEVELOPMENT


def refuse_placeholder(environment: Environment, name: str, value: str | None) -> None:
    """Raise when a secret still holds a placeholder outside development."""
    if environment is Environment.DEVELOPMENT:
        return
    normalised = (value or "").strip().lower().replace("_", "-")
    if value is None or normalised in PLACEHOLDER_SECRETS or normalised.startswith("dev-"):
        raise ValueError(f"{name} must be set to a real secret when ENVIRONMENT={environment.value}")


class ServiceSettings(BaseSettings):
    """Base for a service's own settings; subclasses set ``env_prefix`` (``AUTH_``, ``SCAN_``…)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    # Read without the prefix so a service's validators can apply the same production guards.
    environment: Environment = Field(
        default=Environment.DEVELOPMENT, validation_alias=AliasChoices("ENVIRONMENT", "environment")
    )


@lru_cache
def get_common_settings() -> CommonSettings:
    return CommonSettings()
