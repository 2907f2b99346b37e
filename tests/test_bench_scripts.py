"""Benchmark scripts are not run by the suite (they print numbers), but they must keep importing:
a renamed helper should fail here, not the next time someone benchmarks."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "__init__"))
def test_bench_script_imports(script: str) -> None:
    module = importlib.import_module(f"bench.{script}")
    assert module.__doc__, f"bench/{script}.py should say what it measures"
