"""What names a service: its registry entry (``services/registry.py`` holds one per service).

Everything else reads a service's name, paths, database schema, outbox, consumers and workers from
its entry: routers are written relative to the service and mounted at ``prefix`` (public) and
``internal_prefix`` (service-to-service) by ``create_service_app``; callers build another service's
internal URLs with ``internal_url``; the CLI, the dev process and the tests find workers and
consumers here.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ServiceEntry:
    name: str  # also the service's database schema, consumer queue and deploy folder
    prefix: str  # public path prefix (docs/api.md); the API docs live at ``<prefix>/docs``
    factory: str  # "module:function" building the FastAPI app
    has_migrations: bool = True
    outbox: str | None = None  # "module:Model" of the service's outbox table, relayed to the bus
    # Module with ``consumer`` (a ``services.common.events.Consumer``) and ``build(runtime)``.
    consumers: str | None = None
    # Background workers besides relay and consumers: command name -> "module:function(common, stop)",
    # run as ``eco2 worker <command>`` (one Deployment each) and as tasks of ``eco2 dev``.
    workers: Mapping[str, str] = field(default_factory=dict)
    commands: str | None = None  # "module:app" of a Typer app mounted as ``eco2 <name> …``

    @property
    def db_schema(self) -> str:
        """The service's PostgreSQL schema (and SQLite file name): its name."""
        return self.name

    @property
    def uses_broker(self) -> bool:
        """Publishes (an outbox the relay sends) or consumes events: its processes need RabbitMQ."""
        return bool(self.outbox or self.consumers)

    @property
    def internal_prefix(self) -> str:
        """Service-to-service routes (``/internal/v1/character``): the public ingress routes only
        ``/api/...``, so these are reachable inside the cluster (and from the dev gateway) alone."""
        return "/internal" + self.prefix.removeprefix("/api")

    def public_url(self, base: str, path: str = "") -> str:
        """``path`` of this service's public API at ``base`` (the public API origin)."""
        return f"{base.rstrip('/')}{self.prefix}{path}"

    def internal_url(self, base: str, path: str) -> str:
        """``path`` of this service's internal API at ``base`` (where the service is reachable)."""
        return f"{base.rstrip('/')}{self.internal_prefix}{path}"

    def create_app(self, **kwargs: Any) -> Any:
        return load(self.factory)(**kwargs)


def load(target: str) -> Any:
    """Import ``module:attribute``."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)
