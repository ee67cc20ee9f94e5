"""What lets the orchestrator survive its own crash: one instance per state folder (a lock), and
a record of its children (state/orchestrator/children.json) that a restarted orchestrator reads
to adopt the ones still running.

The lock is an flock on state/orchestrator/orchestrator.lock, which holds the owner's pid: the
kernel releases it when the owner dies, however it dies (SIGKILL, OOM killer), so a stale lock
file never blocks a restart. Each record carries the child's pid, process group and start time:
a pid that the kernel has since given to another process does not match the start time, and is
not mistaken for the child.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil


class AlreadyRunningError(RuntimeError):
    """Another orchestrator holds the state folder."""


class InstanceLock:
    """An exclusive, non-blocking flock held for the life of the process."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> InstanceLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunningError(f"another orchestrator (pid {holder(self.path) or 'unknown'}) is running "
                                 f"with the state folder {self.path.parent.parent}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def holder(path: Path) -> int | None:
    """The pid written in a lock file whose lock is held (None when nobody holds it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = Path(path).read_text().strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@dataclass
class ChildRecord:
    job: str
    kind: str  # streaming | batch | standby (a warm standby: stopped, never adopted)
    pid: int
    pgid: int
    create_time: float
    started_at: float
    checkpoint: str | None = None  # the streaming job's checkpoint folder
    run_id: str | None = None  # batch: the run, its result file and its intervals
    result_file: str | None = None
    intervals: list[str] = field(default_factory=list)


def describe(pid: int) -> tuple[int, float] | None:
    """(process group, start time) of a live process."""
    try:
        proc = psutil.Process(pid)
        return os.getpgid(pid), proc.create_time()
    except (psutil.Error, ProcessLookupError):
        return None


def is_alive(record: ChildRecord) -> bool:
    """The recorded process itself is still running (not a zombie, not a reused pid)."""
    try:
        proc = psutil.Process(record.pid)
        return abs(proc.create_time() - record.create_time) < 1.0 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def save(path: Path, records: list[ChildRecord]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(r) for r in records], indent=1))
    tmp.replace(path)


def load(path: Path) -> list[ChildRecord]:
    try:
        return [ChildRecord(**r) for r in json.loads(path.read_text())]
    except FileNotFoundError:
        return []


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def stop_group(record: ChildRecord, timeout: float, terminate) -> None:
    """SIGTERM via `terminate(pid)` (the driver, so it finishes its micro-batch), then SIGKILL
    the whole group after `timeout`, and wait until the group is empty."""
    if is_alive(record):
        terminate(record.pid)
        deadline = time.monotonic() + timeout
        while is_alive(record) and time.monotonic() < deadline:
            time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(record.pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while group_alive(record.pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
