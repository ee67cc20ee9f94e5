"""The batch KPIs read their inputs once and never expand them: the physical plans are checked,
because a query that scans or expands the events once per metric is correct but many times slower
(benchmarks/history.md has the figures)."""

from __future__ import annotations

from datetime import date

import pytest

from benchmarks.synthetic import app_events, as_enriched, sessions_from_events
from utils import kpis


@pytest.fixture(scope="module")
def inputs(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("kpi_plans")
    as_enriched(app_events(spark, 2000, partitions=2)).write.parquet(str(root / "events"))
    events = spark.read.parquet(str(root / "events"))
    sessions_from_events(events).write.parquet(str(root / "sessions"))
    return events, spark.read.parquet(str(root / "sessions"))


def plan_of(df) -> str:
    return df._jdf.queryExecution().executedPlan().toString()


def scans(plan: str) -> int:
    return plan.count("FileScan parquet")


def test_hourly_aggregates_scan_the_events_once(inputs):
    events, _ = inputs
    plan = plan_of(kpis.hourly_aggregates(events))
    assert scans(plan) == 1 and "Expand" not in plan, plan


def test_daily_summary_scans_each_input_once(inputs):
    events, sessions = inputs
    plan = plan_of(kpis.daily_summary(events, sessions, summary_date=date(2026, 11, 20)))
    assert scans(plan) == 2 and "Expand" not in plan, plan


def test_user_segments_scan_each_input_once(inputs):
    events, sessions = inputs
    plan = plan_of(kpis.user_segments(events, sessions, as_of_date=date(2026, 11, 21), lookback_days=2,
                                      rules=kpis.load_segmentation_rules()))
    assert scans(plan) == 2 and "Expand" not in plan, plan
