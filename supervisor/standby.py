"""A warm standby for a streaming job (`standby: true` in configs/jobs.yaml).

A restart after a driver crash is a cold start: JVM, Python imports, Spark session and
executors take most of the outage. A standby is a second driver of the same job, started with
`--standby` once the job runs: it starts its session and executors, then waits without touching
the job's checkpoints. When the running driver dies, the supervisor activates the standby
(SIGUSR1 to its Python driver), which starts the queries from the checkpoints at once, and a
new standby is started once the job runs again.

Only a standby that has said it is ready (its pid in `Settings.standby_file(job)`, written after
its SIGUSR1 handler is installed) is activated; one that is still starting is stopped and the
job starts cold. An operator's start or restart never uses a standby: it is stopped with the job,
so that a restart picks up new code and settings in both drivers.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("orchestrator.standby")

ACTIVATE = signal.SIGUSR1


def announced_pid(path: Path) -> int | None:
    """The pid a standby wrote to its ready file (None: none there)."""
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


@dataclass
class Standby:
    name: str
    spawner: Callable[[], Any]
    # Whether this child's Python driver has announced that it waits for activation.
    is_ready: Callable[[Any], bool]
    clock: Callable[[], float]
    # After a standby died by itself (a missing dependency, a bad setting), wait this long
    # before the next one, instead of starting one per tick.
    retry_seconds: float = 60.0
    stop_timeout_seconds: float = 60.0
    child: Any = None
    retry_at: float = 0.0
    # Standbys asked to stop (SIGTERM), with the time to SIGKILL them.
    retiring: list[tuple[Any, float]] = field(default_factory=list)

    def keep_warm(self) -> None:
        """Start a standby when there is none (called while the job runs)."""
        if self.child is None and self.clock() >= self.retry_at:
            self.child = self.spawner()
            log.info("%s: standby started (pid %s)", self.name, self.child.pid,
                     extra={"job_name": self.name, "standby_pid": self.child.pid})

    def tick(self) -> None:
        """Notice a standby that died, and finish the ones being stopped."""
        now = self.clock()
        if self.child is not None and (code := self.child.poll()) is not None:
            self.child.reap_group()
            log.warning("%s: standby pid %s exited with code %s; next one in %.0fs", self.name,
                        self.child.pid, code, self.retry_seconds, extra={"job_name": self.name})
            self.child, self.retry_at = None, now + self.retry_seconds
        still = []
        for child, kill_at in self.retiring:
            if child.poll() is not None:
                child.reap_group()
                continue
            if now >= kill_at:
                child.signal_group(signal.SIGKILL)
            still.append((child, kill_at))
        self.retiring = still

    def take(self) -> Any:
        """The standby, activated, to become the job's driver; None when there is no ready one
        (a standby still starting is stopped: the job starts cold)."""
        child, self.child = self.child, None
        if child is None:
            return None
        if child.poll() is None and self.is_ready(child):
            child.signal_driver(ACTIVATE)
            return child
        self._retire(child)
        return None

    def retire(self) -> None:
        """Stop the standby (the job is being stopped or restarted by an operator)."""
        child, self.child = self.child, None
        if child is not None:
            self._retire(child)

    def _retire(self, child: Any) -> None:
        child.signal_group(signal.SIGTERM)
        self.retiring.append((child, self.clock() + self.stop_timeout_seconds))

    def kill(self) -> None:
        for child in [self.child, *(c for c, _ in self.retiring)]:
            if child is not None and child.poll() is None:
                child.signal_group(signal.SIGKILL)

    def children(self) -> list[Any]:
        """Every standby process still to be accounted for (waiting or being stopped)."""
        return [c for c in [self.child, *(c for c, _ in self.retiring)] if c is not None]

    def busy(self) -> bool:
        return any(c.poll() is None for c in self.children())

    def snapshot(self) -> dict:
        if self.child is None:
            return {"standby": "none", "standby_pid": None}
        return {"standby": "ready" if self.is_ready(self.child) else "starting", "standby_pid": self.child.pid}
