"""Usage: python jobs/batch/hourly_aggregate.py [--target-hour "YYYY-MM-DD HH:00:00"]
                                           [--from-hour H1 --to-hour H2] [--force]

Hourly aggregates: enriched_events of one hour -> hourly_aggregates/ (event_date, hour):
event_count, unique_users, unique_sessions per event_type × app_type. Default: the previous full
hour (UTC). A range runs every hour in one Spark application. Each hour replaces exactly its
partition (an hour without events replaces it with nothing). An hour runs only once the
enriched_events watermark has passed its end (exit 75 otherwise, unless --force).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from utils.batch_job import Outcome, add_interval_arguments, counted, read_dataset, replace_partition, run_batch_job
from utils.kpis import events_in_hour, hourly_aggregates

JOB = "hourly_aggregate"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jobs/batch/hourly_aggregate.py", description=__doc__.split("\n\n")[1])
    add_interval_arguments(p, "hour", single=["--target-hour"], default_help="the previous full hour")
    return p


def body(spark, settings, args, interval, log) -> Outcome:
    events = read_dataset(spark, settings, "enriched_events", log, partition_col="event_date",
                          first=interval.day, last=interval.day)
    partition = {"event_date": interval.day, "hour": interval.start.hour}
    if events is None:
        return Outcome(0, replace_partition(spark, None, settings, "hourly_aggregates", partition))
    hour_events, read = counted(events_in_hour(events, interval.start), "hourly_read")
    written = replace_partition(spark, hourly_aggregates(hour_events), settings, "hourly_aggregates", partition)
    return Outcome(read.get["rows"], written)


if __name__ == "__main__":
    sys.exit(run_batch_job(JOB, parser(), body))
