"""The batch side of the orchestrator: which due intervals are ready, one run per job at a time
(a range of intervals in one Spark application), and each interval's outcome in the ledger.

A batch job is in one of the `State`s of supervisor/process.py that apply to it: IDLE (nothing due,
or everything due is done), WAITING (due intervals wait for their inputs), RUNNING (a run is in
flight), BACKOFF (the last run failed; the next attempt waits `backoff_initial_seconds`).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from configs.spark_config import JobSpec, Settings
from supervisor.children import ChildRecord
from supervisor.process import UNKNOWN_EXIT, AdoptedChild, Child, State
from supervisor.scheduler import Ledger, Scheduler, consecutive_runs, job_args
from utils import readiness

log = logging.getLogger("orchestrator")

# After a run exits 75 (an input turned out incomplete), look again in a while, not at once.
NOT_READY_HOLD_SECONDS = 30.0


@dataclass
class BatchRun:
    """One batch run: a range of consecutive intervals in one Spark application."""

    job: str
    intervals: list[datetime]
    child: Child
    started: float
    run_id: str
    result_file: Path

    @property
    def label(self) -> str:
        first, last = self.intervals[0].isoformat(), self.intervals[-1].isoformat()
        return first if first == last else f"{first} .. {last}"


def read_results(path: Path) -> dict[str, dict]:
    """The per-interval outcomes a batch run reported (utils/batch_job.py), by interval start."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    out = {}
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a killed run
            continue
        out[datetime.fromisoformat(record["interval"]).astimezone(UTC).isoformat()] = record
    return out


@dataclass
class BatchJobs:
    settings: Settings
    jobs: dict[str, JobSpec]
    names: list[str]
    ledger: Ledger
    scheduler: Scheduler
    runs_dir: Path
    spawner: Callable[[JobSpec, list[str]], Child]
    clock: Callable[[], float]
    shutting_down: threading.Event
    once: bool = False
    runs: dict[str, BatchRun] = field(default_factory=dict)
    failures_at: dict[str, float] = field(default_factory=dict)
    # Due intervals that are not ready, per job: interval -> reason (also in the ledger).
    waiting: dict[str, dict[datetime, str]] = field(default_factory=dict)
    # Jobs with a due, ready interval not started yet (--once waits for these).
    ready_pending: set[str] = field(default_factory=set)
    hold_until: dict[str, float] = field(default_factory=dict)
    # When each job's due intervals were last checked against the inputs' watermarks: a reader
    # that saw new watermarks knows the status reflects them once this is later.
    checked_at: dict[str, datetime] = field(default_factory=dict)
    failed: int = 0

    def _now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def state(self, name: str) -> State:
        if name in self.runs:
            return State.RUNNING
        failed_at = self.failures_at.get(name)
        if failed_at and self.clock() - failed_at < self.jobs[name].restart.backoff_initial_seconds:
            return State.BACKOFF
        return State.WAITING if self.waiting.get(name) else State.IDLE

    def schedule(self, job_states: dict[str, str]) -> None:
        """Start, per job without a run in flight, its first range of due and ready intervals."""
        now, now_dt = self.clock(), self._now_dt()
        for name in self.names:
            if name in self.runs:
                continue  # at most one run of a job at a time
            spec = self.jobs[name]
            failed_at = self.failures_at.get(name)
            if failed_at and (self.once or now - failed_at < spec.restart.backoff_initial_seconds):
                self.ready_pending.discard(name)  # --once: one attempt per invocation
                continue
            if now < self.hold_until.get(name, 0.0):
                continue
            due = self.scheduler.due(name, now_dt)
            current = readiness.watermarks(spec, self.settings.state_root)
            checks = [readiness.check(spec, i, current=current, job_states=job_states) for i in due]
            self.checked_at[name] = now_dt
            self._record_waiting(name, {c.start: c.reason for c in checks if not c.ready}, now_dt)
            ready = [c for c in checks if c.ready]
            if not ready:
                self.ready_pending.discard(name)
                continue
            self.ready_pending.add(name)
            first = consecutive_runs([c.start for c in ready], spec.interval, spec.max_range)[0]
            self.start(name, first, watermarks=ready[0].watermarks)

    def _record_waiting(self, name: str, waiting: dict[datetime, str], now_dt: datetime) -> None:
        """Due but not ready: kept for the status, and in the ledger when the reason changes."""
        known = self.waiting.get(name, {})
        for interval, reason in waiting.items():
            if known.get(interval) != reason:
                self.ledger.mark_waiting(name, interval, reason, now_dt)
        for interval in set(known) - set(waiting):
            log.info("%s: %s is ready", name, interval.isoformat(), extra={"job_name": name})
        if waiting and not known:
            first = min(waiting)
            log.info("%s: %d due intervals wait for their inputs, the first %s: %s", name, len(waiting),
                     first.isoformat(), waiting[first], extra={"job_name": name})
        self.waiting[name] = waiting

    def start(self, name: str, intervals: list[datetime], *, force: bool = False,
              watermarks: dict | None = None) -> BatchRun:
        """One run over consecutive `intervals` (one Spark application); their outcome per
        interval comes back through the run's result file."""
        spec = self.jobs[name]
        run_id = uuid.uuid4().hex[:12]
        result_file = self.runs_dir / f"{name}-{run_id}.jsonl"
        args = [*job_args(spec, intervals[0], intervals[-1]), "--result-file", str(result_file),
                *(["--force"] if force else [])]
        now_dt = self._now_dt()
        for interval in intervals:
            self.ledger.mark_running(name, interval, now_dt, run_id=run_id, watermarks=watermarks, forced=force)
        child = self.spawner(spec, args)
        run = BatchRun(name, list(intervals), child, self.clock(), run_id, result_file)
        self.runs[name] = run
        log.info("%s: batch run started for %s (%d intervals, pid %s)", name, run.label, len(intervals), child.pid,
                 extra={"job_name": name, "interval": run.label, "run_id": run_id})
        return run

    def adopt(self, rec: ChildRecord, alive: bool) -> str:
        """A run a previous orchestrator recorded: followed to its end when still alive, else
        settled from its result file. Its run id."""
        run = BatchRun(rec.job, [datetime.fromisoformat(i) for i in rec.intervals], AdoptedChild(rec),
                       rec.started_at, rec.run_id or "", Path(rec.result_file or "/nonexistent"))
        if alive:
            self.runs[rec.job] = run
            log.warning("%s: adopted the running batch run %s (pid %s) of a previous orchestrator",
                        rec.job, run.label, rec.pid, extra={"job_name": rec.job})
        else:
            self.record_outcome(run, UNKNOWN_EXIT)
        return run.run_id

    def reap(self) -> None:
        """Settle the runs that ended."""
        for name, run in list(self.runs.items()):
            code = run.child.poll()
            if code is None:
                continue
            run.child.reap_group()
            del self.runs[name]
            failed = self.record_outcome(run, code)
            level = logging.ERROR if failed else logging.INFO
            ended = "ended (exit code unknown: adopted)" if code == UNKNOWN_EXIT else f"exited {code}"
            log.log(level, "%s: batch run for %s %s after %.0fs", name, run.label, ended,
                    self.clock() - run.started, extra={"job_name": name, "exit_code": code})
            if failed:
                self.failed += failed
                self.failures_at[name] = self.clock()
            else:
                self.failures_at.pop(name, None)
            if code == readiness.NOT_READY_EXIT_CODE:
                self.hold_until[name] = self.clock() + NOT_READY_HOLD_SECONDS

    def record_outcome(self, run: BatchRun, code: int) -> int:
        """Each interval of a finished run into the ledger; the number that failed."""
        now_dt = self._now_dt()
        results = read_results(run.result_file)
        failed = 0
        for interval in run.intervals:
            result = results.get(interval.isoformat())
            if result and result["status"] == "written":
                figures = {k: result.get(k) for k in ("rows_read", "rows_written", "duration_s", "app_id",
                                                      "watermarks", "forced")}
                self.ledger.mark_done(run.job, interval, 0, now_dt, succeeded=True,
                                      **{k: v for k, v in figures.items() if v not in (None, {})})
            elif (result and result["status"] == "not_ready") or (code == readiness.NOT_READY_EXIT_CODE
                                                                    and not result):
                self.ledger.mark_not_ready(run.job, interval, (result or {}).get("reason", "not ready"), now_dt)
            elif self.shutting_down.is_set():
                # Stopped by our own shutdown before it got to this interval: not a failure of
                # the interval; it waits for the next orchestrator (no attempt counted).
                self.ledger.mark_not_ready(run.job, interval, "interrupted by the orchestrator's shutdown", now_dt)
            elif code == 0 and not results:
                # A batch script that does not report per interval: exit 0 covers all of them.
                self.ledger.mark_done(run.job, interval, 0, now_dt, succeeded=True,
                                      duration_s=round(self.clock() - run.started, 2))
            else:
                failed += 1
                self.ledger.mark_done(run.job, interval, code or 1, now_dt, succeeded=False,
                                      reason=f"exit code {code}" if code else "no outcome reported")
        return failed

    def signal_all(self, sig: int = signal.SIGTERM) -> None:
        for run in self.runs.values():
            run.child.signal_group(sig)

    def status(self, name: str, now: float) -> dict:
        run = self.runs.get(name)
        waiting = self.waiting.get(name, {})
        finished = [r for r in self.ledger.rows(name, limit=50) if r["finished_at"]]
        counts = self.ledger.counts(name)
        return {
            "name": name, "kind": "batch", "state": self.state(name).value,
            "pid": run.child.pid if run else None,
            "running": {"run_id": run.run_id, "intervals": [i.isoformat() for i in run.intervals],
                        "uptime_seconds": round(now - run.started, 1)} if run else None,
            "intervals": {s: counts.get(s, 0) for s in ("succeeded", "failed", "waiting", "running")},
            # A due, ready interval about to start (the next tick): the job is not done yet.
            "ready_pending": name in self.ready_pending and not run,
            "checked_at": self.checked_at[name].isoformat() if name in self.checked_at else None,
            "rows_written": self.ledger.rows_written(name),
            "waiting": [{"interval": i.isoformat(), "reason": r} for i, r in sorted(waiting.items())[:5]],
            "last_run": max(finished, key=lambda r: r["finished_at"]) if finished else None,
            "last_success_at": self.ledger.last_success_at(name),
            "next_fire": self.scheduler.next_fire(name, datetime.fromtimestamp(now, UTC)).isoformat(),
        }
