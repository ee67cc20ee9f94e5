"""Cron schedules for batch jobs, with a SQLite run ledger.

A job with `interval: hour` fired by its cron at T runs for the hour that ended before T (the
previous full hour); `interval: day` for the previous day. The ledger records every interval's
outcome, so a restarted orchestrator runs each missed interval once and never repeats a
completed one (backfill can force it). At most one run of a job is in flight at a time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from croniter import croniter

from configs.spark_config import JobSpec

SUCCEEDED, FAILED, RUNNING = "succeeded", "failed", "running"


def interval_for(fire_time: datetime, interval: str) -> datetime:
    """The start of the interval a run fired at `fire_time` covers."""
    if interval == "hour":
        return fire_time.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    return datetime.combine(fire_time.date() - timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def job_args(spec: JobSpec, interval_start: datetime) -> list[str]:
    """Command-line arguments of a batch run for one interval."""
    if spec.interval == "hour":
        return [*spec.args, "--target-hour", interval_start.strftime("%Y-%m-%d %H:00:00")]
    flag = "--as-of-date" if "--lookback-days" in spec.args else "--target-date"
    return [*spec.args, flag, interval_start.date().isoformat()]


def intervals_between(first: datetime, last: datetime, interval: str) -> Iterator[datetime]:
    step = timedelta(hours=1) if interval == "hour" else timedelta(days=1)
    current = first
    while current <= last:
        yield current
        current += step


class Ledger:
    """SQLite record of batch runs: one row per (job, interval), with attempts and outcome."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            """CREATE TABLE IF NOT EXISTS runs (
                 job TEXT NOT NULL, interval_start TEXT NOT NULL, status TEXT NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0, exit_code INTEGER,
                 started_at TEXT, finished_at TEXT, PRIMARY KEY (job, interval_start))""")

    def status(self, job: str, interval_start: datetime) -> tuple[str, int] | None:
        row = self.db.execute("SELECT status, attempts FROM runs WHERE job=? AND interval_start=?",
                              (job, interval_start.isoformat())).fetchone()
        return (row[0], row[1]) if row else None

    def mark_running(self, job: str, interval_start: datetime, now: datetime) -> None:
        self.db.execute(
            """INSERT INTO runs (job, interval_start, status, attempts, started_at)
               VALUES (?, ?, 'running', 1, ?)
               ON CONFLICT (job, interval_start) DO UPDATE
               SET status='running', attempts=attempts+1, started_at=excluded.started_at,
                   finished_at=NULL, exit_code=NULL""",
            (job, interval_start.isoformat(), now.isoformat()))

    def mark_done(self, job: str, interval_start: datetime, exit_code: int, now: datetime) -> None:
        self.db.execute(
            "UPDATE runs SET status=?, exit_code=?, finished_at=? WHERE job=? AND interval_start=?",
            (SUCCEEDED if exit_code == 0 else FAILED, exit_code, now.isoformat(), job,
             interval_start.isoformat()))

    def recover_interrupted(self) -> int:
        """Runs left 'running' by a previous orchestrator that died count as failed attempts."""
        return self.db.execute("UPDATE runs SET status='failed' WHERE status='running'").rowcount

    def rows(self, job: str | None = None) -> list[dict]:
        query = "SELECT job, interval_start, status, attempts, exit_code, started_at, finished_at FROM runs"
        args: tuple = ()
        if job:
            query += " WHERE job=?"
            args = (job,)
        cols = ("job", "interval_start", "status", "attempts", "exit_code", "started_at", "finished_at")
        return [dict(zip(cols, r, strict=True)) for r in self.db.execute(query + " ORDER BY 1, 2", args)]


@dataclass
class Scheduler:
    """Decides which (job, interval) to run next; the caller runs it and reports the outcome."""

    jobs: dict[str, JobSpec]
    ledger: Ledger
    catchup: timedelta = timedelta(hours=24)

    def due(self, job: str, now: datetime, since: datetime | None = None) -> list[datetime]:
        """Intervals of `job` whose fire time has passed (within the catch-up horizon) and that
        have not succeeded nor used up their attempts, oldest first."""
        spec = self.jobs[job]
        start = since or (now - self.catchup)
        fires = croniter(spec.schedule, start - timedelta(seconds=1))
        out = []
        while True:
            fire = fires.get_next(datetime)
            if fire > now:
                break
            interval = interval_for(fire, spec.interval)
            recorded = self.ledger.status(job, interval)
            if recorded is None or (recorded[0] == FAILED
                                    and recorded[1] < spec.restart.max_consecutive_failures):
                out.append(interval)
        return out

    def next_fire(self, job: str, now: datetime) -> datetime:
        return croniter(self.jobs[job].schedule, now).get_next(datetime)
