"""The seam between the chat job runner and the assistant that answers.

The runner (``services/chat/service.py`` and ``worker.py``) owns chats, messages, jobs, the event
log and SSE; the assistant (``services/chat/agent/``) owns intent routing, tools, the model and the
offline answerer. They meet here: the runner builds an :class:`AskContext`, hands the assistant an
:class:`Emitter` that turns stage/token calls into the job's persisted events (names, statuses,
progress: docs/api.md, "SSE: scan and chat job streams" → "Events"), and stores the returned
:class:`Answer` before it emits ``done``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

# The ten intents (``done.result.intent``; docs/api.md, "SSE: scan and chat job streams" → "Events";
# what each covers: docs/chat.md, "Routing"), exact strings.
Intent = Literal[
    "waste",
    "character",
    "location",
    "bulk_waste",
    "recyclable_price",
    "collection_point",
    "weather",
    "image_generation",
    "web_search",
    "general",
]
INTENTS: tuple[str, ...] = get_args(Intent)

# The stage events an assistant may emit (docs/api.md, "SSE: scan and chat job streams" → "Events");
# the runner emits queued, needs_input, token_recovery and done itself.
STAGES = (
    "intent",
    "vision",
    "waste_rag",
    "character",
    "location",
    "bulk_waste",
    "weather",
    "collection_point",
    "recyclable_price",
    "web_search",
    "image_generation",
    "general",
    "aggregator",
    "summarize",
    "answer",
)
StageStatus = Literal["started", "completed", "failed"]


@dataclass(frozen=True, slots=True)
class Position:
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier stored message of the chat, oldest first in :attr:`AskContext.history`."""

    role: Literal["user", "assistant"]
    content: str
    intent: str | None = None


@dataclass(frozen=True, slots=True)
class AskContext:
    job_id: uuid.UUID
    chat_id: uuid.UUID
    user_id: uuid.UUID
    message: str
    # A verified upload URL of this user (the runner checked it as scan does), or None.
    image_url: str | None
    location: Position | None
    # The alias the client sent (``gpt-5.2``, ``gemini-3-flash-preview``) or None for the default.
    model: str | None
    # Earlier turns of this chat, oldest first, without the current message; the assistant fits
    # them into its own token budget.
    history: Sequence[Turn] = ()


class Emitter(Protocol):
    """How the assistant reports progress; every call becomes one persisted, ordered job event."""

    async def stage(
        self, name: str, status: StageStatus, *, result: dict[str, Any] | None = None, message: str | None = None
    ) -> None:
        """A stage event; ``name`` is one of :data:`STAGES` (the runner sets ``progress``)."""

    async def token(self, delta: str, *, node: str | None = None) -> None:
        """A ``token`` event: the next text delta of the answer, appended blindly by the client."""

    async def ask_location(self, message: str) -> Position | None:
        """Emit ``needs_input`` and wait up to 30 s for ``POST /chat/{job_id}/input``.

        Returns the position, or None when the user cancelled or did not answer in time.
        """


@dataclass(frozen=True, slots=True)
class Answer:
    intent: Intent
    # The full Markdown answer: exactly the concatenation of the deltas sent with ``Emitter.token``.
    text: str
    # ``done.message``: Korean, user-facing; says so when a configured model failed and the offline
    # answerer replied instead.
    message: str
    # True when the offline answerer replied although a model was configured.
    fallback: bool = False


class Assistant(Protocol):
    async def answer(self, ctx: AskContext, emit: Emitter) -> Answer:
        """Answer one message. Raises only for a job that must end ``failed`` (``LLM_UNAVAILABLE``
        when neither a model nor the offline answerer could reply)."""

    async def aclose(self) -> None:
        """Release clients (HTTP pools of the model, tools)."""


class AssistantUnavailable(Exception):
    """No answer could be produced at all: the job ends ``failed`` with ``LLM_UNAVAILABLE``."""
