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


def _restart(tmp_path, path, query_id):
    """A second run of the job: a new listener over the same progress file, one idle event."""
    listener = ProgressLogger(configure_logging("progress-test", log_dir=tmp_path), path)
    listener.onQueryStarted(SimpleNamespace(id=query_id, runId="r-2", name="events_aggregated_realtime"))
    listener.onQueryIdle(SimpleNamespace(id=query_id, runId="r-2", timestamp="2026-11-26T00:05:00Z"))
    return json.loads(path.read_text())["events_aggregated_realtime"]


def test_a_resumed_query_with_nothing_to_read_keeps_its_last_batch_and_watermark(tmp_path):
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"events_aggregated_realtime": {
        "query_id": "q-1", "query_name": "events_aggregated_realtime", "batch_id": 41, "input_rows": 12,
        "watermark": "2026-11-18T09:58:00.000Z", "logged_at": 1.0, "idle": False}}))
    record = _restart(tmp_path, path, "q-1")
    assert record["batch_id"] == 41 and record["watermark"] == "2026-11-18T09:58:00.000Z"
    assert record["idle"] is True and record["carried_over"] is True and record["logged_at"] > 1.0


def test_a_query_on_a_new_checkpoint_does_not_inherit_the_old_record(tmp_path):
    """A new checkpoint gives the query a new id: the old batch id and watermark are not its own."""
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"events_aggregated_realtime": {
        "query_id": "q-old", "batch_id": 41, "input_rows": 0, "watermark": "2026-11-18T09:58:00.000Z"}}))
    record = _restart(tmp_path, path, "q-new")
    assert record["batch_id"] is None and "watermark" not in record and record["query_id"] == "q-new"


def test_the_supervisor_reads_the_latest_progress_time_of_any_query(tmp_path):
    from supervisor.health import last_progress

    path = tmp_path / "job.json"
    assert last_progress(path) is None
    path.write_text("{not json")
    assert last_progress(path) is None
    path.write_text(json.dumps({"a": {"logged_at": 5.0}, "b": {"logged_at": 9.0}, "c": {"batch_id": 1}}))
    assert last_progress(path) == 9.0
