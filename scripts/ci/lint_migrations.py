"""Lint every Alembic migration for operations that lock or break the release still running.

Each revision of each service is rendered to the SQL it runs (``alembic upgrade <down>:<rev> --sql``,
see ``services.common.migrations.offline_sql``) and checked by squawk (PyPI ``squawk-cli``): dropping
or renaming columns and tables, NOT NULL columns without a default, index builds that are not
CONCURRENTLY, constraints validated under a full lock, column type changes, missing lock_timeout…

Rules left out for every file are in ``.squawk.toml``. A revision that is deliberately destructive —
the *contract* step of an expand/contract change, shipped once no running release uses the object
(docs/migrations.md) — names the rules it may break and why, in its module::

    SQUAWK_ALLOW = {"ban-drop-column": "profiles.phone unused since release 2026.12.1 (expand: 0004)"}

Usage: ``python scripts/ci/lint_migrations.py [service…]`` (all services by default); exit 1 on findings.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from alembic.script import ScriptDirectory  # noqa: E402

from services.common.migrations import alembic_config, offline_sql  # noqa: E402
from services.registry import SERVICES  # noqa: E402


@dataclass(frozen=True)
class Revision:
    service: str
    revision: str
    down: str | None
    path: Path
    allow: dict[str, str]

    @property
    def label(self) -> str:
        return f"{self.service}/{self.path.name}"


def squawk() -> str:
    found = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    if not Path(found).exists():
        raise SystemExit("squawk not found: `uv sync` installs squawk-cli (dev dependency)")
    return found


def base_exclusions() -> list[str]:
    config = tomllib.loads((ROOT / ".squawk.toml").read_text())
    return list(config.get("excluded_rules", []))


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_lint_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def revisions(services: Iterable[str]) -> Iterator[Revision]:
    for name in services:
        if not SERVICES[name].has_migrations:
            continue
        script = ScriptDirectory.from_config(alembic_config(name, "postgresql+asyncpg://offline/eco2"))
        for rev in reversed(list(script.walk_revisions())):
            path = Path(rev.path)
            allow = dict(getattr(_module(path), "SQUAWK_ALLOW", {}))
            down = rev.down_revision if isinstance(rev.down_revision, str) else None
            yield Revision(name, rev.revision, down, path, allow)


def lint_sql(sql: str, name: str, allow: Iterable[str] = ()) -> list[dict[str, object]]:
    """Squawk's findings for one file of SQL (empty when clean)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.sql"
        path.write_text(sql)
        excluded = sorted({*base_exclusions(), *allow})
        done = subprocess.run(  # noqa: S603 - squawk from this venv, arguments built here
            [squawk(), "--reporter", "json", "--pg-version", "15", "--exclude", ",".join(excluded), str(path)],
            capture_output=True, text=True, check=False, timeout=120, cwd=tmp,
        )  # fmt: skip
    if done.returncode not in (0, 1) or not done.stdout.strip():
        if done.returncode == 0:
            return []
        raise RuntimeError(f"squawk failed ({done.returncode}): {done.stderr}")
    return list(json.loads(done.stdout))


def main(argv: list[str]) -> int:
    services = argv or list(SERVICES)
    failures = 0
    checked = 0
    for rev in revisions(services):
        sql = offline_sql(rev.service, f"{rev.down or 'base'}:{rev.revision}")
        findings = lint_sql(sql, f"{rev.service}_{rev.revision}", rev.allow)
        checked += 1
        lines = sql.splitlines()
        for finding in findings:
            failures += 1
            line = int(str(finding.get("line", -1)))  # 0-based
            statement = lines[line].strip() if 0 <= line < len(lines) else ""
            print(f"{rev.label}: {finding.get('rule_name')}: {finding.get('message')}\n    {statement}")
        for rule, why in rev.allow.items():
            print(f"{rev.label}: allowed {rule} — {why}")
    print(f"migration lint: {checked} revisions, {failures} finding(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
