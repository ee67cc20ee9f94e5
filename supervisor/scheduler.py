"""Cron schedules for batch jobs, with a SQLite ledger of their intervals.

A job with `interval: hour` fired by its cron at T covers the hour that ended before T (the
previous full hour); `interval: day` the previous day. An interval whose fire time has passed is
*due*; it runs once it is also *ready* (utils/readiness.py) and is *waiting* until then. The
ledger records every interval's life: waiting (with the reason), running, succeeded or failed,
with its readiness time, the input watermarks it ran against, rows read and written, duration,
attempts and whether it was forced. A restarted orchestrator therefore runs each missed interval
once and never repeats a succeeded one (a backfill can). Consecutive ready intervals run as one
range (one Spark application), at most one run of a job at a time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from croniter import croniter

from configs.spark_config import JobSpec

WAITING, RUNNING, SUCCEEDED, FAILED = "waiting", "running", "succeeded", "failed"

# Columns beyond the first version's, added to an existing ledger on open.
_COLUMNS = {
    "job": "TEXT NOT NULL", "interval_start": "TEXT NOT NULL", "status": "TEXT NOT NULL",
    "attempts": "INTEGER NOT NULL DEFAULT 0", "exit_code": "INTEGER", "started_at": "TEXT",
    "finished_at": "TEXT", "ready_at": "TEXT", "reason": "TEXT", "watermarks": "TEXT",
    "rows_read": "INTEGER", "rows_written": "INTEGER", "duration_s": "REAL",
    "forced": "INTEGER NOT NULL DEFAULT 0", "run_id": "TEXT", "app_id": "TEXT", "updated_at": "TEXT",
}


def interval_for(fire_time: datetime, interval: str) -> datetime:
    """The start of the interval a run fired at `fire_time` covers."""
    if interval == "hour":
        return fire_time.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    return datetime.combine(fire_time.date() - timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def step(interval: str) -> timedelta:
    return timedelta(hours=1) if interval == "hour" else timedelta(days=1)


def job_args(spec: JobSpec, first: datetime, last: datetime | None = None) -> list[str]:
    """Command-line arguments of a batch run over the intervals [first, last] (a range flag pair
    even for one interval: every batch job takes --from-hour/--to-hour or --from-date/--to-date)."""
    last = last or first
    if spec.interval == "hour":
        return [*spec.args, "--from-hour", first.strftime("%Y-%m-%d %H:00:00"),
                "--to-hour", last.strftime("%Y-%m-%d %H:00:00")]
    return [*spec.args, "--from-date", first.date().isoformat(), "--to-date", last.date().isoformat()]


def intervals_between(first: datetime, last: datetime, interval: str) -> Iterator[datetime]:
    current = first
    while current <= last:
        yield current
        current += step(interval)


def consecutive_runs(starts: list[datetime], interval: str, max_range: int) -> list[list[datetime]]:
    """Split sorted interval starts into ranges of consecutive intervals, each at most `max_range` long."""
    ranges: list[list[datetime]] = []
    for start in starts:
        if ranges and start - ranges[-1][-1] == step(interval) and len(ranges[-1]) < max_range:
            ranges[-1].append(start)
        else:
            ranges.append([start])
    return ranges


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


class Ledger:
    """SQLite record of batch intervals: one row per (job, interval)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS runs (job TEXT NOT NULL, interval_start TEXT NOT NULL, "
                        "status TEXT NOT NULL, PRIMARY KEY (job, interval_start))")
        present = {row[1] for row in self.db.execute("PRAGMA table_info(runs)")}
        for name, kind in _COLUMNS.items():
            if name not in present:
                self.db.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")

    def status(self, job: str, interval_start: datetime) -> tuple[str, int] | None:
        row = self.db.execute("SELECT status, attempts FROM runs WHERE job=? AND interval_start=?",
                              (job, _iso(interval_start))).fetchone()
        return (row[0], row[1]) if row else None

    def mark_waiting(self, job: str, interval_start: datetime, reason: str, now: datetime) -> None:
        """Due but not ready: recorded with the reason (neither a failure nor an attempt)."""
        self.db.execute(
            """INSERT INTO runs (job, interval_start, status, reason, updated_at) VALUES (?, ?, 'waiting', ?, ?)
               ON CONFLICT (job, interval_start) DO UPDATE SET status='waiting', reason=excluded.reason,
               updated_at=excluded.updated_at WHERE status IN ('waiting', 'running')""",
            (job, _iso(interval_start), reason, _iso(now)))

    def mark_running(self, job: str, interval_start: datetime, now: datetime, *, run_id: str | None = None,
                     watermarks: dict | None = None, forced: bool = False) -> None:
        self.db.execute(
            """INSERT INTO runs (job, interval_start, status, started_at, ready_at, run_id, watermarks, forced,
                                 updated_at)
               VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?)
               ON CONFLICT (job, interval_start) DO UPDATE
               SET status='running', started_at=excluded.started_at, finished_at=NULL, exit_code=NULL,
                   reason=NULL, ready_at=COALESCE(ready_at, excluded.ready_at), run_id=excluded.run_id,
                   watermarks=excluded.watermarks, forced=excluded.forced, updated_at=excluded.updated_at""",
            (job, _iso(interval_start), _iso(now), None if forced else _iso(now), run_id,
             json.dumps(watermarks or {}), int(forced), _iso(now)))

    def mark_done(self, job: str, interval_start: datetime, exit_code: int, now: datetime, *,
                  succeeded: bool | None = None, reason: str | None = None, **figures: object) -> None:
        """The end of an attempt. `figures`: rows_read, rows_written, duration_s, app_id, watermarks, forced."""
        ok = exit_code == 0 if succeeded is None else succeeded
        if "watermarks" in figures:
            figures["watermarks"] = json.dumps(figures["watermarks"])
        if "forced" in figures:
            figures["forced"] = int(bool(figures["forced"]))
        sets = "".join(f", {k}=?" for k in figures)
        self.db.execute(
            f"""UPDATE runs SET status=?, exit_code=?, finished_at=?, updated_at=?, reason=?,
                attempts=attempts+1{sets} WHERE job=? AND interval_start=?""",
            (SUCCEEDED if ok else FAILED, exit_code, _iso(now), _iso(now), reason, *figures.values(), job,
             _iso(interval_start)))

    def mark_not_ready(self, job: str, interval_start: datetime, reason: str, now: datetime) -> None:
        """The job itself found the inputs incomplete (exit 75): back to waiting, no attempt counted."""
        self.db.execute("UPDATE runs SET status='waiting', reason=?, updated_at=? WHERE job=? AND interval_start=?",
                        (reason, _iso(now), job, _iso(interval_start)))

    def recover_interrupted(self, keep_run_ids: set[str] | frozenset[str] = frozenset()) -> int:
        """Intervals left 'running' by a previous orchestrator that died count as failed attempts,
        except those of the runs in `keep_run_ids` (adopted, or settled from their result file)."""
        keep = sorted(keep_run_ids)
        marks = ",".join("?" * len(keep))
        return self.db.execute(
            "UPDATE runs SET status='failed', attempts=attempts+1, reason='interrupted' WHERE status='running'"
            + (f" AND (run_id IS NULL OR run_id NOT IN ({marks}))" if keep else ""), keep).rowcount

    def rows(self, job: str | None = None, *, limit: int | None = None) -> list[dict]:
        """Ledger rows, oldest interval first; with `limit`, the most recent ones."""
        query, args = "SELECT * FROM runs", ()
        if job:
            query, args = query + " WHERE job=?", (job,)
        query += " ORDER BY interval_start DESC, job" + (f" LIMIT {int(limit)}" if limit else "")
        cursor = self.db.execute(query, args)
        cols = [c[0] for c in cursor.description]
        out = []
        for row in cursor:
            record = dict(zip(cols, row, strict=True))
            record["watermarks"] = json.loads(record["watermarks"]) if record.get("watermarks") else None
            record["forced"] = bool(record.get("forced"))
            out.append(record)
        return sorted(out, key=lambda r: (r["job"], r["interval_start"]))

    def last_success_at(self, job: str) -> float | None:
        """When the job's last successful interval finished, epoch seconds."""
        row = self.db.execute("SELECT MAX(finished_at) FROM runs WHERE job=? AND status='succeeded'", (job,)).fetchone()
        return datetime.fromisoformat(row[0]).timestamp() if row and row[0] else None

    def rows_written(self, job: str) -> int:
        return self.db.execute("SELECT COALESCE(SUM(rows_written), 0) FROM runs WHERE job=? AND status='succeeded'",
                               (job,)).fetchone()[0]

    def counts(self, job: str) -> dict[str, int]:
        return dict(self.db.execute("SELECT status, COUNT(*) FROM runs WHERE job=? GROUP BY status", (job,)).fetchall())


@dataclass
class Scheduler:
    """Decides which intervals are due; readiness and running them are the caller's."""

    jobs: dict[str, JobSpec]
    ledger: Ledger
    catchup: timedelta = timedelta(hours=24)

    def due(self, job: str, now: datetime, since: datetime | None = None) -> list[datetime]:
        """Intervals of `job` whose fire time has passed (within the catch-up horizon) and that
        have neither succeeded, nor are running, nor used up their attempts, oldest first."""
        spec = self.jobs[job]
        start = since or (now - self.catchup)
        fires = croniter(spec.schedule, start - timedelta(seconds=1))
        out = []
        while True:
            fire = fires.get_next(datetime)
            if fire > now:
                break
            interval = interval_for(fire, spec.interval)
            if out and out[-1] == interval:
                continue  # several fires in one interval (a schedule finer than the interval)
            recorded = self.ledger.status(job, interval)
            if (recorded is None or recorded[0] == WAITING
                    or (recorded[0] == FAILED and recorded[1] < spec.restart.max_consecutive_failures)):
                out.append(interval)
        return out

    def next_fire(self, job: str, now: datetime) -> datetime:
        return croniter(self.jobs[job].schedule, now).get_next(datetime)
