"""Supervision of one long-running job as a state machine (after supervisord's process.py).

    STOPPED -> STARTING -> RUNNING -> (exit) -> BACKOFF -> STARTING ... -> FATAL
                                   -> STOPPING -> STOPPED
                                   -> EXITED (clean exit, not restarted by policy)

All transitions go through `_change_state`; time comes from an injected clock and processes
from an injected spawner, so tests drive it without sleeping or forking.
"""

from __future__ import annotations

import enum
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil

from configs.spark_config import RestartPolicy
from supervisor.children import ChildRecord, is_alive
from supervisor.standby import Standby
from utils.preflight import MISSING_DEPENDENCY_EXIT_CODE

log = logging.getLogger("orchestrator.process")


class State(enum.Enum):
    """A job's state. Streaming jobs move through all but IDLE and WAITING; a batch job is IDLE,
    WAITING (for its inputs), RUNNING or BACKOFF (supervisor/batches.py)."""

    IDLE = "IDLE"
    WAITING = "WAITING"
    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    EXITED = "EXITED"
    FATAL = "FATAL"


class Child(Protocol):
    pid: int
    pgid: int

    def poll(self) -> int | None: ...
    def signal_group(self, sig: int) -> None: ...
    def signal_driver(self, sig: int) -> None: ...
    def reap_group(self) -> None: ...


class GroupChild:
    """A child process that leads its own process group: signals, stop and clean-up by group."""

    pid: int
    pgid: int

    def signal_group(self, sig: int) -> None:
        if sig == signal.SIGTERM:
            self.terminate_driver()
            return
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            pass

    def reap_group(self, timeout: float = 10.0) -> None:
        """SIGKILL whatever is left in the group once the leader has exited, and wait until it is
        gone: a JVM takes a moment to die, and a stopped job must leave no process behind when
        the orchestrator reports it stopped (or exits)."""
        pgid = self.pgid
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _reap_own_children(pgid)
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.05)
        log.warning("process group %s still has members %.0fs after SIGKILL", pgid, timeout)

    def terminate_driver(self) -> None:
        """SIGTERM to the Python driver only, so that it stops its queries after the running
        micro-batch and exits 0. Signalling the whole group would also reach the JVM (the
        spark-submit launcher or the py4j gateway), whose shutdown hooks stop the SparkContext
        under the driver's feet."""
        self.signal_driver(signal.SIGTERM)

    def signal_driver(self, sig: int) -> None:
        try:
            os.kill(driver_process(self.pid), sig)
        except ProcessLookupError:
            pass


class PosixChild(GroupChild):
    """A child this orchestrator started, output sent to a log file."""

    def __init__(self, popen: subprocess.Popen):
        self.popen = popen
        self.pid = self.pgid = popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()


UNKNOWN_EXIT = -1  # an adopted child's exit code: only its parent could have read it


class AdoptedChild(GroupChild):
    """A child a previous orchestrator started, still running when this one started (see
    supervisor/children.py). It is supervised like our own, but its exit code is unknown."""

    def __init__(self, record: ChildRecord):
        self.record = record
        self.pid, self.pgid = record.pid, record.pgid

    def poll(self) -> int | None:
        return None if is_alive(self.record) else UNKNOWN_EXIT


def _reap_own_children(pgid: int) -> None:
    """Collect exited members of the group that are our children: orphans are re-parented to
    us when the orchestrator runs as PID 1 (a container without an init) or as a subreaper."""
    while True:
        try:
            pid, _status = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _is_python(proc: psutil.Process) -> bool:
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        # A child that is exiting or a zombie (the JVM forks short-lived helpers): not the driver.
        return False
    return bool(cmd) and "python" in os.path.basename(cmd[0])


def driver_process(pid: int) -> int:
    """The Python driver of a job launched as `pid`: itself when it runs Python, else the first
    Python descendant (spark-submit runs the script as a child of its JVM)."""
    try:
        leader = psutil.Process(pid)
        if _is_python(leader):
            return pid
        children = leader.children(recursive=True)
    except psutil.Error:
        return pid
    return next((child.pid for child in children if _is_python(child)), pid)


def spawn(command: list[str], *, env: dict[str, str], log_path: Path, cwd: Path) -> PosixChild:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        # Never a PIPE we would not drain: child output goes to its log file.
        popen = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
    return PosixChild(popen)


@dataclass
class Stats:
    starts: int = 0
    restarts: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_exit_code: int | None = None
    last_start: float | None = None
    last_exit: float | None = None
    unhealthy_restarts: int = 0


@dataclass
class SupervisedProcess:
    name: str
    policy: RestartPolicy
    spawner: Callable[[], Child]
    clock: Callable[[], float]
    standby: Standby | None = None
    state: State = State.STOPPED
    child: Child | None = None
    stats: Stats = field(default_factory=Stats)
    backoff_until: float = 0.0
    stop_deadline: float = 0.0
    running_since: float | None = None
    _restart_after_stop: bool = False
    _start_after_stop: bool = False
    _stop_reason: str = ""

    # -- the one choke point ---------------------------------------------------------------------

    def _change_state(self, new: State, reason: str = "") -> None:
        old, self.state = self.state, new
        level = logging.ERROR if new is State.FATAL else logging.INFO
        log.log(level, "%s: %s -> %s%s", self.name, old.value, new.value, f" ({reason})" if reason else "",
                extra={"job_name": self.name, "from_state": old.value, "to_state": new.value,
                       "reason": reason})

    # -- commands --------------------------------------------------------------------------------

    def start(self) -> None:
        if self.state in (State.STOPPED, State.EXITED, State.FATAL):
            self.stats.consecutive_failures = 0
            self._spawn()

    def restart(self, reason: str = "restart requested") -> None:
        """An operator's restart: stop gracefully, then start again at once (not a failure)."""
        if self.state in (State.STARTING, State.RUNNING) and self.child is not None:
            self._start_after_stop = True
            self.stop(reason)
        elif self.state is not State.STOPPING:
            self.stop(reason)
            self.start()

    def stop(self, reason: str = "stop requested") -> None:
        """SIGTERM to the process group; SIGKILL follows after the policy's stop timeout."""
        self._start_after_stop = self._start_after_stop and self.state in (State.STARTING, State.RUNNING)
        if self.state is State.STOPPING:
            # A stop while stopping (an operator's, the orchestrator's shutdown) cancels the
            # restart an unhealthy stop had planned: the job stays stopped.
            self._restart_after_stop = False
        if self.standby:
            self.standby.retire()
        if self.state in (State.STARTING, State.RUNNING) and self.child is not None:
            self.child.signal_group(signal.SIGTERM)
            self.stop_deadline = self.clock() + self.policy.stop_timeout_seconds
            self._stop_reason = reason
            # RUNNING -> STOPPING / STARTING -> STOPPING
            self._change_state(State.STOPPING, reason)
        elif self.state in (State.BACKOFF, State.FATAL, State.EXITED):
            # BACKOFF -> STOPPED: the pending restart is cancelled; FATAL/EXITED -> STOPPED: cleared
            self._change_state(State.STOPPED, reason)

    def restart_unhealthy(self, reason: str) -> None:
        """Stop an unhealthy job; it restarts after the stop, counted as a failure."""
        if self.state is State.RUNNING:
            self.stats.unhealthy_restarts += 1
            self._restart_after_stop = True
            self.stop(reason)

    def adopt(self, child: Child, started_at: float) -> None:
        """Supervise a child a previous orchestrator started and that still runs."""
        self.child = child
        self.stats.starts += 1
        self.stats.last_start = started_at
        self.running_since = self.clock()
        # STOPPED -> RUNNING: adopted, it has been running since `started_at`
        self._change_state(State.RUNNING, f"adopted pid {child.pid}, running since "
                                          f"{time.strftime('%H:%M:%S', time.gmtime(started_at))} UTC")

    def kill(self) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.signal_group(signal.SIGKILL)
        if self.standby:
            self.standby.kill()

    # -- the clock tick --------------------------------------------------------------------------

    def tick(self) -> None:
        if self.standby:
            self.standby.tick()
        handler = {State.STARTING: self._tick_starting, State.RUNNING: self._tick_running,
                   State.BACKOFF: self._tick_backoff, State.STOPPING: self._tick_stopping}.get(self.state)
        if handler is None:
            return
        code = self.child.poll() if self.child is not None else None
        if code is not None:
            # The leader is gone: whatever it left in its process group (a JVM, a grandchild)
            # goes too, so that no orphan outlives its job.
            self.child.reap_group()
        handler(self.clock(), code)
        if self.state is State.BACKOFF and self.clock() >= self.backoff_until:
            # A restart without delay (a crash after a stable run) happens in this tick: waiting
            # for the next one would add a poll interval to the outage.
            self._tick_backoff(self.clock(), None)

    def _tick_starting(self, now: float, code: int | None) -> None:
        if code is not None:
            self._on_failure(code, "exited during start-up")
        elif now - (self.stats.last_start or now) >= self.policy.start_seconds:
            self.running_since = now
            # STARTING -> RUNNING: it survived start_seconds
            self._change_state(State.RUNNING, f"up for {self.policy.start_seconds:.0f}s")

    def _tick_running(self, now: float, code: int | None) -> None:
        if code is None:
            stable = self.running_since is not None and now - self.running_since >= self.policy.stable_seconds
            if stable and self.stats.consecutive_failures:
                self.stats.consecutive_failures = 0
                log.info("%s: stable for %.0fs, backoff reset", self.name, self.policy.stable_seconds)
            if self.standby:
                self.standby.keep_warm()
            return
        self.stats.last_exit_code, self.stats.last_exit = code, now
        if code == 0 and self.policy.autorestart != "always":
            self.child = None
            # RUNNING -> EXITED: a clean exit the policy does not restart
            self._change_state(State.EXITED, "exit code 0")
        elif self.policy.autorestart == "never":
            self.stats.failures += 1
            self.child = None
            # RUNNING -> EXITED: a failure, but the policy never restarts
            self._change_state(State.EXITED, f"exit code {code}, autorestart=never")
        else:
            self._on_failure(code, "unexpected exit")

    def _tick_backoff(self, now: float, _code: int | None) -> None:
        if now >= self.backoff_until:
            self.stats.restarts += 1
            # BACKOFF -> STARTING: the warm standby when there is a ready one, else a cold start
            self._spawn(self.standby.take() if self.standby else None)

    def _tick_stopping(self, now: float, code: int | None) -> None:
        if code is not None:
            self.stats.last_exit_code, self.stats.last_exit = code, now
            self.child = None
            if self._restart_after_stop:
                self._restart_after_stop = False
                self._on_failure(code, self._stop_reason)
            else:
                # STOPPING -> STOPPED
                self._change_state(State.STOPPED, f"exit code {code}")
                if self._start_after_stop:
                    self._start_after_stop = False
                    self.start()
        elif now >= self.stop_deadline:
            log.warning("%s: did not stop within %.0fs, sending SIGKILL", self.name,
                        self.policy.stop_timeout_seconds)
            self.child.signal_group(signal.SIGKILL)
            self.stop_deadline = now + 3600

    # -- internals -------------------------------------------------------------------------------

    def backoff_delay(self) -> float:
        """Delay before the next start after `consecutive_failures` failures in a row."""
        n = max(self.stats.consecutive_failures, 1)
        p = self.policy
        return min(p.backoff_initial_seconds * p.backoff_multiplier ** (n - 1), p.backoff_max_seconds)

    def _spawn(self, standby: Child | None = None) -> None:
        self.child = standby or self.spawner()
        self.stats.starts += 1
        self.stats.last_start = self.clock()
        self.running_since = None
        # STOPPED/EXITED/BACKOFF -> STARTING
        self._change_state(State.STARTING, f"standby pid {standby.pid} activated" if standby
                           else f"pid {self.child.pid}")

    def _on_failure(self, code: int, reason: str) -> None:
        now = self.clock()
        self.stats.last_exit_code, self.stats.last_exit = code, now
        stable = self.running_since is not None and now - self.running_since >= self.policy.stable_seconds
        if stable:
            # A stable run resets the count even when no tick saw it stable (a crash right at the
            # boundary; reaping a dead driver's group takes a few seconds of the tick).
            self.stats.consecutive_failures = 0
        self.stats.failures += 1
        self.stats.consecutive_failures += 1
        self.child = None
        if code == MISSING_DEPENDENCY_EXIT_CODE:
            # -> FATAL at once: the job said what it misses (its log); a restart cannot fix it.
            self._change_state(State.FATAL, f"{reason}, exit code {code}: a dependency is missing "
                                            "(the job's log names it); fix it, then start the job")
            return
        if self.stats.consecutive_failures >= self.policy.max_consecutive_failures:
            # -> FATAL: too many failures in a row; the other jobs keep running
            self._change_state(State.FATAL, f"{reason}, exit code {code}, "
                                            f"{self.stats.consecutive_failures} failures in a row")
            return
        # A crash after a stable run (a killed driver, a lost host) restarts at once: waiting
        # would only add to the outage. Failing again before it is stable backs off as usual.
        delay = 0.0 if stable else self.backoff_delay()
        self.backoff_until = now + delay
        # STARTING/RUNNING/STOPPING -> BACKOFF
        self._change_state(State.BACKOFF, f"{reason}, exit code {code}; retry in {delay:.0f}s")

    def snapshot(self) -> dict:
        now = self.clock()
        return {
            "name": self.name, "state": self.state.value,
            "pid": self.child.pid if self.child else None,
            "starts": self.stats.starts, "restarts": self.stats.restarts,
            "failures": self.stats.failures, "consecutive_failures": self.stats.consecutive_failures,
            "last_exit_code": self.stats.last_exit_code,
            "uptime_seconds": round(now - self.stats.last_start, 1)
            if self.state in (State.STARTING, State.RUNNING) and self.stats.last_start else 0.0,
            "unhealthy_restarts": self.stats.unhealthy_restarts,
            "backoff_until": self.backoff_until if self.state is State.BACKOFF else None,
            **(self.standby.snapshot() if self.standby else {}),
        }
