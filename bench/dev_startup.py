"""How long `eco2 dev` takes to be ready, and how much memory it holds when idle.

Starts `eco2 dev` on a fresh data directory (the first-run case: migrations, key generation, sample
data), polls GET /ready until it answers 200, then waits for the process to settle and sums the RSS of
its whole process tree. Targets (issue 2): ready ≤ 5 s, RSS ≤ 250 MB for all services together.

    uv run python bench/dev_startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_rss_mb(pid: int) -> float:
    """RSS of ``pid`` and all its descendants, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().split(") ", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total_kb, stack = 0, [pid]
    while stack:
        current = stack.pop()
        stack.extend(children.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def one_run(settle: float) -> tuple[float, float, list[str]]:
    data_dir = tempfile.mkdtemp(prefix="eco2-bench-dev-")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "RABBITMQ_URL"}}
    env |= {"ECO2_DATA_DIR": data_dir, "LOG_LEVEL": "WARNING"}
    eco2 = shutil.which("eco2") or str(Path(sys.executable).with_name("eco2"))
    started = time.perf_counter()
    process = subprocess.Popen(
        [eco2, "dev", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        ready_after = None
        while time.perf_counter() - started < 60:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as response:
                    if response.status == 200:
                        ready_after = time.perf_counter() - started
                        break
            except OSError:
                time.sleep(0.05)
        if ready_after is None:
            raise RuntimeError("eco2 dev did not become ready within 60 s")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
            checks = sorted(__import__("json").loads(response.read())["checks"])
        time.sleep(settle)
        return ready_after, tree_rss_mb(process.pid), checks
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds idle before reading RSS")
    args = parser.parse_args()
    readies, rsses = [], []
    checks: list[str] = []
    for run in range(1, args.runs + 1):
        ready, rss, checks = one_run(args.settle)
        readies.append(ready)
        rsses.append(rss)
        print(f"run {run}: ready after {ready:.2f} s, idle RSS {rss:.0f} MB")
    services = sorted({c.split(".")[0] for c in checks})
    print(f"services: {len(services)} ({', '.join(services)})")
    print(f"ready:    median {statistics.median(readies):.2f} s, max {max(readies):.2f} s   (target ≤ 5 s)")
    print(f"idle RSS: median {statistics.median(rsses):.0f} MB, max {max(rsses):.0f} MB   (target ≤ 250 MB)")


if __name__ == "__main__":
    main()
