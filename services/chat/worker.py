"""``eco2 worker chat``: consume the chat job queue and run the assistant; sweep overdue and orphaned jobs.

In production this is its own Deployment (scale with replicas; each holds up to
``CHAT_WORKER_CONCURRENCY`` jobs, which mostly wait on the model). ``eco2 dev`` runs it as a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib

from services.chat.app import SERVICE, chat_jobs
from services.chat.assistant import Assistant
from services.chat.config import ChatSettings
from services.chat.runner import ChatRunner, load_assistant
from services.common.config import CommonSettings
from services.common.jobs import run_job_worker
from services.common.logging import get_logger
from services.common.runtime import ServiceRuntime

log = get_logger("eco2.chat.worker")

# The default assistant's settings (``CHAT_LLM_*``, ``CHAT_TOOL_*``…) are loaded with the worker, so
# whatever reads a process's settings classes (the deploy chain checks) sees what this process reads.
# Without the assistant package the runner reports it at start-up instead (docs/chat.md).
with contextlib.suppress(ImportError):
    importlib.import_module("services.chat.agent.config")


async def run_chat_worker(
    common: CommonSettings,
    stop: asyncio.Event,
    *,
    settings: ChatSettings | None = None,
    assistant: Assistant | None = None,
) -> None:
    """``assistant``: given by tests; otherwise loaded from ``CHAT_ASSISTANT`` (and closed at the end)."""
    settings = settings or ChatSettings()
    runtime = ServiceRuntime(SERVICE.name, SERVICE.name, common)
    owned = assistant is None
    chosen = assistant if assistant is not None else load_assistant(settings, common)
    try:
        assert runtime.db is not None
        async with chat_jobs(common, settings, runtime.db) as jobs:
            runner = ChatRunner(jobs, chosen)
            log.info("chat_worker_started", concurrency=settings.worker_concurrency)
            await run_job_worker(
                jobs.queue,
                runner.run,
                stop,
                concurrency=settings.worker_concurrency,
                sweep=jobs.sweep,
                sweep_interval=settings.sweep_interval_seconds,
            )
    finally:
        if owned:
            await chosen.aclose()
        await runtime.close()
