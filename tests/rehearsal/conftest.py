"""The rehearsal starts a PostgreSQL, a Redis, moto and every process of the prod overlay: it runs
as its own step of .ci/run (``pytest tests/rehearsal``), not inside ``make test``."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("ECO2_REHEARSAL") == "1":
        return
    skip = pytest.mark.skip(reason="the deploy rehearsal runs in its own .ci/run step (ECO2_REHEARSAL=1)")
    for item in items:
        if "tests/rehearsal/" in item.nodeid.replace("\\", "/"):
            item.add_marker(skip)
