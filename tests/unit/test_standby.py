"""The warm standby of a streaming job (supervisor/standby.py), driven by the supervision state
machine with an injected clock and fake processes; and the job side's wait for activation."""

from __future__ import annotations

import logging
import os
import signal
import threading

from configs.logging_config import ContextLogger
from supervisor.process import State, SupervisedProcess
from supervisor.standby import Standby
from tests.unit.test_supervisor_process import POLICY, Clock, Spawner, crash
from utils.streaming_job import GracefulStop, wait_as_standby


def make(ready: bool = True):
    clock, spawner, standbys = Clock(), Spawner(), Spawner()
    standbys.kwargs = {}
    standby = Standby("job", spawner=standbys, is_ready=lambda child: ready, clock=clock, retry_seconds=60,
                      stop_timeout_seconds=20)
    proc = SupervisedProcess("job", POLICY, spawner=spawner, clock=clock, standby=standby)
    return proc, clock, spawner, standbys


def running(proc, clock):
    proc.start()
    clock.advance(10)
    proc.tick()  # STARTING -> RUNNING (start_seconds 10)
    proc.tick()
    assert proc.state is State.RUNNING


def test_a_standby_starts_only_once_the_job_runs():
    proc, clock, _, standbys = make()
    proc.start()
    proc.tick()
    assert standbys.children == [], "no standby competes with the job's own start-up"
    clock.advance(10)
    proc.tick()
    proc.tick()
    assert len(standbys.children) == 1
    proc.tick()
    assert len(standbys.children) == 1, "one standby at a time"
    assert proc.snapshot()["standby"] == "ready"


def test_a_crash_activates_the_ready_standby_in_the_same_tick_and_a_new_one_follows():
    proc, clock, spawner, standbys = make()
    running(proc, clock)
    clock.advance(200)  # a stable run: restart without delay
    crash(proc)
    standby = standbys.children[0]
    assert proc.state is State.STARTING and proc.child is standby
    assert standby.signals == [signal.SIGUSR1], "activated through its driver, not its whole group"
    assert len(spawner.children) == 1, "no cold start"
    assert proc.stats.restarts == 1 and proc.stats.failures == 1
    clock.advance(10)
    proc.tick()
    proc.tick()
    assert len(standbys.children) == 2 and proc.snapshot()["standby_pid"] == standbys.children[1].pid


def test_a_standby_still_starting_is_stopped_and_the_job_starts_cold():
    proc, clock, spawner, standbys = make(ready=False)
    running(proc, clock)
    assert proc.snapshot()["standby"] == "starting"
    clock.advance(200)
    crash(proc)
    assert proc.child is spawner.children[1], "a cold start"
    assert standbys.children[0].signals == [signal.SIGTERM], "never SIGUSR1 before its handler is installed"
    proc.tick()
    assert proc.standby.retiring == [] and standbys.children[0].reaped


def test_an_operator_restart_never_uses_the_standby():
    # A restart picks up new code and settings: the standby, started with the old ones, goes too.
    proc, clock, spawner, standbys = make()
    running(proc, clock)
    proc.restart()
    proc.tick()
    assert standbys.children[0].signals == [signal.SIGTERM]
    assert proc.state is State.STARTING and proc.child is spawner.children[1]


def test_stop_stops_the_standby_and_waits_for_it():
    proc, clock, _, standbys = make()
    standbys.kwargs = {"ignores_sigterm": True}
    running(proc, clock)
    proc.stop()
    proc.tick()
    assert proc.state is State.STOPPED and proc.standby.busy(), "still waiting for the standby"
    clock.advance(20)
    proc.tick()
    assert standbys.children[0].signals == [signal.SIGTERM, signal.SIGKILL]
    proc.tick()
    assert not proc.standby.busy() and proc.standby.children() == []


def test_a_standby_that_dies_is_replaced_after_the_retry_delay_not_every_tick():
    proc, clock, _, standbys = make()
    running(proc, clock)
    standbys.children[0].exit_code = 1
    proc.tick()
    proc.tick()
    assert len(standbys.children) == 1 and standbys.children[0].reaped
    clock.advance(60)
    proc.tick()
    assert len(standbys.children) == 2


def test_the_job_side_announces_its_pid_and_waits_for_sigusr1(tmp_path):
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    try:
        _announce_and_wait(tmp_path / "standby" / "job.ready", GracefulStop().install())
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _announce_and_wait(ready, stopper):
    log = ContextLogger(logging.getLogger("test"), {})
    result = {}
    waiter = threading.Thread(target=lambda: result.update(activated=wait_as_standby(ready, stopper, log)))
    waiter.start()
    for _ in range(100):
        if ready.exists():
            break
        threading.Event().wait(0.05)
    assert ready.read_text() == str(os.getpid())
    os.kill(os.getpid(), signal.SIGUSR1)
    waiter.join(10)
    assert result == {"activated": True} and not ready.exists()
    # A SIGTERM while waiting: no activation, and the announcement is withdrawn.
    stopper.activated.clear()
    stopper.requested.set()
    assert wait_as_standby(ready, stopper, log) is False and not ready.exists()
