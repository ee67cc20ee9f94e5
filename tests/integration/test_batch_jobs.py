"""The three batch jobs over the streaming jobs' real outputs, checked against the generator's
ground truth (exact counts; percentiles within 1% rank error), plus idempotence and isolation,
readiness (an interval past the upstream watermark is refused with exit 75 unless forced) and
ranged runs (24 hours in one Spark application, equal to single-hour runs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta

import pandas as pd
import psutil
import pytest
import yaml

from configs.spark_config import PROJECT_ROOT
from tests import oracle
from tools import stack as stack_mod

pytestmark = pytest.mark.integration

DAY1, DAY2 = date(2026, 11, 24), date(2026, 11, 25)


def run_batch(run, job: str, *args: str, expect: int = 0) -> None:
    proc = run.start_job(job, *args)
    assert proc.wait(timeout=600) == expect, (run.root / f"{job}.out").read_text()[-3000:]


def results(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def batched(streamed):
    """The stream's event time ends at about 00:25 on DAY2, so the enriched_events watermark
    (10 minutes behind) has passed 00:00 but not 01:00, and the sessions watermark has not passed
    DAY1's end + 1 hour: only the 23:00 hour is ready; the rest is forced, as an operator would."""
    run, _ = streamed
    out = run.root / "batch-results.jsonl"
    run_batch(run, "hourly_aggregate", "--target-hour", "2026-11-24 23:00:00", "--result-file", str(out))
    run_batch(run, "hourly_aggregate", "--target-hour", "2026-11-25 00:00:00", "--result-file", str(out),
              expect=75)
    run_batch(run, "hourly_aggregate", "--target-hour", "2026-11-25 00:00:00", "--force", "--result-file", str(out))
    run_batch(run, "daily_summary", "--from-date", DAY1.isoformat(), "--to-date", DAY2.isoformat(), "--force",
              "--result-file", str(out))
    run_batch(run, "user_segmentation", "--lookback-days", "7", "--as-of-date", DAY2.isoformat(), "--force")
    return run


def test_an_interval_past_the_watermark_is_refused_unless_forced(batched):
    said = (batched.root / "hourly_aggregate.out").read_text()
    assert ("1 of 1 intervals not ready, the first 2026-11-25 00:00:00: data_enrichment/enriched_events "
            "watermark 2026-11-25T00:") in said and "pass --force (exit code 75)" in said
    by_interval = {(r["interval"], r["status"]): r for r in results(batched.root / "batch-results.jsonl")}
    assert by_interval[("2026-11-24T23:00:00+00:00", "written")]["forced"] is False
    assert by_interval[("2026-11-25T00:00:00+00:00", "not_ready")]["reason"].endswith(
        "< needed 2026-11-25T01:00:00Z")
    assert by_interval[("2026-11-25T00:00:00+00:00", "written")]["forced"] is True
    days = [r for r in results(batched.root / "batch-results.jsonl") if r["interval"].endswith("T00:00:00+00:00")
            and r["status"] == "written" and "clickstream_analysis/clickstream_sessions" in r["watermarks"]]
    assert len(days) == 2 and len({d["app_id"] for d in days}) == 1, "a date range runs in one application"


def test_hourly_aggregates_equal_the_oracle(batched):
    expected = {k: v for k, v in oracle.hourly(batched.truth).items()
                if k[0].hour in (23, 0) and k[0].date() in (DAY1, DAY2)}
    df = batched.dataset("hourly_aggregates")
    got = {(pd.Timestamp(h, tz="UTC").to_pydatetime(), t, a): (n, u, s)
           for h, t, a, n, u, s in zip(df.hour_start, df.event_type, df.app_type, df.event_count,
                                       df.unique_users, df.unique_sessions, strict=True)}
    assert got == expected
    assert sorted(set(zip(df.event_date.astype(str), df.hour.astype(int), strict=True))) == [
        ("2026-11-24", 23), ("2026-11-25", 0)]


@pytest.mark.parametrize("day", [DAY1, DAY2])
def test_daily_kpis_equal_the_oracle(batched, day):
    inputs = oracle.daily_inputs(batched.truth, day, gap=timedelta(minutes=30), watermark=timedelta(minutes=5))
    df = batched.dataset("daily_summaries")
    df = df[df.summary_date.astype(str) == day.isoformat()]
    assert set(df.app_type) == set(inputs) and "all" in set(df.app_type)
    for row in df.itertuples():
        want = inputs[row.app_type]
        epu = list(want["events_per_user"].values())
        assert row.total_events == sum(epu)
        assert row.active_users == len(epu)
        assert row.total_sessions == len(want["sessions"])
        if not want["sessions"]:
            continue
        durations = [s["duration_seconds"] for s in want["sessions"]]
        clicks = [s["click_count"] for s in want["sessions"]]
        assert row.avg_session_duration_s == pytest.approx(sum(durations) / len(durations), rel=1e-9)
        for values, p50, p95 in ((durations, row.p50_session_duration_s, row.p95_session_duration_s),
                                 (clicks, row.p50_clicks_per_session, row.p95_clicks_per_session),
                                 (epu, row.p50_events_per_user, row.p95_events_per_user)):
            assert oracle.within_rank_error(values, p50, 0.5)
            assert oracle.within_rank_error(values, p95, 0.95)


def test_user_segments_equal_the_oracle_and_follow_the_rules(batched):
    activity = oracle.user_activity(batched.truth, DAY2 - timedelta(days=6), DAY2)
    df = batched.dataset("user_segments")
    assert set(df.user_id) == set(activity)
    rules = yaml.safe_load((PROJECT_ROOT / "configs" / "segmentation.yaml").read_text())
    metric_of = {"total_events": "events", "active_days": "days", "total_sessions": "sessions",
                 "purchases": "purchases"}
    for row in df.itertuples():
        a = activity[row.user_id]
        assert (row.total_events, row.active_days, row.total_sessions, row.purchases) == (
            a["events"], len(a["days"]), len(a["sessions"]), a["purchases"])
        assert row.revenue == pytest.approx(round(a["revenue"], 2), abs=0.006)
        values = {k: (len(a[v]) if isinstance(a[v], set) else a[v]) for k, v in metric_of.items()}
        score = round(100 * sum(m["weight"] * min(values[k] / m["cap"], 1.0) for k, m in rules["score"].items()), 2)
        assert row.engagement_score == pytest.approx(score, abs=0.011)
        expected = next(s["name"] for s in rules["segments"]
                        if (s.get("min_score") is not None and score >= s["min_score"])
                        or (s.get("min_revenue") is not None and row.revenue >= s["min_revenue"]))
        assert row.segment == expected
    assert df.engagement_score.min() >= 0 and df.engagement_score.max() <= 100


def _partition_files(run, dataset: str, partition: str) -> dict[str, int]:
    path = run.root / "outputs" / dataset / partition
    return {p.name: p.stat().st_mtime_ns for p in path.glob("*.parquet")}


def test_rerun_is_idempotent_and_other_partitions_untouched(batched):
    day2_files = _partition_files(batched, "daily_summaries", f"summary_date={DAY2}")
    before = batched.dataset("daily_summaries").sort_values(["summary_date", "app_type"]).reset_index(drop=True)
    run_batch(batched, "daily_summary", "--target-date", DAY1.isoformat(), "--force")
    after = batched.dataset("daily_summaries").sort_values(["summary_date", "app_type"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)
    assert _partition_files(batched, "daily_summaries", f"summary_date={DAY2}") == day2_files


LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def listening_addresses(pid: int) -> set[str]:
    """The addresses the process tree of `pid` listens on."""
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return set()
    out = set()
    for proc in procs:
        try:
            out |= {c.laddr.ip for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
        except psutil.Error:
            continue
    return out


def test_missing_input_gives_a_warning_and_no_output(batched):
    # Run as a user would, `python jobs/...`, without SPARK_LOCAL_IP: its Spark UI (and every other
    # socket it listens on) is on 127.0.0.1 only.
    env = {k: v for k, v in {**os.environ, **batched.env}.items() if k != "SPARK_LOCAL_IP"}
    proc = subprocess.Popen([sys.executable, "jobs/batch/daily_summary.py", "--target-date", "2026-10-01"],
                            cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    seen: set[str] = set()
    while proc.poll() is None:
        seen |= listening_addresses(proc.pid)
        time.sleep(0.3)
    assert proc.returncode == 0
    assert seen and seen <= LOOPBACK, seen
    assert not (batched.root / "outputs" / "daily_summaries" / "summary_date=2026-10-01").exists()
    log = (batched.root / "logs" / "daily_summary.log").read_text()
    assert "input partitions missing" in log and "interval empty: partition replaced by nothing" in log


def completed_apps(name: str) -> set[str]:
    state = stack_mod.master_state(8080) or {}
    return {a["id"] for a in state.get("completedapps", []) if a["name"] == f"data-platform-{name}"}


def hourly_frame(run) -> pd.DataFrame:
    df = run.dataset("hourly_aggregates")
    return df.sort_values(["hour_start", "event_type", "app_type"]).reset_index(drop=True)


def test_a_24_hour_range_is_one_application_equal_to_single_runs_and_idempotent(batched):
    single = hourly_frame(batched)  # the fixture's single-hour runs
    assert len(single)
    # A stale partition in the range (an hour without events): the range replaces it with nothing.
    root = batched.root / "outputs" / "hourly_aggregates"
    stale = root / "event_date=2026-11-24" / "hour=15"
    shutil.copytree(root / "event_date=2026-11-24" / "hour=23", stale)
    apps = completed_apps("hourly_aggregate")
    out = batched.root / "range-results.jsonl"
    for attempt in range(2):
        run_batch(batched, "hourly_aggregate", "--from-hour", "2026-11-24 12:00:00", "--to-hour",
                  "2026-11-25 11:00:00", "--force", "--result-file", str(out))
        pd.testing.assert_frame_equal(hourly_frame(batched), single)
        assert not stale.exists()
        records = results(out)[24 * attempt:]
        assert len(records) == 24 and {r["status"] for r in records} == {"written"}
        assert len({r["app_id"] for r in records}) == 1, "one Spark application for the 24 hours"
        new = completed_apps("hourly_aggregate") - apps
        assert new == {records[0]["app_id"]}, (new, records[0]["app_id"])
        apps |= new
    assert sum(r["rows_written"] for r in records) == len(single)
