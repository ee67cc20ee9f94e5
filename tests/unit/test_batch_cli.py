"""Bad arguments of every batch job exit non-zero with a message naming the argument.

Argument parsing happens before any Spark session starts, so these run without a cluster.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from configs.spark_config import PROJECT_ROOT

# Filled in when the test runs, not when it is collected: a suite that crosses midnight must
# still pass a date that is in the future.
TOMORROW, NEXT_HOUR = "{tomorrow}", "{next_hour}"


def relative(arg: str) -> str:
    now = datetime.now(UTC)
    return arg.format(tomorrow=(now + timedelta(days=1)).date().isoformat(),
                      next_hour=(now + timedelta(hours=1)).strftime("%Y-%m-%d %H:00:00"))

CASES = [
    ("hourly_aggregate.py", ["--target-hour", "2026-11-24"], "--target-hour", "expected 'YYYY-MM-DD HH:00:00'"),
    ("hourly_aggregate.py", ["--target-hour", "2026-11-24 10:30:00"], "--target-hour", "on the hour"),
    ("hourly_aggregate.py", ["--target-hour", NEXT_HOUR], "--target-hour", "has not ended yet"),
    ("hourly_aggregate.py", ["--target-hour", "yesterday"], "--target-hour", "expected"),
    ("daily_summary.py", ["--target-date", "2026-13-01"], "--target-date", "expected YYYY-MM-DD"),
    ("daily_summary.py", ["--target-date", "24/11/2026"], "--target-date", "expected YYYY-MM-DD"),
    ("daily_summary.py", ["--target-date", TOMORROW], "--target-date", "in the future"),
    ("user_segmentation.py", ["--lookback-days", "0"], "--lookback-days", "must be at least 1"),
    ("user_segmentation.py", ["--lookback-days", "-3"], "--lookback-days", "must be at least 1"),
    ("user_segmentation.py", ["--lookback-days", "ten"], "--lookback-days", "whole number"),
    ("user_segmentation.py", ["--as-of-date", TOMORROW], "--as-of-date", "in the future"),
    ("daily_summary.py", ["--no-such-flag"], "--no-such-flag", "unrecognized arguments"),
]


@pytest.mark.parametrize(("script", "args", "names", "says"), CASES)
def test_bad_arguments_exit_2_with_a_clear_message(script, args, names, says):
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "jobs" / "batch" / script), *map(relative, args)],
                            check=False, capture_output=True, text=True, timeout=60, cwd="/")
    assert result.returncode == 2
    assert names in result.stderr and says in result.stderr, result.stderr


def test_streaming_job_rejects_unknown_arguments():
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "jobs/streaming/event_aggregation.py"),
                             "--avilable-now"], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--avilable-now" in result.stderr


def test_invalid_setting_names_the_variable():
    env = {"PATH": "/usr/bin:/bin", "KAFKA_TOPIC_PARTITIONS": "many"}
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "jobs/streaming/event_aggregation.py")],
                            check=False, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2 and "KAFKA_TOPIC_PARTITIONS" in result.stderr
