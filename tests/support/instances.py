"""Private server instances for tests that stop, flush or restore a server.

The PostgreSQL, Redis and RabbitMQ on 127.0.0.1's standard ports are shared by every engineer and
CI run on the machine: a test that must flush, kill or restore one starts its own here, on a free
port, with its own data directory, and removes it afterwards.

PostgreSQL refuses to run as root; when the tests run as root (CI does) the server and its tools
run as the ``postgres`` OS user, which then owns the data directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.support.servers import free_port

PG_BIN_DIRS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
SERVER_USER = "postgres"


def pg_bin(tool: str) -> str:
    """A PostgreSQL server tool (``initdb``, ``pg_ctl``…) of the newest version installed."""
    if not PG_BIN_DIRS:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return str(Path(PG_BIN_DIRS[-1]) / tool)


def as_server_user() -> str | None:
    """The OS user the server must run as: ``postgres`` when we are root, else ourselves (None)."""
    return SERVER_USER if os.geteuid() == 0 else None


def shared_dir(prefix: str) -> Path:
    """A temporary directory the server user can enter (pytest's tmp dirs are private to root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def give_to_server_user(path: Path) -> None:
    user = as_server_user()
    if user is None:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


@dataclass
class PrivatePostgres:
    """One PostgreSQL server: ``data_dir`` + ``port``, trust auth on 127.0.0.1 only."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    env: Mapping[str, str] = field(default_factory=dict)  # extra environment for the server (archive_command)

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def url(self, database: str = "postgres", driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            user=as_server_user(),
            env={**os.environ, **self.env},
            cwd=self.data_dir.parent,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def init(self, settings: Mapping[str, str] | None = None) -> None:
        """``initdb`` a fresh cluster and append ``settings`` to its postgresql.conf."""
        self.data_dir.mkdir(mode=0o700)
        give_to_server_user(self.data_dir)
        self.run(
            pg_bin("initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--locale=C.UTF-8",
        )  # fmt: skip
        self.configure(settings or {})

    def configure(self, settings: Mapping[str, str]) -> None:
        lines = "".join(f"{name} = {value}\n" for name, value in settings.items())
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# tests/support/instances.py\n" + lines)

    def start(self, timeout: float = 120) -> None:
        # Its own socket directory: the shared server's /var/run/postgresql is left alone.
        sockets = self.data_dir.parent / f"{self.data_dir.name}.sockets"
        sockets.mkdir(exist_ok=True)
        self.log_file.touch()
        for path in (sockets, self.log_file):
            give_to_server_user(path)
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {sockets}"
        done = self.run(
            pg_bin("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options,
            "-w", "-t", str(int(timeout)), "start",
            check=False, timeout=timeout + 10,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start:\n{done.stdout}{done.stderr}\n{self.log_tail()}")

    def stop(self, mode: str = "fast") -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self.run(pg_bin("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop", check=False)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """One statement's result as psql prints it unaligned (``-tAc``)."""
        done = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-tAc", sql],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return done.stdout.strip()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of our own on a free port, keeping nothing on disk; yields its URL."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="eco2-redis-"))
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("private redis-server did not start") from None
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(workdir, ignore_errors=True)
