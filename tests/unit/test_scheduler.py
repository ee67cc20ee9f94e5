"""Cron schedules and the run ledger, with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from configs.spark_config import load_job_registry
from supervisor.scheduler import Ledger, Scheduler, consecutive_runs, interval_for, intervals_between, job_args


@pytest.fixture
def scheduler(tmp_path):
    return Scheduler(load_job_registry(), Ledger(tmp_path / "ledger.sqlite"), catchup=timedelta(hours=24))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_hourly_job_runs_for_the_previous_hour_after_it_fires(scheduler):
    assert scheduler.due("hourly_aggregate", at("2026-11-25 10:09:59"), since=at("2026-11-25 10:00")) == []
    assert scheduler.due("hourly_aggregate", at("2026-11-25 10:10:00"), since=at("2026-11-25 10:00")) == [
        at("2026-11-25 09:00")]
    assert job_args(scheduler.jobs["hourly_aggregate"], at("2026-11-25 09:00")) == [
        "--from-hour", "2026-11-25 09:00:00", "--to-hour", "2026-11-25 09:00:00"]


def test_daily_jobs_run_after_midnight_for_the_previous_day(scheduler):
    now = at("2026-11-25 01:00")
    assert scheduler.due("daily_summary", now, since=at("2026-11-25 00:00")) == [at("2026-11-24 00:00")]
    assert job_args(scheduler.jobs["daily_summary"], at("2026-11-24"), at("2026-11-26")) == [
        "--from-date", "2026-11-24", "--to-date", "2026-11-26"]
    assert job_args(scheduler.jobs["user_segmentation"], at("2026-11-24")) == [
        "--lookback-days", "30", "--from-date", "2026-11-24", "--to-date", "2026-11-24"]


def test_catch_up_after_downtime_runs_each_missed_interval_once(scheduler):
    now = at("2026-11-25 14:30")
    due = scheduler.due("hourly_aggregate", now, since=at("2026-11-25 10:00"))
    assert due == [at(f"2026-11-25 {h:02d}:00") for h in range(9, 14)]
    ledger = scheduler.ledger
    for interval in due:
        ledger.mark_running("hourly_aggregate", interval, now)
        ledger.mark_done("hourly_aggregate", interval, 0, now)
    assert scheduler.due("hourly_aggregate", now, since=at("2026-11-25 10:00")) == []


def test_catch_up_is_bounded_by_the_horizon(scheduler):
    due = scheduler.due("hourly_aggregate", at("2026-11-25 14:30"))
    assert len(due) == 24


def test_failed_interval_is_retried_until_attempts_run_out(scheduler):
    ledger = scheduler.ledger
    now = at("2026-11-25 10:15")
    interval = at("2026-11-25 09:00")
    for attempt in range(3):
        assert scheduler.due("hourly_aggregate", now, since=at("2026-11-25 10:00")) == [interval], attempt
        ledger.mark_running("hourly_aggregate", interval, now)
        ledger.mark_done("hourly_aggregate", interval, 1, now)
    assert scheduler.due("hourly_aggregate", now, since=at("2026-11-25 10:00")) == []
    assert ledger.status("hourly_aggregate", interval) == ("failed", 3)


def test_waiting_is_neither_a_failure_nor_an_attempt(scheduler):
    ledger, now, interval = scheduler.ledger, at("2026-11-25 10:15"), at("2026-11-25 09:00")
    for _ in range(5):
        ledger.mark_waiting("hourly_aggregate", interval, "data_enrichment/enriched_events watermark none yet", now)
    assert ledger.status("hourly_aggregate", interval) == ("waiting", 0)
    assert scheduler.due("hourly_aggregate", now, since=at("2026-11-25 10:00")) == [interval]
    # The job itself found the input incomplete (exit 75): back to waiting, still no attempt.
    ledger.mark_running("hourly_aggregate", interval, now)
    ledger.mark_not_ready("hourly_aggregate", interval, "not ready", now)
    assert ledger.status("hourly_aggregate", interval) == ("waiting", 0)
    ledger.mark_running("hourly_aggregate", interval, now, watermarks={"a/b": "2026-11-25T10:00:00Z"})
    ledger.mark_done("hourly_aggregate", interval, 0, now, rows_read=10, rows_written=3, duration_s=1.5)
    [row] = ledger.rows("hourly_aggregate")
    assert (row["status"], row["attempts"], row["rows_read"], row["rows_written"], row["forced"]) == (
        "succeeded", 1, 10, 3, False)
    assert row["ready_at"] == now.isoformat() and row["watermarks"] == {"a/b": "2026-11-25T10:00:00Z"}
    # A later "waiting" never overwrites a finished interval.
    ledger.mark_waiting("hourly_aggregate", interval, "late", now)
    assert ledger.status("hourly_aggregate", interval) == ("succeeded", 1)


def test_consecutive_intervals_form_ranges_of_at_most_max_range():
    hours = [at(f"2026-11-25 {h:02d}:00") for h in (1, 2, 3, 5, 6, 7, 8)]
    assert consecutive_runs(hours, "hour", 3) == [hours[0:3], hours[3:6], hours[6:7]]
    assert consecutive_runs([], "hour", 3) == []


def test_an_old_ledger_gains_the_new_columns(tmp_path):
    import sqlite3

    db = sqlite3.connect(tmp_path / "ledger.sqlite")
    db.execute("""CREATE TABLE runs (job TEXT NOT NULL, interval_start TEXT NOT NULL, status TEXT NOT NULL,
                  attempts INTEGER NOT NULL DEFAULT 0, exit_code INTEGER, started_at TEXT, finished_at TEXT,
                  PRIMARY KEY (job, interval_start))""")
    db.execute("INSERT INTO runs VALUES ('daily_summary', '2026-11-24T00:00:00+00:00', 'succeeded', 1, 0, "
               "NULL, NULL)")
    db.commit()
    db.close()
    [row] = Ledger(tmp_path / "ledger.sqlite").rows()
    assert row["status"] == "succeeded" and row["rows_written"] is None and row["forced"] is False


def test_interrupted_runs_are_recovered_as_failed(scheduler):
    scheduler.ledger.mark_running("daily_summary", at("2026-11-24"), at("2026-11-25 00:31"))
    assert scheduler.ledger.recover_interrupted() == 1
    assert scheduler.ledger.status("daily_summary", at("2026-11-24")) == ("failed", 1)


def test_backfill_range_covers_each_interval():
    days = list(intervals_between(at("2026-11-01"), at("2026-11-07"), "day"))
    assert days[0] == at("2026-11-01") and days[-1] == at("2026-11-07") and len(days) == 7
    assert interval_for(at("2026-11-25 00:30"), "day") == at("2026-11-24")
