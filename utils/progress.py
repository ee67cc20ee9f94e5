"""A streaming job's progress file: the latest progress record per query, which the job's
listener (utils.spark_utils.ProgressLogger) rewrites after every micro-batch under
STATE_ROOT/progress/<job>.json.

The orchestrator (staleness, readiness of batch intervals), the batch jobs (readiness), the demo
and the tests read it. Nothing here needs pyspark.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def progress_path(state_root: Path, job: str) -> Path:
    return Path(state_root) / "progress" / f"{job}.json"


def read_progress_file(path: Path) -> dict[str, dict[str, Any]]:
    """A job's progress file (latest record per query); {} if there is none yet."""
    try:
        data = json.loads(Path(path).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def parse_watermark(text: str | None) -> datetime | None:
    """Spark's progress watermark ('2026-11-24T23:58:00.000Z') as an aware UTC datetime.

    The epoch (Spark's value before any event-time data) counts as no watermark."""
    if not text:
        return None
    value = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return None if value.timestamp() <= 0 else value


def last_progress(path: Path) -> float | None:
    """When the job last reported progress (or idleness) for any query, epoch seconds."""
    times = [q["logged_at"] for q in read_progress_file(path).values() if q.get("logged_at")]
    return max(times) if times else None
