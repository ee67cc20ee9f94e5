"""The demo's batch step reads the orchestrator's status: done when nothing runs and nothing ready
is about to start; per job, what ran and what waits, with the reason."""

from __future__ import annotations

from datetime import UTC, datetime

from tools.demo import batch_done, batch_summary

CAUGHT_UP = datetime(2026, 12, 1, 5, 3, 9, tzinfo=UTC)


def job(state: str = "IDLE", ready_pending: bool = False, waiting: list | None = None, failed: int = 0,
        checked_at: str | None = "2026-12-01T05:03:10+00:00") -> dict:
    return {"kind": "batch", "state": state, "ready_pending": ready_pending, "rows_written": 1234,
            "intervals": {"succeeded": 30, "failed": failed, "waiting": len(waiting or []), "running": 0},
            "waiting": waiting or [], "checked_at": checked_at}


def test_done_only_when_no_run_is_in_flight_or_about_to_start():
    streaming = {"kind": "streaming", "state": "RUNNING"}
    assert batch_done({"jobs": {"e": streaming, "h": job(), "d": job("WAITING")}}, CAUGHT_UP)
    assert not batch_done({"jobs": {"e": streaming, "h": job("RUNNING")}}, CAUGHT_UP)
    assert not batch_done({"jobs": {"h": job(ready_pending=True)}}, CAUGHT_UP)
    assert not batch_done({"jobs": {"e": streaming}}, CAUGHT_UP), "no batch job selected: nothing to wait for"


def test_not_done_before_the_orchestrator_checked_the_watermarks_the_demo_saw():
    """CI, 2026-12-01: the demo saw the jobs caught up and asked for the status before the
    orchestrator's next tick; every hour still showed "waiting", and the report had no batch output."""
    assert not batch_done({"jobs": {"h": job("WAITING", checked_at="2026-12-01T05:03:08.900+00:00"),
                                    "d": job()}}, CAUGHT_UP)
    assert not batch_done({"jobs": {"h": job(checked_at=None)}}, CAUGHT_UP), "never checked yet"


def test_summary_says_what_ran_and_what_waits_and_why():
    reason = "data_enrichment/enriched_events watermark 2026-11-29T16:27:33Z < needed 2026-11-29T17:00:00Z"
    waiting = [{"interval": "2026-11-29T16:00:00+00:00", "reason": reason}]
    assert batch_summary("hourly_aggregate", job(waiting=waiting, failed=1)) == (
        "    hourly_aggregate: 30 intervals succeeded (1,234 rows written), 1 FAILED; "
        f"1 waiting for their inputs, first 2026-11-29T16:00:00+00:00: {reason}")
    assert batch_summary("daily_summary", job()) == "    daily_summary: 30 intervals succeeded (1,234 rows written)"


def test_the_demo_refuses_to_delete_folders_outside_the_project_or_remote_topics(tmp_path):
    import os
    import subprocess
    import sys

    from configs.spark_config import PROJECT_ROOT

    env = {**os.environ, "OUTPUT_ROOT": str(tmp_path / "precious"), "KAFKA_BOOTSTRAP_SERVERS": "kafka.prod:9092"}
    result = subprocess.run([sys.executable, "-m", "tools.demo"], cwd=PROJECT_ROOT, env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert f"OUTPUT_ROOT is {tmp_path / 'precious'}, outside {PROJECT_ROOT}" in result.stderr
    assert "kafka.prod:9092" in result.stderr and "--reset-anywhere" in result.stderr
