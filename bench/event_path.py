"""Benchmark: the event path alone — ``eco2 worker relay`` and ``eco2 worker consumers my`` in real
mode (own database and queue names on the local servers, as bench/scan_load.py), fed by this process
with ``scan.reward_granted`` rows (the per-scan event) in scan's outbox at ``--rate`` per second for
``--seconds`` (one transaction per event, as the scan worker writes them). ``--core``: written as the
worker's finish writes them — a Core transaction, then ``outbox.announce`` (the coalesced ``NOTIFY``)
— instead of an ORM session whose commit carries its own ``NOTIFY``.

Prints the relay's and the consumers' CPU per event (user + system, ``/proc``, between 20 % and 90 %
of the run) and the latency from the outbox row's ``occurred_at`` to the my service's inbox
``processed_at`` (p50/p95/max). Needs a few PostgreSQL connections instead of the ≈ 45 of the full
stack. For a before/after, run it in both trees at the same time (copy it into the older tree).

    uv run python bench/event_path.py [--rate 4] [--seconds 40] [--core]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scan_env import ROOT, Env, cpu_seconds, eco2

LATENCY = """
SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY ms),
       max(ms)
FROM (SELECT extract(epoch FROM i.processed_at - o.occurred_at) * 1000 AS ms
      FROM my.inbox i JOIN scan.outbox o ON replace(o.id::text, '-', '') = replace(i.event_id, '-', '')) t
"""


async def feed(env: Env, rate: float, seconds: float, core: bool) -> None:
    from sqlalchemy import text

    from services.common.db import Database
    from services.common.domain_events import ScanRewardGranted, reward_points
    from services.common.outbox import announce
    from services.scan.models import Outbox
    from services.scan.reward import emit

    db = Database(env.vars["DATABASE_URL"], "scan", pool_size=2)
    users = [uuid.uuid4() for _ in range(50)]
    marks: dict[str, tuple[dict[str, float], int]] = {}
    sent, start = 0, time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        for name, at in (("from", 0.2), ("to", 0.9)):
            if elapsed > seconds * at and name not in marks:
                marks[name] = ({k: cpu_seconds(p.pid) for k, p in env.procs.items()}, sent)
        received = sent < len(users)  # each user's first scan collects the character
        event = ScanRewardGranted(user_id=users[sent % len(users)], job_id=uuid.uuid4(), character_code="paper",
                                  character_name="페이피", received=received,
                                  points=reward_points(received))  # fmt: skip
        if core:
            async with db.transaction() as conn:
                await emit(conn, event)
            announce(db, "scan")
        else:
            async with db.session() as session:
                Outbox.emit(session, event)
        sent += 1
        await asyncio.sleep(max(0.0, start + sent / rate - time.monotonic()))
    await asyncio.sleep(3)
    (cpu_from, n_from), (cpu_to, n_to) = marks["from"], marks["to"]
    per = {k: (cpu_to[k] - cpu_from[k]) / (n_to - n_from) * 1000 for k in cpu_from}
    print(f"{n_to - n_from} events in the window: CPU per event relay {per['relay']:.2f} ms, "
          f"consumers {per['consumers']:.2f} ms")  # fmt: skip
    async with db.engine.connect() as conn:
        count, p50, p95, worst = (await conn.execute(text(LATENCY))).one()
    print(f"outbox → my inbox ({count} events): p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {worst:.0f} ms")
    await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=4.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--core", action="store_true", help="write as the scan worker does (Core + announce)")
    args = parser.parse_args()
    env = Env(worker_concurrency=10, vision=0.0, answer=0.0, rate_per_window=1000)
    try:
        env.create_database()
        for name, command in (("relay", ["worker", "relay"]), ("consumers", ["worker", "consumers", "my"])):
            log = (env.data_dir / f"{name}.log").open("wb")
            env.procs[name] = subprocess.Popen([eco2(), *command], cwd=ROOT, env=env.env(), stdout=log, stderr=log)
        time.sleep(4)  # both attached (events written earlier would wait in the outbox anyway)
        os.environ.update(env.vars)
        asyncio.run(feed(env, args.rate, args.seconds, args.core))
    finally:
        env.cleanup()


if __name__ == "__main__":
    main()
