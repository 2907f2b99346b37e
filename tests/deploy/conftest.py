"""Manifest, image and workflow checks. They do not depend on the test mode, so the real-mode run
(CI runs the suite twice) skips them; every kustomization is rendered once per session."""

from __future__ import annotations

import os

import pytest

from tests.deploy import manifests


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("ECO2_TEST_MODE", "embedded") != "real":
        return
    skip = pytest.mark.skip(reason="deploy checks run in the embedded-mode pass only")
    for item in items:
        if "tests/deploy/" in item.nodeid.replace("\\", "/"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict]]:
    """Every kustomization under workloads/, platform/ and clusters/, rendered once."""
    return manifests.render_all()
