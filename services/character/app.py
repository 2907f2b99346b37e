"""The character service's FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.character.config import CharacterSettings
from services.character.router import internal, router
from services.common.app import create_service_app
from services.common.config import CommonSettings
from services.common.runtime import ServiceRuntime
from services.registry import SERVICES

SERVICE = SERVICES["character"]


def create_app(common: CommonSettings | None = None, settings: CharacterSettings | None = None) -> FastAPI:
    common = common or CommonSettings()
    settings = settings or CharacterSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.catalog_body = None
        yield

    return create_service_app(
        SERVICE,
        common=common,
        routers=[router],
        internal=[internal],
        lifespan=lifespan,
        description="The character catalog and scan rewards.",
    )
