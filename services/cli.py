"""The ``eco2`` command: run everything locally, serve one service, migrate."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

import typer
from rich.console import Console

from services.common import serving
from services.common.config import CommonSettings
from services.common.db import database_url_for
from services.common.identity import load
from services.common.knowledge.cli import app as eval_app
from services.common.logging import configure_logging
from services.common.metrics import serve_metrics
from services.common.migrations import upgrade
from services.common.tracing import configure_tracing
from services.registry import SERVICES

app = typer.Typer(help="Eco² backend: run, serve and operate the services.", no_args_is_help=True)
worker_app = typer.Typer(help="Background workers (one Deployment each in production).", no_args_is_help=True)
events_app = typer.Typer(help="Inspect and replay dead-lettered events.", no_args_is_help=True)
app.add_typer(worker_app, name="worker")
app.add_typer(events_app, name="events")
console = Console()
for _entry in SERVICES.values():
    if _entry.commands:  # e.g. ``eco2 location import …``
        app.add_typer(load(_entry.commands), name=_entry.name)
app.add_typer(eval_app, name="eval")


def _run_until_signal(work: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``work(stop)``; SIGTERM/SIGINT set ``stop`` so the worker drains and exits cleanly."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await work(stop)

    asyncio.run(main())


def _observe_worker(common: CommonSettings, name: str) -> None:
    """A worker's logs, traces (with an OTLP endpoint) and ``/metrics`` on ``METRICS_PORT`` (if set)."""
    configure_logging(common.log_level, common.log_json)
    configure_tracing(name)
    if common.metrics_port:
        serve_metrics(common.metrics_port)


def _migrate(names: list[str], common: CommonSettings) -> None:
    for name in names:
        entry = SERVICES[name]
        if entry.has_migrations:
            upgrade(name, database_url_for(name, common.database_url, common.data_dir))


def _check_names(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise typer.BadParameter(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(SERVICES)}")
    return names or list(SERVICES)


# Local OpenAI-compatible servers (llama.cpp, vLLM, Ollama) ignore the key, but the SDK needs one.
LOCAL_MODEL_KEY = "sk-no-key-needed"


def _use_model(url: str, models: str | None, key: str | None) -> str:
    """Point the scan service at an OpenAI-compatible endpoint (the ``SCAN_LLM_*`` settings); without
    ``models``, the endpoint's first listed model. Returns the model id(s)."""
    key = key or LOCAL_MODEL_KEY
    if not models:
        from openai import OpenAI, OpenAIError

        try:
            listed = [m.id for m in OpenAI(base_url=url, api_key=key, timeout=10, max_retries=0).models.list()]
        except OpenAIError as exc:
            raise typer.BadParameter(f"cannot list the models of {url} ({exc}); name one with --model") from exc
        if not listed:
            raise typer.BadParameter(f"{url}/models lists no model; name one with --model")
        models = listed[0]
    os.environ["SCAN_LLM_BASE_URL"] = url
    os.environ["SCAN_MODELS"] = models
    os.environ["SCAN_LLM_API_KEY"] = key
    return models


@app.command()
def dev(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    model_url: Annotated[
        str | None,
        typer.Option(
            "--model-url",
            envvar="SCAN_LLM_BASE_URL",
            help="OpenAI-compatible endpoint with a vision model (e.g. http://127.0.0.1:8080/v1); "
            "without one a photo cannot be classified",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", envvar="SCAN_MODELS", help="model id(s), comma-separated; default: the first listed"),
    ] = None,
    model_key: Annotated[
        str | None, typer.Option("--model-key", envvar="SCAN_LLM_API_KEY", help="API key of the endpoint, if any")
    ] = None,
) -> None:
    """Run every service in one process on embedded adapters (no servers, no keys needed)."""
    started = time.perf_counter()
    models = _use_model(model_url, model, model_key) if model_url else None
    os.environ.setdefault("ENVIRONMENT", "development")
    os.environ.setdefault("AUTH_DEV_LOGIN_ENABLED", "true")
    os.environ.setdefault("PUBLIC_API_BASE_URL", f"http://localhost:{port}")
    os.environ.setdefault("AUTH_FRONTEND_URL", f"http://localhost:{port}")
    os.environ.setdefault("LOG_JSON", "false")
    common = CommonSettings()
    _migrate(list(SERVICES), common)
    configure_tracing("dev")  # only with OTEL_EXPORTER_OTLP_ENDPOINT set: no collector needed

    from services.gateway import create_gateway

    gateway = create_gateway(list(SERVICES.values()), common)
    base = common.public_api_base_url
    console.print(f"[bold green]Eco² dev[/] — {len(SERVICES)} service(s): {', '.join(SERVICES)}")
    console.print(f"  open      {base}/")
    console.print(f"  dev login {SERVICES['auth'].public_url(base, '/dev/start')}")
    console.print(f"  API docs  {base}/api/v1/<service>/docs   (e.g. {SERVICES['auth'].public_url(base, '/docs')})")
    console.print(f"  data      {common.data_dir.resolve()}  (delete it to start fresh)")
    if models:
        console.print(f"  model     {models} at {model_url}")
    else:
        console.print("  model     none: photos need a vision model (--model-url URL, see the landing page)")
    _chat_status()
    console.print(f"  setup took {time.perf_counter() - started:.2f}s; serving on http://{host}:{port}")
    serving.run(gateway, host=host, port=port, log_level="warning", lifespan="on", **serving.proxy_options(common))


def _chat_status() -> None:
    from services.chat.config import ChatSettings
    from services.chat.runner import assistant_problem

    settings = ChatSettings()
    problem = assistant_problem(settings)
    if problem is None:
        console.print(f"  chat      assistant {settings.assistant}")
    else:
        console.print(
            f"  chat      [bold red]no assistant[/] ({problem}): every chat message ends failed with "
            "LLM_UNAVAILABLE until CHAT_ASSISTANT names an importable module:function"
        )


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="service name, e.g. auth")],
    host: Annotated[str, typer.Option()] = "0.0.0.0",  # noqa: S104 - containers listen on all interfaces
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Run one service as production does (one process per container; scale with replicas)."""
    _check_names([service])
    configure_tracing(service)
    application = SERVICES[service].create_app()
    serving.run(
        application,
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=20,
        **serving.proxy_options(CommonSettings()),
    )


@app.command()
def migrate(
    services: Annotated[list[str] | None, typer.Argument(help="services (default: all)")] = None,
) -> None:
    """Apply every pending Alembic migration (each service has its own schema and history)."""
    names = _check_names(services or [])
    common = CommonSettings()
    _migrate(names, common)
    console.print(f"migrated: {', '.join(names)}")


@worker_app.command("relay")
def worker_relay() -> None:
    """Publish every service's outbox rows to the event bus."""
    from services.workers import run_relay

    common = CommonSettings()
    _observe_worker(common, "relay")
    _run_until_signal(lambda stop: run_relay(common, stop))


@worker_app.command("consumers")
def worker_consumers(
    services: Annotated[list[str] | None, typer.Argument(help="services whose consumers to run (default: all)")] = None,
) -> None:
    """Apply events to the named services' data (each consumer has its own queue)."""
    from services.workers import run_consumers

    names = _check_names(services or [])
    common = CommonSettings()
    _observe_worker(common, "consumers")
    _run_until_signal(lambda stop: run_consumers(common, names, stop))


def _service_worker(command: str, target: str) -> Callable[[], None]:
    def run() -> None:
        common = CommonSettings()
        _observe_worker(common, f"{command}-worker")
        _run_until_signal(lambda stop: load(target)(common, stop))

    return run


for _entry in SERVICES.values():
    for _command, _target in _entry.workers.items():  # e.g. ``eco2 worker scan`` (the scan pipeline)
        worker_app.command(_command, help=f"Run the {_entry.name} service's worker {_target}.")(
            _service_worker(_command, _target)
        )


@events_app.command("dead-letters")
def events_dead_letters(consumer: Annotated[str, typer.Argument(help="consumer name, e.g. my")]) -> None:
    """List the events parked in a consumer's dead-letter queue (they stay there)."""
    from services.workers import dead_letters

    async def main() -> None:
        letters = await dead_letters(CommonSettings(), consumer)
        for letter in letters:
            console.print(f"{letter.event.id}  {letter.event.type}  {letter.reason}  {letter.event.payload}")
        console.print(f"{len(letters)} dead letter(s) for {consumer}")

    asyncio.run(main())


@events_app.command("replay")
def events_replay(consumer: Annotated[str, typer.Argument(help="consumer name, e.g. my")]) -> None:
    """Move a consumer's dead letters back to its queue (after fixing what made them fail)."""
    from services.workers import replay_dead_letters

    async def main() -> None:
        moved = await replay_dead_letters(CommonSettings(), consumer)
        console.print(f"replayed {moved} event(s) to {consumer}")

    asyncio.run(main())


if __name__ == "__main__":  # pragma: no cover
    app()
