"""Private PostgreSQL, Redis and RabbitMQ servers for fault tests.

The servers on the standard ports are shared by everyone on the machine and must never be stopped;
a fault test that stops, restarts or kills a server starts its own here, on free ports, with its data
in a temporary directory, and removes it afterwards. Each is a context manager yielding a small
controller (``url``, ``stop()``, ``start()``, ``restart()``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.support.servers import free_port, wait_until


class _Server:
    """``stop()`` and ``start()`` per server; a restart is both with the server down in between."""

    def stop(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


# --------------------------------------------------------------------------------------- PostgreSQL


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"{name} not found (install postgresql)")
    return found[-1]


class PrivatePostgres(_Server):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        # initdb and postgres refuse to run as root; the Debian packages create this user.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *args], check=check, capture_output=True, timeout=120)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._as_postgres(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                          "-w", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:  # type: ignore[override]
        self._as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    root = Path(tempfile.mkdtemp(prefix="eco2-pg-"))
    server = PrivatePostgres(root)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


# -------------------------------------------------------------------------------------------- Redis


class PrivateRedis(_Server):
    """``appendonly yes`` with an fsync per write: a restart keeps what was written, as a deployed
    Redis with persistence does (without it a restart is a data loss, a different fault)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--logfile", str(self.root / "log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                                     check=False).stdout.strip() == b"PONG", "redis")  # fmt: skip

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    root = Path(tempfile.mkdtemp(prefix="eco2-redis-"))
    server = PrivateRedis(root)
    try:
        server.start()
        yield server
    finally:
        if server.process is not None:
            server.process.kill()
            server.process.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------------------- RabbitMQ


class PrivateRabbit(_Server):
    """A separate RabbitMQ node: its own node name, ports, mnesia dir, config and cookie; no plugins."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.node = f"eco2fault{uuid.uuid4().hex[:8]}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        (root / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        (root / "enabled_plugins").write_text("[].\n")
        (root / "rabbitmq-env.conf").write_text("")
        self.env = {
            **os.environ,
            "HOME": str(root),  # the node's Erlang cookie lives here, not in the shared node's home
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(root / "log"),
            "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq"),
            "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(root / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def ctl(self, *args: str, timeout: float = 120) -> str:
        return subprocess.run(["/usr/lib/rabbitmq/bin/rabbitmqctl", "-n", self.node, *args], env=self.env,
                              check=True, capture_output=True, text=True, timeout=timeout).stdout  # fmt: skip

    def queues(self) -> str:
        """Each queue's ready and unacknowledged messages and its consumers: what a failed fault run
        prints, so that a stalled consumer and a lost publish tell themselves apart in one run."""
        return self.ctl("list_queues", "--quiet", "name", "messages_ready", "messages_unacknowledged", "consumers")

    def boot(self) -> None:
        subprocess.Popen(
            ["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=self.env, cwd=self.root,
            stdout=(self.root / "stdout").open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.ctl("wait", str(self.root / "pid"), "--timeout", "90")
        self.ctl("await_startup")

    def stop(self) -> None:
        """The broker application goes away (connections drop); the node stays for ``start``."""
        self.ctl("stop_app")

    def start(self) -> None:
        self.ctl("start_app")

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.ctl("stop", timeout=60)


@contextlib.contextmanager
def private_rabbitmq() -> Iterator[PrivateRabbit]:
    root = Path(tempfile.mkdtemp(prefix="eco2-rabbit-"))
    server = PrivateRabbit(root)
    try:
        server.boot()
        yield server
    finally:
        server.shutdown()
        shutil.rmtree(root, ignore_errors=True)
