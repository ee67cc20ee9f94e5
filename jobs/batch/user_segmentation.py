"""Usage: python jobs/batch/user_segmentation.py [--lookback-days 30] [--as-of-date YYYY-MM-DD]

User segments: every user seen in the lookback window (as_of_date - lookback_days + 1 ..
as_of_date) -> user_segments/ (as_of_date): activity totals, engagement score (0-100), segment
(VIP/Active/Regular/Inactive), session frequency, preferred app type and device, last seen.
Rules: configs/segmentation.yaml. Default as-of date: yesterday (UTC).
"""

import argparse
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from utils.batch_job import positive_days, read_dataset, run_batch_job, target_date, utc_now, write_partitions
from utils.kpis import load_segmentation_rules, user_segments

JOB = "user_segmentation"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jobs/batch/user_segmentation.py",
                                description=__doc__.split("\n\n")[1])
    yesterday = (utc_now() - timedelta(days=1)).date()
    p.add_argument("--lookback-days", type=positive_days, default=30,
                   help="days of activity to consider, ending at the as-of date (default 30)")
    p.add_argument("--as-of-date", "--target-date", dest="as_of_date", type=target_date,
                   default=yesterday, help=f"last day of the window, UTC (default: yesterday, {yesterday})")
    return p


def body(spark, settings, args, log) -> int:
    last = args.as_of_date
    first = last - timedelta(days=args.lookback_days - 1)
    events = read_dataset(spark, settings, "enriched_events", log, partition_col="event_date",
                          first=first, last=last)
    if events is None:
        log.warning("no events in the lookback window: nothing written", extra={"as_of_date": str(last)})
        return 0
    sessions = read_dataset(spark, settings, "clickstream_sessions", log, partition_col="session_date",
                            first=first, last=last)
    if sessions is None:
        sessions = spark.createDataFrame([], "user_id string, duration_seconds double")
    result = user_segments(events, sessions, as_of_date=last, lookback_days=args.lookback_days,
                           rules=load_segmentation_rules())
    rows = write_partitions(result, settings, "user_segments", ["as_of_date"])
    log.info("segments written", extra={"as_of_date": str(last), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(run_batch_job(JOB, parser(), body))
