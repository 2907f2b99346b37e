"""The deploy rehearsal's start-up wait (``tests/rehearsal/stack.py``), on real processes: a slow start
is waited for, a process that exits fails at once whatever the bound, and a missed bound names the
process with its last answer and its log tail. (The rehearsal itself runs only with ECO2_REHEARSAL=1.)"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.deploy.chains import Process
from tests.rehearsal.stack import Running, wait_all_ready
from tests.support.servers import free_port, stop_process

# Answers /ready with 503 until ``delay`` seconds after start, then 200.
SERVER = """
import http.server, sys, time
started, delay = time.monotonic(), float(sys.argv[2])
print("starting up", flush=True)
class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = time.monotonic() - started >= delay
        self.send_response(200 if ok else 503); self.end_headers(); self.wfile.write(b"ready" if ok else b"warming")
    def log_message(self, *args): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ready).serve_forever()
"""


Spawn = Callable[..., Running]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    started: list[subprocess.Popen[bytes]] = []

    def run(name: str, code: str, *args: str, port: int | None = None) -> Running:
        log = tmp_path / f"{name}.log"
        popen = subprocess.Popen([sys.executable, "-c", code, *args], stdout=log.open("w"), stderr=subprocess.STDOUT)
        started.append(popen)
        return Running(Process("apps", "Deployment", name, "apps", [], {}, {}), popen, log, port)

    yield run
    for popen in started:
        stop_process(popen, 5)


def test_a_slow_start_is_waited_for(spawn: Spawn) -> None:
    port = free_port()
    api = spawn("api", SERVER, str(port), "1.5", port=port)
    worker = spawn("worker", "import time; time.sleep(60)")
    took = wait_all_ready([api, worker], timeout=30)
    assert took >= 1.5


def test_a_process_that_exits_fails_at_once(spawn: Spawn) -> None:
    port = free_port()
    api = spawn("api", SERVER, str(port), "60", port=port)
    crashed = spawn("worker", "import sys; print('CHAT_LLM_API_KEY is a placeholder', flush=True); sys.exit(3)")
    started = time.monotonic()
    with pytest.raises(AssertionError) as failure:
        wait_all_ready([api, crashed], timeout=120)
    assert time.monotonic() - started < 30  # not the bound: the exit is seen on the next round
    assert "apps: Deployment/worker exited with 3" in str(failure.value)
    assert "CHAT_LLM_API_KEY is a placeholder" in str(failure.value)


def test_a_missed_bound_names_the_process_its_answer_and_its_log(spawn: Spawn) -> None:
    port = free_port()
    api = spawn("api", SERVER, str(port), "600", port=port)
    with pytest.raises(AssertionError) as failure:
        wait_all_ready([api], timeout=1.5)
    message = str(failure.value)
    assert "1 process(es) not ready after" in message
    assert f"apps: Deployment/api on :{port}" in message
    assert "503 warming" in message  # its last answer
    assert "starting up" in message  # the log tail
    assert "load average" in message
