"""``eco2 info …``: operating the news feed by hand."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.common.config import CommonSettings
from services.common.db import database_url_for
from services.common.migrations import upgrade
from services.info.models import SCHEMA
from services.info.refresh import RunReport
from services.info.worker import news_refresher

app = typer.Typer(help="News feed and item dictionary.", no_args_is_help=True)
console = Console()


async def _refresh(common: CommonSettings, only: str | None) -> list[RunReport]:
    async with news_refresher(common) as refresher:
        sources = [s for s in refresher.sources if only is None or s.id == only]
        if not sources:
            known = ", ".join(s.id for s in refresher.sources) or "none configured (docs/info.md)"
            console.print(f"[red]no such source {only!r}; sources: {known}[/]")
            raise typer.Exit(1)
        await refresher.ensure_rows()
        reports: list[RunReport] = []
        with Progress(
            TextColumn("[bold]{task.fields[source]:<10}[/] {task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            tasks: dict[str, TaskID] = {s.id: bar.add_task("waiting", total=1, source=s.id) for s in sources}

            def progress(source: str, stage: str, done: int, total: int) -> None:
                bar.update(tasks[source], description=stage, completed=done, total=max(total, 1))

            for source in sources:
                report = await refresher.refresh(source, force=True, progress=progress)
                bar.update(tasks[source.id], description=report.status, completed=1, total=1)
                reports.append(report)
        return reports


@app.command("refresh")
def refresh_command(
    source: Annotated[str | None, typer.Option("--source", help="one source id (default: every source)")] = None,
) -> None:
    """Refresh the news sources now (whatever their schedule; a source another refresher is running is
    skipped)."""
    common = CommonSettings()
    upgrade(SCHEMA, database_url_for(SCHEMA, common.database_url, common.data_dir))
    reports = asyncio.run(_refresh(common, source))
    table = Table(title="news refresh")
    for column in ("source", "status", "fetched", "new", "rejected", "images", "pruned", "next run", "error"):
        table.add_column(column)
    for r in reports:
        next_run = r.next_run_at.strftime("%H:%M:%S UTC") if r.next_run_at else "—"
        counts = (str(v) for v in (r.fetched, r.new, r.rejected, r.images, r.pruned))
        table.add_row(r.source, r.status, *counts, next_run, r.error or "")
    console.print(table)
    if any(r.status == "failed" for r in reports):
        raise typer.Exit(1)
