"""The progress file a job's listener keeps for the orchestrator and the demo."""

from __future__ import annotations

import json
from types import SimpleNamespace

from configs.logging_config import configure_logging
from utils.spark_utils import ProgressLogger


def test_a_query_restarted_with_nothing_to_read_is_recorded_as_idle(tmp_path):
    """After a restart the first event may be 'idle' (no new data): it must not blank the file."""
    path = tmp_path / "job.json"
    listener = ProgressLogger(configure_logging("progress-test", log_dir=tmp_path), path)
    listener.onQueryStarted(SimpleNamespace(id="q-1", runId="r-1", name="events_aggregated_realtime"))
    listener.onQueryIdle(SimpleNamespace(id="q-1", runId="r-1", timestamp="2026-11-26T00:00:00Z"))
    record = json.loads(path.read_text())["events_aggregated_realtime"]
    assert record["idle"] is True and record["logged_at"] > 0 and record["batch_id"] is None
