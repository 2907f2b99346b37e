"""barman-cloud for the restore drill: the same tools CloudNativePG runs, pointed at moto's S3.

The tools come from PyPI (``barman[cloud]``, the ``backup`` dependency group of pyproject.toml,
versions from uv.lock). They are installed into a virtualenv of their own built on the system
Python, because PostgreSQL's archiver runs them as the server's OS user, which cannot enter the
project's ``.venv`` when that sits on an interpreter in root's home (it does on CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.instances import PrivatePostgres

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
REGION = "ap-northeast-2"


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv") or str(Path.home() / ".local/bin/uv")
    if not Path(found).exists():
        raise RuntimeError("uv not found (run the drill through `uv run` or `make drill`)")
    return found


def install_tools(dest: Path) -> Path:
    """A virtualenv at ``dest`` with the locked ``backup`` group; returns its ``bin`` directory."""
    python = SYSTEM_PYTHON if Path(SYSTEM_PYTHON).exists() else shutil.which("python3") or "python3"
    requirements = dest.parent / "backup-requirements.txt"
    exported = subprocess.run(
        [uv(), "export", "--frozen", "--only-group", "backup", "--no-hashes", "--no-emit-project"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    requirements.write_text(exported.stdout)
    subprocess.run([uv(), "venv", "--quiet", "--python", python, str(dest)], check=True, timeout=300)
    subprocess.run(
        [uv(), "pip", "install", "--quiet", "--python", str(dest / "bin/python"), "-r", str(requirements)],
        check=True, timeout=900,
    )  # fmt: skip
    # The server user runs these: every file readable, every directory enterable.
    subprocess.run(["chmod", "-R", "a+rX", str(dest)], check=True)
    return dest / "bin"


@dataclass
class ObjectStore:
    """Where a cluster's base backups and WAL go: ``s3://<bucket>/<path>/<server>/…``."""

    bin_dir: Path
    endpoint: str
    bucket: str
    server: str = "eco2-db"
    path: str = "postgres"

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.path}"

    @property
    def env(self) -> dict[str, str]:
        """Credentials as CloudNativePG hands them to barman-cloud (environment variables)."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }

    def _cli(self, tool: str) -> list[str]:
        return [str(self.bin_dir / tool), "--cloud-provider", "aws-s3", "--endpoint-url", self.endpoint]

    @property
    def archive_command(self) -> str:
        """``archive_command``: WAL segments gzip-compressed to the bucket, as ``wal.compression: gzip``."""
        return " ".join([*self._cli("barman-cloud-wal-archive"), "--gzip", self.url, self.server, "%p"])

    @property
    def restore_command(self) -> str:
        return " ".join([*self._cli("barman-cloud-wal-restore"), self.url, self.server, "%f", "%p"])

    def run(self, *args: str, timeout: float = 600) -> str:
        done = subprocess.run(
            list(args), env={**os.environ, **self.env}, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def base_backup(self, pg: PrivatePostgres) -> str:
        """A base backup of the running server (read from its data directory, as root or its owner).

        ``--immediate-checkpoint`` (CNPG: ``immediateCheckpoint: true``): without it the backup waits
        for a spread checkpoint, measured here at two minutes for a 10 MB database."""
        self.run(
            *self._cli("barman-cloud-backup"), "--gzip", "--immediate-checkpoint", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres",
            self.url, self.server,
        )  # fmt: skip
        return self.backups()[-1]["backup_id"]

    def backups(self) -> list[dict[str, object]]:
        listed = self.run(*self._cli("barman-cloud-backup-list"), "--format", "json", self.url, self.server)
        return list(json.loads(listed)["backups_list"])

    def restore(self, backup_id: str, data_dir: Path) -> None:
        self.run(*self._cli("barman-cloud-restore"), self.url, self.server, backup_id, str(data_dir))

    def wal_segments(self) -> int:
        """How many WAL files the archive holds (boto3 straight to the bucket: a reading for the report)."""
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        prefix = f"{self.path}/{self.server}/wals/"
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sum(len(page.get("Contents", [])) for page in pages)


def wait_archived(pg: PrivatePostgres, timeout: float = 60) -> str:
    """Close the current WAL segment and wait until the archiver has shipped it; returns its name."""
    segment = pg.psql("SELECT pg_walfile_name(pg_switch_wal())")
    deadline = time.monotonic() + timeout
    while True:
        last, failed = pg.psql("SELECT coalesce(last_archived_wal, ''), failed_count FROM pg_stat_archiver").split("|")
        if last >= segment:
            return segment
        if time.monotonic() > deadline:
            raise AssertionError(f"WAL {segment} not archived (last {last!r}, failures {failed})\n{pg.log_tail()}")
        time.sleep(0.2)
