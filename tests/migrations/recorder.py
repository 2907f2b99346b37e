"""Records the SQL the code issues while the real-mode suite runs: the query corpus of a release.

``ECO2_RECORD_QUERIES=<file> make test-real`` (``make release-queries``) writes every distinct data
statement (SELECT/INSERT/UPDATE/DELETE/WITH) the services sent to PostgreSQL, grouped by the service
schema it touches, to ``<file>``. Committed at a release as ``tests/migrations/previous_release.json``,
it is what ``test_previous_release.py`` replays against the next release's schema (docs/migrations.md).
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from services.registry import SERVICES

TARGET = os.environ.get("ECO2_RECORD_QUERIES")
DATA = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.IGNORECASE)
SCHEMAS = {entry.db_schema: name for name, entry in SERVICES.items()}
QUALIFIED = re.compile(r'\b"?(' + "|".join(map(re.escape, SCHEMAS)) + r')"?\.')
_seen: dict[str, set[str]] = defaultdict(set)


def service_of(statement: str) -> str | None:
    """The service whose schema the statement names first (None: not a service's data statement)."""
    if not DATA.match(statement) or "alembic_version" in statement:
        return None
    found = QUALIFIED.search(statement)
    return SCHEMAS[found.group(1)] if found else None


def _record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
    if conn.dialect.name != "postgresql":
        return
    service = service_of(statement)
    if service is not None:
        _seen[service].add(statement.strip())


def pytest_configure(config: pytest.Config) -> None:
    if TARGET:
        event.listen(Engine, "before_cursor_execute", _record)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if TARGET and _seen:
        corpus = {service: sorted(statements) for service, statements in sorted(_seen.items())}
        Path(TARGET).write_text(json.dumps(corpus, ensure_ascii=False, indent=1) + "\n")
