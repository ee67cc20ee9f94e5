"""Cron schedules and the run ledger, with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from configs.spark_config import load_job_registry
from supervisor.scheduler import Ledger, Scheduler, interval_for, intervals_between, job_args


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
        "--target-hour", "2026-11-25 09:00:00"]


def test_daily_jobs_run_after_midnight_for_the_previous_day(scheduler):
    now = at("2026-11-25 01:00")
    assert scheduler.due("daily_summary", now, since=at("2026-11-25 00:00")) == [at("2026-11-24 00:00")]
    assert job_args(scheduler.jobs["daily_summary"], at("2026-11-24")) == ["--target-date", "2026-11-24"]
    assert job_args(scheduler.jobs["user_segmentation"], at("2026-11-24")) == [
        "--lookback-days", "30", "--as-of-date", "2026-11-24"]


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


def test_interrupted_runs_are_recovered_as_failed(scheduler):
    scheduler.ledger.mark_running("daily_summary", at("2026-11-24"), at("2026-11-25 00:31"))
    assert scheduler.ledger.recover_interrupted() == 1
    assert scheduler.ledger.status("daily_summary", at("2026-11-24")) == ("failed", 1)


def test_backfill_range_covers_each_interval():
    days = list(intervals_between(at("2026-11-01"), at("2026-11-07"), "day"))
    assert days[0] == at("2026-11-01") and days[-1] == at("2026-11-07") and len(days) == 7
    assert interval_for(at("2026-11-25 00:30"), "day") == at("2026-11-24")
