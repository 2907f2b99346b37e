"""``eco2 location …``: operating the site table (the import job, the physical-order maintenance)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import text

from services.common.config import CommonSettings
from services.common.db import Database, database_url_for
from services.common.migrations import upgrade
from services.location.importer import ImportSummary, import_file
from services.location.models import SCHEMA
from services.location.sources import SourceFileError, SourceFormat

app = typer.Typer(help="Drop-off sites: import the public datasets, maintain the table.", no_args_is_help=True)
console = Console()


async def _run(url: str, path: Path, fmt: SourceFormat, dry_run: bool, size: int) -> ImportSummary:
    db = Database(url, SCHEMA)
    try:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task(f"importing {path.name}", total=size)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            async with db.sessionmaker() as session:
                summary = await import_file(session, path, fmt, dry_run=dry_run, progress=progress)
                if dry_run:
                    await session.rollback()
                else:
                    await session.commit()
        return summary
    finally:
        await db.dispose()


def _report(summary: ImportSummary, dry_run: bool) -> None:
    title = "import summary (dry run: nothing written)" if dry_run else "import summary"
    table = Table(title=title)
    for column in ("inserted", "updated", "unchanged", "rejected"):
        table.add_column(column, justify="right")
    table.add_row(*(str(value) for value in summary.as_dict().values()))
    console.print(table)
    if summary.rejected:
        rejected = Table(title="rejected rows")
        rejected.add_column("row", justify="right")
        rejected.add_column("source id")
        rejected.add_column("reason")
        for item in summary.rejected:
            rejected.add_row(str(item.row), item.source_pk or "—", item.reason)
        console.print(rejected)


@app.command("import")
def import_command(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV file (.csv or .csv.gz)")
    ],
    fmt: Annotated[SourceFormat, typer.Option("--format", help="source format of the file")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="parse and compare, write nothing")] = False,
) -> None:
    """Import a KECO or zero-waste CSV: upsert by (source, source id); re-running changes nothing."""
    common = CommonSettings()
    url = database_url_for(SCHEMA, common.database_url, common.data_dir)
    upgrade(SCHEMA, url)  # a fresh machine or an empty database: the table must exist first
    try:
        summary = asyncio.run(_run(url, file, fmt, dry_run, file.stat().st_size))
    except SourceFileError as exc:
        console.print(f"[red]cannot import {file}: {exc}[/]")
        raise typer.Exit(1) from None
    _report(summary, dry_run)


# The spatial index's order: a nearby search then reads its page of sites from a few neighbouring
# heap pages instead of one scattered page per site (docs/location.md, "Physical order"). The index
# of the stored point (migration 0002), the one the search walks.
CLUSTER_SQL = f"CLUSTER {SCHEMA}.sites USING ix_sites_earth_point"


async def _cluster(url: str) -> float:
    db = Database(url, SCHEMA)
    try:
        async with db.engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            started = asyncio.get_running_loop().time()
            await connection.execute(text(CLUSTER_SQL))
            await connection.execute(text(f"VACUUM (ANALYZE) {SCHEMA}.sites"))  # visibility map + statistics
            return asyncio.get_running_loop().time() - started
    finally:
        await db.dispose()


@app.command("cluster")
def cluster_command(
    yes: Annotated[bool, typer.Option("--yes", help="confirm: the map is unavailable while it runs")] = False,
) -> None:
    """Rewrite the site table in spatial order (PostgreSQL CLUSTER). Takes an ACCESS EXCLUSIVE lock:
    /centers, /search and imports wait until it ends (≈ 1–3 min for 1 M sites). Run it in a
    maintenance window after a large first import; later imports append and slowly undo the order."""
    common = CommonSettings()
    url = database_url_for(SCHEMA, common.database_url, common.data_dir)
    if not url.startswith("postgresql"):
        console.print("embedded (SQLite) database: nothing to do")
        return
    if not yes:
        console.print("[red]CLUSTER locks the site table for its whole duration; re-run with --yes[/]")
        raise typer.Exit(1)
    upgrade(SCHEMA, url)
    elapsed = asyncio.run(_cluster(url))
    console.print(f"site table rewritten in spatial order in {elapsed:.1f}s")
