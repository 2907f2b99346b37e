"""The migration linter (scripts/ci/lint_migrations.py, run by `make lint`): what it refuses and allows."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from services.common.migrations import offline_sql
from services.registry import SERVICES

SCRIPT = Path(__file__).resolve().parents[2] / "scripts/ci/lint_migrations.py"


@pytest.fixture(scope="module")
def lint() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lint_migrations", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


CARELESS = """BEGIN;
SET lock_timeout = '5s';
ALTER TABLE my.profiles DROP COLUMN phone_number;
ALTER TABLE my.profiles RENAME COLUMN nickname TO display_nickname;
ALTER TABLE scan.jobs ADD COLUMN priority integer NOT NULL;
CREATE INDEX ix_jobs_model ON scan.jobs (model);
ALTER TABLE scan.jobs ALTER COLUMN model TYPE text;
COMMIT;
"""


def test_operations_that_break_or_lock_the_running_release_are_refused(lint: ModuleType) -> None:
    rules = {finding["rule_name"] for finding in lint.lint_sql(CARELESS, "careless")}
    assert {
        "ban-drop-column",
        "renaming-column",
        "adding-required-field",
        "require-concurrent-index-creation",
        "changing-column-type",
    } <= rules


def test_a_migration_without_lock_timeout_is_refused(lint: ModuleType) -> None:
    rules = {f["rule_name"] for f in lint.lint_sql("ALTER TABLE my.profiles ADD COLUMN bio text;", "no-timeout")}
    assert "require-lock-timeout" in rules


def test_a_contract_step_names_what_it_may_break(lint: ModuleType) -> None:
    contract = "BEGIN;\nSET lock_timeout = '5s';\nALTER TABLE my.profiles DROP COLUMN phone_number;\nCOMMIT;\n"
    assert {f["rule_name"] for f in lint.lint_sql(contract, "contract")} == {"ban-drop-column"}
    assert lint.lint_sql(contract, "contract", allow={"ban-drop-column"}) == []


@pytest.mark.parametrize("service", [name for name, entry in SERVICES.items() if entry.has_migrations])
def test_every_migration_runs_under_a_lock_timeout(service: str) -> None:
    sql = offline_sql(service, "base:head")
    assert sql.index("SET lock_timeout") < sql.index("CREATE TABLE")


def test_the_repository_migrations_pass(lint: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert lint.main([]) == 0, capsys.readouterr().out
