"""Every domain service and worker this distribution can run. Adding a service is one line here."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    prefix: str
    factory: str  # "module:function" building the FastAPI app
    has_migrations: bool = True
    schema: str | None = None  # defaults to the service name
    outbox: str | None = None  # "module:Model" of the service's outbox table, relayed to the bus
    consumers: str | None = None  # module with ``EVENT_TYPES`` and ``build(runtime)`` (see services.workers)

    def create_app(self, **kwargs: Any) -> FastAPI:
        app: FastAPI = load(self.factory)(**kwargs)
        return app

    @property
    def db_schema(self) -> str:
        return self.schema or self.name

    @property
    def internal_prefix(self) -> str:
        """Service-to-service routes (``/internal/v1/character``): the public ingress routes only
        ``/api/...``, so these are reachable inside the cluster (and from the dev gateway) alone."""
        return "/internal" + self.prefix.removeprefix("/api")


def load(target: str) -> Any:
    """Import ``module:attribute``."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


SERVICES: dict[str, ServiceEntry] = {
    entry.name: entry
    for entry in (
        ServiceEntry(
            "auth",
            "/api/v1/auth",
            "services.auth.app:create_app",
            outbox="services.auth.models:Outbox",
            consumers="services.auth.consumers",
        ),
        ServiceEntry(
            "my",
            "/api/v1/users",
            "services.my.app:create_app",
            outbox="services.my.models:Outbox",
            consumers="services.my.consumers",
        ),
        ServiceEntry(
            "character",
            "/api/v1/character",
            "services.character.app:create_app",
            outbox="services.character.models:Outbox",
            consumers="services.character.consumers",
        ),
        ServiceEntry("location", "/api/v1/locations", "services.location.app:create_app"),
        ServiceEntry("image", "/api/v1/images", "services.image.app:create_app", consumers="services.image.consumers"),
        ServiceEntry(
            "scan",
            "/api/v1/scan",
            "services.scan.app:create_app",
            outbox="services.scan.models:Outbox",
            consumers="services.scan.consumers",
        ),
    )
}
