"""The orchestrator's main loop: supervise streaming jobs, run scheduled batch jobs, report."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from configs.spark_config import PROJECT_ROOT, JobSpec, Settings
from supervisor import health
from supervisor.process import Child, State, SupervisedProcess, spawn
from supervisor.scheduler import Ledger, Scheduler, job_args
from utils.spark_utils import spark_submit_command, spark_submit_env

log = logging.getLogger("orchestrator")


def job_command(spec: JobSpec, settings: Settings, extra_args: list[str] | None = None) -> list[str]:
    """`spark-submit` to the configured master (also for local[*]) with the job's arguments."""
    if settings.orchestrator_launcher == "python":
        return [sys.executable, str(spec.script_path), *(extra_args if extra_args is not None else spec.args)]
    return spark_submit_command(spec.script_path, [*(extra_args if extra_args is not None else spec.args)],
                                master=settings.spark_master_url, settings=settings,
                                streaming=spec.kind == "streaming")


@dataclass
class BatchRun:
    job: str
    interval: datetime
    child: Child
    started: float


@dataclass
class Orchestrator:
    settings: Settings
    jobs: dict[str, JobSpec]
    streaming: list[str]
    batch: list[str]
    clock: Callable[[], float] = time.time
    spawner: Callable[[JobSpec, list[str] | None], Child] | None = None
    once: bool = False
    processes: dict[str, SupervisedProcess] = field(default_factory=dict)
    batch_runs: dict[str, BatchRun] = field(default_factory=dict)
    batch_failures_at: dict[str, float] = field(default_factory=dict)
    started_at: float = 0.0
    shutting_down: threading.Event = field(default_factory=threading.Event)
    forced: bool = False

    def __post_init__(self) -> None:
        self.spawner = self.spawner or self._spawn_real
        state_dir = self.settings.state_root / "orchestrator"
        state_dir.mkdir(parents=True, exist_ok=True)
        self.status_file = state_dir / "status.json"
        self.ledger = Ledger(state_dir / "ledger.sqlite")
        self.scheduler = Scheduler(self.jobs, self.ledger, catchup=timedelta(
            hours=float(os.environ.get("ORCHESTRATOR_CATCHUP_HOURS", "24"))))
        self.trigger_seconds = health.interval_seconds(self.settings.trigger_interval)
        for name in self.streaming:
            spec = self.jobs[name]
            self.processes[name] = SupervisedProcess(
                name, spec.restart, spawner=lambda s=spec: self.spawner(s, None), clock=self.clock)

    # -- children ----------------------------------------------------------------------------------

    def _spawn_real(self, spec: JobSpec, args: list[str] | None) -> Child:
        run_id = uuid.uuid4().hex[:12]
        env = spark_submit_env({**os.environ, "RUN_ID": run_id})
        return spawn(job_command(spec, self.settings, args), env=env, cwd=PROJECT_ROOT,
                     log_path=self.settings.log_dir / "orchestrator" / f"{spec.name}.out")

    def _progress_file(self, name: str) -> Path:
        return self.settings.state_root / "progress" / f"{name}.json"

    # -- one tick of the loop ----------------------------------------------------------------------

    def tick(self) -> None:
        now = self.clock()
        for name, proc in self.processes.items():
            proc.tick()
            if proc.state is State.RUNNING and proc.stats.last_start and proc.policy.stale_progress_triggers:
                stale_after = max(proc.policy.stale_progress_triggers * self.trigger_seconds,
                                  proc.policy.stale_progress_min_seconds)
                if health.is_stale(self._progress_file(name), started_at=proc.stats.last_start,
                                   stale_after=stale_after, now=now):
                    log.warning("%s: no streaming progress for %.0fs: restarting", name, stale_after)
                    proc.restart_unhealthy(f"no progress for {stale_after:.0f}s")
        if not self.shutting_down.is_set():
            self._schedule_batches()
        self._reap_batches()

    def _schedule_batches(self) -> None:
        now_dt = datetime.fromtimestamp(self.clock(), UTC)
        for name in self.batch:
            if name in self.batch_runs:
                continue  # at most one run of a job at a time
            spec = self.jobs[name]
            failed_at = self.batch_failures_at.get(name)
            if failed_at and self.clock() - failed_at < spec.restart.backoff_initial_seconds:
                continue
            due = self.scheduler.due(name, now_dt)
            if due:
                self.start_batch(name, due[0])

    def start_batch(self, name: str, interval: datetime) -> None:
        spec = self.jobs[name]
        args = job_args(spec, interval)
        self.ledger.mark_running(name, interval, datetime.fromtimestamp(self.clock(), UTC))
        child = self.spawner(spec, args)
        self.batch_runs[name] = BatchRun(name, interval, child, self.clock())
        log.info("%s: batch run started for %s (pid %s)", name, interval.isoformat(), child.pid,
                 extra={"job_name": name, "interval": interval.isoformat()})

    def _reap_batches(self) -> None:
        for name, run in list(self.batch_runs.items()):
            code = run.child.poll()
            if code is None:
                continue
            run.child.reap_group()
            del self.batch_runs[name]
            self.ledger.mark_done(name, run.interval, code, datetime.fromtimestamp(self.clock(), UTC))
            level = logging.INFO if code == 0 else logging.ERROR
            log.log(level, "%s: batch run for %s exited %s after %.0fs", name, run.interval.isoformat(),
                    code, self.clock() - run.started, extra={"job_name": name, "exit_code": code})
            if code:
                self.batch_failures_at[name] = self.clock()
            else:
                self.batch_failures_at.pop(name, None)

    # -- life cycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        self.started_at = self.clock()
        recovered = self.ledger.recover_interrupted()
        if recovered:
            log.warning("%d batch runs were interrupted by a previous shutdown; they will be retried", recovered)
        for proc in self.processes.values():
            proc.start()

    def request_shutdown(self, signum: int) -> None:
        if self.shutting_down.is_set():
            self.forced = True
            log.error("second signal %s: killing every child now", signum)
            self._kill_all()
            return
        log.info("signal %s: graceful shutdown", signum)
        self.shutting_down.set()

    def _kill_all(self) -> None:
        for proc in self.processes.values():
            proc.kill()
        for run in self.batch_runs.values():
            run.child.signal_group(signal.SIGKILL)

    def shutdown(self, timeout: float) -> None:
        """SIGTERM every child's group, wait up to `timeout`, then SIGKILL what is left."""
        for proc in self.processes.values():
            proc.stop("orchestrator shutdown")
        for run in self.batch_runs.values():
            run.child.signal_group(signal.SIGTERM)
        deadline = self.clock() + timeout
        while self.clock() < deadline and not self.forced:
            for proc in self.processes.values():
                proc.tick()
            self._reap_batches()
            if self._all_down():
                break
            time.sleep(0.2)
        if not self._all_down():
            log.warning("children still alive after %.0fs: SIGKILL", timeout)
            self._kill_all()
            time.sleep(0.5)
            for proc in self.processes.values():
                proc.tick()
            self._reap_batches()
        self.write_status()

    def _all_down(self) -> bool:
        return (all(p.child is None or p.child.poll() is not None for p in self.processes.values())
                and not self.batch_runs)

    def run(self, poll_seconds: float = 1.0, status_every: float = 5.0) -> int:
        self.start()
        next_status = 0.0
        while not self.shutting_down.is_set():
            self.tick()
            if self.clock() >= next_status:
                self.write_status()
                next_status = self.clock() + status_every
            if self.once and not self.batch_runs and not self._any_batch_due() \
                    and all(p.state in (State.EXITED, State.FATAL, State.STOPPED) for p in self.processes.values()):
                break
            self.shutting_down.wait(poll_seconds)
        self.shutdown(max((self.jobs[n].restart.stop_timeout_seconds for n in self.processes), default=30.0))
        return 0

    def _any_batch_due(self) -> bool:
        now_dt = datetime.fromtimestamp(self.clock(), UTC)
        return any(self.scheduler.due(n, now_dt) for n in self.batch)

    # -- reporting -----------------------------------------------------------------------------------

    def status(self) -> dict:
        now = self.clock()
        jobs = {n: {**p.snapshot(), "kind": "streaming",
                    "last_progress": health.last_progress(self._progress_file(n))}
                for n, p in self.processes.items()}
        now_dt = datetime.fromtimestamp(now, UTC)
        for name in self.batch:
            rows = self.ledger.rows(name)
            run = self.batch_runs.get(name)
            jobs[name] = {
                "name": name, "kind": "batch", "state": "RUNNING" if run else "IDLE",
                "running_interval": run.interval.isoformat() if run else None,
                "pid": run.child.pid if run else None,
                "succeeded": sum(r["status"] == "succeeded" for r in rows),
                "failed": sum(r["status"] == "failed" for r in rows),
                "last_run": rows[-1] if rows else None,
                "next_fire": self.scheduler.next_fire(name, now_dt).isoformat(),
            }
        fatal = [n for n, p in self.processes.items() if p.state is State.FATAL]
        master = health.spark_master(self.settings.spark_master_url)
        healthy = not fatal and master.get("reachable") is not False
        return {"healthy": healthy, "time": now_dt.isoformat(), "pid": os.getpid(),
                "uptime_seconds": round(now - self.started_at, 1), "shutting_down": self.shutting_down.is_set(),
                "spark_master": master, "fatal_jobs": fatal, "jobs": jobs}

    def write_status(self) -> dict:
        status = self.status()
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(status, indent=2, default=str))
        tmp.replace(self.status_file)
        return status
