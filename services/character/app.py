"""The character service's FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.character.config import CharacterSettings
from services.character.router import router
from services.common.app import ServiceApp
from services.common.runtime import ServiceRuntime
from services.registry import SERVICES


@asynccontextmanager
async def lifespan(app: FastAPI, runtime: ServiceRuntime, settings: CharacterSettings) -> AsyncIterator[None]:
    app.state.settings = settings
    app.state.catalog_body = None
    yield


create_app = ServiceApp(
    SERVICES["character"],
    CharacterSettings,
    routers=[router],
    lifespan=lifespan,
    description="The character catalog.",
)
