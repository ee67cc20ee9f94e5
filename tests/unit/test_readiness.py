"""Readiness of batch intervals from fabricated progress files (the streaming jobs' own record),
with the interval end as the injected 'clock': watermark before, at and after the end; a missing
upstream; several upstreams."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from configs.spark_config import load_job_registry
from utils import readiness


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def jobs():
    return load_job_registry()


def progress(state_root, job: str, **watermarks: str | None) -> None:
    """What ProgressLogger writes: the latest record per query."""
    folder = state_root / "progress"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{job}.json").write_text(json.dumps(
        {query: {"query_name": query, "batch_id": 7, "watermark": wm} for query, wm in watermarks.items()}))


@pytest.mark.parametrize(("watermark", "ready"), [
    ("2026-11-25T09:59:59.999Z", False),   # one millisecond before the end
    ("2026-11-25T10:00:00.000Z", True),    # at the end: every row at or before it is dropped as late
    ("2026-11-25T13:20:00.000Z", True),
])
def test_hour_is_ready_once_the_watermark_reaches_its_end(tmp_path, jobs, watermark, ready):
    progress(tmp_path, "data_enrichment", enriched_events=watermark)
    check = readiness.check(jobs["hourly_aggregate"], at("2026-11-25 09:00"), state_root=tmp_path)
    assert check.ready is ready
    assert check.watermarks == {"data_enrichment/enriched_events": watermark.replace(".000Z", "Z")
                                .replace(".999Z", ".999000Z")}
    if not ready:
        assert check.reason == ("data_enrichment/enriched_events watermark 2026-11-25T09:59:59.999000Z "
                                "< needed 2026-11-25T10:00:00Z")


def test_missing_upstream_or_no_watermark_yet_waits(tmp_path, jobs):
    spec = jobs["hourly_aggregate"]
    check = readiness.check(spec, at("2026-11-25 09:00"), state_root=tmp_path)
    assert not check.ready and "watermark none yet" in check.reason
    # Spark reports the epoch before any event-time data: no watermark either.
    progress(tmp_path, "data_enrichment", enriched_events="1970-01-01T00:00:00.000Z")
    assert not readiness.check(spec, at("2026-11-25 09:00"), state_root=tmp_path).ready
    # Another query of the job is not the upstream.
    progress(tmp_path, "data_enrichment", external_data="2026-11-26T00:00:00.000Z")
    assert not readiness.check(spec, at("2026-11-25 09:00"), state_root=tmp_path).ready


def test_a_day_needs_every_upstream_with_its_margin(tmp_path, jobs):
    spec = jobs["daily_summary"]
    day = at("2026-11-24 00:00")
    progress(tmp_path, "data_enrichment", enriched_events="2026-11-25T00:30:00.000Z")
    progress(tmp_path, "clickstream_analysis", clickstream_sessions="2026-11-25T00:30:00.000Z")
    check = readiness.check(spec, day, state_root=tmp_path)
    # Sessions must pass the end of the day plus the margin (1 hour): not yet.
    assert not check.ready
    assert check.reason == ("clickstream_analysis/clickstream_sessions watermark 2026-11-25T00:30:00Z "
                            "< needed 2026-11-25T01:00:00Z")
    progress(tmp_path, "clickstream_analysis", clickstream_sessions="2026-11-25T01:00:00.000Z")
    assert readiness.check(spec, day, state_root=tmp_path).ready
    progress(tmp_path, "data_enrichment", enriched_events="2026-11-24T23:50:00.000Z")
    assert "data_enrichment/enriched_events" in readiness.check(spec, day, state_root=tmp_path).reason


def test_the_reason_names_a_stopped_or_fatal_upstream(tmp_path, jobs):
    check = readiness.check(jobs["hourly_aggregate"], at("2026-11-25 09:00"), state_root=tmp_path,
                            job_states={"data_enrichment": "FATAL"})
    assert check.reason.endswith("(data_enrichment is FATAL)")
    running = readiness.check(jobs["hourly_aggregate"], at("2026-11-25 09:00"), state_root=tmp_path,
                              job_states={"data_enrichment": "RUNNING"})
    assert "is RUNNING" not in running.reason


def test_registry_rejects_an_upstream_that_is_not_a_streaming_job(tmp_path):
    registry = tmp_path / "jobs.yaml"
    registry.write_text("""
jobs:
  hourly_aggregate:
    kind: batch
    script: jobs/batch/hourly_aggregate.py
    schedule: "10 * * * *"
    interval: hour
    upstream: [{job: nope, query: enriched_events}]
""")
    with pytest.raises(ValueError, match="upstream 'nope' is not a streaming job"):
        load_job_registry(registry)
