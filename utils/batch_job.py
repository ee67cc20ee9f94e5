"""What every batch job shares: argument types with clear errors, the session, reading a date
range of a partitioned dataset, and replacing exactly the partitions a run produced."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from configs.logging_config import ContextLogger, configure_logging
from configs.spark_config import Settings, load_cli_settings
from utils.spark_utils import create_spark_session


def utc_now() -> datetime:
    return datetime.now(UTC)


def target_hour(value: str) -> datetime:
    """'YYYY-MM-DD HH:00:00' (or 'YYYY-MM-DDTHH') -> an aware UTC datetime on the hour, not future."""
    text = value.strip().replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H"):
        try:
            hour = datetime.strptime(text, fmt).replace(tzinfo=UTC)
            break
        except ValueError:
            continue
    else:
        raise argparse.ArgumentTypeError(f"expected 'YYYY-MM-DD HH:00:00', got {value!r}")
    if hour.minute or hour.second:
        raise argparse.ArgumentTypeError(f"must be on the hour (HH:00:00), got {value!r}")
    if hour + timedelta(hours=1) > utc_now():
        raise argparse.ArgumentTypeError(f"hour {value!r} has not ended yet")
    return hour


def target_date(value: str) -> date:
    """'YYYY-MM-DD' -> a date that is not in the future (UTC)."""
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {value!r}") from None
    if day > utc_now().date():
        raise argparse.ArgumentTypeError(f"date {value!r} is in the future")
    return day


def positive_days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {value!r}") from None
    if days <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {days}")
    return days


def read_dataset(spark: SparkSession, settings: Settings, name: str, log: ContextLogger, *,
                 partition_col: str, first: date, last: date) -> DataFrame | None:
    """Partitions [first, last] of a dataset, or None (with a warning) when there are none.

    The dataset root is read (not the partition folders), so that Spark honours the streaming
    sink's `_spark_metadata` log: files a crashed micro-batch left behind are not part of it.
    """
    path = Path(settings.dataset_path(name))
    wanted = [f"{partition_col}={first + timedelta(days=i)}" for i in range((last - first).days + 1)]
    present = [p for p in wanted if (path / p).is_dir()]
    missing = sorted(set(wanted) - set(present))
    if missing:
        log.warning("input partitions missing", extra={"dataset": name, "missing": missing})
    if not present:
        return None
    return spark.read.parquet(str(path)).filter(F.col(partition_col).between(F.lit(first), F.lit(last)))


def write_partitions(df: DataFrame, settings: Settings, name: str, partition_by: list[str]) -> int:
    """Replace exactly the partitions present in `df` (dynamic partition overwrite); rows written.

    The rows are counted while they are written (an Observation): a count() afterwards would
    run the whole query a second time, or need it cached.
    """
    written = Observation(f"{name}_written")
    (df.observe(written, F.count(F.lit(1)).alias("rows")).write.mode("overwrite")
     .option("partitionOverwriteMode", "dynamic").partitionBy(*partition_by).parquet(settings.dataset_path(name)))
    return written.get["rows"]


Runner = Callable[[SparkSession, Settings, argparse.Namespace, ContextLogger], int]


def run_batch_job(name: str, parser: argparse.ArgumentParser, body: Runner,
                  argv: list[str] | None = None) -> int:
    """Parse (exit 2 with a message naming the argument on bad input), then run `body`."""
    args = parser.parse_args(argv)
    settings = load_cli_settings(name)
    log = configure_logging(name, log_dir=settings.log_dir)
    log.info("starting", extra={"arguments": {k: str(v) for k, v in vars(args).items()}})
    spark = create_spark_session(name, settings)
    try:
        code = body(spark, settings, args, log)
    finally:
        spark.stop()
    log.info("exiting", extra={"exit_code": code})
    return code
