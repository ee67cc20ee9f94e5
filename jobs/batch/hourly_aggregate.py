"""Usage: python jobs/batch/hourly_aggregate.py [--target-hour "YYYY-MM-DD HH:00:00"]

Hourly aggregates: enriched_events of one hour -> hourly_aggregates/ (event_date, hour):
event_count, unique_users, unique_sessions per event_type × app_type. Default: the previous full
hour (UTC). A run replaces exactly its hour's partition; no input gives a warning and no output.
"""

import argparse
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from utils.batch_job import read_dataset, run_batch_job, target_hour, utc_now, write_partitions
from utils.kpis import events_in_hour, hourly_aggregates

JOB = "hourly_aggregate"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jobs/batch/hourly_aggregate.py", description=__doc__.split("\n\n")[1])
    previous = (utc_now() - timedelta(hours=1)).strftime("%Y-%m-%d %H:00:00")
    p.add_argument("--target-hour", type=target_hour, default=previous,
                   help=f"the hour to aggregate, UTC (default: the previous full hour, {previous})")
    return p


def body(spark, settings, args, log) -> int:
    hour = args.target_hour
    events = read_dataset(spark, settings, "enriched_events", log, partition_col="event_date",
                          first=hour.date(), last=hour.date())
    if events is None:
        log.warning("no input for the hour: nothing written", extra={"target_hour": str(hour)})
        return 0
    rows = write_partitions(hourly_aggregates(events_in_hour(events, hour)), settings, "hourly_aggregates",
                            ["event_date", "hour"])
    log.info("hour written", extra={"target_hour": str(hour), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(run_batch_job(JOB, parser(), body))
