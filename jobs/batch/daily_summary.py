"""Usage: python jobs/batch/daily_summary.py [--target-date YYYY-MM-DD]
                                        [--from-date D1 --to-date D2] [--force]

Daily KPIs: enriched_events and clickstream_sessions of one date -> daily_summaries/
(summary_date): one row per app_type plus `all`, with totals and p50/p95 of session duration,
clicks per session and events per user. Default: yesterday (UTC). A range runs every date in one
Spark application. Each date replaces exactly its partition (a date without input replaces it
with nothing). A date runs only once the enriched_events and clickstream_sessions watermarks
have passed its end (exit 75 otherwise, unless --force).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from utils.batch_job import Outcome, add_interval_arguments, counted, read_dataset, replace_partition, run_batch_job
from utils.kpis import daily_summary

JOB = "daily_summary"
EVENT_COLUMNS = "event_id string, user_id string, app_type string"
SESSION_COLUMNS = "session_id string, app_type string, duration_seconds double, click_count long"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jobs/batch/daily_summary.py", description=__doc__.split("\n\n")[1])
    add_interval_arguments(p, "day", single=["--target-date"], default_help="yesterday")
    return p


def body(spark, settings, args, interval, log) -> Outcome:
    day = interval.day
    events = read_dataset(spark, settings, "enriched_events", log, partition_col="event_date", first=day, last=day)
    sessions = read_dataset(spark, settings, "clickstream_sessions", log, partition_col="session_date",
                            first=day, last=day)
    partition = {"summary_date": day}
    if events is None and sessions is None:
        return Outcome(0, replace_partition(spark, None, settings, "daily_summaries", partition))
    events, events_read = counted(events if events is not None else spark.createDataFrame([], EVENT_COLUMNS),
                                  "daily_events_read")
    sessions, sessions_read = counted(sessions if sessions is not None else spark.createDataFrame([], SESSION_COLUMNS),
                                      "daily_sessions_read")
    written = replace_partition(spark, daily_summary(events, sessions, summary_date=day), settings,
                                "daily_summaries", partition)
    return Outcome(events_read.get["rows"] + sessions_read.get["rows"], written)


if __name__ == "__main__":
    sys.exit(run_batch_job(JOB, parser(), body))
