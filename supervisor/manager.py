"""The orchestrator's main loop: supervise streaming jobs, run scheduled batch jobs, report."""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from configs.spark_config import PROJECT_ROOT, JobSpec, Settings, duration_seconds
from supervisor import children, health
from supervisor.batches import BatchJobs
from supervisor.metrics import KafkaOffsets, ProgressTracker, job_lag, query_summary
from supervisor.process import Child, State, SupervisedProcess, driver_process, spawn
from supervisor.scheduler import Ledger, Scheduler
from supervisor.standby import Standby, announced_pid
from supervisor.succession import Succession
from utils import readiness
from utils.launch import spark_submit_command, spark_submit_env
from utils.preflight import kafka_client_options
from utils.progress import last_progress, parse_watermark, progress_path, read_progress_file

log = logging.getLogger("orchestrator")


def job_command(spec: JobSpec, settings: Settings, extra_args: list[str] | None = None) -> list[str]:
    """`spark-submit` to the configured master (also for local[*]) with the job's arguments."""
    if settings.orchestrator_launcher == "python":
        return [sys.executable, str(spec.script_path), *(extra_args if extra_args is not None else spec.args)]
    return spark_submit_command(spec.script_path, [*(extra_args if extra_args is not None else spec.args)],
                                master=settings.spark_master_url, settings=settings,
                                streaming=spec.kind == "streaming")


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
    # Operator commands from the HTTP thread, applied by the main loop (one thread drives the states).
    commands: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    tracker: ProgressTracker = field(default_factory=ProgressTracker)
    progress: dict[str, dict] = field(default_factory=dict)
    offsets: KafkaOffsets | None = None
    started_at: float = 0.0
    shutting_down: threading.Event = field(default_factory=threading.Event)
    forced: bool = False

    def __post_init__(self) -> None:
        self.spawner = self.spawner or self._spawn_real
        # The HTTP thread's status waits for a tick to finish: a job just gone FATAL and the
        # batch intervals waiting on it are then reported together, never half updated.
        self._tick_lock = threading.RLock()
        state_dir = self.settings.state_root / "orchestrator"
        state_dir.mkdir(parents=True, exist_ok=True)
        self.status_file = state_dir / "status.json"
        runs_dir = state_dir / "runs"
        runs_dir.mkdir(exist_ok=True)
        self.ledger = Ledger(state_dir / "ledger.sqlite")
        self.scheduler = Scheduler(self.jobs, self.ledger,
                                   catchup=timedelta(hours=self.settings.orchestrator_catchup_hours))
        self.batches = BatchJobs(self.settings, self.jobs, self.batch, self.ledger, self.scheduler, runs_dir,
                                 spawner=lambda spec, args: self.spawner(spec, args), clock=self.clock,
                                 shutting_down=self.shutting_down, once=self.once)
        self.trigger_seconds = duration_seconds(self.settings.trigger_interval)
        self.cores_needed = health.cores_needed(
            self.settings.spark_cores_max, streaming=len(self.streaming), batch=bool(self.batch),
            standbys=sum(1 for n in self.streaming if self.jobs[n].standby))
        for name in self.streaming:
            spec = self.jobs[name]
            self.processes[name] = SupervisedProcess(
                name, spec.restart, spawner=lambda s=spec: self.spawner(s, None), clock=self.clock,
                standby=self._standby(spec) if spec.standby else None)
        self.succession = Succession(state_dir / "children.json", self.processes, self.batches,
                                     self.settings.checkpoint_root,
                                     {n: s.restart.stop_timeout_seconds for n, s in self.jobs.items()})

    def _standby(self, spec: JobSpec) -> Standby:
        ready_file = self.settings.standby_file(spec.name)
        return Standby(spec.name, spawner=lambda: self.spawner(spec, [*spec.args, "--standby"]),
                       is_ready=lambda child: announced_pid(ready_file) == driver_process(child.pid),
                       clock=self.clock, stop_timeout_seconds=spec.restart.stop_timeout_seconds)

    # -- children ----------------------------------------------------------------------------------

    def _spawn_real(self, spec: JobSpec, args: list[str] | None) -> Child:
        run_id = uuid.uuid4().hex[:12]
        env = spark_submit_env({**os.environ, "RUN_ID": run_id}, self.settings)
        child = spawn(job_command(spec, self.settings, args), env=env, cwd=PROJECT_ROOT,
                      log_path=self.settings.log_dir / "orchestrator" / f"{spec.name}.out")
        child.started_at = self.clock()
        child.create_time = (children.describe(child.pid) or (0, 0.0))[1]
        return child

    def _progress_file(self, name: str) -> Path:
        return progress_path(self.settings.state_root, name)

    # -- one tick of the loop ----------------------------------------------------------------------

    def control(self, action: str, name: str | None) -> tuple[int, str]:
        """An operator's request (HTTP thread): validated here, applied by the next tick."""
        if action == "shutdown":
            self.request_shutdown(signal.SIGTERM)
            return 202, "graceful shutdown requested"
        if name not in self.processes:
            known = ", ".join(self.processes) or "none"
            kind = "a batch job (it runs on its schedule; see backfill)" if name in self.jobs else "unknown"
            return 404, f"{name!r} is {kind}; streaming jobs of this orchestrator: {known}"
        self.commands.put((action, name))
        return 202, f"{action} {name} requested (state {self.processes[name].state.value})"

    def _apply_commands(self) -> None:
        while True:
            try:
                action, name = self.commands.get_nowait()
            except queue.Empty:
                return
            proc = self.processes[name]
            log.info("%s: operator requested %s in state %s", name, action, proc.state.value,
                     extra={"job_name": name, "action": action})
            if action == "start":
                if proc.state is State.BACKOFF:
                    proc.stop("operator start: skip the backoff")
                proc.start()
            elif action == "stop":
                proc.stop("operator stop")
            else:
                proc.restart("operator restart")

    def tick(self) -> None:
        with self._tick_lock:
            self._tick()
            self.succession.save()

    def _tick(self) -> None:
        now = self.clock()
        self._apply_commands()
        for name in self.processes:
            self.progress[name] = read_progress_file(self._progress_file(name))
            self.tracker.observe(name, self.progress[name], now)
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
            self.batches.schedule({n: p.state.value for n, p in self.processes.items()})
        self.batches.reap()

    # -- life cycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        self.started_at = self.clock()
        topics = {self.settings.topics[t] for n in self.processes for t in self.jobs[n].topics}
        if topics:
            self.offsets = KafkaOffsets(self.settings.kafka_bootstrap_servers, topics,
                                        client_options=kafka_client_options(self.settings.kafka_extra_options)).start()
        handled = self.succession.adopt()
        recovered = self.ledger.recover_interrupted(keep_run_ids=handled)
        if recovered:
            log.warning("%d batch intervals were interrupted by a previous shutdown; they will be retried", recovered)
        for proc in self.processes.values():
            proc.start()  # a no-op for an adopted job
        self.succession.save()
        self.check_cores()

    def check_cores(self) -> None:
        """Say at start when the workers cannot hold every supervised application at once (not
        while none has registered yet: `docker compose up` starts them beside the orchestrator)."""
        master = health.spark_master(self.settings.spark_master_url)
        short = master.get("alive_workers") and health.core_shortfall(master, self.cores_needed)
        if short:
            log.warning(short)

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
        self.batches.signal_all(signal.SIGKILL)

    def shutdown(self, timeout: float) -> None:
        """SIGTERM every child's group, wait up to `timeout`, then SIGKILL what is left."""
        for proc in self.processes.values():
            proc.stop("orchestrator shutdown")
        self.batches.signal_all(signal.SIGTERM)
        if not self._wait_all_down(timeout, graceful=True):
            if not self.forced:
                log.warning("children still alive after %.0fs: SIGKILL", timeout)
                self._kill_all()
            if not self._wait_all_down(10.0, graceful=False):
                log.error("children still alive 10s after SIGKILL: %s", self._left())
        self.succession.save()
        if self.offsets:
            self.offsets.stop()
        self.write_status()

    def _wait_all_down(self, seconds: float, graceful: bool) -> bool:
        """Tick until every child has been reaped, or for `seconds` (a graceful wait also ends
        at a second signal, which has killed every child).
        Down means the tick has seen the exit and emptied the child's process group (the JVM
        with it), not merely that the group leader exited."""
        give_up = time.monotonic() + seconds
        while not (down := not self._left()) and time.monotonic() < give_up and not (graceful and self.forced):
            time.sleep(0.2)
            for proc in self.processes.values():
                proc.tick()
            self.batches.reap()
        return down

    def _left(self) -> list[str]:
        """The jobs whose child, standby or batch run has not been reaped yet."""
        return ([n for n, p in self.processes.items() if p.child is not None or (p.standby and p.standby.children())]
                + list(self.batches.runs))

    def run(self, poll_seconds: float = 1.0, status_every: float = 5.0) -> int:
        """Until a signal (or, with --once, until no due interval is ready or running). Exit code:
        0; 1 when a batch interval failed or a job was FATAL at the end; 75 (--once) when due
        intervals still wait for their inputs."""
        self.start()
        next_status = 0.0
        while not self.shutting_down.is_set():
            self.tick()
            if self.clock() >= next_status:
                self.write_status()
                next_status = self.clock() + status_every
            if self.once and not self.batches.runs and not self.batches.ready_pending:
                break
            self.shutting_down.wait(poll_seconds)
        fatal = [n for n, p in self.processes.items() if p.state is State.FATAL]
        self.shutdown(max((self.jobs[n].restart.stop_timeout_seconds for n in self.processes), default=30.0))
        if self.batches.failed or fatal:
            log.error("exit 1: %d batch intervals failed; FATAL jobs: %s", self.batches.failed, fatal or "none")
            return 1
        if self.once and any(self.batches.waiting.values()):
            return readiness.NOT_READY_EXIT_CODE
        return 0

    # -- reporting -----------------------------------------------------------------------------------

    def status(self) -> dict:
        master = {**health.spark_master(self.settings.spark_master_url),  # network: outside the lock
                  "cores_needed": self.cores_needed}
        with self._tick_lock:
            now = self.clock()
            jobs = {n: self._streaming_status(n, p, now) for n, p in self.processes.items()}
            jobs.update({name: self.batches.status(name, now) for name in self.batch})
            fatal = [n for n, p in self.processes.items() if p.state is State.FATAL]
        now_dt = datetime.fromtimestamp(now, UTC)
        healthy = not fatal and master.get("reachable") is not False
        return {"healthy": healthy, "time": now_dt.isoformat(), "pid": os.getpid(),
                "uptime_seconds": round(now - self.started_at, 1), "shutting_down": self.shutting_down.is_set(),
                "spark_master": master, "fatal_jobs": fatal, "jobs": jobs}

    def _streaming_status(self, name: str, proc: SupervisedProcess, now: float) -> dict:
        progress = self.progress.get(name, {})
        app = next((r for r in progress.values() if r.get("app_id")), {})
        running = proc.state in (State.STARTING, State.RUNNING)
        lag = None
        if self.offsets and self.offsets.updated_at:
            lag = job_lag([self.settings.topics[t] for t in self.jobs[name].topics], progress,
                          self.offsets.latest, self.offsets.earliest)
        return {**proc.snapshot(), "kind": "streaming", "last_progress": last_progress(self._progress_file(name)),
                # The driver's UI answers only while the job runs; the application id stays
                # valid for the History Server.
                "app_id": app.get("app_id"), "ui_url": app.get("ui_url") if running else None,
                "lag": lag, "queries": query_summary(progress, now, parse_watermark)}

    def write_status(self) -> dict:
        status = self.status()
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(status, indent=2, default=str))
        tmp.replace(self.status_file)
        return status
