"""``build_assistant(common)``: the assistant with its clients, from ``CHAT_*`` settings."""

from __future__ import annotations

import httpx

from services.chat.agent.answerer import Eco2Assistant
from services.chat.agent.clients import ImageClient, LocationClient, OwnedClient
from services.chat.agent.config import AgentSettings
from services.chat.agent.intents import IntentRouter
from services.chat.agent.search import SearxSearch
from services.chat.agent.tools import Toolbox
from services.chat.agent.weather import KmaForecast
from services.common.config import CommonSettings
from services.common.knowledge import knowledge_base


def build_assistant(
    common: CommonSettings, settings: AgentSettings | None = None, *, http: httpx.AsyncClient | None = None
) -> Eco2Assistant:
    """Everything the assistant needs; ``http`` lets tests route the internal calls to ASGI apps."""
    settings = settings or AgentSettings()
    kb = knowledge_base()
    own_http = http is None
    client = http or httpx.AsyncClient(limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
    token, timeout = common.internal_token, settings.tool_timeout_seconds
    toolbox = Toolbox(
        kb,
        location=LocationClient(client, settings.base(settings.tool_location_url, common), token, timeout),
        owned=OwnedClient(client, settings.base(settings.tool_my_url, common), token, timeout),
    )
    assistant = Eco2Assistant(toolbox, IntentRouter(kb))
    if settings.weather_api_key or settings.search_base_url:
        # Public providers get their own pool: internal calls stay on the cluster's (or a test's) client.
        external = httpx.AsyncClient(limits=httpx.Limits(max_connections=50))
        assistant.closers.append(external.aclose)
        if settings.weather_api_key:
            toolbox.weather_provider = KmaForecast(
                external, settings.weather_base_url, settings.weather_api_key, timeout=settings.weather_timeout_seconds
            )
        if settings.search_base_url:
            toolbox.search_provider = SearxSearch(
                external, settings.search_base_url, settings.search_api_key, timeout=settings.search_timeout_seconds
            )
    if settings.uses_model:
        from services.chat.agent.llm import LlmAgent, model_vision

        agent = LlmAgent(settings, toolbox)
        assistant.llm = agent
        assistant.closers.append(agent.aclose)
        image = ImageClient(client, settings.base(settings.tool_image_url, common), token)
        assistant.vision = model_vision(common, settings, kb, image, assistant.closers)
        if settings.image_generation_enabled:
            toolbox.image_generator = agent.image_generator(common)
    if own_http:
        assistant.closers.insert(0, client.aclose)
    return assistant
