"""Fault scenarios of bench/scan_faults.py in the real-mode suite, on a small load.

Each scenario runs the scan stack as separate processes on PRIVATE PostgreSQL, Redis and RabbitMQ
servers (never the shared ones) and breaks one thing: the worker is SIGKILLed mid-job, PostgreSQL
restarts under load, Redis restarts under open streams, the API process gets SIGTERM with streams
open. The checks are the script's own (docs/benchmarks.md has the figures of a larger run).
"""

from __future__ import annotations

import pytest

from bench.scan_faults import SCENARIOS, run

pytestmark = [pytest.mark.real_only, pytest.mark.slow]


def test_scan_stack_survives_every_fault(capsys: pytest.CaptureFixture[str]) -> None:
    outcomes = run(list(SCENARIOS), jobs=8)
    with capsys.disabled():
        for outcome in outcomes:
            outcome.report()
    assert {o.scenario: o.failures for o in outcomes} == {name: [] for name in SCENARIOS}
