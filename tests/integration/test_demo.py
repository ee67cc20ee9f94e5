"""`make demo` end to end on the real stack, on private topics and folders: exit 0, every dataset
written (streaming and batch), and a report with the sections the README promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from configs.spark_config import PROJECT_ROOT
from tests.integration.helpers import Run

pytestmark = pytest.mark.integration
DATASETS = ("events_aggregated_realtime", "clickstream_sessions", "cdc_transformed", "cdc_table_summary",
            "enriched_events", "external_data", "hourly_aggregates", "daily_summaries", "user_segments")


def batch_logs(run: Run) -> str:
    """What each batch job logged (and printed) in the demo: says which input a job found."""
    logs = run.root / "logs"
    files = [logs / f"{job}.log" for job in ("hourly_aggregate", "daily_summary", "user_segmentation")]
    return "\n".join(f"--- {f.name}\n{f.read_text()[-2000:]}" for f in [*files, *sorted(logs.glob("demo-*.out"))]
                     if f.exists())


def test_demo_runs_every_job_and_reports(stack, tmp_path):
    run = Run(tmp_path / "demo", f"demo{uuid.uuid4().hex[:6]}_")
    env = {**os.environ, **run.env, "ORCHESTRATOR_PORT": "18399"}
    try:
        result = subprocess.run([sys.executable, "-m", "tools.demo", "--app-events", "3000", "--timeout", "600",
                                 "--reset-anywhere"],
                                cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=1200,
                                check=False)
    finally:
        # The demo leaves its orchestrator running for exploration.
        stack.stop_orchestrator(Path(run.env["STATE_ROOT"]))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = result.stdout
    for name in DATASETS:
        rows = re.search(rf"^  {name} +([\d,]+) rows$", report, flags=re.M)
        assert rows and int(rows.group(1).replace(",", "")) > 0, \
            f"{name} empty or missing:\n{report}\n{batch_logs(run)}"
    for heading in ("Daily KPIs (daily_summaries)", "Segments (latest user_segments)",
                    "Quarantine (malformed records, by topic and reason)", "Where to look"):
        assert heading in report
    assert re.search(r"^  app_events: [\d,]+ records$", report, flags=re.M), "malformed app events not reported"
    # The orchestrator's own scheduling ran the batch step: every hour the watermark has passed,
    # in one ranged run, and the last hour or two still wait for event time to pass their end.
    assert re.search(r"^    hourly_aggregate: \d+ intervals succeeded \([\d,]+ rows written\)", report, flags=re.M)
    assert "FAILED" not in report
    hourly = run.dataset("hourly_aggregates")
    assert hourly.event_count.sum() > 0.8 * 3000, hourly
    assert "http://127.0.0.1:18399/status" in report
    assert re.search(r"Demo finished in [\d.]+ minutes", report)
