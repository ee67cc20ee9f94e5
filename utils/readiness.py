"""When a batch interval may run: only once its inputs are complete.

An interval [start, end) of a batch job is *ready* when every upstream streaming query declared
for the job in the registry (configs/jobs.yaml, `upstream`) has committed a micro-batch whose
event-time watermark is at or past `end + margin`. A stateful streaming query drops every row
at or behind its watermark, and its progress is reported only after the micro-batch committed,
so once the watermark passed the end no row of the interval can still be written.

The watermark comes from what the streaming jobs already record: their progress files
(utils/progress.py). The orchestrator checks readiness before it starts a run; the batch job
checks it again and refuses an interval that is not ready (exit code 75, EX_TEMPFAIL) unless
forced. Nothing here needs pyspark.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from configs.spark_config import JobSpec, Upstream, duration_seconds
from utils.progress import parse_watermark, progress_path, read_progress_file

NOT_READY_EXIT_CODE = 75  # EX_TEMPFAIL (sysexits.h): try again later


def interval_end(start: datetime, interval: str) -> datetime:
    return start + (timedelta(hours=1) if interval == "hour" else timedelta(days=1))


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


@dataclass(frozen=True)
class UpstreamState:
    """One upstream query against what an interval needs from it."""

    upstream: Upstream
    watermark: datetime | None
    needed: datetime
    # The orchestrator's state of the upstream job (RUNNING, FATAL, STOPPED...), when it knows it.
    job_state: str | None = None

    @property
    def passed(self) -> bool:
        return self.watermark is not None and self.watermark >= self.needed

    def describe(self) -> str:
        has = _iso(self.watermark) if self.watermark else "none yet"
        text = f"{self.upstream.label} watermark {has} < needed {_iso(self.needed)}"
        if self.job_state and self.job_state not in ("RUNNING", "STARTING"):
            text += f" ({self.upstream.job} is {self.job_state})"
        return text


@dataclass(frozen=True)
class Readiness:
    start: datetime
    end: datetime
    upstreams: tuple[UpstreamState, ...]

    @property
    def ready(self) -> bool:
        return all(u.passed for u in self.upstreams)

    @property
    def reason(self) -> str:
        """Why the interval waits ('' when it is ready)."""
        return "; ".join(u.describe() for u in self.upstreams if not u.passed)

    @property
    def watermarks(self) -> dict[str, str | None]:
        """The input watermarks the interval is (or would be) computed against."""
        return {u.upstream.label: _iso(u.watermark) for u in self.upstreams}


def upstream_watermark(state_root: Path, upstream: Upstream) -> datetime | None:
    record = read_progress_file(progress_path(state_root, upstream.job)).get(upstream.query, {})
    return parse_watermark(record.get("watermark"))


def watermarks(spec: JobSpec, state_root: Path) -> dict[str, datetime | None]:
    """The current watermark of each upstream query of `spec`, by label."""
    return {up.label: upstream_watermark(state_root, up) for up in spec.upstream}


def check(spec: JobSpec, start: datetime, *, state_root: Path | None = None,
          current: Mapping[str, datetime | None] | None = None,
          job_states: Mapping[str, str] | None = None) -> Readiness:
    """The readiness of the interval of `spec` starting at `start` (aware, UTC), against the
    upstream watermarks `current` (read from the progress files under `state_root` if not given)."""
    if current is None:
        if state_root is None:
            raise ValueError("check() needs state_root or current watermarks")
        current = watermarks(spec, state_root)
    end = interval_end(start, spec.interval or "hour")
    states = tuple(
        UpstreamState(up, current.get(up.label), end + timedelta(seconds=duration_seconds(up.margin)),
                      (job_states or {}).get(up.job))
        for up in spec.upstream)
    return Readiness(start, end, states)
