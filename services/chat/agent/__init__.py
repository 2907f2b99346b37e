"""The chat assistant: intent routing, tools over our own data, the tool-calling model and the offline
answerer (docs/chat.md, "The assistant"). The chat runner loads ``build_assistant`` by its dotted path."""

from __future__ import annotations

from services.chat.agent.build import build_assistant

__all__ = ["build_assistant"]
