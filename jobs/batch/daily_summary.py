"""Usage: python jobs/batch/daily_summary.py [--target-date YYYY-MM-DD]

Daily KPIs: enriched_events and clickstream_sessions of one date -> daily_summaries/
(summary_date): one row per app_type plus `all`, with totals and p50/p95 of session duration,
clicks per session and events per user. Default: yesterday (UTC). A run replaces exactly its
date's partition; no input gives a warning and no output.
"""

import argparse
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from utils.batch_job import read_dataset, run_batch_job, target_date, utc_now, write_partitions
from utils.kpis import daily_summary

JOB = "daily_summary"
SESSION_COLUMNS = "session_id string, app_type string, duration_seconds double, click_count long"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jobs/batch/daily_summary.py", description=__doc__.split("\n\n")[1])
    yesterday = (utc_now() - timedelta(days=1)).date()
    p.add_argument("--target-date", type=target_date, default=yesterday,
                   help=f"the date to summarise, UTC (default: yesterday, {yesterday})")
    return p


def body(spark, settings, args, log) -> int:
    day = args.target_date
    events = read_dataset(spark, settings, "enriched_events", log, partition_col="event_date",
                          first=day, last=day)
    sessions = read_dataset(spark, settings, "clickstream_sessions", log, partition_col="session_date",
                            first=day, last=day)
    if events is None and sessions is None:
        log.warning("no input for the date: nothing written", extra={"target_date": str(day)})
        return 0
    if events is None:
        events = spark.createDataFrame([], "event_id string, user_id string, app_type string")
    if sessions is None:
        sessions = spark.createDataFrame([], SESSION_COLUMNS)
    rows = write_partitions(daily_summary(events, sessions, summary_date=day), settings, "daily_summaries",
                            ["summary_date"])
    log.info("date written", extra={"target_date": str(day), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(run_batch_job(JOB, parser(), body))
