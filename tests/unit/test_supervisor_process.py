"""The supervision state machine, driven by an injected clock and fake processes."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field

import psutil
import pytest

from configs.spark_config import RestartPolicy
from supervisor.process import State, SupervisedProcess, spawn


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeChild:
    pid: int
    exit_code: int | None = None
    ignores_sigterm: bool = False
    signals: list[int] = field(default_factory=list)
    reaped: bool = False

    def poll(self) -> int | None:
        return self.exit_code

    def reap_group(self) -> None:
        self.reaped = True

    def signal_group(self, sig: int) -> None:
        self.signals.append(sig)
        if self.exit_code is None and (sig == signal.SIGKILL or not self.ignores_sigterm):
            self.exit_code = -sig if sig == signal.SIGKILL else 0

    def signal_driver(self, sig: int) -> None:
        self.signals.append(sig)


class Spawner:
    def __init__(self, **child_kwargs) -> None:
        self.children: list[FakeChild] = []
        self.kwargs = child_kwargs

    def __call__(self) -> FakeChild:
        child = FakeChild(pid=100 + len(self.children), **self.kwargs)
        self.children.append(child)
        return child


POLICY = RestartPolicy(start_seconds=10, backoff_initial_seconds=5, backoff_multiplier=2,
                       backoff_max_seconds=30, stable_seconds=100, max_consecutive_failures=5,
                       stop_timeout_seconds=20)


def make(policy: RestartPolicy = POLICY, **child_kwargs):
    clock, spawner = Clock(), Spawner(**child_kwargs)
    return SupervisedProcess("job", policy, spawner=spawner, clock=clock), clock, spawner


def crash(proc: SupervisedProcess, code: int = 1) -> None:
    proc.child.exit_code = code
    proc.tick()


def test_counts_as_started_only_after_surviving_start_seconds():
    proc, clock, _ = make()
    proc.start()
    assert proc.state is State.STARTING
    clock.advance(9.9)
    proc.tick()
    assert proc.state is State.STARTING
    clock.advance(0.2)
    proc.tick()
    assert proc.state is State.RUNNING


def test_crash_loop_backs_off_exponentially_with_a_cap_then_fatal():
    proc, clock, spawner = make()
    proc.start()
    delays = []
    for _ in range(POLICY.max_consecutive_failures):
        crash(proc)
        if proc.state is State.FATAL:
            break
        assert proc.state is State.BACKOFF
        delays.append(proc.backoff_until - clock.now)
        clock.advance(delays[-1] - 0.1)
        proc.tick()
        assert proc.state is State.BACKOFF, "no restart before the delay has passed"
        clock.advance(0.1)
        proc.tick()
        assert proc.state is State.STARTING
    assert delays == [5, 10, 20, 30]
    assert proc.state is State.FATAL
    assert len(spawner.children) == 5
    clock.advance(1000)
    proc.tick()
    assert proc.state is State.FATAL and len(spawner.children) == 5


def test_stable_run_resets_the_backoff():
    proc, clock, _ = make()
    proc.start()
    crash(proc)
    clock.advance(5)
    proc.tick()
    crash(proc)
    assert proc.stats.consecutive_failures == 2
    clock.advance(10)
    proc.tick()  # BACKOFF -> STARTING
    clock.advance(10)
    proc.tick()  # STARTING -> RUNNING
    assert proc.state is State.RUNNING
    clock.advance(100)
    proc.tick()
    assert proc.stats.consecutive_failures == 0
    crash(proc)
    # A crash after a stable run restarts at once (in the tick that saw it), not after a backoff ...
    assert proc.state is State.STARTING and proc.stats.restarts == 3
    # ... and crashing again before it is stable backs off: the second failure in a row.
    clock.advance(3)
    crash(proc)
    assert proc.backoff_until - clock.now == 10


def test_a_crash_right_when_the_run_became_stable_restarts_at_once():
    # No tick saw the run stable before the crash (the tick that finds a dead driver spends
    # seconds reaping its group): the failure count still starts again from 1.
    proc, clock, _ = make()
    proc.start()
    crash(proc)
    clock.advance(5)
    proc.tick()  # BACKOFF -> STARTING
    clock.advance(10)
    proc.tick()  # STARTING -> RUNNING
    clock.advance(100)
    crash(proc)
    assert proc.stats.consecutive_failures == 1
    assert proc.state is State.STARTING, "restarted in the same tick, no backoff"


def test_clean_exit_is_not_restarted_unless_policy_says_always():
    proc, clock, spawner = make()
    proc.start()
    clock.advance(10)
    proc.tick()
    crash(proc, code=0)
    assert proc.state is State.EXITED
    always, clock2, _ = make(POLICY.model_copy(update={"autorestart": "always"}))
    always.start()
    clock2.advance(10)
    always.tick()
    crash(always, code=0)
    assert always.state is State.BACKOFF
    assert len(spawner.children) == 1


def test_stop_sends_sigterm_then_sigkill_after_the_timeout():
    proc, clock, spawner = make(ignores_sigterm=True)
    proc.start()
    clock.advance(10)
    proc.tick()
    proc.stop()
    assert proc.state is State.STOPPING
    assert spawner.children[0].signals == [signal.SIGTERM]
    clock.advance(19)
    proc.tick()
    assert spawner.children[0].signals == [signal.SIGTERM]
    clock.advance(1)
    proc.tick()
    assert spawner.children[0].signals == [signal.SIGTERM, signal.SIGKILL]
    proc.tick()
    assert proc.state is State.STOPPED


def test_stop_of_a_cooperative_child_needs_no_sigkill():
    proc, _, spawner = make()
    proc.start()
    proc.stop()
    proc.tick()
    assert proc.state is State.STOPPED and spawner.children[0].signals == [signal.SIGTERM]


def test_unhealthy_restart_counts_as_a_failure_and_backs_off():
    proc, clock, spawner = make()
    proc.start()
    clock.advance(10)
    proc.tick()
    proc.restart_unhealthy("no progress")
    proc.tick()
    assert proc.state is State.BACKOFF
    assert proc.stats.unhealthy_restarts == 1 and proc.stats.failures == 1
    clock.advance(5)
    proc.tick()
    assert proc.state is State.STARTING and len(spawner.children) == 2


def test_a_stop_while_an_unhealthy_job_stops_cancels_its_restart():
    proc, clock, spawner = make(ignores_sigterm=True)
    proc.start()
    clock.advance(10)
    proc.tick()
    proc.restart_unhealthy("no progress")
    proc.stop("orchestrator shutdown")  # the orchestrator shuts down before the job has stopped
    spawner.children[0].exit_code = 0
    proc.tick()
    assert proc.state is State.STOPPED and len(spawner.children) == 1, "no new driver during a shutdown"


@pytest.mark.parametrize("state_before_stop", ["backoff"])
def test_stop_during_backoff_cancels_the_restart(state_before_stop):
    proc, clock, spawner = make()
    proc.start()
    crash(proc)
    proc.stop()
    assert proc.state is State.STOPPED
    clock.advance(100)
    proc.tick()
    assert len(spawner.children) == 1


def test_reaping_a_group_waits_until_every_process_left_in_it_is_gone(tmp_path):
    # A real group: the leader exits at once and leaves a grandchild behind, as a job's Python
    # driver leaves its JVM. Right after a bare SIGKILL the grandchild still exists.
    pidfile = tmp_path / "grandchild.pid"
    child = spawn(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; exit 0"], env=dict(os.environ),
                  log_path=tmp_path / "child.log", cwd=tmp_path)
    deadline = time.monotonic() + 10
    while child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    grandchild = int(pidfile.read_text())
    assert psutil.pid_exists(grandchild)
    child.reap_group()
    assert not psutil.pid_exists(grandchild)


def test_a_job_that_misses_a_dependency_is_fatal_at_once_and_an_operator_start_retries_it():
    proc, _, spawner = make()
    proc.start()
    crash(proc, code=78)
    assert proc.state is State.FATAL and len(spawner.children) == 1, "no backoff loop on a wrong address"
    proc.start()
    assert proc.state is State.STARTING and len(spawner.children) == 2
