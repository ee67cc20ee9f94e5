"""How one orchestrator hands its children to the next: the record it keeps of them
(state/orchestrator/children.json), and the adoption, by a restarted orchestrator, of those
still running. supervisor/children.py holds the record's format, the liveness checks and the
instance lock; this module decides what a successor does with each recorded child.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from configs import locations
from supervisor import children
from supervisor.batches import BatchJobs
from supervisor.process import AdoptedChild, Child, State, SupervisedProcess, driver_process

log = logging.getLogger("orchestrator")


def record_of(job: str, kind: str, child: Child, **extra) -> children.ChildRecord:
    """The record of one child (an adopted one keeps its first orchestrator's start time)."""
    if isinstance(child, AdoptedChild):
        base = child.record
        return children.ChildRecord(job, kind, base.pid, base.pgid, base.create_time, base.started_at, **extra)
    return children.ChildRecord(job, kind, child.pid, getattr(child, "pgid", child.pid),
                                getattr(child, "create_time", 0.0), getattr(child, "started_at", 0.0), **extra)


class Succession:
    """The record of this orchestrator's children, and the adoption of a predecessor's."""

    def __init__(self, path: Path, processes: dict[str, SupervisedProcess], batches: BatchJobs,
                 checkpoint_root: str, stop_timeouts: dict[str, float]):
        self.path = path
        self.processes = processes
        self.batches = batches
        self.checkpoint_root = checkpoint_root
        self.stop_timeouts = stop_timeouts
        self._recorded: list[tuple[str, int]] = []

    def save(self) -> None:
        """Rewrite the record when the set of children changed (spawn, exit, adoption)."""
        records = [record_of(n, "streaming", p.child, checkpoint=locations.join(self.checkpoint_root, n))
                   for n, p in self.processes.items() if p.child is not None]
        records += [record_of(n, "standby", c) for n, p in self.processes.items() if p.standby
                    for c in p.standby.children()]
        records += [record_of(n, "batch", r.child, run_id=r.run_id, result_file=str(r.result_file),
                              intervals=[i.isoformat() for i in r.intervals])
                    for n, r in self.batches.runs.items()]
        key = sorted((r.job, r.pid) for r in records)
        if key != self._recorded:
            children.save(self.path, records)
            self._recorded = key

    def adopt(self) -> set[str]:
        """Children a previous orchestrator recorded: adopt those still running (a streaming job
        this orchestrator supervises, or a batch run until it ends), stop the other streaming
        ones, and settle the finished batch runs from their result files. The run ids handled."""
        handled = set()
        for rec in children.load(self.path):
            alive = children.is_alive(rec)
            if rec.kind == "batch":
                handled.add(self.batches.adopt(rec, alive))
                continue
            if not alive:
                continue
            if rec.kind == "standby":
                # Stopped, not adopted: a new one starts once its job runs here (with this
                # orchestrator's code and settings).
                log.info("%s: stopping standby pid %s of a previous orchestrator", rec.job, rec.pid,
                         extra={"job_name": rec.job})
                children.stop_group(rec, 60.0, _terminate_driver)
                continue
            proc = self.processes.get(rec.job)
            if proc is not None and proc.state is State.STOPPED:
                proc.adopt(AdoptedChild(rec), rec.started_at)
                continue
            log.warning("%s: pid %s of a previous orchestrator is not supervised here: stopping it", rec.job,
                        rec.pid, extra={"job_name": rec.job})
            children.stop_group(rec, self.stop_timeouts.get(rec.job, 60.0), _terminate_driver)
        return handled


def _terminate_driver(pid: int) -> None:
    os.kill(driver_process(pid), signal.SIGTERM)
