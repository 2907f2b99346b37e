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

    def create_app(self, **kwargs: Any) -> FastAPI:
        module, _, function = self.factory.partition(":")
        app: FastAPI = getattr(importlib.import_module(module), function)(**kwargs)
        return app


SERVICES: dict[str, ServiceEntry] = {
    entry.name: entry
    for entry in (
        ServiceEntry("auth", "/api/v1/auth", "services.auth.app:create_app"),
        ServiceEntry("location", "/api/v1/locations", "services.location.app:create_app"),
    )
}
