"""Usage: python jobs/batch/user_segmentation.py [--lookback-days 30] [--as-of-date YYYY-MM-DD]
                                            [--from-date D1 --to-date D2] [--force]

User segments: every user seen in the lookback window (as_of_date - lookback_days + 1 ..
as_of_date) -> user_segments/ (as_of_date): activity totals, engagement score (0-100), segment
(VIP/Active/Regular/Inactive), session frequency, preferred app type and device, last seen.
Rules: configs/segmentation.yaml. Default as-of date: yesterday (UTC); a range computes every
as-of date in it in one Spark application. An as-of date runs only once the enriched_events and
clickstream_sessions watermarks have passed its end (exit 75 otherwise, unless --force).
"""

import argparse
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from utils.batch_job import (
    Outcome,
    add_interval_arguments,
    counted,
    positive_days,
    read_dataset,
    replace_partition,
    run_batch_job,
)
from utils.kpis import load_segmentation_rules, user_segments

JOB = "user_segmentation"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jobs/batch/user_segmentation.py",
                                description=__doc__.split("\n\n")[1])
    p.add_argument("--lookback-days", type=positive_days, default=30,
                   help="days of activity to consider, ending at the as-of date (default 30)")
    add_interval_arguments(p, "day", single=["--as-of-date", "--target-date"], default_help="yesterday")
    return p


def body(spark, settings, args, interval, log) -> Outcome:
    last = interval.day
    first = last - timedelta(days=args.lookback_days - 1)
    events = read_dataset(spark, settings, "enriched_events", log, partition_col="event_date",
                          first=first, last=last)
    partition = {"as_of_date": last}
    if events is None:
        return Outcome(0, replace_partition(spark, None, settings, "user_segments", partition))
    events, events_read = counted(events, "segments_events_read")
    sessions = read_dataset(spark, settings, "clickstream_sessions", log, partition_col="session_date",
                            first=first, last=last)
    if sessions is None:
        sessions = spark.createDataFrame([], "user_id string, duration_seconds double")
    sessions, sessions_read = counted(sessions, "segments_sessions_read")
    result = user_segments(events, sessions, as_of_date=last, lookback_days=args.lookback_days,
                           rules=load_segmentation_rules())
    written = replace_partition(spark, result, settings, "user_segments", partition)
    return Outcome(events_read.get["rows"] + sessions_read.get["rows"], written)


if __name__ == "__main__":
    sys.exit(run_batch_job(JOB, parser(), body))
