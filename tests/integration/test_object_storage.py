"""Outputs, checkpoints, quarantine and the user master on S3 (moto's server mode, a real
S3-compatible server started by the stack): the four streaming jobs in two `--available-now`
passes, the second resuming from the checkpoints on S3 after more events arrived, then the three
batch jobs. Every dataset is compared with the independent oracle over the generator's truth."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import date, datetime, timedelta

import boto3
import pandas as pd
import pytest

from configs.spark_config import PROJECT_ROOT
from tests import oracle
from tests.integration.helpers import STREAMING, Run, four_outputs_figures, merge_truth, run_jobs
from utils import files

pytestmark = pytest.mark.integration

ENDPOINT = "http://127.0.0.1:9000"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "it-key", "AWS_SECRET_ACCESS_KEY": "it-secret", "AWS_REGION": "us-east-1"}
DAY = date(2026, 11, 24)
HOUR = datetime(2026, 11, 24, 22)
COMMON = ("--users", "150", "--malformed-rate", "0.02", "--duplicate-rate", "0.02")


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def on_s3(stack, tmp_path_factory):
    bucket = f"it-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=ENDPOINT, aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    run = Run(tmp_path_factory.mktemp("s3"), f"s3{uuid.uuid4().hex[:6]}_", data_root=f"s3a://{bucket}/platform",
              storage_env={"S3_ENDPOINT_URL": ENDPOINT, **CREDENTIALS})
    first = run.root / "truth1"
    run.generate("--app-events", "1500", "--seed", "51", "--start", iso(HOUR), *COMMON, truth=first)
    codes = run_jobs(run, STREAMING, "--available-now")
    assert codes == dict.fromkeys(STREAMING, 0), [(run.root / f"{j}.out").read_text()[-3000:] for j in STREAMING]
    after_first = {"windows": len(run.dataset("events_aggregated_realtime")),
                   "checkpoint_keys": keys(s3, bucket, "platform/checkpoints/")}
    # Part 2 starts after part 1's last event: nothing in it is late, so two passes must equal one.
    later = oracle.max_event_time(first, "app_events", "event_timestamp") + timedelta(minutes=2)
    run.generate("--app-events", "1500", "--seed", "52", "--start", iso(later), *COMMON, truth=run.root / "truth2")
    codes = run_jobs(run, STREAMING, "--available-now")
    assert codes == dict.fromkeys(STREAMING, 0), [(run.root / f"{j}.out").read_text()[-3000:] for j in STREAMING]
    merge_truth(run, [first, run.root / "truth2"])
    # The three batch jobs side by side: the hour is ready (its watermark passed); the day and
    # the segmentation are forced, as in test_batch_jobs, since the sessions' margin has not.
    label = HOUR.strftime("%Y-%m-%d %H:%M:%S")
    procs = {"hourly_aggregate": run.start_job("hourly_aggregate", "--from-hour", label, "--to-hour", label),
             "daily_summary": run.start_job("daily_summary", "--target-date", DAY.isoformat(), "--force"),
             "user_segmentation": run.start_job("user_segmentation", "--as-of-date", DAY.isoformat(),
                                                "--lookback-days", "7", "--force")}
    for job, proc in procs.items():
        assert proc.wait(timeout=600) == 0, (run.root / f"{job}.out").read_text()[-3000:]
    return run, s3, bucket, after_first


def keys(s3, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_everything_lives_on_s3_and_nothing_on_local_disk(on_s3):
    run, s3, bucket, after_first = on_s3
    stored = keys(s3, bucket, "platform/")
    for folder in ("outputs/events_aggregated_realtime/_spark_metadata/", "outputs/_quarantine/app_events/",
                   "outputs/hourly_aggregates/", "outputs/daily_summaries/", "outputs/user_segments/",
                   "checkpoints/event_aggregation/", "checkpoints/data_enrichment/", "user_master/users.parquet"):
        assert any(k.startswith(f"platform/{folder}") for k in stored), folder
    assert not (run.root / "outputs").exists() and not (run.root / "checkpoints").exists()
    assert after_first["windows"] > 0 and after_first["checkpoint_keys"]


def test_two_passes_over_s3_checkpoints_equal_the_oracle(on_s3):
    """The second pass resumed from the checkpoints on S3: no event lost or counted twice."""
    run, *_ = on_s3
    assert four_outputs_figures(run, run.truth) == dict.fromkeys(STREAMING, True)
    offsets = [p for p in run.progress_records("event_aggregation") if p["query_name"] == "events_aggregated_realtime"]
    assert len({p["query_run_id"] for p in offsets}) == 2 and len({p["query_id"] for p in offsets}) == 1
    enriched = run.dataset("enriched_events")
    master = set(files.read_dataset(run.user_master, run.settings).user_id)
    assert (enriched.user_known == enriched.user_id.isin(master)).all() and enriched.user_known.any()


@pytest.mark.parametrize("topic", ["app_events", "clickstream", "cdc_changes", "external_data"])
def test_quarantine_on_s3_holds_every_malformed_record(on_s3, topic):
    run, *_ = on_s3
    bad = oracle.malformed(run.truth, topic)
    df = run.dataset(f"_quarantine/{topic}")
    assert len(df) == len(bad) and (len(bad) > 0 or topic == "external_data"), "few external records"
    if not bad:
        return
    raw = Counter(r["value"].encode("latin-1" if r["binary"] else "utf-8") for r in bad)
    assert Counter(base64.b64decode(v) for v in df.raw_value_base64) == raw


def test_batch_jobs_on_s3_equal_the_oracle(on_s3):
    run, *_ = on_s3
    hourly = run.dataset("hourly_aggregates")
    got = {(pd.Timestamp(h, tz="UTC").to_pydatetime(), t, a): (n, u, s)
           for h, t, a, n, u, s in zip(hourly.hour_start, hourly.event_type, hourly.app_type, hourly.event_count,
                                       hourly.unique_users, hourly.unique_sessions, strict=True)}
    assert got == {k: v for k, v in oracle.hourly(run.truth).items() if k[0].replace(tzinfo=None) == HOUR}
    daily = run.dataset("daily_summaries")
    inputs = oracle.daily_inputs(run.truth, DAY, gap=timedelta(minutes=30), watermark=timedelta(minutes=5))
    assert {r.app_type: (r.total_events, r.active_users, r.total_sessions) for r in daily.itertuples()} == {
        k: (sum(v["events_per_user"].values()), len(v["events_per_user"]), len(v["sessions"]))
        for k, v in inputs.items()}
    segments = run.dataset("user_segments")
    activity = oracle.user_activity(run.truth, DAY - timedelta(days=6), DAY)
    assert {r.user_id: r.total_events for r in segments.itertuples()} == {
        u: a["events"] for u, a in activity.items()}


def test_report_reads_the_outputs_on_s3(on_s3):
    run, *_ = on_s3
    shown = subprocess.run([sys.executable, "-m", "tools.report", "--output-root", run.output_root], check=False,
                           cwd=PROJECT_ROOT, env={**os.environ, **run.env}, capture_output=True, text=True,
                           timeout=300)
    assert shown.returncode == 0, shown.stderr
    windows = len(run.dataset("events_aggregated_realtime"))
    assert f"events_aggregated_realtime   {windows:>10,} rows" in shown.stdout
    assert f"app_events: {len(oracle.malformed(run.truth, 'app_events')):,} records" in shown.stdout
