"""The orchestrator's shutdown returns only once every child's process group has been reaped,
not when the group leader has exited: a Spark driver's JVM outlives the Python leader by a few
seconds, and an orchestrator that returned then would leave it running (or leave it to the next
orchestrator's adoption)."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

from configs.spark_config import load_job_registry, load_settings
from supervisor.manager import Orchestrator


@dataclass
class LeaderExitsLate:
    """A child that exits right after the tick that sent it SIGTERM has looked at it: the
    moment at which a check of the leader alone sees it gone before any tick has reaped it."""

    pid: int
    polls_before_exit: int = 1
    signals: list[int] = field(default_factory=list)
    reaped: bool = False

    def poll(self) -> int | None:
        if self.polls_before_exit > 0:
            self.polls_before_exit -= 1
            return None
        return 0

    def reap_group(self) -> None:
        self.reaped = True

    def signal_group(self, sig: int) -> None:
        self.signals.append(sig)
        if sig == signal.SIGKILL:
            self.polls_before_exit = 0

    def signal_driver(self, sig: int) -> None:
        self.signals.append(sig)


def make(tmp_path, polls_before_exit: int = 1):
    spawned: list[LeaderExitsLate] = []

    def spawner(spec, args):
        spawned.append(LeaderExitsLate(pid=1000 + len(spawned), polls_before_exit=polls_before_exit))
        return spawned[-1]

    settings = load_settings(state_root=tmp_path / "state", log_dir=tmp_path / "logs", spark_master_url="local[1]")
    streaming = ["event_aggregation", "data_enrichment"]
    orch = Orchestrator(settings, load_job_registry(), streaming=streaming, batch=[], spawner=spawner)
    for proc in orch.processes.values():
        proc.start()
    return orch, spawned


def test_shutdown_reaps_every_group_even_when_a_leader_exits_between_tick_and_check(tmp_path):
    orch, spawned = make(tmp_path)
    orch.shutdown(timeout=5)
    assert [c.signals for c in spawned] == [[signal.SIGTERM]] * 2, "no SIGKILL: they stopped in time"
    assert all(c.reaped for c in spawned), "a leader seen gone but not reaped leaves its JVM running"
    assert all(p.child is None and p.state.value == "STOPPED" for p in orch.processes.values())


def test_shutdown_kills_and_reaps_what_outlives_the_timeout(tmp_path):
    orch, spawned = make(tmp_path, polls_before_exit=10**6)  # ignores SIGTERM; SIGKILL ends it
    orch.shutdown(timeout=0.5)
    assert all(signal.SIGKILL in c.signals and c.reaped for c in spawned)
    assert all(p.child is None for p in orch.processes.values())
