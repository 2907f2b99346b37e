"""Migration ``scan 0002`` backfills the claimed characters from scan's own completed jobs: the earliest
rewarded job per (user, character) holds the claim; failed and reward-less jobs claim nothing.
(SQLite file of its own; the same statement is built by SQLAlchemy for PostgreSQL.)"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

from services.common.migrations import upgrade


def test_backfill_keeps_the_earliest_rewarded_job(tmp_path: Path) -> None:
    path = tmp_path / "scan.db"
    upgrade("scan", f"sqlite+aiosqlite:///{path.as_posix()}", "0001")
    user, other = uuid.uuid4(), uuid.uuid4()
    first, second, failed, plain, theirs = (uuid.uuid4() for _ in range(5))
    rows = [
        (second, user, "completed", "char-petty", "2026-01-02 00:00:00"),
        (first, user, "completed", "char-petty", "2026-01-01 00:00:00"),
        (failed, user, "failed", None, "2026-01-01 00:00:00"),
        (plain, user, "completed", None, "2026-01-03 00:00:00"),
        (theirs, other, "completed", "char-paepy", "2026-01-04 00:00:00"),
    ]
    with sqlite3.connect(path) as conn:
        for job_id, user_id, status, character, completed_at in rows:
            conn.execute(
                "INSERT INTO jobs (id, user_id, image_url, image_key, image_type, user_input, model, status, stage,"
                " progress, checkpoint, result, reward_character, created_at, deadline_at, enqueued_at, completed_at)"
                " VALUES (?, ?, 'u', 'k', 'image/png', '', 'm', ?, 'reward', 100, '{}', NULL, ?, ?, ?, ?, ?)",
                (job_id.hex, user_id.hex, status, character, completed_at, completed_at, completed_at, completed_at),
            )
    upgrade("scan", f"sqlite+aiosqlite:///{path.as_posix()}")
    with sqlite3.connect(path) as conn:
        claims = conn.execute("SELECT user_id, character_code, job_id FROM claimed_characters ORDER BY character_code")
        assert [tuple(r) for r in claims] == [
            (other.hex, "char-paepy", theirs.hex),
            (user.hex, "char-petty", first.hex),
        ]
