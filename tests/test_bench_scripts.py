"""Benchmark scripts are not run by the suite (they print numbers), but they must keep importing:
a renamed helper should fail here, not the next time someone benchmarks."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "__init__"))
def test_bench_script_imports(script: str) -> None:
    module = importlib.import_module(f"bench.{script}")
    assert module.__doc__, f"bench/{script}.py should say what it measures"


def test_the_scan_benchmark_splits_the_machine_over_the_full_load_window() -> None:
    """Where the machine's CPU went: shares of one core over the window the CPU-per-scan figure uses,
    with 'the rest' what no named process accounts for."""
    from bench.scan_load import machine_split

    # 20 seconds sampled once a second; every second the machine is 1.8 cores busy: ours 1.0, moto 0.3,
    # the fake model 0.1, the load client 0.1 (so the rest is 0.3).
    rates = {"machine": 1.8, "ours": 1.0, "moto (S3)": 0.3, "fake model": 0.1, "load client": 0.1}
    machine = [(float(t), {name: rate * t for name, rate in rates.items()}) for t in range(21)]
    submitted = [i * 0.1 for i in range(100)]  # submissions over 0–10 s, completions over 5–15 s
    done = [5.0 + i * 0.1 for i in range(100)]

    assert machine_split(machine, done, submitted) == (
        f"machine in the full-load window: 180 % busy of {100 * (os.cpu_count() or 1)} % — ours 100 %, "
        "moto (S3) 30 %, fake model 10 %, load client 10 %, the rest (PostgreSQL, Redis, RabbitMQ, kernel) 30 %"
    )
    # Window: from the sample nearest the 10th percentile of completions (6.0 s) to the one nearest the
    # 90th of submissions (9.0 s). With every completion after the last submission (one cycle) there
    # is no full-load window, and no line.
    assert machine_split(machine, [15.0 + i * 0.05 for i in range(100)], submitted) == ""
